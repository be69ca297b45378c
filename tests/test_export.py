"""Exports (seed 003): CSV, Excel with a sheet per cluster, cluster folders, run log; never into the source."""
import json

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from PIL import Image

from kit import export


@pytest.fixture
def photos(tmp_path, photo):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    paths = []
    for i in range(3):
        for sub in ("a", "b"):
            p = src / sub / f"img{i}.jpg"  # same names in two folders
            Image.fromarray(np.roll(photo, 30 * i, axis=1)).save(p)
            paths.append(str(p))
    return src, paths, np.array([1, 1, 0, 0, -1, 1])  # cluster 1 holds a/img0 and b/img0


def test_csv_excel_folders_and_log(tmp_path, photos):
    src, paths, labels = photos
    out = tmp_path / "out"
    table = pd.read_csv(export.to_csv(paths, labels, out / "c.csv", source_root=src))
    assert list(table.columns) == ["path", "cluster"] and table["cluster"].tolist() == labels.tolist()

    wb = load_workbook(export.to_excel(paths, labels, out / "c.xlsx", thumbnails=True, source_root=src))
    assert wb.sheetnames == ["summary", "cluster_000", "cluster_001", "noise"]
    assert wb["cluster_001"].max_row == 4 and len(wb["cluster_001"]._images) == 3
    crops = [Image.new("RGB", (40, 40), (i * 40, 0, 0)) for i in range(6)]
    wb = load_workbook(export.to_excel(paths, labels, out / "faces.xlsx", thumbnails=True, images=crops))
    assert len(wb["cluster_000"]._images) == 2

    written = export.to_folders(paths, labels, out / "clusters", source_root=src)
    names = sorted(p.name for p in (out / "clusters" / "cluster_001").iterdir())
    assert names == ["img0.jpg", "img0_1.jpg", "img2.jpg"] and len(written) == 6
    linked = export.to_folders(paths, labels, out / "links", mode="link")
    assert all((out / "links").joinpath(*w.split("/")[-2:]).is_symlink() for w in linked["written"])

    groups = {0: [("face_a.jpg", crops[0])], -1: [("face_b.jpg", crops[1])]}
    assert len(export.crops_to_folders(groups, out / "crops")) == 2
    assert (out / "crops" / "noise" / "face_b.jpg").exists()

    export.append_run_log(out / "runs.jsonl", {"method": "kmeans", "k": np.int64(2)}, {"nmi": np.float64(0.5)})
    export.append_run_log(out / "runs.jsonl", {"method": "hdbscan"}, {"nmi": float("nan")})
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["params"] == {"method": "kmeans", "k": 2} and json.loads(lines[1])["scores"]["nmi"] is None
    assert len(export.read_run_log(out / "runs.jsonl")) == 2


def test_never_writes_into_the_source(photos):
    src, paths, labels = photos
    before = sorted(str(p) for p in src.rglob("*"))
    for call in (lambda: export.to_folders(paths, labels, src / "clusters"),
                 lambda: export.to_csv(paths, labels, src / "a" / "x.csv"),
                 lambda: export.to_folders(paths, labels, src / "new", source_root=src)):
        with pytest.raises(ValueError, match="never writes"):
            call()
    assert sorted(str(p) for p in src.rglob("*")) == before
    with pytest.raises(ValueError, match="mode='move'"):
        export.to_folders(paths, labels, src.parent / "o", mode="move")
