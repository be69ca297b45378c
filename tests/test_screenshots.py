"""The README's and the docs' screenshots (docs/images) are the ones docs/screenshots.py makes: each one it writes
is there, a PNG under 300 KB of a sensible size, and it writes every one there is, so that the images and the
script do not drift apart. No browser here: ``make screenshots`` makes them again."""
import re
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "screenshots.py"
IMAGES = ROOT / "docs" / "images"
EXPECTED = ["dashboard.png", "gallery.png", "notebook.png"]
MAX_BYTES = 300_000


def test_the_script_writes_each_expected_image_and_no_other():
    source = SCRIPT.read_text()
    written = set(re.findall(r"""["']([\w-]+\.png)["']""", source))
    assert written == set(EXPECTED), f"docs/screenshots.py writes {sorted(written)}, the docs expect {EXPECTED}"
    assert f"MAX_BYTES = {MAX_BYTES:_}" in source  # the script checks the same limit


def test_docs_images_holds_only_the_scripts_images():
    assert sorted(p.name for p in IMAGES.glob("*.png")) == sorted(EXPECTED), (
        "docs/images has PNGs docs/screenshots.py does not write (or lacks some): run `make screenshots`")


@pytest.mark.parametrize("name", EXPECTED)
def test_each_image_is_a_small_sensible_png(name):
    path = IMAGES / name
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run `make screenshots`"
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{name}: {size / 1000:.0f} KB, over {MAX_BYTES / 1000:.0f} KB"
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()
    with Image.open(path) as im:
        im.load()  # decodes every row: a truncated file fails here
        width, height = im.size
    assert width >= 800 and 300 <= height <= 2000, f"{name}: {width}x{height}"
