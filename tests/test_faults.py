"""Faults (issue 32): runs killed with SIGKILL at many points while they embed into the cache and while they save
hand edits. The next run completes, reuses what was finished, and nothing it reads is corrupt."""
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
    codes = [_kill_while(code, started, extra) for extra in (0.0, 0.05, 0.2, 0.4, 0.8)]
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
    for extra in (0.0, 0.01, 0.1, 0.3, 0.5):
        _kill_while(code, log.is_file, extra)

        f = EditFile(tmp_path, "clustering")
        e, version = f.load(paths)
        lines = f.log_path.read_text().splitlines()
        complete = [line for line in lines if line.endswith("}")]
        assert version == len(complete) > 0  # one version per complete line
        table = pd.DataFrame(__import__("json").loads(complete[-1])["table"])
        assert e.labels.tolist() == table["cluster"].tolist()  # the edits in effect are the last complete save
        rebuilt = pd.read_csv(f.rebuild())
        assert rebuilt["cluster"].tolist() == e.labels.tolist()
