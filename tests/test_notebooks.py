"""The tutorial notebooks (issue 7): stored clean, no helper definitions, and each one executes headless on the
kit's built-in data, ending with a "what we saw" cell whose Markdown is built from the run. Every notebook in
notebooks/ is held to these rules, not only the five of issue 7. Notebooks 01-05 default to the real clothing photos
(``kit.datasets.clothing()``, issue 12), with the scikit-image sample one switch away (``QUICK_DEMO = True``).

The kernel is ``python3`` (ipykernel); it inherits this process's environment, so ``KIT_HOME``,
``TFHUB_CACHE_DIR`` and ``KERAS_HOME`` point into conftest's temporary folder and nothing touches the user's files.
"""
import ast
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = ["01_embedding_with_tfhub.ipynb", "02_cam_inspection.ipynb", "03_estimating_k.ipynb",
            "04_clustering_and_scores.ipynb", "05_comparing_backbones.ipynb"]
BUDGET_SECONDS = 180  # issue 7: each notebook runs within 3 minutes on its default data
FORBIDDEN = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _read(path):
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _cell_seconds(nb):
    """[(seconds, cell index)] of the executed code cells, from the timing nbclient records in the metadata
    (inf for a cell that started and never finished)."""
    times = []
    for i, cell in _code_cells(nb):
        timing = cell.metadata.get("execution", {})
        begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if begin and end:
            times.append(((datetime.fromisoformat(end.replace("Z", "+00:00"))
                           - datetime.fromisoformat(begin.replace("Z", "+00:00"))).total_seconds(), i))
        elif begin:
            times.append((float("inf"), i))
    return times


def _slowest_cells(nb, n=3):
    times = sorted(_cell_seconds(nb), reverse=True)[:n]
    return ", ".join(f"cell {i}: {t:.1f} s" for t, i in times) or "none recorded"


def test_the_five_tutorials_are_there():
    missing = sorted(set(EXPECTED) - {p.name for p in NOTEBOOKS})
    assert not missing, f"missing notebooks: {missing}"


def test_no_code_cell_defines_a_function_or_class():
    found = []
    for path in NOTEBOOKS:
        for i, cell in _code_cells(_read(path)):
            tree = ast.parse(TransformerManager().transform_cell(cell.source))  # IPython magics -> Python
            found += [f"{path.name} cell {i} line {node.lineno}: {type(node).__name__}"
                      for node in ast.walk(tree) if isinstance(node, FORBIDDEN)]
    assert not found, "notebooks must not define helpers (def, class, lambda):\n" + "\n".join(found)


def test_notebooks_are_stored_without_outputs():
    dirty = [f"{path.name} cell {i}" for path in NOTEBOOKS for i, cell in _code_cells(_read(path))
             if cell.outputs or cell.execution_count is not None]
    assert not dirty, "clear the outputs before committing (Kernel > Restart and clear outputs):\n" + "\n".join(dirty)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    sources = [c.source for _, c in _code_cells(nb)]
    assert any("import kit" in s.splitlines() for s in sources), "the notebook must import kit"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] <= 2, f"one 'parameters' cell near the top, found at {tagged}"
    if path.name in EXPECTED:
        parameters = nb.cells[tagged[0]].source
        assert "IMAGES = None" in parameters, "the built-in data must be the default"
        # issue 12: the real clothing photos are the default; the near-duplicate sample, on which every method
        # scores 1.0, stays one switch away
        assert "QUICK_DEMO = False" in parameters, "the scikit-image sample must be a QUICK_DEMO option, off"
        loads = [s for s in sources if "kit.datasets.clothing()" in s]
        assert loads and all("kit.datasets.sample_folder() if QUICK_DEMO else kit.datasets.clothing()" in s
                             for s in loads), "load kit.datasets.clothing() unless QUICK_DEMO is set"
    last, before = nb.cells[-1], nb.cells[-2]
    assert last.cell_type == "code" and "Markdown(" in last.source, "the last cell builds the 'what we saw' text"
    assert before.cell_type == "markdown" and "What we saw" in before.source


def test_kernel_python3_is_this_python():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable


def test_kernel_sees_the_tests_kit_home():
    """The notebooks' kernels write models and caches under conftest's KIT_HOME, never the user's home."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import kit; print(kit.kit_home())")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert Path(nb.cells[0].outputs[0]["text"].strip()) == Path(os.environ["KIT_HOME"])


# Runs one notebook in a child process that writes the executed notebook even when a cell fails. The child is
# killed at a wall-clock deadline: a kernel that stops answering (seen once here with ipykernel 7, where nbclient's
# own cell timeout never fired) must fail this test, not hang the whole suite.
#
# nbclient waits for each cell's reply with one shell_channel.get_msg(timeout=600) call; after a cell that shows
# ipywidgets that call sometimes returns only when its timeout runs out although the reply has arrived
# (jupyter/nbclient#312; seen here: notebook 05 idle for exactly 600 s after its widget panel). The client below
# asks for the reply in 1 s polls until the same deadline, so a missed wake-up costs a second, not ten minutes.
_EXECUTE = """
import asyncio, sys, nbformat
from queue import Empty
from time import monotonic
from nbclient import NotebookClient
from nbclient.client import timestamp
from nbclient.util import ensure_async


class PollingClient(NotebookClient):
    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=1))
            except Empty:
                if deadline is None or monotonic() < deadline:
                    continue
                task_poll_kernel_alive.cancel()
                await self._async_check_alive()
                await self._async_handle_timeout(timeout, cell)  # raises CellTimeoutError
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if self.record_timing:
                cell["metadata"]["execution"]["shell.execute_reply"] = timestamp(msg)
            try:
                await asyncio.wait_for(task_poll_output_msg, self.iopub_timeout)
            except (asyncio.TimeoutError, Empty):
                self.log.warning("Timeout waiting for IOPub output")
            task_poll_kernel_alive.cancel()
            return msg


src, dst, folder = sys.argv[1:4]
nb = nbformat.read(src, as_version=4)
try:
    PollingClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
finally:
    nbformat.write(nb, dst)
"""
DEADLINE_SECONDS = 900
GUIDANCE_COLUMNS = ("trust it when", "threshold means")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, record_property, tmp_path):
    executed = tmp_path / path.name
    kernel_tmp = tmp_path / "kernel-tmp"  # the kernel's TMPDIR: what a notebook leaves in temporary folders shows here
    kernel_tmp.mkdir()
    start = time.perf_counter()
    try:
        run = subprocess.run([sys.executable, "-c", _EXECUTE, str(path), str(executed), str(NOTEBOOKS_DIR)],
                             capture_output=True, text=True, timeout=DEADLINE_SECONDS,
                             env={**os.environ, "TMPDIR": str(kernel_tmp)})
    except subprocess.TimeoutExpired:
        done = _slowest_cells(_read(executed)) if executed.exists() else "no cell finished"
        pytest.fail(f"{path.name} did not finish within {DEADLINE_SECONDS} s (the kernel stopped answering?); {done}")
    seconds = time.perf_counter() - start
    nb = _read(executed) if executed.exists() else None
    if run.returncode != 0:  # CellExecutionError (or CellTimeoutError) names the cell
        raise AssertionError(f"{path.name} failed after {seconds:.0f} s; slowest cells: "
                             f"{_slowest_cells(nb) if nb else 'none recorded'}\n{run.stderr[-3000:]}")
    record_property("seconds", round(seconds, 1))

    outputs = [(i, o) for i, cell in _code_cells(nb) for o in cell.outputs]
    assert not [o for _, o in outputs if o.output_type == "error"]
    # no red box of TensorFlow's C++ log lines (issue 31): the kit keeps TensorFlow quiet wherever it loads it
    from kit._utils.quiet import is_tensorflow_noise

    noisy = [(i, line) for i, o in outputs if o.output_type == "stream" and o.name == "stderr"
             for line in o.text.splitlines(keepends=True) if is_tensorflow_noise(line)]
    assert not noisy, f"TensorFlow log lines in the outputs of cells {sorted({i for i, _ in noisy})}: {noisy[:5]}"
    # Matplotlib figures (kit.plot.image_grid) must display as images, not as "<Figure size ...>"
    text_only = [i for i, o in outputs if "data" in o and str(o.data.get("text/plain", "")).startswith("<Figure")
                 and "image/png" not in o.data]
    assert not text_only, f"figures shown as text only in cells {text_only}"
    markdown = [o.data["text/markdown"] for o in nb.cells[-1].outputs if "text/markdown" in o.get("data", {})]
    assert markdown and markdown[0].strip(), "the last cell must display the 'what we saw' Markdown"
    assert "{" not in markdown[0], "an f-string placeholder was left in the summary"
    if path.name in EXPECTED:  # the kernel saw conftest's KIT_HOME: the embeddings went there, not to the user's home
        assert any((Path(os.environ["KIT_HOME"]) / "embeddings").rglob("*.f32"))
    # guidance tables are read in full: no cell cut by pandas' "..." (issue 31, item 4: 03's "trust it when",
    # 06's "threshold means")
    import re

    for i, o in outputs:
        html = o.get("data", {}).get("text/html", "")
        if any(f"<th>{h}</th>" in html for h in GUIDANCE_COLUMNS):
            cut = [td for td in re.findall(r"<td>(.*?)</td>", html, re.S) if td.strip().endswith("...")]
            assert not cut, f"{path.name} cell {i} shows a guidance table with cells cut short: {cut[:3]}"
    if path.name == "04_clustering_and_scores.ipynb":  # issue 31, item 6: the long cells say how long, show progress
        long_cells = [(i, c) for i, c in _code_cells(nb)
                      if "kit.cluster_photos(" in c.source or "backbone=GRID_BACKBONE" in c.source]
        assert len(long_cells) == 2, [i for i, _ in long_cells]
        for i, cell in long_cells:
            # the bar: a tqdm widget (its text/plain holds the bar as text) or, without ipywidgets, text on stderr
            bars = "".join(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
                           for o in cell.outputs if o.output_type in ("stream", "display_data", "update_display_data"))
            out = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
            assert "%|" in bars, f"04 cell {i} ran without a progress bar"
            assert re.search(r"at most \d+ s|not timed on this machine yet", out), f"04 cell {i} gave no forecast"
    if path.name == "06_face_clustering.ipynb":  # issue 31: the export's temporary folder is removed at the end
        assert nb.cells[-3].outputs and "True" in nb.cells[-3].outputs[0]["text"], "the clean-up cell did not run"
        left = sorted(p.name for p in kernel_tmp.glob("kit-faces-out-*"))
        assert not left, f"06 left its temporary output folders behind: {left}"
    if path.name == "05_comparing_backbones.ipynb":
        state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        shown = [o for m in state.values() if m["model_name"] == "OutputModel" for o in m["state"].get("outputs", [])]
        assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in shown), \
            "the ipywidgets panel did not draw a Plotly figure"
    if path.name == "03_estimating_k.ipynb":  # issue 31: one method, one answer; a verdict that agrees with it
        _check_notebook_03(nb, markdown[0])
    # The budget is checked on the time the cells ran (kernel start and stop excluded): this VM's clock has been
    # seen to jump minutes ahead while idle, which a plain wall-clock check would blame on the notebook.
    busy = sum(t for t, _ in _cell_seconds(nb))
    record_property("cell_seconds", round(busy, 1))
    assert busy < BUDGET_SECONDS, (f"{path.name}'s cells took {busy:.0f} s ({seconds:.0f} s in all), over the "
                                   f"{BUDGET_SECONDS} s budget; slowest cells: {_slowest_cells(nb)}")


def _k_or_none(text):
    return None if text in ("None", "<NA>") else int(text)


def _check_notebook_03(nb, summary):
    """Every K the notebook prints ("name: K = n") or quotes in its summary ("`name` n") is the answer in
    kit.k.estimate's table (the displayed ``result.table``), the summary quotes the estimate's verdict, and the
    word-vector table adds up to all the photos."""
    import re

    outputs = [o for _, cell in _code_cells(nb) for o in cell.outputs]
    shown = [o.data["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    tables = [t for t in shown if "at_boundary" in t and "stability" in t and "prediction_strength" in t]
    assert tables, "the notebook must display kit.k.estimate's table (result.table)"
    table = {}
    for line in tables[0].splitlines():  # the first block of the frame: index, method, k, ...
        row = re.match(r"^\s*\d+\s+([a-z_]+)\s+(\d+|<NA>)\s", line)
        if row:
            table.setdefault(row.group(1), _k_or_none(row.group(2)))
    assert {"elbow", "silhouette", "eigengap", "dendrogram_gap", "gap", "word_vectors", "probe_count",
            "prediction_strength"} <= set(table), table
    text = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    printed = re.findall(r"\b([a-z_]+): K = (\d+|None|<NA>)\b", text)
    assert {m for m, _ in printed} >= {"elbow", "silhouette", "eigengap", "dendrogram_gap", "gap", "word_vectors",
                                        "probe_count", "prediction_strength"}, printed
    wrong = [(m, k, table.get(m)) for m, k in printed if m in table and _k_or_none(k) != table[m]]
    assert not wrong, f"(method, printed K, the estimate's K): {wrong}"
    quoted = re.findall(r"`([a-z_]+)`\s+(\d+|None|<NA>)\b", summary)
    assert {m for m, _ in quoted} >= set(table) - {"prediction_strength"}, quoted
    wrong = [(m, k, table.get(m)) for m, k in quoted if _k_or_none(k) != table.get(m)]
    assert not wrong, f"the summary quotes (method, K, the estimate's K): {wrong}"
    verdicts = re.findall(r"^(K = \d+ \(clear\)|no clear K(?: \(the consensus would be \d+\))?): ", text, re.M)
    assert verdicts and f"**{verdicts[0]}**" in summary, (verdicts, summary[:500])
    if "(clear)" in verdicts[0]:
        assert "no clear K" not in summary.split("Why:")[1].split("\n- ")[0]
    else:
        assert "no clear K" in summary
    sums = re.findall(r"(\d+) photos in the \d+ groups \+ (\d+) without a word vector = (\d+) photos", text)
    assert sums and int(sums[0][0]) + int(sums[0][1]) == int(sums[0][2]), sums
    n_photos = re.search(r"Embeddings\((\d+) x", text)
    assert n_photos and int(sums[0][2]) == int(n_photos.group(1)), (sums, text[:300])
