"""Reading folders and decoding awkward files: every bad file is reported with a reason, every good one read."""
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kit
from kit.io import read_image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_huge_png(path: Path, side: int = 20000) -> None:
    """A valid side x side grayscale PNG, written in a streaming way (tiny on disk)."""
    comp = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * side
    parts = [comp.compress(row * 500) for _ in range(side // 500)]
    parts.append(comp.flush())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)))
        f.write(_png_chunk(b"IDAT", b"".join(parts)))
        f.write(_png_chunk(b"IEND", b""))


def exif_rotated_jpeg(path: Path) -> None:
    """60 wide x 40 high stored pixels, EXIF orientation 6 (display rotated 90 CW). A red block sits at the
    top-left of the stored centred square (rows 0-10, columns 10-20)."""
    arr = np.full((40, 60, 3), 200, np.uint8)
    arr[:10, 10:20] = (255, 0, 0)
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(path, quality=95, exif=exif.tobytes())


@pytest.fixture
def awkward_folder(tmp_path, photo):
    """A folder with good images in every format and every kind of bad file the issue lists."""
    root = tmp_path / "photos"
    good = root / "good"
    bad = root / "bad"
    good.mkdir(parents=True)
    bad.mkdir()
    im = Image.fromarray(photo)
    im.save(good / "a.jpg", quality=90)
    im.save(good / "b.png")
    im.save(good / "c.bmp")
    im.save(good / "d.gif")
    im.save(good / "e.webp")
    im.save(good / "f.tiff")
    im.convert("CMYK").save(good / "cmyk.jpg", quality=90)
    grad16 = (np.tile(np.linspace(0, 65535, 64), (32, 1))).astype(np.uint16)
    Image.fromarray(grad16).save(good / "sixteen_bit.png")
    pal = Image.new("P", (32, 32), 0)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (16, 0, 32, 32))
    pal.save(good / "palette_transparent.png", transparency=0)
    exif_rotated_jpeg(good / "rotated.jpg")
    (good / "png_named.jpg").write_bytes((good / "b.png").read_bytes())  # wrong extension, real PNG
    (good / "notes.txt").write_text("not an image")

    jpeg_bytes = (good / "a.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(jpeg_bytes[: len(jpeg_bytes) // 2])
    (bad / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.jpg").write_text("hello, I am not a JPEG")
    write_huge_png(bad / "huge.png")
    os.symlink(root, bad / "loop")  # a directory symlink back to the root
    return root


def test_load_folder_reports_every_bad_file(awkward_folder):
    images = kit.load_folder(awkward_folder)
    names = {Path(p).name for p in images.paths}
    assert {"a.jpg", "b.png", "c.bmp", "d.gif", "e.webp", "f.tiff", "cmyk.jpg", "sixteen_bit.png",
            "palette_transparent.png", "rotated.jpg", "png_named.jpg"} <= names
    reasons = dict(zip(images.unreadable["path"].map(lambda p: Path(p).name), images.unreadable["reason"]))
    assert "empty" in reasons["empty.png"]
    for name in ("text.jpg", "corrupt.jpg"):  # the reason every reader gives (one safe decode path)
        with pytest.raises(ValueError) as decoding:
            read_image(awkward_folder / "bad" / name)
        assert reasons[name] == str(decoding.value) and reasons[name].startswith("cannot decode"), name
    assert "max_pixels" in reasons["huge.png"]
    # a JPEG cut short has a valid header: the end of the file tells, and its reason is the decoder's own
    with pytest.raises(ValueError) as decoding:
        read_image(awkward_folder / "bad" / "truncated.jpg")
    assert reasons["truncated.jpg"] == str(decoding.value) and "truncated" in reasons["truncated.jpg"]
    # the symlink loop is followed once: every image appears once
    assert len(images.paths) == len({Path(p).name for p in images.paths}) == 11
    assert any(p.endswith("notes.txt") for p in images.ignored)
    # labels are the first sub-folder
    assert dict(zip([Path(p).name for p in images.paths], images.labels))["a.jpg"] == "good"


def test_complete_files_with_trailers_are_read_and_cut_ones_listed(tmp_path, photo):
    """Only the end of a JPEG or PNG is read to find a cut file; a trailer after the end marker (camera data,
    appended notes) keeps a good photo good, however long."""
    jpeg = io.BytesIO()
    Image.fromarray(photo).save(jpeg, format="JPEG", quality=90)
    good = jpeg.getvalue()
    (tmp_path / "trailer.jpg").write_bytes(good + os.urandom(5000).replace(b"\xff", b"\x00"))
    png = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(png, format="PNG")
    (tmp_path / "whole.png").write_bytes(png.getvalue())
    (tmp_path / "cut.png").write_bytes(png.getvalue()[:-30])
    (tmp_path / "cut.jpg").write_bytes(good[:-200])
    images = kit.load_folder(tmp_path)
    assert sorted(Path(p).name for p in images.paths) == ["trailer.jpg", "whole.png"]
    reasons = dict(zip(images.unreadable["path"].map(lambda p: Path(p).name), images.unreadable["reason"]))
    assert sorted(reasons) == ["cut.jpg", "cut.png"]
    for name, reason in reasons.items():
        with pytest.raises(ValueError) as decoding:
            read_image(tmp_path / name)
        assert reason == str(decoding.value), name
    assert read_image(tmp_path / "trailer.jpg").shape[2] == 3


def test_duplicates_are_reported(awkward_folder):
    images = kit.load_folder(awkward_folder)
    dup = images.duplicates
    assert len(dup) == 1
    assert {Path(dup.iloc[0]["path"]).name, Path(dup.iloc[0]["duplicate_of"]).name} == {"b.png", "png_named.jpg"}


def test_modes_are_converted_to_rgb(awkward_folder):
    good = awkward_folder / "good"
    cmyk = read_image(good / "cmyk.jpg")
    ref = read_image(good / "a.jpg")
    assert cmyk.shape == ref.shape and cmyk.dtype == np.uint8
    assert np.abs(cmyk.astype(int) - ref.astype(int)).mean() < 12  # colours survive CMYK

    g16 = read_image(good / "sixteen_bit.png")
    assert g16.shape == (32, 64, 3)
    assert g16[0, 0, 0] == 0 and g16[0, -1, 0] == 255  # full 16-bit range mapped onto 0..255
    assert 100 < g16[0, 32, 0] < 160

    pal = read_image(good / "palette_transparent.png")
    assert tuple(pal[5, 5]) == (255, 255, 255)  # transparent -> white
    assert tuple(pal[5, 25]) == (0, 0, 255)


def test_exif_orientation_is_applied(awkward_folder):
    arr = read_image(awkward_folder / "good" / "rotated.jpg")
    assert arr.shape == (60, 40, 3)  # displayed upright: 40 wide, 60 high
    # orientation 6 turns the stored top-left of the square to its top-right (displayed rows 10-20)
    assert arr[13, -4, 0] > 200 and arr[13, -4, 1] < 60
    assert arr[3, 3, 1] > 150
    # with a target size the turn is applied after resizing: same picture as turning first
    small = read_image(awkward_folder / "good" / "rotated.jpg", size=20)
    ref = np.asarray(Image.fromarray(arr).resize((20, 20), Image.Resampling.BILINEAR, box=(0, 10, 40, 50)))
    assert np.abs(small.astype(int) - ref.astype(int)).mean() < 3  # edges may differ by a pixel
    assert small[1, -2, 0] > 200 and small[1, -2, 1] < 60  # red corner now top-right


def test_truncated_and_huge_images_fail_with_reasons(awkward_folder):
    with pytest.raises(ValueError, match="cannot decode"):
        read_image(awkward_folder / "bad" / "truncated.jpg")
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(awkward_folder / "bad" / "huge.png")


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    arr = read_image(tmp_path / "anim.gif")
    assert arr[10, 10, 0] > 200 and arr[10, 10, 1] < 50


def test_center_crop_resize(photo, tmp_path):
    Image.fromarray(photo[:, :400]).save(tmp_path / "tall.png")
    arr = read_image(tmp_path / "tall.png", size=64)
    assert arr.shape == (64, 64, 3)
    with pytest.raises(ValueError, match=r"'resize' parameter of read_image must be a str among \{'center_crop', 'pad', 'squash'\}; got 'stretchy'"):
        read_image(tmp_path / "tall.png", size=64, resize="stretchy")


def test_labels_from_csv_and_errors(tmp_path, photo):
    for name in ("x.jpg", "y.jpg"):
        Image.fromarray(photo).save(tmp_path / name)
    pd.DataFrame({"path": ["x.jpg", "y.jpg"], "label": ["cat", "dog"]}).to_csv(tmp_path / "labels.csv", index=False)
    images = kit.load_folder(tmp_path, labels=tmp_path / "labels.csv")
    assert dict(zip([Path(p).name for p in images.paths], images.labels)) == {"x.jpg": "cat", "y.jpg": "dog"}
    assert kit.load_folder(tmp_path).labels is None  # images at the root: unlabelled
    with pytest.raises(NotADirectoryError, match="path="):
        kit.load_folder(tmp_path / "nope")
    pd.DataFrame({"file_name": ["x.jpg"], "what": ["cat"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="path column"):
        kit.load_folder(tmp_path, labels=tmp_path / "bad.csv")


def test_every_photo_is_opened_through_the_one_safe_decode_path():
    """Issue 32: the only decoder call in the kit is in ``kit.io.open_image``; every reader of a photo (embedding,
    thumbnails and plots, Inspect and CAM, export, face crops and detection, curation, generated corpora) goes
    through it or through ``read_image``, so a bad file gives the same reason everywhere and never a traceback."""
    import ast

    root = Path(kit.__file__).parent
    decoders = ("Image.open", "imread", "load_rgb_image", "decode_jpeg", "decode_png", "decode_image")
    found, readers = [], set()
    for path in sorted(root.rglob("*.py")):
        module = ".".join(("kit", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        def visit(node, where):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = node.name
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name.endswith(decoders):
                    found.append((module, where, name))
                if name.split(".")[-1] in ("read_image", "open_image"):
                    readers.add(module)
            for child in ast.iter_child_nodes(node):
                visit(child, where)

        visit(ast.parse(path.read_text()), "<module>")
    assert {(m, f) for m, f, _ in found} == {("kit.io", "open_image")}, found
    assert {"kit.io", "kit.backbones._base", "kit.plot", "kit.inspect", "kit.export", "kit.curate",
            "kit.faces._crops", "kit.faces._detection", "kit.datasets._samples", "kit.embedding._views",
            "kit.adapt._adapt"} <= readers, readers
