"""Faults (issue 32): runs killed with SIGKILL at many points while they embed into the cache, write a store,
export, save a fine-tuned backbone and save hand edits; a full disk, a read-only kit home, two concurrent writers.
The next run completes, reuses what was finished, and nothing it reads is corrupt."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import kit
import kit.datasets

ROOT = Path(__file__).resolve().parents[1]


def _points(*base: float) -> tuple:
    """The kill points (seconds after the work began): ``base``, plus ``KIT_FAULT_POINTS`` more drawn with a fixed
    seed between 0 and the largest (``bench/reliability.py`` sets it for a longer campaign)."""
    more = int(os.environ.get("KIT_FAULT_POINTS", "0"))
    return base + tuple(np.random.default_rng(len(base)).uniform(0, max(base), more).round(3))


def _log(scenario: str, codes) -> None:
    """Append what was tried to ``KIT_FAULT_LOG`` (a JSON line; the benchmark counts them)."""
    if os.environ.get("KIT_FAULT_LOG"):
        with open(os.environ["KIT_FAULT_LOG"], "a") as f:
            f.write(json.dumps({"scenario": scenario, "runs": len(codes),
                                "killed": sum(c == -signal.SIGKILL for c in codes)}) + "\n")


def _kill_while(code: str, started, extra: float) -> int:
    """Run ``code`` in a new Python process; once ``started()`` is true (its work has begun: imports take long on a
    busy machine), let it run ``extra`` seconds more, then SIGKILL it (unless it ended first). The return code."""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and not started() and time.time() < deadline:
        time.sleep(0.02)
    try:
        proc.wait(timeout=extra)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode


def test_an_embedding_killed_at_any_point_is_finished_by_the_next_run(tmp_path):
    photos = sorted(str(p) for p in kit.datasets.clothing().rglob("*.jpg"))[:300]
    cache = tmp_path / "cache"
    code = (f"import kit; kit.embed({photos!r}, backbone='color_hist', cache_dir={str(cache)!r}, batch_size=8, "
            f"num_workers=1)")
    started = lambda: cache.is_dir() and any(cache.rglob("*.f32"))  # noqa: E731
    codes = [_kill_while(code, started, extra) for extra in _points(0.0, 0.05, 0.2, 0.4, 0.8)]
    _log("embedding", codes)
    assert any(c == -signal.SIGKILL for c in codes), codes  # some runs were really cut
    again = kit.embed(photos, backbone="color_hist", cache_dir=cache)
    clean = kit.embed(photos, backbone="color_hist", use_cache=False)
    np.testing.assert_array_equal(again.vectors, clean.vectors)
    assert again.paths == clean.paths and again.unreadable.empty
    entries = [p for p in cache.rglob("*.f32")]
    dim = clean.vectors.shape[1]
    assert entries and all(p.stat().st_size == 4 * dim for p in entries)  # no torn entry under a real name
    assert again.stats["cached"] >= len(entries) - again.stats["computed"] > 0  # what was finished was reused
    kit.embedding.clear_cache(cache)  # what a killed run left (temporary files) goes with the rest
    assert not [p for p in cache.rglob("*") if p.is_file() and p.name != ".kit-cache"]


def test_hand_edit_saves_killed_at_any_point_leave_one_consistent_version(tmp_path):
    paths = [f"/photos/{i:03d}.jpg" for i in range(400)]
    code = ("import numpy as np\n"
            "from kit.curate import ClusterEdits, EditFile\n"
            f"paths = {paths!r}\n"
            f"f = EditFile({str(tmp_path)!r}, 'clustering')\n"
            "loaded = f.load(paths)\n"
            "e, v = loaded if loaded else (ClusterEdits(np.arange(400) % 7), 0)\n"
            "for i in range(10_000):\n"
            "    v = f.save(e.move([i % 400], (i * 3) % 7), paths, v)\n")
    from kit.curate import EditFile

    log = tmp_path / "clustering.log.jsonl"
    codes = []
    for extra in _points(0.0, 0.01, 0.1, 0.3, 0.5):
        codes.append(_kill_while(code, log.is_file, extra))

        f = EditFile(tmp_path, "clustering")
        e, version = f.load(paths)
        lines = f.log_path.read_text().splitlines()
        complete = [line for line in lines if line.endswith("}")]
        assert version == len(complete) > 0  # one version per complete line
        table = pd.DataFrame(__import__("json").loads(complete[-1])["table"])
        assert e.labels.tolist() == table["cluster"].tolist()  # the edits in effect are the last complete save
        rebuilt = pd.read_csv(f.rebuild())
        assert rebuilt["cluster"].tolist() == e.labels.tolist()
    _log("hand-edit save", codes)


# ---------------------------------------------------------------------------------------- full disks, read-only
_FULL_DISK = '''
import json, resource, signal, sys, warnings
from pathlib import Path
import numpy as np
import kit
photos, cache, out, limit = json.loads(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
found = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    emb = kit.embed(photos, backbone="color_hist", cache_dir=cache)
found["embedded"] = len(emb.paths)
found["vectors"] = emb.vectors.tolist()
found["warnings"] = [str(w.message) for w in caught if type(w.message).__name__ == "CacheNotWrittenWarning"]
for name, call in [("csv", lambda: kit.export.to_csv(emb.paths, np.arange(len(emb.paths)) % 3, Path(out) / "c.csv")),
                   ("folders", lambda: kit.export.to_folders(emb.paths, np.arange(len(emb.paths)) % 3,
                                                             Path(out) / "folders")),
                   ("store", lambda: kit.scale.EmbeddingStore(Path(out) / "store").write(emb))]:
    try:
        call()
        found[name] = "written"
    except OSError as exc:
        found[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(found))
'''


def _photos(tmp_path, n=30) -> list[str]:
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted(kit.datasets.clothing().rglob("*.jpg"))[:n]:
        shutil.copy(p, folder / p.name)
    return sorted(str(p) for p in folder.iterdir())


def _digests(paths) -> dict:
    import hashlib

    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def test_a_full_disk_gives_a_clear_message_and_leaves_nothing_half_written(tmp_path):
    """Issue 32: writes fail as on a full disk (RLIMIT_FSIZE: no file may grow past 400 bytes). Embedding still
    returns the right vectors and says the cache cannot be written, and where; each export fails with the path
    and what to do; no half-written file is left under a real name; the photos are untouched."""
    photos = _photos(tmp_path)
    before = _digests(photos)
    cache, out = tmp_path / "cache", tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, json.dumps([photos, str(cache), str(out), 400])],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    clean = kit.embed(photos, backbone="color_hist", use_cache=False)
    np.testing.assert_array_equal(np.asarray(found["vectors"], np.float32), clean.vectors)
    assert len(found["warnings"]) == 1 and str(cache) in found["warnings"][0]  # said once, with the path
    assert "computed again next time" in found["warnings"][0]
    for name, where in [("csv", out / "c.csv"), ("folders", out / "folders"), ("store", out / "store")]:
        assert found[name].startswith("OSError: [Errno 27]") and "free space" in found[name], found[name]
        assert str(where) in found[name], found[name]  # the message names the file or folder
    assert not (out / "c.csv").exists()
    by_name = {Path(p).name: d for p, d in before.items()}
    copied = [p for p in (out / "folders").rglob("*") if p.is_file() and not p.name.startswith(".kit-")]
    for p in copied:  # a photo copied before the disk filled up is whole; none is half-copied
        assert _digests([p])[str(p)] == by_name[p.name], p
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and (".tmp-" in p.name or p.suffix == ".parquet")]
    assert _digests(photos) == before
    again = kit.embed(photos, backbone="color_hist", cache_dir=cache)  # space again: the cache fills
    np.testing.assert_array_equal(again.vectors, clean.vectors)


def _read_only(folder: Path):
    """Make ``folder`` read-only for this process, root included (chmod, then ``chattr +i``); None when this
    machine cannot (a root user on a file system without the immutable attribute). Returns the undo."""
    folder.chmod(0o555)
    undo = lambda: folder.chmod(0o755)  # noqa: E731
    probe = folder / "probe"
    try:
        probe.touch()
    except OSError:
        return undo
    probe.unlink()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        undo()
        return None
    try:
        probe.touch()
    except OSError:
        return lambda: (subprocess.run(["chattr", "-i", str(folder)], check=True), folder.chmod(0o755))
    subprocess.run(["chattr", "-i", str(folder)], check=True)
    undo()
    return None


def test_a_read_only_kit_home_still_embeds_and_exports_say_where(tmp_path, monkeypatch):
    """Issue 32: a read-only KIT_HOME: the embeddings are computed (the cache says it cannot be written, naming
    the folder), the exports into it fail with the path and what to do, the photos are untouched."""
    import pytest

    photos = _photos(tmp_path)
    before = _digests(photos)
    home = tmp_path / "home"
    home.mkdir()
    undo = _read_only(home)
    if undo is None:
        pytest.skip("cannot make a folder read-only here (root, and no chattr +i on this file system)")
    try:
        monkeypatch.setenv("KIT_HOME", str(home))
        with pytest.warns(kit.embedding.CacheNotWrittenWarning, match=re.escape(str(home))):
            emb = kit.embed(photos, backbone="color_hist")
        np.testing.assert_array_equal(emb.vectors, kit.embed(photos, backbone="color_hist", use_cache=False).vectors)
        with pytest.raises(PermissionError, match="not writable.*KIT_HOME") as info:
            kit.export.to_csv(emb.paths, np.zeros(len(emb.paths), int), home / "exports" / "c.csv")
        assert str(home / "exports") in str(info.value)
        assert list(home.iterdir()) == []  # nothing was written
    finally:
        undo()
    assert _digests(photos) == before


# ---------------------------------------------------------------------------------------- concurrent writers
_WRITER = '''
import json, sys
import kit
from kit.embedding import EmbeddingCache
photos, cache, store = json.loads(sys.argv[1])
puts = []
original = EmbeddingCache.put
EmbeddingCache.put = lambda self, keys, vectors: (puts.extend(keys), original(self, keys, vectors))[1]
emb = kit.embed(photos, backbone="color_hist", cache_dir=cache, batch_size=4, num_workers=1)
written = kit.scale.EmbeddingStore(store).write(emb, partition_rows=7)
print(json.dumps({"puts": puts, "rows": written, "vectors": emb.vectors.tolist()}))
'''


def test_two_processes_embedding_one_folder_into_one_cache_and_store_write_each_entry_once(tmp_path):
    """Issue 32: two processes embed the same photos into the same cache, then add them to the same store, at
    the same time. Both finish with the vectors of one clean run; each cache entry and each store row is written
    once (the second process waits for the first and reuses its work)."""
    photos = _photos(tmp_path, n=60)
    cache, store = tmp_path / "cache", tmp_path / "store"
    arg = json.dumps([photos, str(cache), str(store)])
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, arg], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    clean = kit.embed(photos, backbone="color_hist", use_cache=False)
    for r in results:
        np.testing.assert_array_equal(np.asarray(r["vectors"], np.float32), clean.vectors)
    puts = [h for r in results for h in r["puts"]]
    assert sorted(puts) == sorted(set(clean.hashes))  # every entry written, none twice
    assert sorted(r["rows"] for r in results) == [0, len(photos)]
    table = kit.scale.EmbeddingStore(store).table()
    assert len(table) == len(photos) and not table.duplicated(["path", "hash"]).any()
    np.testing.assert_array_equal(kit.scale.EmbeddingStore(store).read(paths=photos).vectors, clean.vectors)


# ---------------------------------------------------------------------------------------- kills while writing
def test_a_store_write_killed_at_any_point_is_finished_by_the_next_run(tmp_path):
    photos = sorted(str(p) for p in kit.datasets.clothing().rglob("*.jpg"))[:200]
    cache, store = tmp_path / "cache", tmp_path / "store"
    clean = kit.embed(photos, backbone="color_hist", cache_dir=cache)  # the runs below read it from the cache
    code = (f"import kit; emb = kit.embed({photos!r}, backbone='color_hist', cache_dir={str(cache)!r}); "
            f"kit.scale.EmbeddingStore({str(store)!r}).write(emb, partition_rows=2)")
    started = lambda: store.is_dir() and any(store.rglob("*.parquet"))  # noqa: E731
    codes = [_kill_while(code, started, extra) for extra in _points(0.0, 0.05, 0.2, 0.5)]
    _log("store write", codes)
    assert any(c == -signal.SIGKILL for c in codes), codes
    s = kit.scale.EmbeddingStore(store)
    s.write(clean, partition_rows=2)
    table = s.table()
    assert len(table) == len(photos) and not table.duplicated(["path", "hash"]).any()
    np.testing.assert_array_equal(s.read(paths=photos).vectors, clean.vectors)
    s.clean(older_than=0)  # what killed runs left (hidden temporary files) goes
    assert not [p for p in store.rglob(".tmp-*")]


def test_an_export_killed_at_any_point_is_redone_by_the_next_export(tmp_path):
    """A copy into cluster folders killed half-way (SIGKILL: no clean-up ran) leaves files that the kit's
    record does not list as written. The next export removes them too: every photo appears once, whole."""
    photos = sorted(str(p) for p in kit.datasets.clothing().rglob("*.jpg"))[:300]
    labels = np.arange(len(photos)) % 5
    out = tmp_path / "out"
    code = f"import kit; kit.export.to_folders({photos!r}, {labels.tolist()!r}, {str(out)!r})"
    started = lambda: out.is_dir() and any(p.is_dir() for p in out.iterdir())  # noqa: E731
    codes = [_kill_while(code, started, extra) for extra in _points(0.0, 0.01, 0.03, 0.1)]
    _log("export", codes)
    assert any(c == -signal.SIGKILL for c in codes), codes
    done = kit.export.to_folders(photos, labels, out)
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != ".kit-export.json")
    assert len(files) == len(photos) == len(done.table)
    assert sorted(p.name for p in files) == sorted(Path(p).name for p in photos)  # no "name_1" second copies
    sources = _digests(photos)
    assert sorted(_digests(files).values()) == sorted(sources.values())  # each one whole


def test_a_fine_tune_killed_while_saving_leaves_nothing_the_next_run_keeps(tmp_path):
    """A fine-tune writes its backbone into a temporary folder beside the final one, then renames it into place.
    Killed (SIGKILL) at several points of that save, the next run of the same call finishes (or finds the backbone
    a killed run had finished), the backbone is whole and embeds, and no temporary folder is left behind."""
    import shutil

    from kit import adapt

    folder = tmp_path / "shop"
    for cls in ("hat", "shoes"):
        (folder / cls).mkdir(parents=True)
        for p in sorted((kit.datasets.clothing() / cls).iterdir())[:6]:
            shutil.copy(p, folder / cls / p.name)
    call = (f"{str(folder)!r}, name='killed_ft', trainable_blocks=1, views=1, epochs=1, batch_size=4, max_steps=2, "
            f"random_state=0, verbose=False")
    code = f"from kit import adapt; adapt.fine_tune({call})"
    root = kit.backbones.finetuned_root()
    started = lambda: root.is_dir() and any(root.glob(".killed_ft.tmp-*"))  # noqa: E731  (the save began)
    codes = [_kill_while(code, started, extra) for extra in _points(0.0, 0.3, 1.0)]
    _log("fine-tune save", codes)
    assert any(c == -signal.SIGKILL for c in codes), codes
    result = eval(f"adapt.fine_tune({call})", {"adapt": adapt})
    assert result.name == "killed_ft" and kit.backbones.finetuned_note(result.path) is not None
    assert (result.path / "features" / "saved_model.pb").is_file()
    assert not [p.name for p in root.iterdir() if p.name.startswith(".killed_ft.")]  # nothing half-made left
    emb = kit.embed(sorted(folder.rglob("*.jpg"))[:3], backbone="killed_ft", use_cache=False)
    assert emb.vectors.shape == (3, 1280) and np.isfinite(emb.vectors).all()
