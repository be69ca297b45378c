"""kit.project: quality with trustworthiness thresholds (not coordinates), determinism, the on-disk cache,
placing new points (transform), progress, and the errors. UMAP pays its numba JIT once per process, so the digits
get only three UMAP runs here; the blobs one small fit (shared by the transform and progress tests)."""
import pickle

import numpy as np
import pytest

from kit.embedding import Embeddings
from kit.project import Projection, project, trustworthiness

# Measured on load_digits() (scikit-learn 1.9, openTSNE 1.0.4, umap-learn 0.5.12), cosine trustworthiness,
# n_neighbors=10: full 2-D PCA 0.829, t-SNE 0.991, UMAP 0.988; 600-point 3-D PCA 0.909, t-SNE 0.992,
# UMAP 0.988 (full 3-D PCA 0.913). Thresholds sit a little below.
THRESHOLD_2D = {"pca": 0.80, "tsne": 0.97, "umap": 0.97}
THRESHOLD_3D = {"pca": 0.88, "tsne": 0.97, "umap": 0.97}
# The tests that only check caching/determinism run openTSNE single-threaded: on a busy machine its
# OpenMP threads spin-wait and a 600-point t-SNE takes 15-25 s with n_jobs=2 instead of about 1 s.
ONE = dict(n_jobs=1)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits().data  # 1797 x 64, float64


@pytest.fixture(scope="module")
def digits600(digits):
    idx = np.sort(np.random.default_rng(0).choice(len(digits), 600, replace=False))
    return digits[idx]


@pytest.fixture(scope="module")
def umap3d(digits600, tmp_path_factory):
    """One 3-D UMAP of the 600 digits (UMAP run 2 of 3), with its cache folder."""
    folder = tmp_path_factory.mktemp("umap3d")
    return project(digits600, method="umap", n_components=3, random_state=0, cache_dir=folder), folder


# ------------------------------------------------------------------------------------------- quality

@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_2d_quality_on_digits(digits, method, tmp_path):
    p = project(digits, method=method, cache_dir=tmp_path)
    assert isinstance(p, Projection)
    assert p.coords.shape == (1797, 2) and p.coords.dtype == np.float32
    assert np.isfinite(p.coords).all()
    assert p.method == method and not p.from_cache and p.seconds > 0
    assert p.params["n_components"] == 2 and p.params["random_state"] == 0
    tw = trustworthiness(digits, p)
    assert tw >= THRESHOLD_2D[method], f"{method}: trustworthiness {tw:.4f}"


def test_3d_quality_pca_and_tsne(digits600, tmp_path):
    for method, kw in (("pca", {}), ("tsne", ONE)):
        p = project(digits600, method=method, n_components=3, cache_dir=tmp_path, **kw)
        assert p.coords.shape == (600, 3) and p.coords.dtype == np.float32
        tw = trustworthiness(digits600, p.coords)
        assert tw >= THRESHOLD_3D[method], f"{method} 3-D: trustworthiness {tw:.4f}"
    assert p.params["negative_gradient_method"] == "bh"  # openTSNE's FFT gradient is 1-D/2-D only


def test_3d_quality_umap(digits600, umap3d):
    p, _ = umap3d
    assert p.coords.shape == (600, 3) and p.coords.dtype == np.float32
    assert p.params["n_neighbors"] == 15 and p.params["metric"] == "cosine"
    tw = trustworthiness(digits600, p)
    assert tw >= THRESHOLD_3D["umap"], f"umap 3-D: trustworthiness {tw:.4f}"


def test_pca_beats_nothing_and_tsne_beats_pca(digits600, tmp_path):
    """Trustworthiness ranks projections sensibly: random coordinates < PCA < t-SNE."""
    rand = np.random.default_rng(0).normal(size=(600, 2))
    pca = project(digits600, method="pca", cache_dir=tmp_path)
    tsne = project(digits600, method="tsne", cache_dir=tmp_path, **ONE)
    scores = [trustworthiness(digits600, c) for c in (rand, pca, tsne)]
    assert scores[0] < scores[1] < scores[2]
    assert isinstance(scores[0], float)


# ------------------------------------------------------------------------------ determinism & cache

def test_same_random_state_same_coords(digits600, tmp_path):
    for method, kw in (("pca", {}), ("tsne", ONE)):
        a = project(digits600, method=method, random_state=3, cache_dir=tmp_path, use_cache=False, **kw)
        b = project(digits600, method=method, random_state=3, cache_dir=tmp_path, use_cache=False, **kw)
        np.testing.assert_array_equal(a.coords, b.coords)
    c = project(digits600, method="tsne", random_state=4, use_cache=False, **ONE)
    assert not np.array_equal(a.coords, c.coords)
    assert not any(tmp_path.iterdir())  # use_cache=False neither reads nor writes


def test_umap_same_random_state_same_coords_and_cached(digits600, umap3d):
    p, folder = umap3d
    again = project(digits600, method="umap", n_components=3, random_state=0, use_cache=False)  # UMAP run 3
    assert not again.from_cache
    np.testing.assert_array_equal(p.coords, again.coords)
    cached = project(digits600, method="umap", n_components=3, random_state=0, cache_dir=folder)
    assert cached.from_cache
    np.testing.assert_array_equal(p.coords, cached.coords)


def test_second_call_comes_from_cache(digits600, tmp_path):
    calls = []
    first = project(digits600, method="tsne", cache_dir=tmp_path, progress=lambda *a: calls.append(a), **ONE)
    files = sorted(tmp_path.iterdir())
    assert [f.suffix or f.name for f in files] == [".kit-cache", ".npy"]  # marker, one entry, no temporary file
    second = project(digits600, method="tsne", cache_dir=tmp_path, progress=lambda *a: calls.append(a), **ONE)
    assert not first.from_cache and second.from_cache
    np.testing.assert_array_equal(first.coords, second.coords)
    assert second.coords.dtype == np.float32
    assert second.params == first.params
    assert calls[0] == (0, 750, "t-SNE") and calls[-3:] == [(750, 750, "t-SNE"), (0, 1, "t-SNE"), (1, 1, "t-SNE")]
    # the same vectors given as float32 or as an Embeddings hit the same entry
    emb = Embeddings(vectors=digits600.astype(np.float32), paths=[str(i) for i in range(600)], labels=None,
                     backbone="test", preprocessing={})
    assert project(emb, method="tsne", cache_dir=tmp_path, **ONE).from_cache
    assert sorted(tmp_path.iterdir()) == files


def test_changed_parameter_recomputes(digits600, tmp_path):
    base = project(digits600, method="tsne", cache_dir=tmp_path, **ONE)
    assert base.params["perplexity"] == 30
    other = project(digits600, method="tsne", perplexity=10, cache_dir=tmp_path, **ONE)
    assert not other.from_cache and other.params["perplexity"] == 10
    assert not np.array_equal(base.coords, other.coords)
    seed = project(digits600, method="tsne", random_state=1, cache_dir=tmp_path, **ONE)
    assert not seed.from_cache
    dims = project(digits600, method="pca", n_components=3, cache_dir=tmp_path)
    assert not dims.from_cache
    changed = digits600.copy()
    changed[0, 0] += 1
    assert not project(changed, method="pca", n_components=3, cache_dir=tmp_path).from_cache
    # verbose changes logging only: same entry
    assert project(digits600, method="tsne", verbose=False, cache_dir=tmp_path, **ONE).from_cache
    assert len(list(tmp_path.glob("*.npy"))) == 5


def test_n_jobs_is_part_of_the_key_for_tsne():
    """From N = 1000 on, openTSNE's Annoy neighbours (hence the coordinates) depend on n_jobs."""
    from kit.project._project import _cache_key

    X = np.zeros((1000, 4), np.float32)
    key = lambda **kw: _cache_key(X, "tsne", {"random_state": 0, "perplexity": 30, **kw})  # noqa: E731
    assert key(n_jobs=1) != key(n_jobs=2)
    assert key(n_jobs=1) == key(n_jobs=1, verbose=True)
    assert key(n_jobs=1, random_state=None) is None  # unseeded: never cached
    assert key(n_jobs=1, metric=lambda a, b: 0.0) is None  # not JSON-able: not cached


def test_default_cache_dir_is_under_kit_home(digits600, tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "home"))
    project(digits600, method="pca")
    assert len(list((tmp_path / "home" / "projections").glob("*.npy"))) == 1
    assert project(digits600, method="pca").from_cache


def test_unseeded_results_are_not_cached(digits600, tmp_path):
    project(digits600, method="pca", random_state=None, cache_dir=tmp_path)
    assert not project(digits600, method="pca", random_state=None, cache_dir=tmp_path).from_cache
    assert not any(tmp_path.iterdir())


def test_corrupt_cache_entry_is_recomputed(digits600, tmp_path):
    first = project(digits600, method="pca", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npy")
    entry.write_bytes(b"not a numpy file")
    with pytest.warns(RuntimeWarning, match="recomputing"):
        again = project(digits600, method="pca", cache_dir=tmp_path)
    assert not again.from_cache
    np.testing.assert_array_equal(first.coords, again.coords)
    assert project(digits600, method="pca", cache_dir=tmp_path).from_cache


# -------------------------------------------------------------------------------------- small inputs

@pytest.mark.parametrize("method", ["pca", "tsne"])
@pytest.mark.parametrize("n, k", [(3, 2), (4, 3), (7, 2)])
def test_tiny_inputs_work(method, n, k, tmp_path):
    X = np.random.default_rng(0).normal(size=(n, 5))
    p = project(X, method=method, n_components=k, cache_dir=tmp_path)
    assert p.coords.shape == (n, k) and np.isfinite(p.coords).all()
    if method == "tsne":
        assert p.params["perplexity"] == pytest.approx((n - 1) / 3)


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_too_few_points_raise(method, tmp_path):
    with pytest.raises(ValueError, match="N=2"):
        project(np.ones((2, 5)), method=method, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="N=3.*at least 4"):
        project(np.random.default_rng(0).normal(size=(3, 5)), method=method, n_components=3, cache_dir=tmp_path)


# -------------------------------------------------------------------------------------------- errors

def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match=r"'method' parameter of project must be a str among \{'pca', 'tsne', 'umap'\}; got 'tsne2'"):
        project(np.ones((10, 3)), method="tsne2")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_raise(bad):
    X = np.random.default_rng(0).normal(size=(20, 4))
    X[5, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite.*row 5"):
        project(X, method="pca", use_cache=False)


@pytest.mark.parametrize("X, match", [(np.ones(10), r"2-D.*\(10,\)"), (np.ones((4, 2, 2)), "2-D"),
                                      ([["a", "b"]] * 4, "numeric")])
def test_bad_shapes_raise(X, match):
    with pytest.raises(ValueError, match=match):
        project(X, method="pca", use_cache=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_components=4), r"'n_components' parameter of project must be an int in the range \[1, 3\]; got 4 \(int\)"),
    (dict(n_components=2.0), r"'n_components' parameter of project .*; got 2.0 \(float\)"),
    (dict(random_state="0"), r"'random_state' parameter of project must be an int .*RandomState.* or None; got '0'"),
    (dict(method="tsne", perplexity=50), r"perplexity=50.*N=20.*6\.33"),
    (dict(method="tsne", n_components=3, negative_gradient_method="fft"), "negative_gradient_method='fft'.*'bh'"),
    (dict(method="umap", n_neighbors=20), r"n_neighbors=20.*N=20.*19"),
])
def test_bad_parameters_raise(kwargs, match):
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match=match):
        project(X, use_cache=False, **{"method": "pca", **kwargs})


def test_unknown_estimator_parameter_raises_type_error():
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(TypeError, match="perplexity.*accepts"):
        project(X, method="pca", perplexity=5, use_cache=False)


def test_pca_cannot_exceed_the_input_dimension():
    with pytest.raises(ValueError, match="D=2.*n_components=3"):
        project(np.random.default_rng(0).normal(size=(20, 2)), method="pca", n_components=3, use_cache=False)


def test_trustworthiness_checks_its_inputs():
    X = np.random.default_rng(0).normal(size=(20, 4))
    assert trustworthiness(X, X[:, :4], n_neighbors=5, metric="euclidean") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="coords has 19 rows but X has 20"):
        trustworthiness(X, X[:19, :2])
    with pytest.raises(ValueError, match="n_neighbors=10"):
        trustworthiness(X, X[:, :2], n_neighbors=10)


# ------------------------------------------------------------------------------ transform & progress

N_BLOBS = 200


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated blobs; every fifth point is held out for transform."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(N_BLOBS, n_features=12, centers=4, cluster_std=1.0, random_state=0)
    held = np.arange(N_BLOBS) % 5 == 0
    return X.astype(np.float32), y, held


@pytest.fixture(scope="module")
def blob_maps(blobs, tmp_path_factory):
    """method -> (projection of the training blobs, the progress calls it made, its cache folder); each fitted once."""
    X, _, held = blobs
    maps = {}

    def get(method):
        if method not in maps:
            folder = tmp_path_factory.mktemp(f"blobs-{method}")
            calls = []
            kw = {"pca": {}, "tsne": ONE, "umap": dict(n_epochs=200)}[method]
            p = project(X[~held], method=method, cache_dir=folder, progress=lambda *a: calls.append(a), **kw)
            maps[method] = p, calls, folder, kw
        return maps[method]

    return get


def _knn_accuracy(p, new, y, held):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5).fit(p.coords, y[~held]).score(new, y[held])


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_transform_places_held_out_points_next_to_their_blob(blobs, blob_maps, method):
    X, y, held = blobs
    p, _, _, _ = blob_maps(method)
    assert p.model is not None and not p.from_cache
    new = p.transform(X[held])
    assert new.shape == (held.sum(), 2) and new.dtype == np.float32 and np.isfinite(new).all()
    acc = _knn_accuracy(p, new, y, held)
    assert acc >= 0.95, f"{method}: 5-NN accuracy of the placed points {acc:.3f}"
    np.testing.assert_array_equal(p.transform(X[held]), new)  # placing again gives the same points
    assert p.transform(X[held][:0]).shape == (0, 2)


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_transform_works_on_a_cache_read_result(blobs, blob_maps, method):
    """The model is rebuilt from the stored vectors and params; points land where the computed model puts them."""
    X, y, held = blobs
    p, _, folder, kw = blob_maps(method)
    cached = project(X[~held], method=method, cache_dir=folder, **kw)
    assert cached.from_cache and cached.model is None
    new = cached.transform(X[held])
    assert cached.model is not None  # kept for the next call
    np.testing.assert_array_equal(cached.coords, p.coords)
    np.testing.assert_allclose(new, p.transform(X[held]), atol=1e-4)
    assert _knn_accuracy(cached, new, y, held) >= 0.95


@pytest.mark.parametrize("method, stage, total", [("tsne", "t-SNE", 750), ("umap", "UMAP", 200)])
def test_progress_reports_the_optimisation(blobs, blob_maps, method, stage, total):
    X, _, held = blobs
    p, calls, _, _ = blob_maps(method)
    assert {c[2] for c in calls} == {stage}
    assert calls[0] == (0, total, stage) and calls[-1] == (total, total, stage)
    done = [c[0] for c in calls]
    assert done == sorted(done) and len(set(done)) == len(done)  # never backwards, never twice
    assert len({d for d in done if 0 < d < total}) > 2, calls
    assert len(calls) <= 102  # about once per percent at most
    placed = []
    p.transform(X[held], progress=lambda *a: placed.append(a))
    assert {c[2] for c in placed} == {f"{stage} transform"}
    assert len({c[0] for c in placed if 0 < c[0] < c[1]}) > 2, placed
    assert placed[-1][0] == placed[-1][1]
    if method == "tsne":  # the model keeps no reference to the kit's progress callback
        assert p.model.gradient_descent_params.get("callbacks") is None


def test_pca_and_cache_hits_report_start_and_end(blobs, blob_maps, tmp_path):
    X, _, held = blobs
    _, calls, folder, _ = blob_maps("pca")
    assert calls == [(0, 1, "PCA"), (1, 1, "PCA")]
    again = []
    project(X[~held], method="pca", cache_dir=folder, progress=lambda *a: again.append(a))
    assert again == [(0, 1, "PCA"), (1, 1, "PCA")]


class Stop(Exception):
    pass


def _stop_after_start(done, total, stage):
    if done > 0:
        raise Stop(stage)


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_progress_may_raise_to_stop(blobs, method, tmp_path):
    X, _, held = blobs
    with pytest.raises(Stop, match="t-SNE" if method == "tsne" else "UMAP"):
        project(X, method=method, cache_dir=tmp_path, progress=_stop_after_start, **ONE)
    assert not list(tmp_path.glob("*.npy"))  # nothing cached
    if method == "umap":  # umap-learn's own epoch loop is back to its tqdm
        import umap.layouts
        from kit.project._project import _EpochReports

        assert not isinstance(umap.layouts.tqdm, _EpochReports)


def test_transform_checks_its_inputs(blobs, blob_maps):
    X, _, held = blobs
    p, _, _, _ = blob_maps("pca")
    with pytest.raises(ValueError, match="D=3 columns.*D=12"):
        p.transform(X[held][:, :3])
    with pytest.raises(ValueError, match="NaN or infinite"):
        p.transform(np.full((2, 12), np.nan))
    with pytest.raises(TypeError, match="takes no parameters.*perplexity"):
        p.transform(X[held], perplexity=5)
    t, _, _, _ = blob_maps("tsne")
    with pytest.raises(TypeError, match="'n_neighbors'.*accepts"):
        t.transform(X[held], n_neighbors=5)
    assert t.transform(X[held][:4], n_iter=10).shape == (4, 2)  # openTSNE's own parameters pass through
    by_hand = Projection(coords=p.coords, method="pca")
    with pytest.raises(ValueError, match="built by hand.*kit.project.project"):
        by_hand.transform(X[held])


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_projection_with_its_model_survives_pickling(blobs, blob_maps, method):
    """A result keeps working after a pickle round trip (Streamlit's st.cache_data, joblib)."""
    X, _, held = blobs
    p, _, _, _ = blob_maps(method)
    q = pickle.loads(pickle.dumps(p))
    np.testing.assert_array_equal(q.coords, p.coords)
    np.testing.assert_allclose(q.transform(X[held]), p.transform(X[held]), atol=1e-5)
