"""The screenshots of the README and the docs, made from the real app so that they can be made again:
``python docs/screenshots.py`` (or ``make screenshots``) writes into ``docs/images/``:

- ``dashboard.png``: the dashboard's Backbones page on the built-in clothing photos (500), EfficientNet-Lite0 (the
  default, offline) beside Lite1, the recommended clustering: the side-by-side scatter plots and the scores table;
- ``gallery.png``: the Gallery page, every cluster with its most representative photos;
- ``notebook.png``: the backbone comparison of notebook 05, ``kit.plot.projection_grid`` of each built-in
  backbone's t-SNE map coloured by folder, drawn in Chromium from the figure's HTML.

The dashboard runs as ``streamlit run dashboard`` headless on a free port (``dashboard/serve.py``, as the browser tests start it)
and is driven by Playwright in Debian's Chromium (``/usr/bin/chromium``). It uses the kit's normal cache
(``$KIT_HOME``, else ``~/.cache/kit``): the first run embeds the photos with three backbones (a few minutes on two
cores), later runs take about half a minute. Each PNG is reduced to a 256-colour palette and must stay under 300 KB.
"""
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's kit, as the server (run from ROOT) uses it

from dashboard.serve import Served  # noqa: E402

OUT = ROOT / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 900}
MAX_BYTES = 300_000
MIN_WIDTH = 1000  # scaled down no further than this to fit MAX_BYTES
BACKBONES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]  # built in: offline
DASHBOARD_BACKBONES = BACKBONES[:2]
PLOT = '[data-testid="stPlotlyChart"]'
# nothing is still running: Streamlit's "Running..." widget, skeletons and spinners are gone
IDLE = ("() => !document.querySelector('[data-testid=stStatusWidget]') && "
        "!document.querySelector('[data-testid=stSkeleton]') && !document.querySelector('[data-testid=stSpinner]')")
# every <img> on the page has loaded
IMAGES_LOADED = "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def settle(page, what: str, timeout: float = 900_000) -> None:
    """Wait until the page is idle with every photo loaded, then check it shows no error."""
    page.wait_for_function(IDLE, timeout=timeout)
    page.wait_for_function(IMAGES_LOADED, timeout=120_000)
    page.wait_for_timeout(1500)  # the last re-render's fade and Plotly's redraw
    page.wait_for_function(IDLE, timeout=timeout)
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"], '
                          '[data-testid="stAlertContentWarning"]')
    if errors.count():
        raise SystemExit(f"{what}: the page shows an error or a warning:\n{errors.first.inner_text()}")


def framed(page, last: str) -> bytes:
    """A screenshot of the viewport from the page title down to the bottom of the last ``last`` element (or the
    viewport's bottom): Streamlit's empty header is hidden and the main area scrolled to the title."""
    page.evaluate("""() => {
        const header = document.querySelector('[data-testid=stHeader]');
        if (header) header.style.display = 'none';
        const main = document.querySelector('[data-testid=stMain]'), h1 = document.querySelector('h1');
        if (main && h1) main.scrollTop += h1.getBoundingClientRect().top - 8; }""")
    page.wait_for_timeout(500)
    bottom = page.locator(last).last.bounding_box()
    height = VIEWPORT["height"] if bottom is None else min(VIEWPORT["height"], bottom["y"] + bottom["height"] + 24)
    return page.screenshot(clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height})


def backbones_drawn(page) -> None:
    """Wait for the Backbones page's clustered scatter plots and scores table."""
    plots = page.locator(PLOT)
    for i in range(len(DASHBOARD_BACKBONES)):
        plots.nth(i).locator(".main-svg").first.wait_for(timeout=900_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=900_000)
    # the first map of each backbone is drawn while its clustering runs ("(clustering...)" in its title): wait for
    # the clustered plots
    page.wait_for_function(
        "n => { const t = [...document.querySelectorAll('[data-testid=stPlotlyChart] .gtitle')];"
        " return t.length >= n && t.every(e => !e.textContent.includes('clustering...')); }",
        arg=len(DASHBOARD_BACKBONES), timeout=900_000)
    settle(page, "Backbones page")


def shoot_dashboard(browser, url: str, files: dict) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{url}/backbones?backbones={','.join(DASHBOARD_BACKBONES)}", timeout=120_000)
    backbones_drawn(page)
    # once more, from the caches now filled: the page drawn in one pass, as a returning user sees it (computed
    # for the first time, the table grows a row at a time and keeps its first column as narrow as its first row)
    page.reload(timeout=120_000)
    backbones_drawn(page)
    # the plots' points are WebGL: check that each plot drew some on its canvas
    drawn = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')].map(p => {
        const c = p.querySelector('canvas.gl-canvas-context');
        if (!c) return false;
        const small = document.createElement('canvas'); small.width = 64; small.height = 64;
        const g = small.getContext('2d'); g.drawImage(c, 0, 0, 64, 64);
        const d = g.getImageData(0, 0, 64, 64).data;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
        return false; })""")
    if not drawn or not all(drawn):
        raise SystemExit(f"Backbones page: the scatter plots drew no points (WebGL canvases: {drawn})")
    files["dashboard.png"] = framed(page, PLOT)
    page.close()


def shoot_gallery(browser, url: str, files: dict) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{url}/gallery", timeout=120_000)
    page.locator(".kit-grid img").first.wait_for(timeout=900_000)
    settle(page, "Gallery page")
    files["gallery.png"] = framed(page, '[data-testid="stExpander"]')
    page.close()


def notebook_figure():
    """Notebook 05's comparison: each built-in backbone's t-SNE map (kit.project.project, cosine, perplexity
    30), coloured by folder, its trustworthiness in the title, in one kit.plot.projection_grid."""
    import kit

    images = kit.load_folder(kit.datasets.clothing())
    maps = {}
    for name in BACKBONES:
        emb = kit.embed(images, backbone=name)
        tsne = kit.project.project(emb.vectors, method="tsne")
        maps[f"{name}: t-SNE (trustworthiness {kit.project.trustworthiness(emb.vectors, tsne):.3f})"] = tsne
    hover = [f"{label}: {Path(p).name}" for label, p in zip(emb.labels, emb.paths)]
    fig = kit.plot.projection_grid(maps, color=emb.labels, hover=hover, columns=3, color_title="folder",
                                   height=460)
    fig.update_layout(width=VIEWPORT["width"] - 20, title_text=f"The {len(images)} built-in clothing photos, "
                      "one t-SNE map per built-in backbone (notebook 05)", margin=dict(t=80))
    return fig


def shoot_notebook(browser, files: dict) -> None:
    fig = notebook_figure()
    with tempfile.TemporaryDirectory(prefix="kit-screenshots-") as tmp:
        html = Path(tmp, "figure.html")
        fig.write_html(html, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(html.as_uri(), timeout=120_000)
        page.locator(".main-svg").first.wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        files["notebook.png"] = page.locator(".plot-container").first.screenshot()
        page.close()


def reduce(png: bytes, name: str) -> tuple[bytes, tuple[int, int]]:
    """A 256-colour palette PNG of ``png``, scaled down (not below MIN_WIDTH) until it is under MAX_BYTES, and its
    size in pixels."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    width = image.width
    while True:
        scaled = image if width == image.width else image.resize(
            (width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        # no dithering: the page's flat colours (white, text, plot colours) stay exact; Pillow dithers only over a
        # given palette, and then maps white to an off-white
        scaled.quantize(colors=256, method=Image.Quantize.MEDIANCUT, kmeans=1).save(buf, format="PNG", optimize=True)
        if buf.tell() < MAX_BYTES:
            return buf.getvalue(), scaled.size
        if width <= MIN_WIDTH:
            raise SystemExit(f"{name}: {buf.tell() / 1000:.0f} KB even at {width} px wide; the limit is "
                             f"{MAX_BYTES / 1000:.0f} KB (show less on the page, or a smaller viewport)")
        width = max(MIN_WIDTH, int(width * 0.9))


def main() -> None:
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    files = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            with Served(args=["--client.toolbarMode", "minimal"]) as app:
                try:
                    shoot_dashboard(browser, app.url, files)
                    shoot_gallery(browser, app.url, files)
                except BaseException:
                    print("streamlit's last output:\n" + app.output(), file=sys.stderr)
                    raise
            shoot_notebook(browser, files)
        finally:
            browser.close()
    reduced = {name: reduce(png, name) for name, png in files.items()}  # every one fits before any is written
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (data, (width, height)) in reduced.items():
        (OUT / name).write_bytes(data)
        print(f"wrote {os.path.relpath(OUT / name)}: {width}x{height}, {len(data) / 1000:.0f} KB")
    print(f"{len(files)} screenshots in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
