"""`import kit` stays cheap: the dashboard's first page is served from caches without scikit-learn,
TensorFlow or the projection libraries (bench/dashboard.py measures what that buys)."""
import subprocess
import sys

HEAVY = ("sklearn", "scipy", "tensorflow", "keras", "openTSNE", "umap", "dlib", "faiss", "plotly")


def _loaded_after(code: str) -> list:
    out = subprocess.run([sys.executable, "-c", code + f"\nimport sys; print([m for m in {HEAVY!r} if m in sys.modules])"],
                         capture_output=True, text=True, check=True, timeout=120)
    return eval(out.stdout.strip().splitlines()[-1])


def test_import_kit_and_list_backbones_load_nothing_heavy():
    assert _loaded_after("import kit, kit.datasets; kit.backbones.available()") == []


def test_submodules_load_on_first_use():
    loaded = _loaded_after("import kit; kit.cluster.KMeans; from kit import metrics; kit.compare")
    assert "sklearn" in loaded
    assert "tensorflow" not in loaded  # clustering never needs a network


def test_cached_projection_is_read_without_its_library(tmp_path):
    code = (f"import numpy as np, kit\n"
            f"X = np.random.default_rng(0).normal(size=(60, 8)).astype('float32')\n"
            f"kit.project.project(X, method='tsne', cache_dir={str(tmp_path)!r})\n")
    assert "openTSNE" in _loaded_after(code)  # the first call computes
    again = _loaded_after(code.replace("kit.project.project(X", "p = kit.project.project(X") + "assert p.from_cache\n")
    assert [m for m in again if m in ("openTSNE", "sklearn")] == []
