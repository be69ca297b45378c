"""How many points a WebGL scatter can draw in a browser here, and what the density view costs instead (issue 14).

For N points of a 2-D projection (two Gaussian blobs, a cluster label each), one line per figure: the size of the
figure's JSON (what Streamlit sends to the browser on every rerun), the seconds to build it in Python, and the
seconds headless Chromium takes to parse and draw it (Plotly.newPlot, then two animation frames), for
``kit.plot.scatter`` drawing every point and for ``kit.plot.density``. ``kit.plot.SCATTER_MAX_POINTS`` comes from
these lines: the largest N whose scatter draws in about a second.

Usage: python bench/plot.py [--sizes 10000 100000 300000 1000000]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import plotly  # noqa: E402

from kit import plot  # noqa: E402

PAGE = """<!doctype html><html><head><script src="{plotly}"></script></head><body>
<div id="fig" style="width:900px;height:420px"></div>
<script>
async function draw(url) {{
  const t0 = performance.now();
  const fig = await (await fetch(url)).json();
  const t1 = performance.now();
  await Plotly.newPlot("fig", fig.data, fig.layout);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [(t1 - t0) / 1000, (performance.now() - t0) / 1000];
}}
</script></body></html>"""


def line(label, value, note=""):
    print(f"{label}: {value}{'  ' + note if note else ''}", flush=True)


def points(n, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    centres = rng.normal(scale=6, size=(10, 2))
    return centres[labels] + rng.normal(size=(n, 2)), labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000, 1_000_000])
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    with tempfile.TemporaryDirectory(prefix="kit-bench-plot-") as tmp, sync_playwright() as pw:
        tmp = Path(tmp)
        (tmp / "page.html").write_text(PAGE.format(plotly=js.as_uri()))
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--allow-file-access-from-files", "--disable-background-networking"])
        page = browser.new_page()
        page.goto((tmp / "page.html").as_uri())
        for n in args.sizes:
            X, labels = points(n)
            for kind, build in (("scatter", lambda: plot.scatter(X, color=labels, max_points=None)),
                                ("density", lambda: plot.density(X, color=labels))):
                t = time.perf_counter()
                fig = build()
                text = fig.to_json()
                built = time.perf_counter() - t
                path = tmp / f"{kind}-{n}.json"
                path.write_text(text)
                try:
                    fetched, drawn = page.evaluate("url => draw(url)", path.as_uri())
                    shown = f"browser {drawn:.2f} s (of which fetch+parse {fetched:.2f} s)"
                except Exception as exc:  # a browser that gives up is a result too
                    shown = f"browser failed: {str(exc).splitlines()[0][:80]}"
                line(f"{kind} {n:>9,} points", f"{len(text) / 1e6:6.1f} MB JSON, build {built:.2f} s, {shown}")
                path.unlink()
        browser.close()
    line("kit.plot.SCATTER_MAX_POINTS", f"{plot.SCATTER_MAX_POINTS:,}")


if __name__ == "__main__":
    main()
