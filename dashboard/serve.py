"""``streamlit run dashboard`` headless on a free local port, for the programs that drive the dashboard in a
browser: the browser tests (``tests/test_dashboard.py``), the benchmark (``bench/dashboard.py``) and the screenshot
script (``docs/screenshots.py``). Not a page: Streamlit never runs this file.

>>> with Served() as app:                                  # doctest: +SKIP
...     page.goto(app.url + "/backbones")
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard"


def free_port() -> int:
    """A TCP port nobody listens on at the moment of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """The dashboard (or another Streamlit ``app``) served headless on 127.0.0.1 at a free port.

    ``with Served(env=..., args=...) as app`` starts the server and, unless ``wait=False``, returns once its health
    check answers (within ``timeout`` seconds; otherwise it stops the server and raises ``RuntimeError`` with the
    server's last output). ``app.url`` is the address, ``app.proc`` the process (``app.started`` its
    ``time.perf_counter()`` at start), ``app.output()`` what the server printed. Leaving the block stops it.
    ``env`` is added to the environment; ``args``, extra ``streamlit run`` options.
    """

    def __init__(self, app: Path | str = APP, *, env: dict | None = None, args=(), wait: bool = True,
                 timeout: float = 120):
        self.app, self.env, self.args, self.wait, self.timeout = str(app), dict(env or {}), list(args), wait, timeout

    def __enter__(self) -> "Served":
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._log = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", self.app, "--server.headless", "true", "--server.address",
             "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false", *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **self.env})
        if self.wait:
            deadline = time.time() + self.timeout
            while True:
                try:
                    if urllib.request.urlopen(self.url + "/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    if time.time() > deadline or self.proc.poll() is not None:
                        self.__exit__()
                        raise RuntimeError(f"streamlit did not start within {self.timeout:.0f} s:\n{self.output()}")
                    time.sleep(0.5)
        return self

    def output(self) -> str:
        """The last 3,000 characters the server printed."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-3000:]

    def __exit__(self, *exc) -> bool:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return False
