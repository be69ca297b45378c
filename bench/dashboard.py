"""Dashboard benchmark: from `streamlit run` process start to the first rendered scatter plot (Backbones
page, the built-in clothing photos (500), efficientnet_lite0) in headless Chromium; cold (empty kit home:
model export, embedding and t-SNE all computed) and warm (a new server process over the same kit home:
served from the disk caches). Peak memory of the server process. One result line per figure.

Then the Embedding store page on a store of 100,000 photos' vectors: first map cold and on a second visit.

Usage: python bench/dashboard.py [--store-only]
"""
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard.serve import Served  # noqa: E402


def first_scatter(kit_home: str, page_name: str = "backbones",
                  selector: str = '[data-testid="stPlotlyChart"] .main-svg', settle: str | None = None,
                  app: Path = ROOT / "dashboard") -> tuple[float, float]:
    """Seconds from server start to ``selector`` on ``page_name`` in Chromium, and the server's peak memory (GB).
    ``settle``: then wait for this selector too (the page's remaining work, e.g. the clustering, finished and
    cached on disk), so that the next, warm, run finds every cache filled as a user who waited would."""
    from playwright.sync_api import sync_playwright

    # HOME beside the kit home: Streamlit's disk cache (~/.streamlit/cache) starts empty with it, as the kit's does
    Path(kit_home, "home").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KIT_HOME": kit_home, "HOME": str(Path(kit_home, "home")), "TF_CPP_MIN_LOG_LEVEL": "2"}
    served = Served(app, env=env, wait=False).__enter__()  # timed from the process start, not from healthy
    proc, t0, url = served.proc, served.started, served.url
    peak = [0]
    stop = threading.Event()

    def watch():
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                rss = sum(c.memory_info().rss for c in [p, *p.children(recursive=True)])
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
            page = browser.new_page()
            deadline = time.time() + 60
            while True:
                try:
                    page.goto(f"{url}/{page_name}", timeout=5000)
                    break
                except Exception:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
            page.locator(selector).first.wait_for(timeout=600_000)
            elapsed = time.perf_counter() - t0
            if settle:
                page.locator(settle).first.wait_for(timeout=1_800_000)
            browser.close()
    finally:
        stop.set()
        served.__exit__()
    return elapsed, peak[0] / 1e9


def store_first_map(kit_home: str, store: str) -> tuple[float, float, float]:
    """The Embedding store page on ``store``: seconds from server start to the first map (cold: the map and
    k-means fitted, every row placed), then from opening the page again in a new tab of the same server to its map
    (warm: served from the page's cache), and the server's peak memory in GB."""
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "KIT_HOME": kit_home, "TF_CPP_MIN_LOG_LEVEL": "2"}
    served = Served(env=env, wait=False).__enter__()
    proc, t0, url = served.proc, served.started, served.url
    peak = 0.0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
            times = []
            for visit in range(2):
                page = browser.new_page()
                t = t0 if visit == 0 else time.perf_counter()
                deadline = time.time() + 60
                while True:
                    try:
                        page.goto(f"{url}/store", timeout=5000)
                        break
                    except Exception:
                        if time.time() > deadline:
                            raise
                        time.sleep(0.2)
                box = page.locator("input[aria-label='Store folder or URL']")
                box.wait_for(timeout=120_000)
                box.fill(store)
                box.press("Enter")
                page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=600_000)
                times.append(time.perf_counter() - t)
                page.close()
            p = psutil.Process(proc.pid)
            peak = sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 1e9
            browser.close()
    finally:
        served.__exit__()
    return times[0], times[1], peak


def bench_store(rows: int) -> None:
    """A store of ``rows`` photos' vectors (1280-d, as efficientnet_lite0 gives; 10 Gaussian groups)."""
    import numpy as np

    from kit import scale as scale_cluster

    with tempfile.TemporaryDirectory(prefix="kit-bench-store-") as tmp:
        rng = np.random.default_rng(0)
        centres = rng.normal(size=(10, 1280)).astype(np.float32)

        def chunks():
            for lo in range(0, rows, 20_000):
                n = min(20_000, rows - lo)
                yield centres[rng.integers(0, 10, n)] + rng.normal(size=(n, 1280)).astype(np.float32)

        store = str(Path(tmp) / "photos.store")
        scale_cluster.write_vectors(store, chunks(), name="efficientnet_lite0", partition_rows=20_000)
        cold, warm, peak = store_first_map(str(Path(tmp) / "home"), store)
        print(f"dashboard, Embedding store page, {rows:,} photos x 1280-d, server start to first map (PCA and "
              f"k-means K=10 on a 10,000 sample, every row placed; density view): {cold:.1f} s", flush=True)
        print(f"dashboard, Embedding store page, {rows:,} photos, the page opened again (warm, target < 10 s): "
              f"{warm:.1f} s; server peak memory {peak:.2f} GB", flush=True)


def main():
    if not Path("/usr/bin/chromium").exists():
        sys.exit("needs Debian's chromium (apt-get install -y chromium)")
    if "--store-only" in sys.argv:
        bench_store(100_000)
        return
    home = tempfile.mkdtemp(prefix="kit-bench-dash-")
    # the cold run waits for the scores table too (the clustering done and on disk) before the server stops
    cold, mem_cold = first_scatter(home, settle='[data-testid="stDataFrame"]')
    print(f"dashboard, process start to first scatter plot, cold cache (target <= 30 s): {cold:.1f} s", flush=True)
    warm, mem_warm = first_scatter(home)
    # the floor: the same harness on a one-chart Streamlit app (server start, page and Plotly load, one render)
    with tempfile.TemporaryDirectory(prefix="kit-bench-floor-") as tmp:
        floor_app = Path(tmp, "app.py")
        floor_app.write_text("import numpy as np\nimport plotly.graph_objects as go\nimport streamlit as st\n"
                             "xy = np.random.default_rng(0).normal(size=(500, 2))\n"
                             "st.plotly_chart(go.Figure(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode='markers')))\n")
        floor = min(first_scatter(home, "", app=floor_app)[0] for _ in range(2))
    print(f"dashboard, process start to first scatter plot, warm cache, new process (target <= 3 s): {warm:.1f} s; "
          f"a one-chart Streamlit app in the same harness (the floor): {floor:.1f} s; the dashboard's own share "
          f"{warm - floor:.1f} s", flush=True)
    print(f"dashboard, peak memory of the server process: cold {mem_cold:.2f} GB, warm {mem_warm:.2f} GB", flush=True)
    # the default clustering (kit.cluster_photos: three backbones, then auto) on the Cluster page, in a new kit home
    clusters = '[data-testid="stMetric"]:has-text("Clusters")'
    home2 = tempfile.mkdtemp(prefix="kit-bench-dash-")
    cold, mem_cold = first_scatter(home2, "cluster", clusters)
    warm, mem_warm = first_scatter(home2, "cluster", clusters)
    print(f"dashboard, process start to the default (recommended) clustering on the Cluster page: cold cache "
          f"{cold:.1f} s (three backbones embedded), warm cache, new process {warm:.1f} s; peak memory cold "
          f"{mem_cold:.2f} GB, warm {mem_warm:.2f} GB", flush=True)
    bench_store(100_000)


if __name__ == "__main__":
    main()
