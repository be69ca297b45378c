"""Embedding quality on real photos, the cache (hit, miss, invalidation, same names), progress, CLI."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kit


def test_clothing10_quality(clothing10_lite0):
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    emb = clothing10_lite0
    assert emb.vectors.shape == (1485, 1280)
    assert len(emb.unreadable) == 0
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    y = np.asarray(emb.labels)
    acc = cross_val_score(KNeighborsClassifier(5), emb.vectors, y,
                          cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean()
    nmi = normalized_mutual_info_score(y, KMeans(10, n_init=10, random_state=0).fit_predict(emb.vectors))
    print(f"clothing10 lite0: 5-NN accuracy {acc:.3f}, k-means NMI {nmi:.3f}")
    assert acc >= 0.78
    assert nmi >= 0.52


def test_second_call_is_served_from_cache(clothing10, clothing10_lite0):
    again = kit.embed(kit.load_folder(clothing10), backbone="efficientnet_lite0")
    assert again.stats["cached"] == 1485 and again.stats["computed"] == 0
    np.testing.assert_array_equal(again.vectors, clothing10_lite0.vectors)
    table = kit.embedding.cache_info()
    assert table["entries"].sum() >= 1485


def test_cache_invalidation_and_same_names(tmp_path, photo):
    src = tmp_path / "src"
    (src / "one").mkdir(parents=True)
    (src / "two").mkdir()
    Image.fromarray(photo).save(src / "one" / "cat.jpg")
    Image.fromarray(photo[::-1]).save(src / "two" / "cat.jpg")  # same name, different content
    Image.fromarray(photo[:, ::-1]).save(src / "one" / "dog.jpg")
    cache_dir = tmp_path / "cache"
    before = sorted((p, p.stat().st_mtime_ns) for p in src.rglob("*"))

    calls = []
    first = kit.embed(src, cache_dir=cache_dir, progress=lambda d, t, s: calls.append((d, t, s)))
    assert first.stats == {**first.stats, "cached": 0, "computed": 3}
    assert calls[-1][:2] == (3, 3) and all(c[0] <= c[1] for c in calls)
    # the slow model build is announced before the first photo (the dashboard says so instead of "0/3")
    assert calls[0] == (0, 3, "loading model") and {c[2] for c in calls[1:]} == {"embedding"}
    v = dict(zip(first.paths, first.vectors))
    assert not np.allclose(v[str(src / "one" / "cat.jpg")], v[str(src / "two" / "cat.jpg")])

    Image.fromarray(photo[50:450, 50:450]).save(src / "one" / "dog.jpg")  # edit one file
    stages = []
    second = kit.embed(src, cache_dir=cache_dir, progress=lambda d, t, s: stages.append(s))
    assert stages[0] == "loading model"  # one file changed: the network is needed again
    assert {s for s in stages} == {"loading model", "embedding"}
    cached_stages = []
    kit.embed(src, cache_dir=cache_dir, progress=lambda d, t, s: cached_stages.append(s))
    assert set(cached_stages) == {"embedding"}  # all cached: no model is loaded, none announced
    assert second.stats["cached"] == 2 and second.stats["computed"] == 1
    assert sorted(p.name for p in src.rglob("*")) == sorted(p.name for p, _ in before)  # nothing written there
    assert all(p.stat().st_mtime_ns == m for p, m in before if p.name != "dog.jpg")

    assert kit.embedding.clear_cache(cache_dir) == 4
    assert kit.embed(src, cache_dir=cache_dir).stats["computed"] == 3


def test_good_images_all_embedded_bad_ones_reported(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "ok.jpg")
    Image.fromarray(photo).convert("CMYK").save(tmp_path / "cmyk.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.jpg").write_text("not an image")
    emb = kit.embed(tmp_path, use_cache=False)
    assert sorted(Path(p).name for p in emb.paths) == ["cmyk.jpg", "ok.jpg"]
    reasons = dict(zip(emb.unreadable["path"].map(lambda p: Path(p).name), emb.unreadable["reason"]))
    assert set(reasons) == {"truncated.jpg", "text.jpg"}
    assert all(reasons.values())
    assert float(emb.vectors[0] @ emb.vectors[1]) > 0.9  # CMYK copy embeds close to the original


def test_bad_parameters_name_themselves(tmp_path):
    with pytest.raises(ValueError, match=r"'batch_size' parameter of embed must be an int in the range \[1, inf\); got 0"):
        kit.embed(tmp_path, batch_size=0)
    with pytest.raises(ValueError, match=r"'resize' parameter of embed must be a str among .*'center_crop'.*got 'zoom'"):
        kit.embed(tmp_path, resize="zoom")


def test_cli_embed_and_backbones(tmp_path, photo):
    (tmp_path / "in" / "a").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.roll(photo, 40 * i, axis=1)).save(tmp_path / "in" / "a" / f"{i}.jpg")
    out = tmp_path / "v.npz"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-m", "kit", "embed", str(tmp_path / "in"), "--out", str(out),
                          "--cache-dir", str(tmp_path / "c")], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    z = np.load(out)
    assert z["vectors"].shape == (3, 1280) and len(z["paths"]) == 3
    assert "embedding" in res.stderr  # the tqdm bar
    res = subprocess.run([sys.executable, "-m", "kit", "backbones"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0 and "efficientnet_lite0" in res.stdout and "inception_v3" in res.stdout
