"""Data safety: everything the kit deletes or overwrites is something it wrote (marker first), and cache keys
change when what produced the entries changes. Photo folders are compared byte for byte before and after."""
import hashlib
import importlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kit
from kit import export
from kit._utils import config as _config
from kit.embedding import EmbeddingCache
from kit.datasets import PublicDataset, download, extract_zip

ROOT = Path(__file__).resolve().parents[1]
embed_module = importlib.import_module("kit.embedding._embed")
project_module = importlib.import_module("kit.project._project")
backbones_module = importlib.import_module("kit.backbones._builtin")
effnet_module = importlib.import_module("kit.backbones.effnet_lite")


def _snapshot(root: Path) -> dict:
    """Every file under root (relative path -> sha256) and every folder (-> 'dir')."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def small_photos():
    """Four real photos (scikit-image's) as small RGB arrays."""
    from skimage import data

    return [np.asarray(Image.fromarray(f()).convert("RGB").resize((96, 96))) for f in
            (data.astronaut, data.chelsea, data.coffee, data.rocket)]


@pytest.fixture
def photo_folder(tmp_path, small_photos):
    """A user's folder of photos in sub-folders (with a sub-folder that has a cache-like hex name)."""
    root = tmp_path / "My Photos"
    for i, (sub, arr) in enumerate(zip(["holiday", "holiday", "cats", "0123456789abcdef01234567/ab"], small_photos)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / sub / f"img_{i}.jpg", quality=90)
    (root / "cats" / "notes.txt").write_text("my notes")
    return root


# --------------------------------------------------------------------------------- embedding cache
def test_clear_refuses_a_photo_folder_and_leaves_it_byte_for_byte(photo_folder):
    before = _snapshot(photo_folder)
    with pytest.raises(ValueError, match=r"not a kit embedding cache \(no \.kit-cache marker\).*~/\.cache/kit/"):
        kit.embedding.clear_cache(photo_folder)
    with pytest.raises(ValueError, match="not a kit embedding cache"):
        kit.embedding.clear_cache(photo_folder, backbone="efficientnet_lite0")
    assert kit.embedding.cache_info(photo_folder).empty  # folders that are not kit namespaces are ignored
    assert _snapshot(photo_folder) == before


def test_cli_cache_clear_refuses_a_photo_folder_cleanly(photo_folder):
    before = _snapshot(photo_folder)
    out = subprocess.run([sys.executable, "-m", "kit", "cache", "clear", "--cache-dir", str(photo_folder)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    assert "not a kit embedding cache" in out.stderr and "Traceback" not in out.stderr
    assert _snapshot(photo_folder) == before


def test_cache_will_not_write_into_a_photo_folder(photo_folder):
    before = _snapshot(photo_folder)
    cache = EmbeddingCache("weights", {"input_size": 8}, photo_folder)
    with pytest.raises(ValueError, match="already holds files that are not a kit embedding cache"):
        cache.put(["ab" * 16], np.ones((1, 4), np.float32))
    assert _snapshot(photo_folder) == before


def test_embed_cache_is_cleared_but_foreign_files_survive(tmp_path, small_photos, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    for i, arr in enumerate(small_photos[:3]):
        Image.fromarray(arr).save(src / f"p{i}.jpg", quality=90)
    cache_dir = tmp_path / "cache"
    first = kit.embed(src, backbone="efficientnet_lite0", cache_dir=cache_dir)
    assert first.stats["computed"] == 3 and first.preprocessing["version"] == _config.PREPROCESSING_VERSION
    assert json.loads((cache_dir / ".kit-cache").read_text())["kind"] == "embeddings"
    table = kit.embedding.cache_info(cache_dir)
    assert len(table) == 1 and table["entries"].tolist() == [3]

    # a new preprocessing version is a new namespace: nothing is served from the old one
    monkeypatch.setattr(_config, "PREPROCESSING_VERSION", _config.PREPROCESSING_VERSION + 1)
    again = kit.embed(src, backbone="efficientnet_lite0", cache_dir=cache_dir)
    assert again.stats["cached"] == 0 and again.stats["computed"] == 3
    np.testing.assert_allclose(again.vectors, first.vectors, atol=1e-5)
    assert len(kit.embedding.cache_info(cache_dir)) == 2
    monkeypatch.undo()
    assert kit.embed(src, backbone="efficientnet_lite0", cache_dir=cache_dir).stats["cached"] == 3

    ns = Path(table["path"][0])
    shard = next(p for p in ns.iterdir() if p.is_dir())
    other_shard = "00" if shard.name != "00" else "11"
    foreign = {ns / "my notes.txt": b"keep me", shard / "keep.f32.bak": b"not an entry",
               shard / (other_shard * 16 + ".f32"): b"not this shard's name",
               cache_dir / "mine" / "photo.jpg": b"\xff\xd8 jpeg",
               cache_dir / ("f" * 24) / "ab" / ("ab" * 16 + ".f32"): b"namespace without meta.json"}
    for path, data in foreign.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    out = subprocess.run([sys.executable, "-m", "kit", "cache", "clear", "--cache-dir", str(cache_dir)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "removed 6 entries" in out.stdout
    for path, data in foreign.items():
        assert path.read_bytes() == data
    assert not list(cache_dir.rglob("meta.json"))
    assert set(cache_dir.rglob("*.f32")) == {p for p in foreign if p.suffix == ".f32"}
    assert sorted(p.name for p in ns.iterdir()) == sorted(["my notes.txt", shard.name])  # kept: holds foreign files
    assert sorted(p.name for p in shard.iterdir()) == sorted([other_shard * 16 + ".f32", "keep.f32.bak"])
    assert kit.embedding.cache_info(cache_dir).empty and (cache_dir / ".kit-cache").is_file()


def test_clear_removes_only_the_namespaces_asked_for(tmp_path):
    a = EmbeddingCache("weights-a", {"input_size": 8}, tmp_path)
    b = EmbeddingCache("weights-b", {"input_size": 8}, tmp_path)
    a.put(["aa" * 16, "bb" * 16], np.ones((2, 4), np.float32))
    b.put(["aa" * 16], np.zeros((1, 4), np.float32))
    assert kit.embedding.clear_cache(tmp_path, backbone="weights-a") == 2
    assert not a.folder.exists() and b.get(["aa" * 16])["aa" * 16].tolist() == [0, 0, 0, 0]
    assert kit.embedding.clear_cache(tmp_path) == 1 and not b.folder.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".kit-cache"]


def test_cache_keys_must_be_hex_hashes(tmp_path):
    with pytest.raises(ValueError, match="hex content hash"):
        EmbeddingCache("w", {}, tmp_path).put(["../../evil"], np.ones((1, 2)))
    assert not any(tmp_path.iterdir())


def test_legacy_cache_adopted_at_the_default_location_only(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "home"))
    default = kit.embedding.default_cache_dir()
    elsewhere = tmp_path / "old-cache"
    for root in (default, elsewhere):
        EmbeddingCache("w", {"input_size": 8}, root).put(["cd" * 16], np.ones((1, 3), np.float32))
        (root / ".kit-cache").unlink()  # as written by the kit before markers existed
    before = _snapshot(elsewhere)
    with pytest.raises(ValueError, match="older kit version"):
        kit.embedding.clear_cache(elsewhere)
    assert _snapshot(elsewhere) == before
    assert len(kit.embedding.cache_info(elsewhere)) == 1  # still listed: reading is harmless
    assert kit.embedding.clear_cache() == 1 and json.loads((default / ".kit-cache").read_text())["kind"] == "embeddings"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kit.embedding.clear_cache(empty) == 0 and kit.project.clear_cache(empty) == 0  # nothing to delete, no error
    assert kit.embedding.clear_cache(tmp_path / "absent") == 0 and not (tmp_path / "absent").exists()


def test_preprocessing_version_changes_the_namespace(tmp_path, monkeypatch):
    spec = kit.backbones.get("efficientnet_lite0")
    pre = embed_module._preprocessing(spec, "center_crop")
    first = EmbeddingCache(spec.cache_key, pre, tmp_path).namespace
    assert EmbeddingCache(spec.cache_key, embed_module._preprocessing(spec, "center_crop"), tmp_path).namespace == first
    monkeypatch.setattr(_config, "PREPROCESSING_VERSION", _config.PREPROCESSING_VERSION + 1)
    bumped = embed_module._preprocessing(spec, "center_crop")
    assert bumped["version"] == pre["version"] + 1
    assert EmbeddingCache(spec.cache_key, bumped, tmp_path).namespace != first
    assert EmbeddingCache(spec.cache_key, pre, tmp_path).namespace != first  # the cache adds the version itself


# --------------------------------------------------------------------------------- projection cache
@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)


def test_projection_cache_clear_keeps_foreign_files(tmp_path, vectors):
    folder = tmp_path / "proj"
    kit.project.project(vectors, method="pca", cache_dir=folder)
    kit.project.project(vectors, method="pca", n_components=3, cache_dir=folder)
    assert json.loads((folder / ".kit-cache").read_text())["kind"] == "projections"
    foreign = {folder / "mine.npy": b"my array", folder / "notes.txt": b"keep",
               folder / ("a" * 40 + ".npy.bak"): b"x", folder / "sub" / ("b" * 40 + ".npy"): b"y"}
    for path, data in foreign.items():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert kit.project.clear_cache(folder) == 2
    assert all(p.read_bytes() == d for p, d in foreign.items())
    assert not kit.project.project(vectors, method="pca", cache_dir=folder).from_cache


def test_projection_cache_refuses_foreign_folders(photo_folder, tmp_path, vectors):
    before = _snapshot(photo_folder)
    with pytest.raises(ValueError, match=r"not a kit projection cache \(no \.kit-cache marker\)"):
        kit.project.clear_cache(photo_folder)
    with pytest.raises(ValueError, match="not a kit projection cache"):
        kit.project.project(vectors, method="pca", cache_dir=photo_folder)
    assert _snapshot(photo_folder) == before
    emb_cache = tmp_path / "emb"
    EmbeddingCache("w", {}, emb_cache).put(["ef" * 16], np.ones((1, 2)))
    with pytest.raises(ValueError, match="embedding cache"):
        kit.project.clear_cache(emb_cache)
    with pytest.raises(ValueError, match="embedding cache"):
        kit.project.project(vectors, method="pca", cache_dir=emb_cache)
    kit.project.project(vectors, method="pca", cache_dir=tmp_path / "p")
    with pytest.raises(ValueError, match="projection cache, not its embedding cache"):
        kit.embedding.clear_cache(tmp_path / "p")
    assert len(list((tmp_path / "p").glob("*.npy"))) == 1
    assert kit.embedding.clear_cache(emb_cache) == 1


def test_projection_key_includes_library_and_kit_versions(tmp_path, vectors, monkeypatch):
    params = {"random_state": 0, "n_components": 2}
    key = project_module._cache_key(vectors, "pca", params)
    versions = project_module._library_versions("pca")
    assert set(versions) == {"numpy", "scikit-learn"} and versions["numpy"] == np.__version__
    assert set(project_module._library_versions("umap")) >= {"umap-learn", "pynndescent"}
    assert "openTSNE" in project_module._library_versions("tsne")
    first = kit.project.project(vectors, method="pca", cache_dir=tmp_path)
    assert kit.project.project(vectors, method="pca", cache_dir=tmp_path).from_cache

    monkeypatch.setattr(project_module, "_library_versions", lambda method: {**versions, "scikit-learn": "0.0.1"})
    assert project_module._cache_key(vectors, "pca", params) != key
    again = kit.project.project(vectors, method="pca", cache_dir=tmp_path)
    assert not again.from_cache
    np.testing.assert_allclose(again.coords, first.coords, atol=1e-5)
    monkeypatch.undo()
    monkeypatch.setattr(project_module, "__version__", "99.0")
    assert project_module._cache_key(vectors, "pca", params) != key


# --------------------------------------------------------------------------------- export
def test_export_never_overwrites_or_deletes_foreign_files(tmp_path, photo_folder):
    paths = sorted(str(p) for p in photo_folder.rglob("*.jpg"))
    labels = np.array([0, 0, 1, 1])
    out = tmp_path / "out"
    (out / "clusters" / "cluster_000").mkdir(parents=True)
    name = Path(paths[0]).name
    foreign = {out / "clusters" / "cluster_000" / name: b"an older photo of mine", out / "clusters" / "notes.txt":
               b"notes", out / "report.csv": b"my,own\n1,2\n", out / "book.xlsx": b"my workbook"}
    for path, data in foreign.items():
        path.write_bytes(data)
    source_before = _snapshot(photo_folder)

    written = export.to_folders(paths, labels, out / "clusters", source_root=photo_folder)
    assert len(written.table) == 4 and all(Path(w).is_file() for w in written.table["written"])
    assert written.folder == (out / "clusters").resolve() and written.removed == 0
    assert (out / "clusters" / "cluster_000" / name).read_bytes() == b"an older photo of mine"
    with pytest.raises(ValueError, match="not written by kit.export"):
        export.to_csv(paths, labels, out / "report.csv")
    with pytest.raises(ValueError, match="not written by kit.export"):
        export.to_excel(paths, labels, out / "book.xlsx")

    # the kit's own files are replaced (a second export), unless they were changed since
    csv = export.to_csv(paths, labels, out / "clusters.csv")
    assert export.to_csv(paths, 1 - labels, out / "clusters.csv") == csv
    assert pd.read_csv(csv)["cluster"].tolist() == (1 - labels).tolist()
    csv.write_text("path,cluster,my_note\n")
    with pytest.raises(ValueError, match="changed since"):
        export.to_csv(paths, labels, csv)
    assert csv.read_text() == "path,cluster,my_note\n"

    # a new export into the same cluster folders replaces the kit's previous one and nothing else
    again = export.to_folders(paths, 1 - labels, out / "clusters", mode="link", source_root=photo_folder)
    assert all(Path(w).is_symlink() for w in again.table["written"]) and again.removed == 4
    ours = [p for p in (out / "clusters").rglob("*") if p.is_file() and p not in foreign and p.suffix == ".jpg"]
    assert len(ours) == 4
    for path, data in foreign.items():
        assert path.read_bytes() == data
    assert _snapshot(photo_folder) == source_before


def test_crops_never_overwrite(tmp_path):
    out = tmp_path / "crops"
    (out / "cluster_000").mkdir(parents=True)
    (out / "cluster_000" / "face.jpg").write_bytes(b"mine")
    pic = Image.new("RGB", (20, 20), (200, 10, 10))
    table = export.crops_to_folders({0: [("face.jpg", pic), ("face.jpg", pic)]}, out)
    assert (out / "cluster_000" / "face.jpg").read_bytes() == b"mine"
    assert sorted(Path(w).name for w in table["written"]) == ["face_1.jpg", "face_2.jpg"]
    export.crops_to_folders({1: [("face.jpg", pic)]}, out)  # replaces the previous crops, only those
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == [
        "cluster_000/face.jpg", "cluster_001/face.jpg"]


# --------------------------------------------------------------------------------- datasets and models
def _jpeg_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG")
    return buf.getvalue()


def test_download_never_deletes_a_folder_it_did_not_create(tmp_path, small_photos):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i, arr in enumerate(small_photos):
            data = _jpeg_bytes(arr)
            info = tarfile.TarInfo(f"set/{'ab'[i % 2]}/{i}.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "set.tgz"
    archive.write_bytes(buf.getvalue())
    ds = PublicDataset(name="local", url=archive.as_uri(), sha256=hashlib.sha256(buf.getvalue()).hexdigest(),
                       folder_in_archive="set")

    dest = tmp_path / "dest"
    (dest / "set" / "a").mkdir(parents=True)
    (dest / "set" / "a" / "mine.jpg").write_bytes(_jpeg_bytes(small_photos[0]))
    (dest / "keep.txt").write_text("keep")
    before = _snapshot(dest)
    with pytest.raises(ValueError, match="was not made by kit.datasets.download"):
        download(ds, dest=dest)
    assert _snapshot(dest) == before

    (dest / "set" / "a" / "mine.jpg").unlink()
    (dest / "set" / "a").rmdir()
    (dest / "set").rmdir()
    bad = PublicDataset(name="local", url=ds.url, sha256="0" * 64, folder_in_archive="set")
    with pytest.raises(ValueError, match="sha256"):
        download(bad, dest=dest)
    assert _snapshot(dest) == {"keep.txt": before["keep.txt"]}  # an existing dest is never removed
    folder = download(ds, dest=dest)
    assert len(list(folder.rglob("*.jpg"))) == 4 and (dest / "keep.txt").read_text() == "keep"


def test_sample_builder_refuses_a_folder_it_did_not_make(tmp_path, monkeypatch, small_photos):
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "home"))
    squatter = tmp_path / "home" / "datasets" / "sample-v1" / "images" / "cat"
    squatter.mkdir(parents=True)
    Image.fromarray(small_photos[1]).save(squatter / "mine.jpg")
    before = _snapshot(tmp_path / "home")
    with pytest.raises(ValueError, match="not made by the kit's sample builder"):
        kit.datasets.sample_folder()
    assert _snapshot(tmp_path / "home") == before


def test_extract_zip_never_overwrites(tmp_path, small_photos):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/1.jpg", _jpeg_bytes(small_photos[0]))
        zf.writestr("b/2.jpg", _jpeg_bytes(small_photos[1]))
    dest = tmp_path / "upload"
    (dest / "a").mkdir(parents=True)
    (dest / "a" / "1.jpg").write_bytes(b"my own photo")
    (dest / "c.jpg").write_bytes(b"another")
    before = _snapshot(dest)
    with pytest.raises(ValueError, match="already holds 'a/1.jpg'"):
        extract_zip(buf.getvalue(), dest)
    assert _snapshot(dest) == before
    (dest / "a" / "1.jpg").unlink()
    assert extract_zip(buf.getvalue(), dest).extracted == 2 and (dest / "c.jpg").read_bytes() == b"another"


def test_builtin_model_export_refuses_a_folder_it_did_not_make(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "home"))
    folder = backbones_module.builtin_dir("efficientnet_lite0")
    (folder / "features").mkdir(parents=True)
    (folder / "features" / "weights.bin").write_bytes(b"something else")
    before = _snapshot(tmp_path / "home")
    with pytest.raises(ValueError, match="never deletes a folder it did not create"):
        backbones_module.builtin_folder("efficientnet_lite0")
    with pytest.raises(ValueError, match="already exists"):
        effnet_module.export_savedmodels("efficientnet_lite0", folder / "features", tmp_path / "new")
    assert _snapshot(tmp_path / "home") == before
    assert not [p for p in folder.parent.iterdir() if ".tmp" in p.name]
