"""Dashboard benchmark: from `streamlit run` process start to the first rendered scatter plot (Backbones
page, the built-in clothing photos (500), efficientnet_lite0) in headless Chromium; cold (empty kit home:
model export, embedding and t-SNE all computed) and warm (a new server process over the same kit home:
served from the disk caches). Peak memory of the server process. One result line per figure.

Usage: python bench/dashboard.py
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_scatter(kit_home: str) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "KIT_HOME": kit_home, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard"),
                             "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
                    page.goto(f"http://127.0.0.1:{port}/backbones", timeout=5000)
                    break
                except Exception:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
            page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=600_000)
            elapsed = time.perf_counter() - t0
            browser.close()
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=30)
    return elapsed, peak[0] / 1e9


def main():
    if not Path("/usr/bin/chromium").exists():
        sys.exit("needs Debian's chromium (apt-get install -y chromium)")
    home = tempfile.mkdtemp(prefix="kit-bench-dash-")
    cold, mem_cold = first_scatter(home)
    print(f"dashboard, process start to first scatter plot, cold cache (target < 60 s): {cold:.1f} s", flush=True)
    warm, mem_warm = first_scatter(home)
    print(f"dashboard, process start to first scatter plot, warm cache, new process (target < 5 s): {warm:.1f} s",
          flush=True)
    print(f"dashboard, peak memory of the server process: cold {mem_cold:.2f} GB, warm {mem_warm:.2f} GB", flush=True)


if __name__ == "__main__":
    main()
