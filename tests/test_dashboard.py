"""The dashboard: every page in Streamlit's AppTest (no exception, interactions change results, export
writes files), then the real app in Debian's Chromium (plots and tables rendered, gallery reachable)."""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "streamlit_app.py")
APP_FOLDER = str(ROOT / "dashboard")  # what users type: `streamlit run dashboard`
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "screenshots"
PAGES = ["data", "backbones", "k", "cluster", "gallery", "inspect", "export"]


@pytest.fixture(scope="module", autouse=True)
def fresh_streamlit_home(tmp_path_factory):
    """Streamlit persists cached results under ~/.streamlit/cache: a fresh HOME, so these tests compute what
    they check instead of reading results an older version of the code left there."""
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(tmp_path_factory.mktemp("home"))
    yield
    if old is None:
        os.environ.pop("HOME", None)
    else:
        os.environ["HOME"] = old


def open_page(page):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=600).run()
    if page != "data":
        at.switch_page(f"views/{page}.py").run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.title) == 1


def test_data_page_counts_sample():
    at = open_page("data")
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Images"]) >= 300 and int(metrics["Labels"]) >= 5
    assert len(at.get("plotly_chart")) == 1 and len(at.get("image")) >= 5  # one thumbnail strip per label


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_changing_k_and_algorithm_changes_scores():
    at = open_page("cluster")
    before = (_metric(at, "Clusters"), _metric(at, "NMI"))
    at.slider(key="k_slider").set_value(3).run()
    assert not at.exception
    after_k = (_metric(at, "Clusters"), _metric(at, "NMI"))
    assert after_k[0] == "3" and after_k != before
    at.selectbox(key="algo").set_value("hdbscan").run()
    assert not at.exception
    assert "hdbscan" in at.sidebar.caption[-1].value
    assert (_metric(at, "Clusters"), _metric(at, "NMI")) != after_k
    # the Backbones page's table follows the chosen clustering
    at.switch_page("views/backbones.py").run()
    table = at.dataframe[0].value
    assert set(table.columns) >= {"backbone", "nmi", "ari", "bcubed_f", "silhouette"}
    assert len(at.get("plotly_chart")) == 1


def test_photos_on_hover_swaps_in_a_thumbnail_chart():
    at = open_page("backbones")
    at.toggle(key="hover_photos").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 0
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    import json
    spec = json.loads(charts[0].proto.spec)
    layer = spec.get("encoding") or spec["layer"][0]["encoding"]
    assert [t["title"] for t in layer["tooltip"]][0] == "image"  # the row Vega's tooltip shows as a picture
    assert [t["title"] for t in layer["tooltip"]][1:] == ["file", "true label", "cluster"]


def test_export_writes_files(tmp_path):
    at = open_page("export")
    at.text_input(key="out_dir").set_value(str(tmp_path / "out")).run()
    for key in ("btn_csv", "btn_excel", "btn_folders", "btn_log"):
        at.button(key=key).click().run()
        assert not at.exception and not at.error, key
    out = tmp_path / "out"
    assert (out / "clusters.csv").stat().st_size > 100
    assert (out / "clusters.xlsx").exists()
    assert len(list((out / "clusters").glob("cluster_*/*"))) >= 300
    assert (out / "runs.jsonl").read_text().count("\n") == 1
    assert len(at.dataframe) == 1  # the run log table


def test_export_refuses_the_source_folder():
    import kit.datasets

    at = open_page("export")
    at.text_input(key="out_dir").set_value(str(kit.datasets.sample_folder() / "x")).run()
    at.button(key="btn_folders").click().run()
    assert at.error and "never writes" in at.error[0].value


# ------------------------------------------------------------------ real browser
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_app():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", APP_FOLDER, "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _wait_idle(page, timeout=300_000):
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]') && "
        "!document.querySelector('[data-testid=stSkeleton]') && !document.querySelector('[data-testid=stSpinner]')",
        timeout=timeout)


@pytest.mark.browser
def test_every_page_in_a_real_browser(served_app):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        for name in PAGES:
            page.goto(served_app if name == "data" else f"{served_app}/{name}", timeout=120_000)
            page.locator("h1").first.wait_for(timeout=120_000)
            _wait_idle(page)
            if name in ("backbones", "k", "cluster"):
                page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=300_000)
            if name in ("backbones", "k"):
                page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=300_000)
            if name == "gallery":
                page.locator('[data-testid="stImage"] img, [data-testid="stImageContainer"] img').first.wait_for(
                    timeout=120_000)
            _wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0, name
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        # click through to a cluster's gallery from the navigation
        page.goto(served_app, timeout=120_000)
        _wait_idle(page)
        page.get_by_role("link", name="Gallery").click()
        page.locator('[data-testid="stSelectbox"]').first.wait_for(timeout=120_000)
        page.locator('[data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name=re.compile(r"^cluster 1 ")).click()
        _wait_idle(page)
        combo = page.locator('[data-testid="stSelectbox"] input[role="combobox"]').first
        assert combo.input_value().startswith("cluster 1 ")
        page.locator('[data-testid="stImage"] img, [data-testid="stImageContainer"] img').nth(3).wait_for(
            timeout=120_000)
        page.screenshot(path=str(SCREENSHOTS / "gallery_cluster1.png"), full_page=True)
        # photos on hover: the Vega-Lite chart's tooltip shows the photo under the pointer
        page.goto(f"{served_app}/backbones", timeout=120_000)
        page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=300_000)
        page.get_by_text("Photos on hover").click()
        point = page.locator('[data-testid="stVegaLiteChart"] .mark-symbol path').nth(5)
        point.wait_for(timeout=120_000)
        _wait_idle(page)
        point.hover(force=True)
        tip = page.locator("#vg-tooltip-element img")
        tip.wait_for(state="visible", timeout=30_000)
        assert tip.get_attribute("src").startswith("data:image/jpeg;base64,")
        page.screenshot(path=str(SCREENSHOTS / "backbones_hover.png"))
        browser.close()
