"""The README and the documentation site (issue 31): a short README that shows the dashboard, pages a user can
follow, each with an example that runs as written, and a site that builds offline in strict mode (no broken link,
no missing reference) from those pages, the notebooks and the docstrings."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md"))
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
NOT_RUN = "# not run"


def _blocks(path, language):
    return [code for lang, code in FENCE.findall(path.read_text()) if lang == language]


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) < 120, f"the README has {len(lines)} lines; keep it under 120 and move details into docs/"
    first_screen = "\n".join(lines[:20])
    assert "make dashboard" in first_screen and "make test" in first_screen
    assert "](docs/images/dashboard.png)" in first_screen, "the README shows the dashboard in its first screen"


def test_readme_and_pages_link_to_files_that_exist():
    broken = []
    for path in [ROOT / "README.md", *PAGES]:
        for target in LINK.findall(path.read_text()):
            if "://" in target:
                continue
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_screenshots_are_small_pngs():
    images = sorted((DOCS / "images").glob("*.png"))
    assert {"dashboard.png", "notebook.png"} <= {p.name for p in images}
    for png in images:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png.name
        assert png.stat().st_size < 300_000, f"{png.name} is {png.stat().st_size / 1000:.0f} KB (limit 300 KB)"


def test_every_page_has_a_runnable_example():
    pages = [p for p in PAGES if p.name not in ("index.md", "layout.md")]
    without = [p.name for p in pages
               if not [b for b in _blocks(p, "python") + _blocks(p, "bash") if not b.startswith(NOT_RUN)]]
    assert not without, f"pages without a runnable example: {without}"


def test_make_docs_is_the_strict_build():
    make = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", make, re.MULTILINE)
    assert recipe and "mkdocs build --strict" in recipe.group(1)


def test_site_builds_in_strict_mode(tmp_path):
    """What `make docs` runs: every page, the seven notebooks (rendered, not executed) and the API reference."""
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr[-4000:]
    assert not (ROOT / ".cache").exists(), "the build left a cache folder in the repository"
    for page in PAGES:
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.exists(), f"{page.name} was not built"
    notebooks = sorted((site / "notebooks").glob("*/index.html"))
    assert len(notebooks) == len(list((ROOT / "notebooks").glob("*.ipynb")))
    assert "kit.cluster.auto" in (site / "notebooks" / "04_clustering_and_scores" / "index.html").read_text()
    reference = (site / "reference" / "cluster" / "index.html").read_text()
    listed = set(re.findall(r'id="kit\.cluster\.(?:\w+\.)*?(\w+)"', reference))
    missing = {"KMeans", "HDBSCAN", "SCAN", "HardClusters", "auto", "make"} - listed  # lazily loaded names too
    assert not missing, f"kit.cluster's reference page does not document {sorted(missing)}"
    assert "cluster_photos" in (site / "reference" / "kit" / "index.html").read_text()


# The examples of every page run as written, in a fresh namespace each, in one child process (one TensorFlow
# import); the command-line page's shell block runs with this Python first on the PATH.
_RUN_EXAMPLES = r"""
import io, json, os, sys, time, traceback, contextlib
pages = json.loads(sys.argv[1])
results = {}
for name, blocks in pages.items():
    start, error = time.perf_counter(), None
    namespace = {"__name__": "__docs__"}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for code in blocks:
                exec(compile(code, name, "exec"), namespace)
    except BaseException:
        error = traceback.format_exc()[-3000:]
    results[name] = {"seconds": round(time.perf_counter() - start, 1), "error": error}
print(json.dumps(results))
"""


def test_the_examples_of_every_page_run(tmp_path, record_property):
    pages = {p.name: [b for b in _blocks(p, "python") if not b.startswith(NOT_RUN)] for p in PAGES}
    pages = {k: v for k, v in pages.items() if v}
    # the README's tour, on the built-in sample instead of the reader's "photos/"
    tour = _blocks(ROOT / "README.md", "python")
    assert tour and all('"photos/"' in b for b in tour)
    pages["README.md"] = ["import kit\nPHOTOS = str(kit.datasets.sample_folder())\n",
                          *[b.replace('"photos/"', "PHOTOS") for b in tour]]
    scratch = tmp_path / "tmp"  # the examples' temporary folders: they clean up after themselves
    scratch.mkdir()
    env = {**os.environ, "MPLBACKEND": "Agg", "TMPDIR": str(scratch),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-c", _RUN_EXAMPLES, json.dumps(pages)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    record_property("seconds", {k: v["seconds"] for k, v in results.items()})
    failed = {k: v["error"] for k, v in results.items() if v["error"]}
    assert not failed, "\n\n".join(f"{k}:\n{e}" for k, e in failed.items())
    assert set(results) == set(pages)

    shell = [b for b in _blocks(DOCS / "cli.md", "bash") if not b.startswith(NOT_RUN)]
    assert shell, "the command-line page has no runnable example"
    for block in shell:
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"cli.md example failed:\n{block}\n{run.stderr[-3000:]}"
    left = sorted(p.name for p in scratch.iterdir())
    assert not left, f"the examples left temporary files behind: {left}"
