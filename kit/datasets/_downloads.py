"""Public image sets fetched over the network (`download`, `PUBLIC`): streamed with a checksum, extracted once,
failing fast offline with `DatasetUnavailableError` and advice."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .._utils.config import kit_home
from .._utils.files import atomic_write
from ..progress import report
from ._archives import _CHUNK, _check_member, _extract
from ._owned import _MARKER, _not_ours


class DatasetUnavailableError(RuntimeError):
    """A public data set could not be fetched (offline, host unreachable, HTTP error)."""


@dataclass(frozen=True)
class PublicDataset:
    """A public image set: where to get it and where its ``<class>/`` image folders sit in the archive.

    ``sha256`` (or, when only that is published, ``md5``) is verified when given. ``inner_archive``
    names an archive inside the archive that holds the images (Caltech-101 ships a tar.gz in a zip).
    """

    name: str
    url: str
    sha256: str | None = None
    archive: str = "tar.gz"
    folder_in_archive: str = ""
    description: str = ""
    licence: str = ""
    md5: str | None = None
    inner_archive: str | None = None


PUBLIC = {
    "tf_flowers": PublicDataset(
        name="tf_flowers",
        url="https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
        # as published by TensorFlow Datasets (url_checksums/tf_flowers.txt), 228,813,984 bytes
        sha256="4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c",
        archive="tar.gz", folder_in_archive="flower_photos",
        description="3,670 Flickr photos of 5 flowers (daisy, dandelion, roses, sunflowers, tulips)",
        licence="CC BY 2.0 (per-photo attribution in flower_photos/LICENSE.txt)"),
    "caltech101": PublicDataset(
        name="caltech101",
        url="https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1",
        sha256=None,  # Caltech publishes only the md5 of this zip
        md5="3138e1922a9193bfa496528edbbc45d0",
        archive="zip", inner_archive="caltech-101/101_ObjectCategories.tar.gz",
        folder_in_archive="101_ObjectCategories",
        description="9,146 images of 101 object categories plus BACKGROUND_Google (Fei-Fei, Fergus, Perona 2004)",
        licence="CC BY 4.0"),
}


def _fetch(ds: PublicDataset, folder: Path, timeout: float, progress) -> Path:
    """Stream ds.url into a temp file in ``folder`` and verify its checksum; returns the temp file."""
    advice = (f"Connect to the internet and retry, or download {ds.url} yourself, extract it and pass the "
              f"image folder to kit.load_folder(...).")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-")
    sha, md5, done = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(ds.url, timeout=timeout) as resp:
                    total = int(resp.headers.get("Content-Length") or 0)
                    report(progress, 0, total, "download")
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        sha.update(chunk)
                        md5.update(chunk)
                        done += len(chunk)
                        report(progress, done, max(total, done), "download")
            except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as exc:
                raise DatasetUnavailableError(f"could not download {ds.name!r} from {ds.url}: "
                                              f"{getattr(exc, 'reason', exc)}. {advice}") from exc
        for algo, want, got in (("sha256", ds.sha256, sha.hexdigest()), ("md5", ds.md5, md5.hexdigest())):
            if want and want.lower() != got:
                raise ValueError(f"{ds.name!r}: the downloaded file's {algo} is {got}, expected {want}; the "
                                 f"download is corrupt or the file changed upstream. Retry, or check {ds.url}")
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def download(name_or_dataset, dest=None, timeout: float = 30, progress=None) -> Path:
    """Download and extract a public data set once; return the folder of its ``<class>/`` image folders.

    Parameters
    ----------
    name_or_dataset : str or PublicDataset
        A key of `PUBLIC` (``"tf_flowers"``, ``"caltech101"``) or your own `PublicDataset`.
    dest : str or Path, optional
        Where to keep it; ``kit_home()/datasets/<name>`` by default. The images go to a new sub-folder of it
        (``folder_in_archive``, else ``images``) and a ``.complete`` marker; if that sub-folder already exists
        without the marker it was not made here, and ``ValueError`` is raised before downloading. Only what
        this call created is deleted when it fails (its temporary files, and ``dest`` if it did not exist).
    timeout : float
        Seconds before an unreachable host fails with `DatasetUnavailableError`.
    progress : callable, optional
        ``progress(done_bytes, total_bytes, "download")``; without a Content-Length, total is the bytes so far.

    Examples
    --------
    >>> folder = kit.datasets.download("tf_flowers")  # doctest: +SKIP
    >>> images = kit.load_folder(folder)  # doctest: +SKIP
    """
    ds = name_or_dataset if isinstance(name_or_dataset, PublicDataset) else PUBLIC.get(str(name_or_dataset))
    if ds is None:
        raise ValueError(f"name_or_dataset={name_or_dataset!r} is not a known data set; pass one of "
                         f"{sorted(PUBLIC)} or a PublicDataset")
    root = Path(dest) if dest is not None else kit_home() / "datasets" / ds.name
    target = root / ds.folder_in_archive if ds.folder_in_archive else root / "images"
    if (root / _MARKER).is_file():
        return target
    if target.exists() or target.is_symlink():  # checked before downloading anything
        raise _not_ours(target, f"kit.datasets.download({ds.name!r})")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    archive, work = None, None
    try:
        archive = _fetch(ds, root, timeout, progress)
        work = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
        _extract(archive, ds.archive, work / "outer")
        inner = work / "outer"
        if ds.inner_archive:
            nested = inner / _check_member(ds.inner_archive)
            inner = work / "inner"
            _extract(nested, "zip" if nested.suffix.lower() == ".zip" else "tar", inner)
        found = inner / ds.folder_in_archive
        if not found.is_dir():
            raise ValueError(f"folder_in_archive={ds.folder_in_archive!r} is not in the archive of {ds.name!r}; "
                             f"its top level holds {sorted(p.name for p in inner.iterdir()) if inner.is_dir() else []}")
        if target.exists() or target.is_symlink():  # appeared while downloading: not ours, never replaced
            raise _not_ours(target, f"kit.datasets.download({ds.name!r})")
        os.replace(found, target)
        atomic_write(root / _MARKER, json.dumps({"name": ds.name, "url": ds.url, "sha256": ds.sha256,
                                                  "folder": target.name}, indent=1).encode())
    except BaseException:
        if created:  # the folder this call created (so nothing of the caller's is inside)
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        if archive is not None:  # our own temporary download
            archive.unlink(missing_ok=True)
        if work is not None:  # our own temporary extraction folder
            shutil.rmtree(work, ignore_errors=True)
    return target
