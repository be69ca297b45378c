"""Sample data, public-set downloads (from a loopback HTTP server only) and safe zip uploads."""
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import kit
from kit import datasets
from kit.datasets import _archives
from kit.datasets import DatasetUnavailableError, PublicDataset, download, extract_zip, sample_folder


def _jpeg(color=(200, 30, 30), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.jpg")}


# ---------------------------------------------------------------- sample set
@pytest.fixture(scope="module")
def sample():
    return sample_folder()


def test_sample_folder_is_a_labelled_set_of_real_photos(sample):
    images = kit.load_folder(sample)
    assert len(images) >= 300
    assert images.labels is not None and len(set(images.labels)) >= 5
    assert len(images.unreadable) == 0 and len(images.duplicates) == 0 and images.ignored == []
    counts = images.label_counts()
    info = datasets.sample_info()
    assert counts.to_dict() == dict(zip(info["class"], info["images"]))
    assert all(s.startswith("skimage.data.") for s in info["source"])
    with Image.open(images.paths[0]) as im:
        assert im.mode == "RGB" and min(im.size) == 256


def test_sample_folder_reused_and_deterministic(sample, tmp_path, monkeypatch):
    t = time.perf_counter()
    assert sample_folder() == sample
    assert time.perf_counter() - t < 0.5
    assert not [p for p in sample.parent.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "other-home"))
    again = sample_folder()
    assert again != sample and again.is_relative_to(tmp_path)
    assert _hashes(again) == _hashes(sample)


@pytest.mark.parametrize("bad", [-1, 1.5, None, "0", True])
def test_sample_folder_rejects_bad_seed(bad):
    with pytest.raises(ValueError, match="random_state"):
        sample_folder(bad)


# ---------------------------------------------------------------- download from 127.0.0.1
def _tgz(members: dict, links: dict = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


GOOD_TGZ = _tgz({f"minisets/{cls}/{i}.jpg": _jpeg((40 * i, 100, 200 if cls == "a" else 0))
                 for cls in ("a", "b") for i in range(3)} | {"minisets/LICENSE.txt": b"CC0"})


@pytest.fixture
def server(monkeypatch):
    """A loopback HTTP server: ``files`` maps a path to bytes, ``requests`` lists the paths asked for."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    files, requests = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.files, httpd.requests = files, requests
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _dataset(server, name, data, sha256="right", folder="minisets", **kw):
    server.files[f"/{name}.tgz"] = data
    digest = hashlib.sha256(data).hexdigest() if sha256 == "right" else sha256
    return PublicDataset(name=name, url=f"{server.url}/{name}.tgz", sha256=digest, folder_in_archive=folder, **kw)


def test_download_extracts_verifies_and_is_cached(server):
    ds = _dataset(server, "minisets", GOOD_TGZ)
    calls = []
    folder = download(ds, progress=lambda done, total, stage: calls.append((done, total, stage)))
    assert folder == kit.kit_home() / "datasets" / "minisets" / "minisets"
    images = kit.load_folder(folder)
    assert len(images) == 6 and sorted(set(images.labels)) == ["a", "b"]
    assert calls[-1] == (len(GOOD_TGZ), len(GOOD_TGZ), "download")
    assert not [p for p in folder.parent.iterdir() if p.name.startswith((".download", ".extract"))]
    assert server.requests == ["/minisets.tgz"]
    assert download(ds) == folder
    assert server.requests == ["/minisets.tgz"]  # the second call made no request


def test_download_to_dest_with_md5_and_no_sha(server, tmp_path):
    ds = _dataset(server, "md5set", GOOD_TGZ, sha256=None, md5=hashlib.md5(GOOD_TGZ).hexdigest())
    folder = download(ds, dest=tmp_path / "here")
    assert folder == tmp_path / "here" / "minisets" and len(list(folder.rglob("*.jpg"))) == 6


def test_download_wrong_checksum_leaves_nothing(server):
    ds = _dataset(server, "corrupt", GOOD_TGZ, sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256") as err:
        download(ds)
    assert "0" * 64 in str(err.value) and hashlib.sha256(GOOD_TGZ).hexdigest() in str(err.value)
    root = kit.kit_home() / "datasets" / "corrupt"
    assert not root.exists() or not any(root.rglob("*"))


@pytest.mark.parametrize("members, links, culprit", [
    ({"minisets/a/1.jpg": _jpeg(), "../evil.jpg": b"x"}, None, "../evil.jpg"),
    ({"/tmp/abs.jpg": b"x"}, None, "/tmp/abs.jpg"),
    ({"minisets/a/1.jpg": _jpeg()}, {"minisets/a/link.jpg": "../../../../etc/passwd"}, "minisets/a/link.jpg"),
])
def test_download_refuses_unsafe_tar(server, members, links, culprit):
    ds = _dataset(server, "evil", _tgz(members, links), sha256=None)
    with pytest.raises(ValueError, match="member") as err:
        download(ds)
    assert repr(culprit) in str(err.value)
    assert not (kit.kit_home() / "datasets" / "evil").exists()
    assert not list(kit.kit_home().rglob("evil.jpg")) and not list(kit.kit_home().rglob("link.jpg"))


def test_download_missing_folder_in_archive_is_explained(server):
    ds = _dataset(server, "wrongfolder", GOOD_TGZ, folder="flowers")
    with pytest.raises(ValueError, match="folder_in_archive='flowers'.*minisets"):
        download(ds)


def test_download_unreachable_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ds = PublicDataset(name="offline", url=f"http://127.0.0.1:{port}/x.tgz", folder_in_archive="x")
    t = time.perf_counter()
    with pytest.raises(DatasetUnavailableError) as err:
        download(ds, timeout=5)
    assert time.perf_counter() - t < 30
    assert "kit.load_folder" in str(err.value) and "internet" in str(err.value)
    assert not (kit.kit_home() / "datasets" / "offline").exists()


def test_download_http_error_is_unavailable(server):
    ds = PublicDataset(name="gone", url=f"{server.url}/nothing.tgz", folder_in_archive="x")
    with pytest.raises(DatasetUnavailableError, match="Not Found|404"):
        download(ds)


def test_public_registry_and_unknown_name():
    for name, ds in datasets.PUBLIC.items():
        assert ds.name == name and ds.url.startswith("https://") and ds.licence and ds.folder_in_archive
        assert ds.sha256 or ds.md5
    with pytest.raises(ValueError, match="name_or_dataset='nope'.*tf_flowers"):
        download("nope")


# ---------------------------------------------------------------- zip uploads
def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


GOOD_ZIP = {"photos/cats/1.jpg": _jpeg(), "photos/dogs/2.JPG": _jpeg((0, 0, 255)), "photos/notes.txt": b"hi",
            "__MACOSX/photos/cats/._1.jpg": b"junk", "photos/.DS_Store": b"junk", "photos/empty/": b""}


def test_extract_zip_keeps_images_and_reports_the_rest(tmp_path):
    src = tmp_path / "upload.zip"
    src.write_bytes(_zip(GOOD_ZIP))
    report = extract_zip(src, tmp_path / "out")
    assert report.folder == tmp_path / "out" and report.extracted == 2
    assert sorted(p.relative_to(report.folder).as_posix() for p in report.folder.rglob("*") if p.is_file()) == [
        "photos/cats/1.jpg", "photos/dogs/2.JPG"]
    skipped = report.skipped.set_index("member")["reason"]
    assert set(skipped.index) == {"photos/notes.txt", "__MACOSX/photos/cats/._1.jpg", "photos/.DS_Store"}
    assert "not an image" in skipped["photos/notes.txt"] and "__MACOSX" in skipped["__MACOSX/photos/cats/._1.jpg"]
    assert list(report.skipped.columns) == ["member", "reason"]
    assert len(kit.load_folder(report.folder / "photos")) == 2


@pytest.mark.parametrize("as_", ["bytes", "file"])
def test_extract_zip_from_memory(tmp_path, as_):
    data = _zip(GOOD_ZIP)
    report = extract_zip(data if as_ == "bytes" else io.BytesIO(data), tmp_path / as_)
    assert report.extracted == 2 and isinstance(report.skipped, pd.DataFrame)


@pytest.mark.parametrize("evil", ["../x.jpg", "a/../../x.jpg", "/abs/x.jpg", "C:/x.jpg", "..\\x.jpg"])
def test_extract_zip_refuses_traversal(tmp_path, evil):
    data = _zip({"ok/1.jpg": _jpeg(), evil: _jpeg()})
    with pytest.raises(ValueError, match="member") as err:
        extract_zip(data, tmp_path / "out")
    assert repr(evil) in str(err.value)
    assert not (tmp_path / "x.jpg").exists() and not any((tmp_path / "out").rglob("*.jpg"))


def test_extract_zip_size_and_count_guards(tmp_path):
    data = _zip({"a/1.jpg": _jpeg(), "a/2.jpg": b"\0" * 100_000})
    with pytest.raises(ValueError, match="max_bytes=1000.*100"):
        extract_zip(data, tmp_path / "big", max_bytes=1000)
    with pytest.raises(ValueError, match="max_files=1"):
        extract_zip(data, tmp_path / "many", max_files=1)
    assert not (tmp_path / "big").exists() and not (tmp_path / "many").exists()


def test_extract_zip_guards_while_streaming(tmp_path):
    data = _zip({"a/1.jpg": _jpeg(), "a/2.jpg": b"\0" * 100_000})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # the central directory passed; the real bytes do not
        todo = [(i, i.filename) for i in zf.infolist()]
        with pytest.raises(ValueError, match="while extracting"):
            _archives._stream_zip(zf, todo, tmp_path, max_bytes=50_000)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_extract_zip_corrupt_member_is_a_value_error(tmp_path, monkeypatch):
    data = _zip({"a/1.jpg": _jpeg(), "a/2.jpg": b"\0" * 100_000})
    real = zipfile.ZipFile.infolist

    def lying(self):  # headers that understate the sizes: zipfile stops early and the CRC fails
        infos = real(self)
        for i in infos:
            i.file_size = 1
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", lying)
    with pytest.raises(ValueError, match="'a/1.jpg' is corrupt"):
        extract_zip(data, tmp_path / "out")
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_extract_zip_not_a_zip(tmp_path):
    with pytest.raises(ValueError, match="not a readable zip"):
        extract_zip(b"definitely not a zip", tmp_path / "out")


def test_sample_faces_builtin_people():
    import kit

    folder = kit.datasets.sample_faces()
    images = kit.load_folder(folder)
    assert len(images) == 32 and sorted(set(images.labels)) == sorted(kit.datasets.sample_faces_info()["person"])
    assert len(images.unreadable) == 0
    emb = kit.embed(images, backbone=kit.faces.backbone(crop_as_face=True))
    assert len(emb) == 32
    s = kit.faces.score(emb, kit.faces.cluster_faces(emb))
    assert s["bcubed_f"] >= 0.95


def test_default_real_photos_ship_with_their_licence():
    from PIL import Image

    import kit

    folder = kit.datasets.clothing()
    images = kit.load_folder(folder)
    assert len(images) == 500 and images.unreadable.empty
    assert images.label_counts().to_dict() == {c: 50 for c in kit.datasets.CLOTHING_CLASSES}
    with Image.open(images.paths[0]) as im:
        assert min(im.size) == 240
    assert "CC0 1.0" in (folder.parent / "LICENSE").read_text()
    assert "CC0" in (folder.parent / "SOURCE.md").read_text()
    assert sum(p.stat().st_size for p in folder.rglob("*.jpg")) < 10e6
