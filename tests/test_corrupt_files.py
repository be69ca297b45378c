"""Corrupt files (issue 32, part): every structured file the kit reads back is damaged on purpose (emptied, cut at
fixed offsets, bytes flipped at fixed positions, replaced by seeded garbage, wrong shapes or types) and the kit
either refuses it with a ValueError naming the file and what to do, or rebuilds or recomputes from what is intact.
A wrong result read as good, or an exception leaking from numpy, pandas, pyarrow, json or zipfile, fails the test.

Not detectable, so not asserted: a labels or .meta file cut inside its last value (``dog`` -> ``do`` is a valid
label too) and a headerless ``.bin`` cut at a whole row (its row count is simply smaller; compare it with the
``.meta``)."""
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kit
from kit import formats
from kit.curate import ClusterEdits, EditFile

SEED = 32
KINDS = ["empty", "cut-1", "cut-half", "cut-7", "flip-first", "flip-middle", "flip-last", "garbage", "garbage-short"]


def corrupt(data: bytes, kind: str) -> bytes:
    """``data`` damaged in one of the ways of ``KINDS`` (deterministic)."""
    rng = np.random.default_rng(SEED)
    n = len(data)
    if kind == "empty":
        return b""
    if kind == "cut-1":
        return data[:-1]
    if kind == "cut-half":
        return data[:n // 2]
    if kind == "cut-7":
        return data[:7]
    if kind.startswith("flip-"):
        pos = {"first": 0, "middle": n // 2, "last": n - 1}[kind[5:]]
        out = bytearray(data)
        out[pos] ^= 0xFF
        return bytes(out)
    if kind == "garbage":
        return rng.bytes(n)
    if kind == "garbage-short":
        return rng.bytes(max(1, n // 3))
    raise AssertionError(kind)


def refused_or(fn, *names):
    """``fn()``'s result, or the ValueError it raised when that names one of ``names`` (a file); any other
    exception, or a ValueError subclass of a library (JSONDecodeError, UnicodeDecodeError, ArrowInvalid,
    pandas' ParserError...), fails."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the type is the point of the test
        assert type(exc) is ValueError, f"{type(exc).__module__}.{type(exc).__name__} leaked: {exc}"
        assert any(str(n) in str(exc) for n in names), f"the error names none of {names}: {exc}"
        return exc


def _photos(root, n=6):
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(n):
        name = f"p{i}.png"
        colour = ((37 * i) % 256, (91 * i + 40) % 256, (53 * i + 90) % 256)
        Image.new("RGB", (16, 16), colour).save(root / name)
        truth[name] = "ab"[i % 2]
    return truth


# ------------------------------------------------------------------------------------------------ 1. labels CSV
@pytest.fixture
def labelled(tmp_path):
    root = tmp_path / "photos"
    truth = _photos(root)
    text = "path,label\n" + "".join(f"{p},{lab}\n" for p, lab in truth.items())
    return root, truth, text.encode()


def _check_labels(images, truth, root):
    got = {str(p)[len(str(root)) + 1:]: lab for p, lab in zip(images.paths, images.labels or [None] * len(images))}
    for name, lab in got.items():
        assert lab == truth[name], (name, lab)
    reported = {str(p)[len(str(root)) + 1:] for p in images.unreadable["path"]}
    assert set(got) | reported == set(truth)  # a photo without a label is reported, never dropped silently


@pytest.mark.parametrize("kind", KINDS)
def test_labels_csv_corrupt(labelled, tmp_path, kind):
    root, truth, data = labelled
    csv = tmp_path / "labels.csv"
    csv.write_bytes(corrupt(data, kind))
    out = refused_or(lambda: kit.load_folder(root, labels=str(csv)), csv)
    if not isinstance(out, Exception):
        _check_labels(out, truth, root)


def test_labels_csv_cut_at_every_offset(labelled, tmp_path):
    """One-character labels: every cut is either harmless or detectable (a row without its label)."""
    root, truth, data = labelled
    csv = tmp_path / "labels.csv"
    for cut in range(len(data)):
        csv.write_bytes(data[:cut])
        out = refused_or(lambda: kit.load_folder(root, labels=str(csv)), csv)
        if not isinstance(out, Exception):
            _check_labels(out, truth, root)


def test_labels_csv_row_without_label_is_refused(labelled, tmp_path):
    root, truth, data = labelled
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\np0.png,a\np1.png,\np2.png\n")
    with pytest.raises(ValueError, match="no label"):
        kit.load_folder(root, labels=str(csv))


@pytest.mark.parametrize("kind", KINDS)
def test_image_list_csv_and_parquet_corrupt(labelled, tmp_path, kind):
    from kit.scale import list_images

    root, truth, data = labelled
    for name, payload in (("list.csv", data.replace(b"p", b"photos/p")),
                          ("list.parquet", _parquet_bytes(pd.DataFrame({"path": [f"photos/{p}" for p in truth],
                                                                        "label": list(truth.values())})))):
        f = tmp_path / name
        f.write_bytes(corrupt(payload, kind))
        out = refused_or(lambda: list_images(f), f)
        if isinstance(out, Exception) or out.labels is None:
            continue
        for p, lab in zip(out.paths, out.labels):
            name = p.rsplit("/", 1)[-1]
            if (root / name).is_file() and p == str(root / name):
                assert lab == truth[name], (p, lab)


def _parquet_bytes(table):
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ 2. zip uploads
def _zip_bytes(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def upload(tmp_path):
    truth = _photos(tmp_path / "src", 3)
    members = {f"set/{name}": (tmp_path / "src" / name).read_bytes() for name in truth}
    return members, _zip_bytes(members)


def _check_extracted(out, dest, members):
    written = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    if isinstance(out, Exception):
        assert not written, f"a refused zip left {sorted(written)}"
        return
    for name, data in written.items():
        assert members.get(name) == data, f"{name} differs from the zip's member"  # never a damaged photo


def test_zip_damaged_at_every_byte(upload, tmp_path):
    from kit.datasets import extract_zip

    members, data = upload
    for i in range(0, len(data), 3):
        for kind in ("flip", "cut"):
            bad = bytearray(data)
            if kind == "flip":
                bad[i] ^= 0xFF
            else:
                bad = bad[:i]
            dest = tmp_path / f"out-{kind}-{i}"
            out = refused_or(lambda: extract_zip(bytes(bad), dest), "bytes given", "zip", "max_bytes=", "max_files=")
            _check_extracted(out, dest, members)


@pytest.mark.parametrize("kind", KINDS)
def test_zip_file_corrupt_names_the_file(upload, tmp_path, kind):
    from kit.datasets import extract_zip

    members, data = upload
    path = tmp_path / "upload.zip"
    path.write_bytes(corrupt(data, kind))
    dest = tmp_path / "out"
    out = refused_or(lambda: extract_zip(path, dest), path, "zip member")
    _check_extracted(out, dest, members)


@pytest.mark.parametrize("name", ["../x.png", "set/../../x.png", "/tmp/x.png", "C:/x.png", "a/b/../../../x.png"])
def test_zip_with_path_traversal_writes_nothing(tmp_path, name):
    from kit.datasets import extract_zip

    png = (tmp_path / "src").mkdir() or _photos(tmp_path / "src", 1) and (tmp_path / "src" / "p0.png").read_bytes()
    data = _zip_bytes({"ok.png": png, name: png})
    dest = tmp_path / "deep" / "out"
    with pytest.raises(ValueError, match="outside the destination"):
        extract_zip(data, dest)
    assert not dest.exists() and not (tmp_path / "deep" / "x.png").exists() and not (tmp_path / "x.png").exists()


def test_zip_bomb_like_archives_are_refused_before_writing(tmp_path):
    from kit.datasets import extract_zip

    many = _zip_bytes({f"{i}.png": b"x" for i in range(30)})
    with pytest.raises(ValueError, match="max_files"):
        extract_zip(many, tmp_path / "a", max_files=20)
    big = _zip_bytes({"big.png": b"\0" * 2_000_000})
    with pytest.raises(ValueError, match="max_bytes"):
        extract_zip(big, tmp_path / "b", max_bytes=1_000_000)
    # a central directory that lies about the size: the stream guard stops it and removes what was written
    lying = bytearray(_zip_bytes({"a.png": b"\0" * 10, "big.png": b"\0" * 2_000_000}))
    for sig in (b"PK\x01\x02", b"PK\x03\x04"):
        start = 0
        while (start := lying.find(sig, start)) >= 0:
            off = start + (24 if sig == b"PK\x01\x02" else 22)
            if int.from_bytes(lying[off:off + 4], "little") == 2_000_000:
                lying[off:off + 4] = (100).to_bytes(4, "little")
            start += 4
    out = refused_or(lambda: extract_zip(bytes(lying), tmp_path / "c", max_bytes=1_000_000), "max_bytes", "zip")
    assert isinstance(out, ValueError)
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]


# ------------------------------------------------------------------------------------------------ 3. MS1M files
@pytest.fixture
def ms1m(tmp_path):
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((10, 8)).astype(np.float32)
    labels = rng.integers(0, 1000, 10)
    nbrs = np.stack([rng.permutation(10)[:4] for _ in range(10)])
    dists = rng.random((10, 4)).astype(np.float32)
    formats.write_features_bin(tmp_path / "f.bin", X)
    formats.write_meta(tmp_path / "f.meta", labels)
    formats.write_knn_npz(tmp_path / "knn.npz", nbrs, dists)
    return X, labels, nbrs, dists


@pytest.mark.parametrize("kind", KINDS)
def test_features_bin_corrupt(tmp_path, ms1m, kind):
    X = ms1m[0]
    path = tmp_path / "f.bin"
    path.write_bytes(corrupt(path.read_bytes(), kind))
    for mmap in (False, True):
        out = refused_or(lambda: formats.read_features_bin(path, dim=8, mmap=mmap), path)
        if isinstance(out, Exception):
            continue
        assert out.shape[1] == 8 and len(out) <= len(X)
        if kind.startswith("cut") or kind == "empty":
            np.testing.assert_array_equal(out, X[:len(out)])  # a cut at a whole row keeps the rows before it


@pytest.mark.parametrize("dim", [3, 7, 12, 0, -8, 8.0, "8", True])
def test_features_bin_wrong_dim(tmp_path, ms1m, dim):
    path = tmp_path / "f.bin"
    out = refused_or(lambda: formats.read_features_bin(path, dim=dim), path, "dim=")
    assert isinstance(out, ValueError)


@pytest.mark.parametrize("kind", KINDS)
def test_meta_corrupt(tmp_path, ms1m, kind):
    labels = ms1m[1]
    path = tmp_path / "f.meta"
    path.write_bytes(corrupt(path.read_bytes(), kind))
    out = refused_or(lambda: formats.read_meta(path), path)
    if not isinstance(out, Exception) and kind != "cut-1":  # (cut-1 drops the final newline only)
        assert len(out) < len(labels) or kind.startswith("flip")
        n = max(len(out) - 1, 0)  # the last value may be cut inside (undetectable); the ones before are whole
        np.testing.assert_array_equal(out[:n], labels[:n])
    elif not isinstance(out, Exception):
        np.testing.assert_array_equal(out, labels)


def test_meta_with_a_blank_line_inside_is_refused(tmp_path):
    path = tmp_path / "f.meta"
    path.write_text("1\n2\n\n3\n")
    with pytest.raises(ValueError, match="line 3"):
        formats.read_meta(path)


@pytest.mark.parametrize("kind", KINDS)
def test_knn_npz_corrupt(tmp_path, ms1m, kind):
    _, _, nbrs, dists = ms1m
    path = tmp_path / "knn.npz"
    path.write_bytes(corrupt(path.read_bytes(), kind))
    out = refused_or(lambda: formats.read_knn_npz(path), path)
    if not isinstance(out, Exception):
        np.testing.assert_array_equal(out[0], nbrs)
        np.testing.assert_array_equal(out[1], dists)


@pytest.mark.parametrize("arrays", [
    {}, {"nbrs": np.zeros((3, 2))}, {"data": np.zeros((3, 3, 2))}, {"data": np.zeros((3, 2))},
    {"nbrs": np.zeros((3, 2)), "dists": np.zeros((3, 3))}, {"nbrs": np.zeros(3), "dists": np.zeros(3)},
    {"data": np.full((3, 2, 2), np.nan)}, {"data": np.full((3, 2, 2), 7.0)}, {"data": np.full((3, 2, 2), -5.0)},
    {"data": np.full((3, 2, 2), 0.5)}, {"nbrs": np.array([["a", "b"]] * 3), "dists": np.zeros((3, 2))},
    {"data": np.zeros((3, 2, 2), dtype=np.complex64)}, {"data": np.zeros((3, 2, 2), dtype=bool)},
], ids=lambda a: "-".join(f"{k}{np.shape(v)}{np.asarray(v).dtype}" for k, v in a.items()) or "nothing")
def test_knn_npz_missing_keys_or_wrong_shapes(tmp_path, arrays):
    path = tmp_path / "knn.npz"
    np.savez(path, **arrays)
    out = refused_or(lambda: formats.read_knn_npz(path), path)
    assert isinstance(out, ValueError)


def test_knn_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "knn.npz"
    np.savez(path, data=np.array([[1, 2], [3]], dtype=object))
    out = refused_or(lambda: formats.read_knn_npz(path), path)
    assert isinstance(out, ValueError)


# ------------------------------------------------------------------------------------------------ 4. embedding store
@pytest.fixture
def stored(tmp_path):
    from kit.scale import EmbeddingStore

    truth = _photos(tmp_path / "photos", 6)
    emb = kit.embed(kit.load_folder(tmp_path / "photos", labels=None), backbone="color_hist", use_cache=False)
    store = EmbeddingStore(tmp_path / "store")
    store.write(emb, partition_rows=2)
    return store, emb, truth


def _vectors_by_path(emb):
    return {p: v for p, v in zip(emb.paths, emb.vectors)}


def _check_read(out, emb):
    """A read store gives each photo's own vector (a subset of rows at most, never a wrong one)."""
    want = _vectors_by_path(emb)
    for p, v in zip(out.paths, out.vectors):
        np.testing.assert_array_equal(v, want[p])


def _manifest_variants(text):
    good = json.loads(text)
    (name, info), = good["namespaces"].items()
    yield from ((k, corrupt(text.encode(), k)) for k in KINDS)
    for key, value in (("dim", info["dim"] * 2), ("dim", "abc"), ("dim", 0), ("dim", None), ("dtype", "float16"),
                       ("dtype", 3), ("rows", 10 ** 6), ("partitions", 99), ("backbone_key", None), ("name", "x")):
        bad = json.loads(text)
        bad["namespaces"][name][key] = value
        yield f"{key}={value!r}", json.dumps(bad).encode()
    for namespaces in ([], "x", None, {name: []}, {name: "x"}, {"other-000000000000": info}):
        yield f"namespaces={namespaces!r}", json.dumps({**good, "namespaces": namespaces}).encode()
    yield "a list", b"[1, 2]"


def test_store_manifest_corrupt_is_rebuilt_from_the_partitions(stored):
    store, emb, _ = stored
    manifest = store.root / "_kit_manifest.json"
    text = manifest.read_text()
    clean = store.read()
    for kind, data in _manifest_variants(text):
        manifest.write_bytes(data)
        out = refused_or(store.read, manifest)
        assert not isinstance(out, Exception), (kind, out)
        assert out.paths == clean.paths and out.vectors.shape == clean.vectors.shape, kind
        _check_read(out, emb)
        assert store.backbones()["rows"].tolist() == [len(clean)], kind
        store.refresh_manifest()  # repairs it
        assert json.loads(manifest.read_text())["namespaces"] == json.loads(text)["namespaces"], kind


@pytest.mark.parametrize("kind", KINDS + ["flip-data"])
def test_store_partition_corrupt_is_refused_naming_it(stored, kind):
    store, emb, _ = stored
    part = sorted((store.root / store.namespace().name).glob("part-*.parquet"))[1]
    data = part.read_bytes()
    if kind == "flip-data":  # inside the vectors' page: only the page checksum tells
        bad = bytearray(data)
        bad[200] ^= 0x01
        part.write_bytes(bytes(bad))
    else:
        part.write_bytes(corrupt(data, kind))
    for call in (store.read, store.table, store.partitions, store.backbones, lambda: store.write(emb)):
        out = refused_or(call, part.name)
        if isinstance(out, Exception):
            assert "embed" in str(out) and "move it away" in str(out)
        elif call is store.read:
            _check_read(out, emb)


def test_store_partition_missing_reads_the_rest_and_the_next_write_fills_it(stored):
    store, emb, _ = stored
    lost = sorted((store.root / store.namespace().name).glob("part-*.parquet"))[0]
    lost.unlink()  # the manifest still claims its rows
    out = store.read()
    assert len(out) == len(emb) - 2
    _check_read(out, emb)
    assert store.backbones()["rows"].tolist() == [len(emb) - 2]  # counted from the files, not the manifest
    assert store.write(emb) == 2
    out = store.read()
    assert sorted(out.paths) == sorted(emb.paths)
    _check_read(out, emb)


# ------------------------------------------------------------------------------------------------ 5. embedding cache
@pytest.fixture
def cached(tmp_path):
    _photos(tmp_path / "photos", 6)
    images = kit.load_folder(tmp_path / "photos", labels=None)
    clean = kit.embed(images, backbone="color_hist", use_cache=False)
    cache = tmp_path / "cache"
    first = kit.embed(images, backbone="color_hist", cache_dir=cache)
    np.testing.assert_array_equal(first.vectors, clean.vectors)
    return images, clean, cache


ENTRY_DAMAGE = {  # (torn entries, not whole float32s, are tests/test_faults.py's)
    "empty": lambda d: b"",
    "one-float-short": lambda d: d[:-4],
    "half": lambda d: d[:len(d) // 2],
    "one-float-long": lambda d: d + d[:4],
    "twice": lambda d: d + d,
    "nan-first": lambda d: b"\xff\xff\xff\x7f" + d[4:],
    "inf-last": lambda d: d[:-4] + b"\x00\x00\x80\x7f",
    "all-ff": lambda d: b"\xff" * len(d),
}


@pytest.mark.parametrize("damage", sorted(ENTRY_DAMAGE))
def test_cache_entry_damaged_is_computed_again(cached, damage):
    images, clean, cache = cached
    entries = sorted(cache.rglob("*.f32"))
    hurt = entries[::2]
    for f in hurt:
        f.write_bytes(ENTRY_DAMAGE[damage](f.read_bytes()))
    again = kit.embed(images, backbone="color_hist", cache_dir=cache)
    np.testing.assert_array_equal(again.vectors, clean.vectors)
    assert again.paths == clean.paths and again.unreadable.empty
    assert again.stats["computed"] == len(hurt) and again.stats["cached"] == len(entries) - len(hurt)
    assert all(f.stat().st_size == 4 * clean.vectors.shape[1] for f in entries)  # rewritten whole


@pytest.mark.parametrize("kind", KINDS + ["a list", "no keys"])
def test_cache_meta_json_damaged_is_ignored_and_written_again(cached, kind):
    images, clean, cache = cached
    meta, = cache.rglob("meta.json")
    good = json.loads(meta.read_text())
    data = {"a list": b"[1]", "no keys": b"{}"}.get(kind) or corrupt(meta.read_bytes(), kind)
    meta.write_bytes(data)
    kit.embedding.cache_info(cache)  # lists what it can read, never raises
    sorted(cache.rglob("*.f32"))[0].unlink()  # one photo to compute: the write repairs meta.json
    again = kit.embed(images, backbone="color_hist", cache_dir=cache)
    np.testing.assert_array_equal(again.vectors, clean.vectors)
    assert again.stats["computed"] == 1
    assert json.loads(meta.read_text())["backbone"] == good["backbone"]
    assert kit.embedding.cache_info(cache)["entries"].tolist() == [len(clean)]


@pytest.mark.parametrize("kind", KINDS)
def test_cache_marker_damaged_is_a_clear_error_or_works(cached, kind):
    images, clean, cache = cached
    marker = cache / ".kit-cache"
    marker.write_bytes(corrupt(marker.read_bytes(), kind))
    sorted(cache.rglob("*.f32"))[0].unlink()
    out = refused_or(lambda: kit.embed(images, backbone="color_hist", cache_dir=cache), cache)
    if not isinstance(out, Exception):
        np.testing.assert_array_equal(out.vectors, clean.vectors)


# ------------------------------------------------------------------------------------------------ 6. hand edits
PATHS = [f"/photos/{i:02d}.jpg" for i in range(8)]


@pytest.fixture
def edits(tmp_path):
    """Three saves: the labels after each are in ``states``."""
    f = EditFile(tmp_path, "clustering")
    e = ClusterEdits(np.array([0, 0, 1, 1, 2, 2, 3, 3]))
    states, version = [], 0
    for op in (lambda e: e.merge(0, 1), lambda e: e.move([7], 2), lambda e: e.rename(2, "shoes")):
        e = op(e)
        version = f.save(e, PATHS, version)
        states.append((e.labels.copy(), dict(e.names)))
    return f, states


def _loaded_is(loaded, state):
    (e, _), (labels, names) = loaded, state
    return e.labels.tolist() == labels.tolist() and e.names == names


@pytest.mark.parametrize("kind", KINDS)
def test_edit_csv_damaged_the_log_gives_the_edits_and_rebuilds_it(edits, kind):
    f, states = edits
    f.csv.write_bytes(corrupt(f.csv.read_bytes(), kind))
    assert _loaded_is(f.load(PATHS), states[-1]) and f.saved_paths() == set(PATHS)
    f.rebuild()
    f.log_path.unlink()  # the CSV alone now: as good as the log was
    assert f.load(PATHS)[0].labels.tolist() == states[-1][0].tolist()


@pytest.mark.parametrize("kind", KINDS + ["no cluster column", "clusters not numbers"])
def test_edit_csv_damaged_without_a_log_is_refused_naming_it(edits, kind):
    f, states = edits
    f.log_path.unlink()  # edits saved before the log existed
    data = {"no cluster column": b"path,name\n/photos/00.jpg,\n",
            "clusters not numbers": b"path,cluster,name\n/photos/00.jpg,1x,\n"}.get(kind)
    f.csv.write_bytes(data if data is not None else corrupt(f.csv.read_bytes(), kind))
    for call in (lambda: f.load(PATHS), f.saved_paths, lambda: f.save(ClusterEdits(np.zeros(8, int)), PATHS, 1)):
        out = refused_or(call, f.csv)
        if isinstance(out, tuple):  # read as it is: then what it says is a prefix of the truth
            e = out[0]
            known = e.labels != -1
            assert (e.labels[known] == states[-1][0][known]).all() or kind.startswith("flip")


@pytest.mark.parametrize("cut", [1, 10, 0.5, 0.9])
def test_edit_log_cut_at_the_end_by_a_crash_keeps_the_save_before(edits, cut):
    f, states = edits
    lines = f.log_path.read_bytes().splitlines(keepends=True)
    last = lines[-1]
    n = int(len(last) * cut) if isinstance(cut, float) else cut
    f.log_path.write_bytes(b"".join(lines[:-1]) + last[:n])  # a crash while the third line was appended
    atomic_csv = pd.DataFrame({"path": PATHS, "cluster": states[1][0], "name": [""] * 8})
    atomic_csv.to_csv(f.csv, index=False)  # (the CSV is written after the line: it still holds the second save)
    assert _loaded_is(f.load(PATHS), states[1]) and f.version == 2
    assert f.save(ClusterEdits(states[1][0]).merge(0, 2), PATHS, 2) == 3  # the next save goes on after it
    assert f.load(PATHS)[0].labels.tolist() == ClusterEdits(states[1][0]).merge(0, 2).labels.tolist()


@pytest.mark.parametrize("where", ["last", "middle"])
@pytest.mark.parametrize("damage", ["flip", "garbage", "valid json, no table", "table of strings", "ragged table"])
def test_edit_log_with_damaged_lines(edits, where, damage):
    f, states = edits
    lines = f.log_path.read_bytes().splitlines(keepends=True)
    i = len(lines) - 1 if where == "last" else 1
    entry = json.loads(lines[i])
    bad = {"flip": lines[i][:20] + bytes([lines[i][20] ^ 0xFF]) + lines[i][21:],
           "garbage": np.random.default_rng(SEED).bytes(len(lines[i]) - 1) + b"\n",
           "valid json, no table": json.dumps({"version": entry["version"]}).encode() + b"\n",
           "table of strings": json.dumps({**entry, "table": "x"}).encode() + b"\n",
           "ragged table": json.dumps({**entry, "table": {**entry["table"], "path": PATHS[:3]}}).encode() + b"\n",
           }[damage]
    f.log_path.write_bytes(b"".join(lines[:i]) + bad + b"".join(lines[i + 1:]))
    for call in (lambda: f.load(PATHS), f.saved_paths, lambda: f.version, f.rebuild):
        out = refused_or(call, f.log_path)
        if isinstance(out, tuple):
            assert _loaded_is(out, states[-1])  # the CSV and the intact log agree on the newest save
    if where == "last":
        assert f.csv.read_text().count("shoes")  # the newest save is never overwritten by an older one


# ------------------------------------------------------------------------------------------------ 7. runtime.json
@pytest.fixture
def runtime_home(tmp_path, monkeypatch):
    """A KIT_HOME with a stand-in exported Lite0 folder and stand-in runtimes: the record logic without TF."""
    from kit.backbones import _runtime

    home = tmp_path / "kit"
    monkeypatch.setenv("KIT_HOME", str(home))
    monkeypatch.delenv("KIT_RUNTIME", raising=False)
    folder = home / "models" / f"efficientnet_lite0-kit{kit.__version__}"
    for sub in ("features", "classifier"):
        (folder / sub).mkdir(parents=True)
        (folder / sub / "saved_model.pb").write_bytes(b"stand-in")
    made = []

    def runner(name, features_dir, runtime, progress=None):
        made.append(runtime)
        return _runtime.FeaturesFn(name, runtime, 224, lambda x: np.ones((len(x), 1280), np.float32))

    monkeypatch.setattr(_runtime, "_runner", runner)
    monkeypatch.setattr(_runtime, "_litert_missing", lambda: None)
    monkeypatch.setattr(_runtime, "_time_runtimes", lambda runners, x, rounds=3: {"savedmodel": 20.0, "tflite": 10.0})
    monkeypatch.setattr(_runtime, "PROBE_BATCH", 2)
    return home, folder, made


def _record_variants(good: bytes):
    yield from ((k, corrupt(good, k)) for k in KINDS)
    data = json.loads(good)
    (key, entry), = data["records"].items()
    for name, value in (("runtime", "gpu"), ("runtime", ["tflite"]), ("img_per_s", 5), ("img_per_s", "ab"),
                        ("img_per_s", {"tflite": "fast"}), ("cosine", "high"), ("reason", None), ("fingerprint", 3)):
        yield f"{name}={value!r}", json.dumps({**data, "records": {key: {**entry, name: value}}}).encode()
    for records in ([], "x", None, {key: "tflite"}, {key: []}, {key: None}):
        yield f"records={records!r}", json.dumps({**data, "records": records}).encode()
    yield "format 2", json.dumps({**data, "format": 2}).encode()
    yield "a list", b"[]"


def test_runtime_json_damaged_is_ignored_or_reported_never_a_crash(runtime_home):
    import warnings

    from kit.backbones import _runtime

    home, folder, made = runtime_home
    first = _runtime.features_fn("efficientnet_lite0", folder, runtime="auto")
    assert first.runtime == "savedmodel"
    record = home / "runtime.json"
    good = record.read_bytes()
    for kind, data in _record_variants(good):
        record.write_bytes(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn = _runtime.features_fn("efficientnet_lite0", folder, runtime="auto")
        assert fn.runtime in _runtime.RUNTIMES and fn(np.zeros((1, 224, 224, 3), np.float32)).shape == (1, 1280)
        now = record.read_bytes()
        if now == data:  # left as it was: it was not readable, and the warning says so naming the file
            assert any(str(record) in str(w.message) for w in caught), kind
        else:  # re-measured and recorded again
            records = json.loads(now)["records"]
            assert records and all(_runtime._choice_from(e) is not None for e in records.values()), kind
        record.write_bytes(good)


def test_runtime_json_claiming_tflite_without_litert_keeps_the_savedmodel(runtime_home, monkeypatch):
    from kit.backbones import _runtime

    home, folder, made = runtime_home
    _runtime.features_fn("efficientnet_lite0", folder, runtime="auto")
    record = home / "runtime.json"
    data = json.loads(record.read_text())
    for entry in data["records"].values():
        entry["runtime"] = "tflite"
    record.write_text(json.dumps(data))
    monkeypatch.setattr(_runtime, "_litert_missing", lambda: "ai_edge_litert cannot be imported (test)")
    assert _runtime.features_fn("efficientnet_lite0", folder, runtime="auto").runtime == "savedmodel"
