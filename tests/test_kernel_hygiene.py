"""Nothing the kit does inside a Jupyter kernel may outlive the cell that did it (issue 11).

A notebook run here hung once with the kernel idle and the client waiting for a reply, while a cell with a tqdm
progress bar was running. tqdm starts a process-wide ``TMonitor`` thread with its first bar, which lives on after
the cell and may redraw a bar from that thread 10 s later: output from a thread after the cell finished. The kit's
progress bars now start no thread, and these tests check that no kit call leaves a Python thread behind, in this
process and inside a real kernel.
"""
import threading
import time

import nbformat
from nbclient import NotebookClient

import kit
from kit.progress import TqdmProgress


def _new_threads(before):
    time.sleep(0.2)  # a pool's threads finish their exit
    return sorted(t.name for t in threading.enumerate() if t.ident not in before and t.is_alive())


def test_tqdm_progress_starts_no_thread():
    before = {t.ident for t in threading.enumerate()}
    bar = TqdmProgress(disable=False)
    for done in range(0, 11):
        bar(done, 10, "embedding")
    bar(0, 3, "projection")
    bar.close()
    assert _new_threads(before) == []


def test_embedding_leaves_no_thread(tmp_path):
    paths = sorted(kit.datasets.sample_folder().rglob("*.jpg"))[:40]
    before = {t.ident for t in threading.enumerate()}
    emb = kit.embed(paths, backbone="efficientnet_lite0", cache_dir=tmp_path, progress=TqdmProgress())
    assert emb.vectors.shape == (40, 1280)
    assert _new_threads(before) == [], "the decode pool or a progress bar outlived kit.embed"


CELLS = [
    "import threading, time, kit\nbefore = {t.ident for t in threading.enumerate()}",
    "paths = sorted(kit.datasets.sample_folder().rglob('*.jpg'))[::10]\n"
    "emb = kit.embed(paths, backbone='efficientnet_lite0', progress=kit.progress.TqdmProgress())\n"
    "xy = kit.project.project(emb.vectors, method='pca', progress=kit.progress.TqdmProgress()).coords\n"
    "table = kit.compare(kit.datasets.sample_folder(), backbones=['efficientnet_lite0'], methods=['kmeans'], k=8,\n"
    "                    progress=kit.progress.TqdmProgress())",
    "time.sleep(0.5)\n"
    "print('LEFT', sorted(t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()))\n"
    "print('ROWS', len(emb.vectors), len(table))",
]


def test_kit_calls_in_a_kernel_leave_no_thread_behind():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    start = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    seconds = time.perf_counter() - start
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "ROWS 40 1" in text, text
    assert "LEFT []" in text, f"threads left running in the kernel after the kit's calls: {text}"
    assert seconds < 240, f"a short notebook took {seconds:.0f} s"
