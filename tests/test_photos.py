"""The recommended pipeline ``kit.cluster_photos`` (issue 28): label-free, deterministic for a ``random_state``,
plain tables, one progress bar, damaged photos listed, too few photos refused by name. Its quality on the labelled
sets is measured by ``bench/quality.py`` (minutes of embedding with three backbones: not a unit test); here, on 60
built-in photos of 4 kinds of clothing, it must find groups that follow them."""
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score as nmi

import kit
from test_results_plain import _assert_plain

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "clothing" / "images"
KINDS = ("hat", "pants", "shoes", "skirt")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """15 photos of each of 4 kinds, copied (the kit must never write into the user's folder: checked below)."""
    root = tmp_path_factory.mktemp("photos")
    for kind in KINDS:
        (root / kind).mkdir()
        for src in sorted((ASSETS / kind).glob("*.jpg"))[:15]:
            shutil.copy(src, root / kind / src.name)
    return root


@pytest.fixture(scope="module")
def result(folder):
    calls = []
    out = kit.cluster_photos(folder, random_state=0, progress=lambda d, t, s: calls.append((d, t, s)))
    return out, calls


def _listing(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


def test_cluster_photos_finds_the_kinds_of_clothing(folder, result):
    out, _ = result
    truth = [Path(p).parent.name for p in out.paths]
    assert len(out.paths) == 60 == len(out.labels) and len(out.unreadable) == 0
    # measured: K=4, NMI 0.81 (36 photos gave K=10, NMI 0.76, "no clear K": too few photos per kind to tell)
    assert 3 <= out.k <= 6 and out.k == len(np.unique(out.labels)), out.reason
    assert nmi(truth, out.labels) >= 0.7, (out.reason, list(zip(truth, out.labels)))
    assert out.method in ("kmeans", "agglomerative", "spectral", "leiden")
    assert out.representation in ("lite0", "lite1", "lite2", "concat")
    assert out.reason.startswith(f"{out.method} on {out.representation} with K={out.k}")
    _assert_plain(out.table, "cluster_photos().table")
    _assert_plain(out.unreadable, "cluster_photos().unreadable")
    assert out.table["chosen"].sum() == 1


def test_cluster_photos_never_reads_labels_and_is_deterministic(folder, result):
    """The same photos with no labels, with their true labels, or with labels that lie give the same clusters;
    a second run with the same random_state too (from the cache)."""
    out, _ = result
    images = kit.load_folder(folder)
    assert images.labels is not None
    lying = replace(images, labels=["x" if i % 2 else "y" for i in range(len(images.paths))])
    unlabelled = replace(images, labels=None)
    for imgs in (images, lying, unlabelled):
        again = kit.cluster_photos(imgs, random_state=0)
        assert again.paths == out.paths
        np.testing.assert_array_equal(again.labels, out.labels)
        assert again.method == out.method and again.representation == out.representation
        pd.testing.assert_frame_equal(again.table.drop(columns="seconds"), out.table.drop(columns="seconds"))


def test_cluster_photos_reports_one_bar_with_a_forecast_once_measured(folder, result):
    out, calls = result
    totals = {t for _, t, _ in calls}
    assert len(totals) == 1, totals  # one bar: the same total from the first call to the last
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and done[0] == 0 and done[-1] == calls[0][1]
    assert calls[0][2].startswith("clustering 60 photos: embedding with 3 backbones")
    stages = [s for _, _, s in calls]
    assert any(s.startswith("embedding with efficientnet_lite2") for s in stages)
    assert any("estimating K" in s for s in stages)
    # the first run recorded its costs here: the next run says beforehand how long it should take
    seconds = kit.cluster_photos_forecast(60)
    assert seconds is not None and seconds > 0
    calls2 = []
    kit.cluster_photos(folder, random_state=0, progress=lambda d, t, s: calls2.append(s))
    assert f"(at most {seconds:.0f} s)" in calls2[0], calls2[0]


def test_cluster_photos_lists_a_damaged_photo_and_clusters_the_rest(folder, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(folder, root)
    damaged = root / "hat" / "cut.jpg"
    damaged.write_bytes(next((folder / "hat").glob("*.jpg")).read_bytes()[:300])
    (root / "shoes" / "notes.jpg").write_text("not a photo")
    before = _listing(root)
    out = kit.cluster_photos(root, random_state=0)
    assert len(out.paths) == 60 and str(damaged) not in out.paths
    reasons = dict(zip(out.unreadable["path"], out.unreadable["reason"]))
    assert set(reasons) == {str(damaged), str(root / "shoes" / "notes.jpg")}, reasons
    assert all(reasons.values())
    assert _listing(root) == before  # nothing written into the photo folder


def test_cluster_photos_refuses_too_few_photos_and_bad_parameters(folder, tmp_path):
    few = sorted(str(p) for p in folder.rglob("*.jpg"))[:5]
    with pytest.raises(ValueError, match=r"at least 20 readable photos.*5 of 5"):
        kit.cluster_photos(few, backbones=("efficientnet_lite0",))
    with pytest.raises(ValueError, match=r"tta='zoom' must be 'flip' or None"):
        kit.cluster_photos(folder, tta="zoom")
    with pytest.raises(ValueError, match=r"backbones=\(\) is empty"):
        kit.cluster_photos(folder, backbones=())
    with pytest.raises(ValueError, match="not a folder"):
        kit.cluster_photos(str(tmp_path / "nowhere"))
