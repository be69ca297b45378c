"""Exports (seed 003): CSV, Excel with a sheet per cluster, cluster folders, run log; never into the source."""
import json
from pathlib import Path

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
    assert isinstance(written, export.FolderExport) and written.removed == 0
    names = sorted(p.name for p in (out / "clusters" / "cluster_001").iterdir())
    assert names == ["img0.jpg", "img0_1.jpg", "img2.jpg"] and len(written.table) == 6
    assert list(written.table.columns) == ["path", "cluster", "written"]
    linked = export.to_folders(paths, labels, out / "links", mode="link")
    assert all((out / "links").joinpath(*w.split("/")[-2:]).is_symlink() for w in linked.table["written"])

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


# ------------------------------------------------------------------ truth and run settings beside the clusters
META = {"backbone": "efficientnet_lite0", "method": "kmeans", "params": {"n_clusters": 10, "init": "k-means++"}}
TRUTH = ["shirt", "hat", "shirt", "hat", "dress", "shirt"]


def test_assignments_carry_truth_and_run_settings():
    table = export.assignments(["a.jpg", "b.jpg"], np.array([3, -1]), truth=np.array(["cat", "dog"]), **META)
    assert list(table.columns) == ["path", "cluster", "true_label", "backbone", "method", "params"]
    assert table["true_label"].tolist() == ["cat", "dog"] and table["cluster"].tolist() == [3, -1]
    assert table["backbone"].tolist() == ["efficientnet_lite0"] * 2
    assert table["params"].tolist() == ['{"init": "k-means++", "n_clusters": 10}'] * 2  # sorted JSON
    assert table.attrs == {}
    assert list(export.assignments(["a.jpg"], [0]).columns) == ["path", "cluster"]  # the old call
    with pytest.raises(ValueError, match="truth has 1 entries for 2 paths"):
        export.assignments(["a.jpg", "b.jpg"], [0, 1], truth=["cat"])
    with pytest.raises(ValueError, match="meta item 'cluster' would replace"):
        export.assignments(["a.jpg"], [0], cluster="x")
    with pytest.raises(ValueError, match="meta item k=array"):
        export.assignments(["a.jpg"], [0], k=np.arange(3))


def test_csv_carries_truth_backbone_method_and_parameters(tmp_path, photos):
    src, paths, labels = photos
    path = export.to_csv(paths, labels, tmp_path / "out" / "c.csv", source_root=src, truth=TRUTH, meta=META)
    table = pd.read_csv(path)
    assert list(table.columns) == ["path", "cluster", "true_label", "backbone", "method", "params"]
    assert table["true_label"].tolist() == TRUTH and table["path"].tolist() == paths
    assert json.loads(table["params"][0]) == META["params"] and set(table["method"]) == {"kmeans"}


def _files(root):
    return sorted(str(p) for p in root.rglob("*"))


def test_csv_and_excel_into_memory_touch_no_disk(tmp_path, photos, monkeypatch):
    import io

    src, paths, labels = photos
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    buffer = io.BytesIO()
    assert export.to_csv(paths, labels, buffer, truth=TRUTH, meta=META) is buffer
    table = pd.read_csv(io.BytesIO(buffer.getvalue()))
    assert table["true_label"].tolist() == TRUTH and table["backbone"].tolist() == [META["backbone"]] * 6

    book = io.BytesIO()
    assert export.to_excel(paths, labels, book, thumbnails=True, truth=TRUTH, meta=META) is book
    wb = load_workbook(io.BytesIO(book.getvalue()))
    assert wb.sheetnames == ["summary", "cluster_000", "cluster_001", "noise", "run"]
    # cluster 1 holds rows 0, 1, 5: true labels shirt, hat, shirt -> "shirt", 2/3
    rows = list(wb["summary"].iter_rows(values_only=True))
    assert rows[0] == ("cluster", "images", "most common true label", "share")
    assert rows[2][:3] == ("cluster_001", 3, "shirt") and rows[2][3] == pytest.approx(2 / 3)
    assert [r[2] for r in wb["cluster_001"].iter_rows(min_row=2, values_only=True)] == ["shirt", "hat", "shirt"]
    assert len(wb["cluster_001"]._images) == 3
    assert dict(wb["run"].iter_rows(min_row=2, values_only=True)) == {
        "backbone": "efficientnet_lite0", "method": "kmeans", "params": '{"init": "k-means++", "n_clusters": 10}'}
    # the folder checks are for files: a stream may be written whatever the source folder
    export.to_csv(paths, labels, io.BytesIO(), source_root=src)
    assert _files(tmp_path) == before  # nothing written, not even temporary thumbnails
    with pytest.raises(ValueError, match="text stream"):
        export.to_csv(paths, labels, io.StringIO())


def test_zip_holds_every_photo_once_in_the_folders_of_to_folders(tmp_path, photos):
    import io
    import zipfile

    src, paths, labels = photos
    before = _files(tmp_path)
    data = export.to_zip(paths, labels, truth=TRUTH, meta=META)
    assert isinstance(data, bytes) and _files(tmp_path) == before  # built in memory
    zf = zipfile.ZipFile(io.BytesIO(data))
    photos_in_zip = sorted(n for n in zf.namelist() if n.startswith("clusters/"))
    assert len(photos_in_zip) == len(paths) and "missing.txt" not in zf.namelist()
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in zf.infolist())
    # the same folder and file names as to_folders (noise in noise/, clashing names suffixed)
    folders = export.to_folders(paths, labels, tmp_path / "folders")
    on_disk = sorted("clusters/" + Path(w).relative_to(folders.folder).as_posix() for w in folders.table["written"])
    assert photos_in_zip == on_disk
    assert "clusters/noise/img2.jpg" in photos_in_zip and "clusters/cluster_001/img0_1.jpg" in photos_in_zip
    table = pd.read_csv(io.BytesIO(zf.read("clusters.csv")))
    assert list(table.columns) == ["path", "cluster", "true_label", "backbone", "method", "params", "zip_path"]
    assert table["true_label"].tolist() == TRUTH and table["cluster"].tolist() == labels.tolist()
    for p, member in zip(table["path"], table["zip_path"]):  # each row's photo is the file in the zip
        assert zf.read(member) == Path(p).read_bytes()


def test_zip_lists_missing_files_instead_of_crashing(tmp_path, photos):
    import io
    import zipfile

    src, paths, labels = photos
    gone = str(tmp_path / "gone" / "lost.jpg")
    zf = zipfile.ZipFile(io.BytesIO(export.to_zip(paths + [gone, str(src)], list(labels) + [0, 1])))
    assert len([n for n in zf.namelist() if n.startswith("clusters/")]) == len(paths)
    missing = zf.read("missing.txt").decode().splitlines()
    assert missing[0] == "path\treason" and len(missing) == 3
    assert missing[1].startswith(gone + "\tFileNotFoundError") and missing[2].startswith(str(src) + "\t")
    table = pd.read_csv(io.BytesIO(zf.read("clusters.csv")), keep_default_na=False)
    assert table["zip_path"].tolist()[-2:] == ["", ""] and len(table) == len(paths) + 2


def test_exporting_twice_into_the_same_folder_keeps_each_photo_once(tmp_path, photos, monkeypatch):
    src, paths, labels = photos
    monkeypatch.chdir(tmp_path)
    first = export.to_folders(paths, labels, "exported")  # a relative folder
    assert first.folder.is_absolute() and first.folder == tmp_path / "exported" and first.removed == 0
    second = export.to_folders(paths, np.array([0, 0, 0, 1, 1, 1]), "exported", mode="link")
    assert second.removed == len(paths)
    files = [p for p in (tmp_path / "exported").rglob("*") if p.is_file() and p.name != export.MANIFEST]
    assert len(files) == len(paths)
    assert sorted(p.parent.name for p in files) == ["cluster_000"] * 3 + ["cluster_001"] * 3
    assert not (tmp_path / "exported" / "noise").exists()  # the folder of the first export, empty, removed
    assert sorted(Path(w) for w in second.table["written"]) == sorted(files)


def test_a_record_left_half_written_by_a_killed_export_is_removed_by_the_next(tmp_path, photos):
    """An export killed while it wrote its record leaves the record's temporary file; the next export into the
    folder removes it (a name only the kit gives), and nothing else that is not its own."""
    src, paths, labels = photos
    out = tmp_path / "out"
    export.to_folders(paths, labels, out)
    leftover = out / f"{export.MANIFEST}.tmp-abc123"
    leftover.write_bytes(b'{"kind": "exp')  # cut mid-write
    mine = out / ".tmp-user-file"  # a user's file with a similar name is not the kit's
    mine.write_text("keep")
    again = export.to_folders(paths, labels, out)
    assert not leftover.exists() and mine.read_text() == "keep"
    written = sorted(p for p in out.rglob("*") if p.is_file() and p.name not in (export.MANIFEST, mine.name))
    assert len(written) == len(paths) == len(again.table)
