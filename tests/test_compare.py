"""kit.compare and the CLI: one call gives the backbone x method score table."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kit
from kit import compare

ROOT = Path(__file__).resolve().parents[1]


def test_compare_table_on_clothing10(clothing10, clothing10_lite0):
    table = compare(kit.load_folder(clothing10), backbones=["efficientnet_lite0"],
                    methods=["kmeans", "agglomerative", "hdbscan"], k=10)
    assert list(table["method"]) == ["kmeans", "agglomerative", "hdbscan"]
    for col in ("nmi", "ari", "bcubed_f", "pairwise_f", "silhouette", "embed_seconds", "cluster_seconds"):
        assert col in table.columns
    km = table.set_index("method").loc["kmeans"]
    assert km["k"] == 10 and km["nmi"] >= 0.52
    assert all(isinstance(v, float) for v in table[["nmi", "ari"]].to_numpy().ravel())


def test_compare_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="methods="):
        compare(tmp_path, methods=["kmeanz"])
    with pytest.raises(ValueError, match="k=1"):
        compare(tmp_path, k=1)


def test_cli_compare_and_cluster(tmp_path):
    from skimage import data
    from PIL import Image

    for label, img in (("coffee", data.coffee()), ("cat", data.chelsea())):
        (tmp_path / "in" / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.roll(img, 25 * i, axis=1)).save(tmp_path / "in" / label / f"{i}.jpg")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "kit", *a], capture_output=True, text=True, env=env,
                                    timeout=600)
    res = run("compare", str(tmp_path / "in"), "--methods", "kmeans,agglomerative", "--k", "2",
              "--out", str(tmp_path / "scores.csv"))
    assert res.returncode == 0, res.stderr
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == 2 and (scores["nmi"] == 1.0).all()
    res = run("embed", str(tmp_path / "in"), "--out", str(tmp_path / "v.npz"))
    assert res.returncode == 0, res.stderr
    res = run("cluster", str(tmp_path / "v.npz"), "--method", "agglomerative", "--k", "2",
              "--param", "linkage='average'", "--out", str(tmp_path / "labels.csv"))
    assert res.returncode == 0, res.stderr
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert len(labels) == 8 and labels["cluster"].nunique() == 2
    assert "NMI 1.000" in res.stderr
