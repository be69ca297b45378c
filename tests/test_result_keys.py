"""Results that persist are keyed by what the kit computes (issue 26): the embeddings' fingerprint and a digest of
the kit code and library versions behind a result, found by reading the imports, not from a list kept by hand."""
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kit

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cluster", "metrics", "k", "curate", "project")


@pytest.fixture()
def kit_copy(tmp_path):
    copy = tmp_path / "kit"
    shutil.copytree(ROOT / "kit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_the_key_changes_with_any_module_a_result_runs(kit_copy):
    key = kit.code_digest(*PACKAGES, root=kit_copy)
    assert key == kit.code_digest(*PACKAGES)  # the same code gives the same key
    _append(kit_copy / "cluster" / "_auto.py", "\n# a changed auto\n")  # the module behind 'Automatic'
    after_auto = kit.code_digest(*PACKAGES, root=kit_copy)
    assert after_auto != key
    _append(kit_copy / "_utils" / "neighbors.py", "\n# a changed kNN\n")  # reached only through imports
    after_knn = kit.code_digest(*PACKAGES, root=kit_copy)
    assert after_knn not in (key, after_auto)
    _append(kit_copy / "_utils" / "arrays.py", "\n# a changed helper\n")  # imported by every estimator
    assert kit.code_digest("cluster", root=kit_copy) != kit.code_digest("cluster")


def test_the_key_ignores_code_no_result_runs_and_names_bad_packages(kit_copy):
    key = kit.code_digest("metrics", root=kit_copy)
    _append(kit_copy / "export.py", "\n# an export change\n")  # scores never run the exporters
    assert kit.code_digest("metrics", root=kit_copy) == key
    with pytest.raises(ValueError, match=r"packages=\['clusters'\].*not packages or modules of the kit"):
        kit.code_digest("clusters")
    with pytest.raises(ValueError, match="name at least one"):
        kit.code_digest()


def test_the_imports_remembered_across_processes_follow_every_edit(kit_copy, tmp_path, monkeypatch):
    """A new process reads each module's imports from ``$KIT_HOME/code-imports.json`` (keyed by the module's bytes)
    instead of parsing the kit again: the key is the same as when parsed, and an edited module is parsed again."""
    from kit._utils import digest

    monkeypatch.setenv("KIT_HOME", str(tmp_path / "home"))

    def fresh(*packages):  # as a new process: nothing memoised in memory
        digest._digest.cache_clear()
        return kit.code_digest(*packages, root=kit_copy)

    key = fresh("metrics")
    remembered = tmp_path / "home" / digest.IMPORTS_FILE
    assert remembered.is_file()
    assert fresh("metrics") == key
    remembered.write_text("{not json")  # a damaged record only costs the parse
    assert fresh("metrics") == key
    (kit_copy / "zz_extra.py").write_text("VALUE = 1\n")
    assert fresh("metrics") == key  # not imported by the scores: not part of their key
    _append(kit_copy / "metrics.py", "\nfrom . import zz_extra  # noqa\n")
    imported = fresh("metrics")
    assert imported != key
    (kit_copy / "zz_extra.py").write_text("VALUE = 2\n")  # reached only through the new import
    assert fresh("metrics") != imported


def test_the_key_changes_with_library_versions():
    assert kit.code_digest("metrics", libraries=("numpy",)) != kit.code_digest("metrics", libraries=("scipy",))


def test_the_fingerprint_follows_vectors_paths_and_labels():
    emb = kit.Embeddings(np.eye(3, dtype=np.float32), ["a", "b", "c"], ["x", "y", "x"], "bb", {})
    same = kit.Embeddings(np.eye(3, dtype=np.float32), ["a", "b", "c"], ["x", "y", "x"], "bb", {})
    assert emb.fingerprint() == same.fingerprint() and len(emb.fingerprint()) == 32
    for other in (kit.Embeddings(np.eye(3, dtype=np.float32) * 2, ["a", "b", "c"], ["x", "y", "x"], "bb", {}),
                  kit.Embeddings(np.eye(3, dtype=np.float32), ["a", "b", "d"], ["x", "y", "x"], "bb", {}),
                  kit.Embeddings(np.eye(3, dtype=np.float32), ["a", "b", "c"], ["x", "y", "y"], "bb", {}),
                  kit.Embeddings(np.eye(3, dtype=np.float32), ["a", "b", "c"], None, "bb", {})):
        assert other.fingerprint() != emb.fingerprint()


def test_the_dashboard_keys_its_persisted_results_with_the_kit_digest(tmp_path, monkeypatch):
    """``dashboard/calls.py`` keeps clusterings and scores on disk under ``fingerprint``: the embeddings' own
    fingerprint and ``kit.code_digest`` of the packages that compute them (not a list of files)."""
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name in ("red", "blue"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / name / f"{i}.png")
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "home"))
    monkeypatch.syspath_prepend(str(ROOT / "dashboard"))
    spec = importlib.util.spec_from_file_location("calls", ROOT / "dashboard" / "calls.py")
    calls = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "calls", calls)
    spec.loader.exec_module(calls)
    key = calls.fingerprint(str(folder), "color_hist")
    emb = kit.embed(str(folder), backbone="color_hist", cache_dir=tmp_path / "cache")
    assert key == f"{emb.fingerprint()}-{kit.code_digest(*calls.RESULT_PACKAGES)}"
    assert {"cluster", "metrics"} <= set(calls.RESULT_PACKAGES)
