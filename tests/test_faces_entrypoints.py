"""The face process pool from every entry point (issue 11): a script without ``if __name__ == "__main__":``,
stdin (``python - < script.py``), ``python -c``, a Jupyter kernel, ``streamlit run`` and pytest itself. Each
embeds a small folder of face photos with ``num_workers=2`` (so the pool runs), and must give the vectors of a
one-process run. Also: the workers are reused by the next call, stop when idle or at exit, and a worker that
dies raises a clear error instead of hanging.

Every child process inherits this process's environment, so ``KIT_HOME`` etc. point into conftest's temporary
folder. Each has a wall-clock deadline: a pool that hangs fails its test instead of the suite.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest

import kit
from kit import faces
import kit.faces._pool  # noqa: E402,F401  (faces._pool: the worker-pool module)

from conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not faces.is_available(), reason=f"dlib or the face models are missing: "
                                                                 f"{faces.INSTALL}")

DEADLINE_SECONDS = 300  # a child process: import the kit, start 2 workers, embed 6 photos (slow when loaded)
WORKERS = 2

# the user's script: no main guard, nothing but the kit
SCRIPT = """\
import json
import os

import numpy as np
import psutil

import kit

emb = kit.embed(os.environ["FACES_DIR"], backbone="dlib_face", num_workers=2, use_cache=False)
workers = [p.pid for p in psutil.Process().children(recursive=True) if "popen_loky" in " ".join(p.cmdline())]
np.save(os.environ["FACES_OUT"] + ".npy", emb.vectors)
with open(os.environ["FACES_OUT"] + ".json", "w") as f:
    json.dump({"paths": emb.paths, "processes": emb.stats["processes"], "workers": workers}, f)
print("embedded", len(emb), "faces with", emb.stats["processes"], "processes")
"""

RUN_NOTEBOOK = """\
import sys

import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=240, kernel_name="python3").execute()
print("".join(o.get("text", "") for o in nb.cells[0].outputs))
"""

APP = """\
import os
import traceback

import streamlit as st

try:
    exec(open(os.environ["FACES_SCRIPT"]).read())
except Exception:
    with open(os.environ["FACES_OUT"] + ".error", "w") as f:
        f.write(traceback.format_exc())
    raise
st.write("done")
"""


def _pool_workers():
    return {p.pid for p in psutil.Process().children() if "popen_loky" in " ".join(p.cmdline())}


def _alive(pids):
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(pids, seconds=30):
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(pids)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """6 face photos, 2 of each of 3 people: from faces_5celeb when ../shared/data is there, else the built-in
    sample faces."""
    source = SHARED_DATA / "faces_5celeb" / "images"
    if not source.is_dir():
        source = kit.datasets.sample_faces()
    root = tmp_path_factory.mktemp("entry") / "faces"
    for person in sorted(p for p in source.iterdir() if p.is_dir())[:3]:
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:2]:
            shutil.copy(photo, root / person.name)
    assert len(list(root.rglob("*.jpg"))) == 6
    assert faces.processes_for(6, faces.FaceSettings(), WORKERS) == WORKERS  # the pool runs, not one process
    return root


@pytest.fixture(scope="module")
def reference(folder):
    emb = kit.embed(folder, backbone="dlib_face", num_workers=1, use_cache=False)
    assert emb.stats["processes"] == 1 and len(emb) >= 4
    return emb


@pytest.fixture
def job(folder, tmp_path):
    script = tmp_path / "embed_faces.py"
    script.write_text(SCRIPT)
    out = tmp_path / "result"
    env = dict(os.environ, FACES_DIR=str(folder), FACES_OUT=str(out), FACES_SCRIPT=str(script))
    return script, out, env


def _check(out, reference, run=None):
    detail = f"\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}" if run is not None else ""
    if run is not None:
        assert run.returncode == 0, f"exit code {run.returncode}{detail}"
    assert Path(str(out) + ".json").is_file(), f"no result written{detail}"
    got = json.loads(Path(str(out) + ".json").read_text())
    vectors = np.load(str(out) + ".npy")
    assert got["processes"] == WORKERS
    assert len(got["workers"]) == WORKERS, got  # the pool's processes were running during the call
    assert got["paths"] == reference.paths
    assert vectors.shape == reference.vectors.shape
    assert np.abs(vectors - reference.vectors).max() < 1e-6
    return got


def _run(args, env, **kwargs):
    try:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=DEADLINE_SECONDS, **kwargs)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{args[:3]} did not finish in {DEADLINE_SECONDS} s (a hung pool?)\nstdout:\n{exc.stdout}\n"
                    f"stderr:\n{exc.stderr}")


# ------------------------------------------------------------------------------------- entry points
@pytest.mark.parametrize("entry", ["script", "stdin", "dash_c"])
def test_plain_python_entry_points(entry, job, reference):
    """``python script.py`` (no main guard), ``python - < script.py`` and ``python -c``: the workers never run
    the caller's main module, and they stop when the script ends."""
    script, out, env = job
    if entry == "script":
        run = _run([sys.executable, str(script)], env)
    elif entry == "stdin":
        with script.open() as stdin:
            run = _run([sys.executable, "-"], env, stdin=stdin)
    else:
        run = _run([sys.executable, "-c", SCRIPT], env)
    got = _check(out, reference, run)
    assert _wait_gone(got["workers"]) == [], "pool workers outlived the script"


def test_jupyter_kernel(job, reference):
    import nbformat

    script, out, env = job
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SCRIPT)])
    path = script.with_suffix(".ipynb")
    nbformat.write(nb, path)
    run = _run([sys.executable, "-c", RUN_NOTEBOOK, str(path)], env)
    got = _check(out, reference, run)
    assert "embedded" in run.stdout
    assert _wait_gone(got["workers"]) == [], "pool workers outlived the kernel"


def test_streamlit_run(job, reference):
    """``streamlit run`` headless; a websocket client asks for the script run, as a browser tab does."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from websocket import create_connection

    script, out, env = job
    app = script.with_name("app.py")
    app.write_text(APP)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = script.with_name("streamlit.log")
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true", "--server.address",
             "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            env=env, stdout=log_file, stderr=subprocess.STDOUT)
    ws = None
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            assert proc.poll() is None, f"streamlit exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"streamlit did not start:\n{log.read_text()}"
            time.sleep(0.3)
        ws = create_connection(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], timeout=30)
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        ws.send_binary(msg.SerializeToString())
        error = Path(str(out) + ".error")
        while not Path(str(out) + ".json").is_file() and not error.is_file():
            assert time.monotonic() < deadline, f"the app did not finish in {DEADLINE_SECONDS} s:\n{log.read_text()}"
            time.sleep(0.3)
        assert not error.is_file(), error.read_text()
        time.sleep(0.5)  # the .json is written after the .npy; let the write finish
        got = _check(out, reference)
    finally:
        if ws is not None:
            ws.close()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert _wait_gone(got["workers"]) == [], "pool workers outlived the streamlit server"


def test_pytest_process_and_reuse(folder, reference, monkeypatch):
    """In this process: the vectors, the workers reused by the next call, stopped by ``shutdown_pool``, and
    stopping by themselves after ``POOL_IDLE_SECONDS``."""
    faces.shutdown_pool()
    before = _pool_workers()
    emb = kit.embed(folder, backbone="dlib_face", num_workers=WORKERS, use_cache=False)
    assert emb.stats["processes"] == WORKERS and emb.paths == reference.paths
    assert np.abs(emb.vectors - reference.vectors).max() < 1e-6
    first = _pool_workers() - before
    assert len(first) == WORKERS
    again = kit.embed(folder, backbone=faces.backbone(crop_as_face=True), num_workers=WORKERS, use_cache=False)
    assert again.stats["processes"] == WORKERS
    assert _pool_workers() - before == first  # the same processes did the second call (no start-up)
    faces.shutdown_pool()
    assert _wait_gone(first, 15) == []

    monkeypatch.setattr(faces._pool, "POOL_IDLE_SECONDS", 1)  # the module whose pool reads it
    try:
        emb = kit.embed(folder, backbone="dlib_face", num_workers=WORKERS, use_cache=False)
        assert np.abs(emb.vectors - reference.vectors).max() < 1e-6
        idle = _pool_workers() - before
        assert len(idle) == WORKERS
        assert _wait_gone(idle, 20) == [], "idle workers did not stop after POOL_IDLE_SECONDS"
    finally:
        faces.shutdown_pool()


CRASH = """\
import os
import time

import psutil

import kit
from kit import faces
import kit.faces._pool  # noqa: E402,F401  (faces._pool: the worker-pool module)

paths = kit.load_folder(os.environ["FACES_DIR"]).paths * 40
photos = faces.map_photos(paths, faces.FaceSettings(), num_workers=2, chunk_size=1)
next(photos)
victim = next(p for p in psutil.Process().children() if "popen_loky" in " ".join(p.cmdline()))
victim.kill()
t = time.perf_counter()
try:
    for _ in photos:
        pass
except RuntimeError as exc:
    print("ERROR:", exc)
    print("AFTER:", time.perf_counter() - t)
else:
    print("NO ERROR")
print("AGAIN:", len(list(faces.map_photos(paths[:6], faces.FaceSettings(), num_workers=2))))
"""


def test_a_dead_worker_raises_a_clear_error(job):
    """A worker killed mid-run (as by the out-of-memory killer): a RuntimeError naming num_workers and the
    remedy, soon (not a hang), and the next call starts new workers."""
    _, _, env = job
    run = _run([sys.executable, "-c", CRASH], env)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line)
    assert "ERROR" in lines, run.stdout + run.stderr[-3000:]
    message = lines["ERROR"]
    assert "num_workers=2" in message and "stopped unexpectedly" in message and "num_workers=1" in message
    assert "SIGKILL" in message or "-9" in message, message
    assert float(lines["AFTER"]) < 30
    assert lines["AGAIN"] == "6"
