"""Embedding on Dask into an embedding store (issue 14): the same vectors as the plain loop, resumable runs,
appends that embed only what is new, a store that pandas and Dask read and that refuses folders not its own.

An in-process LocalCluster (2 workers x 1 thread) serves the whole module; the built-in clothing photos (500) with
the classical ``color_hist`` backbone keep it fast, ``efficientnet_lite0`` runs once on 64 of them."""
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kit
from kit.scale import embed_dask, list_images
from kit.scale import EmbeddingStore

pytest.importorskip("distributed")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def photos():
    return kit.datasets.clothing()


@pytest.fixture(scope="module")
def plain(photos):
    return kit.embed(photos, backbone="color_hist", use_cache=False)


def _rows(store: EmbeddingStore) -> pd.DataFrame:
    return pd.read_parquet(store.root)  # the whole folder, as any reader sees it


def test_dask_engine_gives_the_plain_vectors_and_a_readable_store(client, photos, plain, tmp_path):
    import dask.dataframe as dd

    calls = []
    store = EmbeddingStore(tmp_path / "store")
    emb = kit.embed(photos, backbone="color_hist", engine="dask", client=client, store=store,
                    progress=lambda d, t, s: calls.append((d, t, s)))
    assert emb.paths == plain.paths and emb.labels == plain.labels and emb.hashes == plain.hashes
    np.testing.assert_allclose(emb.vectors, plain.vectors, rtol=0, atol=1e-6)
    assert emb.stats["computed"] == 500 and emb.stats["partitions"] == 1  # default partition_size 1000
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and calls[-1][:2] == (500, 500) and {t for _, t, _ in calls} == {500}

    small = embed_dask(photos, backbone="color_hist", client=client, store=tmp_path / "parts", partition_size=100)
    np.testing.assert_allclose(small.vectors, plain.vectors, rtol=0, atol=1e-6)
    parts = EmbeddingStore(tmp_path / "parts")
    assert len(parts.partitions()) == 5 and parts.partitions()["rows"].sum() == 500
    table = _rows(parts)
    assert len(table) == 500 and table["path"].is_unique and set(table["hash"]) == set(plain.hashes)
    assert len(table["vector"].iloc[0]) == 128
    folder = parts.root / parts.namespace("color_hist").name
    ddf = dd.read_parquet(str(folder))
    assert ddf.npartitions == 5 and len(ddf) == 500
    by_path = dict(zip(table["path"], table["vector"]))
    np.testing.assert_allclose(np.stack([by_path[p] for p in plain.paths]), plain.vectors, rtol=0, atol=1e-6)
    back = parts.read()
    assert sorted(back.paths) == sorted(plain.paths) and back.backbone == "color_hist"
    manifest = json.loads((parts.root / "_kit_manifest.json").read_text())
    assert [v["rows"] for v in manifest["namespaces"].values()] == [500]
    assert table.astype({"label": "category"}).shape == table.shape  # a plain frame


def test_a_lost_partition_and_a_killed_write_resume_with_only_the_missing_photos(client, photos, plain, tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    embed_dask(photos, backbone="color_hist", client=client, store=store, partition_size=100)
    folder = store.root / store.namespace().name
    lost = sorted(folder.glob("part-*.parquet"))[2]
    lost_paths = set(pd.read_parquet(lost)["path"])
    lost.unlink()
    # what a run killed while writing leaves: a hidden temporary file, half written
    old_tmp, new_tmp = folder / (".tmp-" + "a" * 32 + ".parquet"), folder / (".tmp-" + "b" * 32 + ".parquet")
    for f in (old_tmp, new_tmp):
        f.write_bytes(b"PAR1 half a file")
    os.utime(old_tmp, (time.time() - 3600, time.time() - 3600))

    again = embed_dask(photos, backbone="color_hist", client=client, store=store, partition_size=100)
    assert again.stats["computed"] == 100 and again.stats["skipped"] == 400
    assert {again.paths[i] for i in range(500)} == set(plain.paths)
    np.testing.assert_allclose(again.vectors, plain.vectors, rtol=0, atol=1e-6)
    assert not old_tmp.exists() and new_tmp.exists()  # stale temporary files go; a recent one may be a live run's
    table = _rows(store)  # the temporary file is never read as data
    assert len(table) == 500 and table["path"].is_unique and lost_paths <= set(table["path"])
    assert store.clean(older_than=0) == 1 and not new_tmp.exists()


def test_a_stopped_run_resumes_and_ends_with_every_photo_once(client, photos, plain, tmp_path):
    store = EmbeddingStore(tmp_path / "store")

    def stop_early(done, total, stage):
        if done >= 150:
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        embed_dask(photos, backbone="color_hist", client=client, store=store, partition_size=50, progress=stop_early)
    first = _rows(store)
    assert 0 < len(first) < 500 and first["path"].is_unique and len(first) % 50 == 0  # whole partitions only
    assert not list((store.root / store.namespace().name).glob(".tmp-*"))

    calls = []
    rest = embed_dask(photos, backbone="color_hist", client=client, store=store, partition_size=50,
                      progress=lambda d, t, s: calls.append(d))
    assert rest.stats["computed"] == 500 - len(first) and rest.stats["skipped"] == len(first)
    assert calls[0] == len(first) and calls == sorted(calls) and calls[-1] == 500
    table = _rows(store)
    assert len(table) == 500 and table["path"].is_unique
    np.testing.assert_allclose(rest.vectors, plain.vectors, rtol=0, atol=1e-6)


def test_appending_embeds_only_the_new_photos_and_reuses_moved_ones(client, photos, plain, tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    listing = list_images(photos)
    first = embed_dask(listing.paths[:450], backbone="color_hist", client=client, store=store, partition_size=200)
    assert first.stats["computed"] == 450 and first.labels is None
    both = embed_dask(listing.paths, backbone="color_hist", client=client, store=store, partition_size=200)
    assert both.stats["computed"] == 50 and both.stats["skipped"] == 450 and len(both) == 500
    np.testing.assert_allclose(both.vectors, plain.vectors, rtol=0, atol=1e-6)

    moved = tmp_path / "moved"
    moved.mkdir()
    for p in listing.paths[:10]:
        shutil.copy(p, moved / Path(p).name)
    copies = embed_dask(moved, backbone="color_hist", client=client, store=store)
    assert copies.stats["computed"] == 0 and copies.stats["reused"] == 10  # same content: the stored vectors
    ref = dict(zip(plain.hashes, plain.vectors))
    np.testing.assert_allclose(copies.vectors, np.stack([ref[h] for h in copies.hashes]), rtol=0, atol=1e-6)
    assert len(_rows(store)) == 510


def test_store_refuses_folders_that_are_not_its_own_and_deletes_only_its_files(client, photos, plain, tmp_path):
    album = tmp_path / "album"
    shutil.copytree(Path(photos) / "hat", album)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in album.iterdir())
    with pytest.raises(ValueError, match="not a kit embedding store"):
        EmbeddingStore(album).write(plain)
    with pytest.raises(ValueError, match="not a kit embedding store"):
        embed_dask(album, backbone="color_hist", client=client, store=album)
    with pytest.raises(ValueError, match="nothing was deleted"):
        EmbeddingStore(album).clear()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in album.iterdir()) == before

    cache = tmp_path / "cache"
    kit.embed(album, backbone="color_hist", cache_dir=cache)
    with pytest.raises(ValueError, match="cache"):
        EmbeddingStore(cache).write(plain)

    store = EmbeddingStore(tmp_path / "store")
    assert store.write(plain) == 500 and store.write(plain) == 0  # only what it does not hold yet
    folder = store.root / store.namespace().name
    (folder / "notes.txt").write_text("mine")
    (store.root / "README").write_text("mine too")
    assert store.clear() == 1
    assert (folder / "notes.txt").read_text() == "mine" and (store.root / "README").exists()
    assert not list(folder.glob("*.parquet"))

    local = kit.embed(list_images(photos).paths[:5], backbone="color_hist", use_cache=False, store=tmp_path / "local")
    assert EmbeddingStore(tmp_path / "local").read().paths == local.paths  # engine="local" writes there too


def test_float16_store_and_its_dtype_is_kept(plain, tmp_path):
    half = EmbeddingStore(tmp_path / "half", dtype="float16")
    half.write(plain)
    back = half.read()
    assert back.vectors.dtype == np.float32
    np.testing.assert_allclose(back.vectors, plain.vectors, rtol=0, atol=2e-3)
    assert half.backbones()["dtype"].tolist() == ["float16"]
    assert EmbeddingStore(tmp_path / "half").write(plain) == 0  # dtype None: the namespace's own
    with pytest.raises(ValueError, match="float16"):
        EmbeddingStore(tmp_path / "half", dtype="float32").write(plain)
    import pyarrow.parquet as pq

    (file,) = (half.root / half.namespace().name).glob("part-*.parquet")
    vector = pq.read_schema(file).field("vector").type
    assert (str(vector.value_type), vector.list_size) == ("halffloat", 128)


def test_lite0_on_dask_matches_the_plain_loop_and_loads_once_per_worker(client, photos, tmp_path):
    paths = list_images(photos).paths[::8][:64]
    plain = kit.embed(paths, backbone="efficientnet_lite0", use_cache=False)  # also exports the model once
    emb = embed_dask(paths, backbone="efficientnet_lite0", client=client, store=tmp_path / "store",
                     partition_size=16)
    assert emb.paths == plain.paths and emb.stats["partitions"] == 4
    np.testing.assert_allclose(emb.vectors, plain.vectors, rtol=0, atol=1e-6)
    assert 1 <= emb.stats["model_loads"] <= 2  # once per worker process, not once per task


def test_wrong_arguments_are_refused_with_their_fix(client, photos):
    from kit._utils.validation import InvalidParameterError
    from kit.backbones import pixels

    with pytest.raises(InvalidParameterError, match="engine"):
        kit.embed(photos, engine="spark")
    with pytest.raises(ValueError, match="engine='dask'"):
        kit.embed(photos, backbone="color_hist", client=client)
    with pytest.raises(ValueError, match="PCA"):
        embed_dask(photos, backbone=pixels(16, pca=8), client=client)
    with pytest.raises(ValueError, match="store"):
        embed_dask(photos, backbone="color_hist", client=client, collect=False)


def test_a_script_without_main_guard_and_the_cli(client, photos, tmp_path):
    """client=None starts its own cluster from a plain script (workers never re-run it) and closes it;
    the CLI embeds into a store through a running scheduler."""
    few = tmp_path / "few"
    for p in list_images(photos).paths[:12]:
        (few / Path(p).parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, few / Path(p).parent.name / Path(p).name)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import kit, psutil
        emb = kit.embed({str(few)!r}, backbone="color_hist", engine="dask", store={str(tmp_path / 's1')!r})
        print("ROWS", len(emb), emb.stats["workers"], len(psutil.Process().children(recursive=True)))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("ROWS")]
    assert rows == [["ROWS", "12", str(os.cpu_count() or 1), "0"]]  # one "ROWS": the script ran once

    address = client.scheduler.address
    cli = subprocess.run([sys.executable, "-m", "kit", "embed", str(few), "--backbone", "color_hist", "--engine",
                          "dask", "--scheduler", address, "--store", str(tmp_path / "s2"), "--partition-size", "5"],
                         capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "12 photos" in cli.stderr and "12 embedded" in cli.stderr
    assert len(EmbeddingStore(tmp_path / "s2").partitions()) == 3


def test_import_kit_does_not_import_dask():
    code = ("import sys, kit, kit.scale\n"
            "print([m for m in ('dask', 'distributed') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------ stores on fsspec URLs
@pytest.fixture()
def memory_url():
    """A folder of fsspec's in-memory file system (a real fsspec file system, shared within this process)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/kit-test-{time.time_ns()}"
    yield f"memory://{root}", fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_a_store_on_an_fsspec_url_writes_appends_reads_and_cleans_only_its_files(photos, plain, memory_url):
    url, fs, root = memory_url
    fs.makedirs(f"{root}/photos", exist_ok=True)
    fs.pipe_file(f"{root}/photos/a.jpg", b"not the kit's")
    with pytest.raises(ValueError, match="not a kit embedding store.*a.jpg|a.jpg.*no .kit-store"):
        EmbeddingStore(f"{url}/photos").write(plain)
    assert fs.cat_file(f"{root}/photos/a.jpg") == b"not the kit's"  # a foreign folder is left as it was

    store = EmbeddingStore(f"{url}/store")
    first = kit.Embeddings(vectors=plain.vectors[:400], paths=plain.paths[:400], labels=plain.labels[:400],
                           backbone=plain.backbone, preprocessing=plain.preprocessing, unreadable=plain.unreadable,
                           hashes=plain.hashes[:400])
    assert store.write(first, partition_rows=150) == 400
    assert store.write(plain, partition_rows=150) == 100  # appending writes only the 100 new photos
    assert store.write(plain) == 0
    parts = store.partitions()
    assert parts["rows"].tolist() == [150, 150, 100, 100] and (parts["bytes"] > 0).all()
    back = store.read()
    order = [back.paths.index(p) for p in plain.paths]
    np.testing.assert_array_equal(back.vectors[order], plain.vectors)
    assert [back.labels[i] for i in order] == plain.labels and store.hashes() == set(plain.hashes)
    ns = store.namespace("color_hist").name
    table = pd.read_parquet(f"{root}/store/{ns}", filesystem=fs)  # pandas reads it without the kit
    assert len(table) == 500 and set(table["path"]) == set(plain.paths)
    manifest = json.loads(fs.cat_file(f"{root}/store/_kit_manifest.json"))
    assert manifest["namespaces"][ns]["rows"] == 500 and manifest["namespaces"][ns]["partitions"] == 4

    # a run killed while writing leaves at most a hidden temporary file: never read as data, removed by clean
    fs.pipe_file(f"{root}/store/{ns}/.tmp-{'0' * 32}.parquet", b"half a parquet file")
    assert len(store.read().paths) == 500 and len(pd.read_parquet(f"{root}/store/{ns}", filesystem=fs)) == 500
    assert store.clean(older_than=0) == 1
    fs.pipe_file(f"{root}/store/{ns}/notes.txt", b"the user's")
    assert store.clear() == 4
    left = sorted(p.rsplit("/", 1)[-1] for p in fs.find(f"{root}/store"))
    assert left == [".kit-store", "_kit_manifest.json", "notes.txt"]  # only the kit's partitions went


def test_dask_embeds_into_a_url_store_and_kmeans_reads_it(client, photos, plain, tmp_path):
    """``local://`` goes through fsspec (not the local fast path), and each worker process opens it itself."""
    from kit import scale as scale_cluster

    url = f"local://{tmp_path / 'store'}"
    emb = embed_dask(photos, backbone="color_hist", client=client, store=url, partition_size=200)
    np.testing.assert_allclose(emb.vectors, plain.vectors, rtol=0, atol=1e-6)
    store = EmbeddingStore(url)
    assert type(store.root).__name__ == "RemotePath" and len(store.partitions()) == 3
    again = embed_dask(photos, backbone="color_hist", client=client, store=url, partition_size=200)
    assert again.stats["skipped"] == 500 and len(store.partitions()) == 3  # resumed: nothing embedded twice

    local = EmbeddingStore(tmp_path / "local")  # the same rows in the same partitions, on the local fast path
    local.write(store.read(), partition_rows=200)
    on_url = scale_cluster.kmeans(store, 10, write=False, random_state=0)
    on_disk = scale_cluster.kmeans(local, 10, write=False, random_state=0)
    by_path = dict(zip(on_disk.labels["path"], on_disk.labels["cluster"]))
    assert len(on_url.labels) == 500
    assert all(by_path[p] == c for p, c in zip(on_url.labels["path"], on_url.labels["cluster"]))
    with pytest.raises(ValueError, match="write=False"):
        scale_cluster.kmeans(url, 10, random_state=0)


def test_a_url_without_its_protocol_package_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="store='nosuchproto://x'.*local folder"):
        EmbeddingStore("nosuchproto://x")


# ------------------------------------------------------------------ real and generated photos (issue 14's tests)
def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_dask_matches_the_plain_path_on_clothing10(client, clothing10, clothing10_lite0, tmp_path):
    """All 1,485 real photos of clothing10 with the default backbone: every vector as the single-process path's."""
    emb = embed_dask(clothing10, backbone="efficientnet_lite0", client=client, store=tmp_path / "store",
                     partition_size=250)
    assert sorted(emb.paths) == sorted(clothing10_lite0.paths) and len(emb.paths) == 1485
    at = {p: i for i, p in enumerate(emb.paths)}
    mine = emb.vectors[[at[p] for p in clothing10_lite0.paths]]
    assert _cosines(mine, clothing10_lite0.vectors).min() >= 0.9999
    assert [emb.labels[at[p]] for p in clothing10_lite0.paths] == clothing10_lite0.labels
    # partitions finish in any order on two workers
    assert sorted(EmbeddingStore(tmp_path / "store").partitions()["rows"].tolist()) == [235] + [250] * 5


def test_generated_photos_embed_alike_on_dask_and_the_corpus_is_reproducible(client, tmp_path):
    paths = kit.datasets.augmented_corpus(60, tmp_path / "corpus", random_state=3)
    again = kit.datasets.augmented_corpus(60, tmp_path / "again", random_state=3)
    assert [Path(p).read_bytes() for p in paths] == [Path(p).read_bytes() for p in again]  # same seed, same files
    assert len({Path(p).parent.name for p in paths}) == 10  # the sources' labels, as sub-folders
    with pytest.raises(ValueError, match="not an empty folder"):
        kit.datasets.augmented_corpus(5, tmp_path / "corpus")  # never written among existing files
    assert len(list((tmp_path / "corpus").rglob("*.jpg"))) == 60
    plain = kit.embed(tmp_path / "corpus", backbone="efficientnet_lite0", use_cache=False)
    emb = embed_dask(tmp_path / "corpus", backbone="efficientnet_lite0", client=client, store=tmp_path / "store",
                     partition_size=16)
    at = {p: i for i, p in enumerate(emb.paths)}
    assert sorted(at) == sorted(plain.paths)
    assert _cosines(emb.vectors[[at[p] for p in plain.paths]], plain.vectors).min() >= 0.9999


def test_duckdb_reads_the_store_as_it_is(plain, tmp_path):
    """The README says pandas, Dask and DuckDB read the store directly: DuckDB, by SQL over the partition files."""
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in requirements.txt (make test installs it)")
    store = EmbeddingStore(tmp_path / "store")
    store.write(plain, partition_rows=120)
    folder = store.root / store.namespace("color_hist").name
    con = duckdb.connect()
    rows, paths, dims = con.execute(f"SELECT count(*), count(DISTINCT path), min(len(vector)) "
                                    f"FROM '{folder}/*.parquet'").fetchall()[0]
    assert (rows, paths, dims) == (500, 500, 128)
    vec = con.execute(f"SELECT vector FROM '{folder}/*.parquet' WHERE path = ?", [plain.paths[7]]).fetchall()[0][0]
    np.testing.assert_allclose(np.asarray(vec, np.float32), plain.vectors[7], rtol=0, atol=0)
