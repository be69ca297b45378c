"""Seed 001's workflow on the command line (issue 29): ``python -m kit cluster part.bin --dim D --meta part.meta
--knn faiss_k_N.npz --method hard_clusters --out pred.meta`` on a small MS1M-style set written with the kit's own
writers: the predicted .meta reads back and scores high; the scores are printed overall and binned; bad inputs
fail with a message that names the option and the fix."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit import formats
from kit._utils.neighbors import knn
from kit.metrics import bcubed_precision_recall_f, pairwise_precision_recall_f

ROOT = Path(__file__).resolve().parents[1]
K = 20  # neighbours per row besides the row itself; the file holds K + 1 per row, the row itself first
SIZES = [60, 45, 40, 30, 25, 20, 16, 12, 10, 8, 6, 5, 4, 3, 2, 2]  # 288 rows: large to tiny identities


@pytest.fixture(scope="module")
def ms1m(tmp_path_factory):
    """part.bin (L2-normalised float32 rows, dim 32), part.meta (identities), faiss_k_21.npz (the kit's kNN in the
    benchmark layout: the row itself first, distances 1 - cos)."""
    root = tmp_path_factory.mktemp("ms1m")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(SIZES), 32))
    y = np.repeat(np.arange(len(SIZES)), SIZES) + 100  # labels need not start at 0
    X = centres[y - 100] + rng.normal(scale=0.25, size=(len(y), 32))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    formats.write_features_bin(root / "part.bin", X)
    formats.write_meta(root / "part.meta", y)
    sims, idx = knn(X, K)
    n = len(X)
    formats.write_knn_npz(root / f"faiss_k_{K + 1}.npz", np.hstack([np.arange(n)[:, None], idx]),
                          np.hstack([np.zeros((n, 1)), 1 - sims]))
    return root, X, y


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kit", "cluster", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600, cwd=cwd)


def test_cluster_bin_without_truth_writes_meta_and_csv(ms1m):
    root, X, y = ms1m
    res = run(root / "part.bin", "--dim", 32, "--method", "hard_clusters", "--param", f"k={K}",
              "--out", root / "plain.meta")
    assert res.returncode == 0, res.stderr
    pred = formats.read_meta(root / "plain.meta")
    assert len(pred) == len(y) and "pairwise F" not in res.stdout
    res = run(root / "part.bin", "--dim", 32, "--method", "hard_clusters", "--param", f"k={K}",
              "--out", root / "plain.csv")
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(root / "plain.csv")
    assert table.columns.tolist() == ["row", "cluster"] and table["row"].tolist() == list(range(len(y)))
    np.testing.assert_array_equal(table["cluster"], pred)  # the kit's own kNN, the same labels


@pytest.mark.parametrize("args, match", [
    (["{root}/part.bin", "--method", "hard_clusters"], r"part\.bin is a \.bin feature file.*--dim"),
    (["{root}/part.bin", "--dim", "31", "--method", "hard_clusters"], r"--dim 31: .*not a multiple"),
    (["{root}/part.bin", "--dim", "32", "--knn", "{root}/short.npz", "--method", "hard_clusters"],
     r"--knn .*short\.npz: knn has neighbours of shape \(200, 20\).*X has 288 rows"),
    (["{root}/part.bin", "--dim", "32", "--knn", "{root}/faiss_k_21.npz", "--method", "hard_clusters",
      "--param", "k=40"], r"k=40 but knn gives 20 neighbours per row.*--param k=20"),
    (["{root}/part.bin", "--dim", "32", "--knn", "{root}/faiss_k_21.npz", "--method", "kmeans", "--k", "16"],
     r"--knn .*method 'kmeans' searches its own neighbours.*--method hard_clusters"),
    (["{root}/part.bin", "--dim", "32", "--knn", "{root}/part.meta", "--method", "hard_clusters"],
     r"--knn: .*part\.meta is not a readable \.npz"),
    (["{root}/part.bin", "--dim", "32", "--meta", "{root}/short.meta", "--method", "hard_clusters"],
     r"--meta .*short\.meta has 287 labels for the 288 rows"),
])
def test_bad_inputs_fail_with_a_clear_message(ms1m, args, match):
    root, X, y = ms1m
    sims, idx = knn(X[:200], K)  # the kNN of other features (the first 200 rows)
    formats.write_knn_npz(root / "short.npz", idx, 1 - sims)
    formats.write_meta(root / "short.meta", y[:-1])
    res = run(*[a.format(root=root) for a in args], "--out", root / "bad.meta")
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    import re

    assert re.search(match, res.stderr), res.stderr
    assert not (root / "bad.meta").exists()


def test_seed_workflow_writes_meta_and_prints_overall_and_binned_scores(ms1m):
    """The seed's command, with its precomputed kNN: k is taken from the file (20 neighbours besides the row)."""
    root, X, y = ms1m
    res = run(root / "part.bin", "--dim", 32, "--meta", root / "part.meta", "--knn", root / "faiss_k_21.npz",
              "--method", "hard_clusters", "--out", root / "pred.meta")
    assert res.returncode == 0, res.stderr
    print(res.stdout, res.stderr)
    assert f"k={K}: the neighbours per row" in res.stderr
    pred = formats.read_meta(root / "pred.meta")
    assert pred.shape == y.shape and pred.min() >= 0
    pf = pairwise_precision_recall_f(y, pred)[2]
    bf = bcubed_precision_recall_f(y, pred)[2]
    assert pf >= 0.95 and bf >= 0.95, (pf, bf)
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"pairwise F {pf:.4f}") and f"BCubed F {bf:.4f}" in lines[0]
    for by in ("size", "sparsity"):
        at = lines.index(f"binned by {by}:")
        header = lines[at + 1].split()
        assert header[:4] == ["bin", "range", "identities", "samples"] and "bcubed_f" in header
        assert [line.split()[0] for line in lines[at + 2:at + 7]] == ["1", "2", "3", "4", "5"]
    size_rows = lines[lines.index("binned by size:") + 2:][:5]
    assert size_rows[0].split()[1] == "30-60" and size_rows[-1].split()[1] == "2-3"  # largest first
    # the same labels as the kit's own kNN with that k (the file holds the kit's lists)
    own = run(root / "part.bin", "--dim", 32, "--method", "hard_clusters", "--param", f"k={K}",
              "--out", root / "own.meta")
    assert own.returncode == 0, own.stderr
    np.testing.assert_array_equal(formats.read_meta(root / "own.meta"), pred)


def test_npz_embeddings_take_meta_and_knn_too(ms1m):
    """The .npz path (from 'embed') with --meta truth and a precomputed --knn; --dim is refused there."""
    import kit

    root, X, y = ms1m
    kit.Embeddings(vectors=X, paths=[f"p{i}.jpg" for i in range(len(X))], labels=None, backbone="x",
                   preprocessing={}).save(root / "emb.npz")
    res = run(root / "emb.npz", "--meta", root / "part.meta", "--knn", root / "faiss_k_21.npz",
              "--method", "hard_clusters", "--out", root / "emb.csv")
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(root / "emb.csv")
    assert table.columns.tolist() == ["path", "cluster"] and table["path"][0] == "p0.jpg"
    assert bcubed_precision_recall_f(y, table["cluster"].to_numpy())[2] >= 0.95
    assert "binned by size:" in res.stdout
    res = run(root / "emb.npz", "--dim", 32, "--method", "hard_clusters", "--out", root / "emb.csv")
    assert res.returncode == 2, res.stderr
    assert "--dim 32 is for .bin feature files" in res.stderr and "leave --dim out" in res.stderr
