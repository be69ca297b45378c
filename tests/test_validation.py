"""Parameter validation (kit._utils.validation) and its use by every estimator and public function.

Rules (scikit-learn's): numpy integers and floats are numbers, bools are not; an error names the parameter,
the caller, what is allowed and the value received; ``__init__`` only stores, ``fit`` refuses a bad parameter
before touching X.
"""
import inspect
import math
import subprocess
import sys
import time
from numbers import Integral, Real

import numpy as np
import pytest

from kit._utils import validation as V
from kit._utils.validation import InvalidParameterError, Interval, Options, StrOptions, validate_params


# ============================================================================ the module itself
def test_example_message_from_the_issue():
    with pytest.raises(InvalidParameterError) as err:
        validate_params({"n_clusters": [Interval(Integral, 1, None, closed="left"), None]}, {"n_clusters": True},
                        "KMeans")
    assert str(err.value) == ("The 'n_clusters' parameter of KMeans must be an int in the range [1, inf) or None; "
                              "got True (bool).")


def test_error_is_both_value_error_and_type_error():
    assert issubclass(InvalidParameterError, ValueError) and issubclass(InvalidParameterError, TypeError)


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1), np.uint8(2), 10**12])
def test_integral_interval_accepts_python_and_numpy_ints(value):
    assert Interval(Integral, 1, None, closed="left").is_satisfied_by(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 0, -1, 1.0, np.float32(2.0), "3", None, [1]])
def test_integral_interval_refuses_bools_floats_and_out_of_range(value):
    assert not Interval(Integral, 1, None, closed="left").is_satisfied_by(value)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), 1, np.int64(1), 0.0])
def test_real_interval_accepts_numpy_floats_and_ints(value):
    assert Interval(Real, 0, 1, closed="both").is_satisfied_by(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), math.nan, np.float32("nan"), 1.5, -0.1, "0.5", 1j])
def test_real_interval_refuses_bools_nan_and_out_of_range(value):
    assert not Interval(Real, 0, 1, closed="both").is_satisfied_by(value)


def test_nan_is_refused_even_by_an_unbounded_interval():
    assert not Interval(Real, None, None, closed="neither").is_satisfied_by(float("nan"))
    assert Interval(Real, None, None, closed="neither").is_satisfied_by(-1e300)


@pytest.mark.parametrize("closed, left_in, right_in", [("both", True, True), ("left", True, False),
                                                       ("right", False, True), ("neither", False, False)])
def test_interval_closed_sides(closed, left_in, right_in):
    iv = Interval(Real, 0, 1, closed=closed)
    assert iv.is_satisfied_by(0) is left_in and iv.is_satisfied_by(1.0) is right_in
    assert iv.is_satisfied_by(0.5)


@pytest.mark.parametrize("interval, text", [
    (Interval(Integral, 1, None, closed="left"), "an int in the range [1, inf)"),
    (Interval(Integral, 1, 3, closed="both"), "an int in the range [1, 3]"),
    (Interval(Real, 0, None, closed="neither"), "a float in the range (0, inf)"),
    (Interval(Real, -1, 1, closed="both"), "a float in the range [-1, 1]"),
    (Interval(Real, None, 0, closed="right"), "a float in the range (-inf, 0]"),
])
def test_interval_descriptions(interval, text):
    assert str(interval) == text


def test_bad_interval_definitions_are_refused():
    with pytest.raises(ValueError, match="closed='open'"):
        Interval(Integral, 1, None, closed="open")
    with pytest.raises(ValueError, match="right=0 is below left=1"):
        Interval(Integral, 1, 0, closed="both")
    with pytest.raises(TypeError, match="numbers.Integral or numbers.Real"):
        Interval(int, 1, None, closed="left")
    with pytest.raises(TypeError, match="left=0.5"):
        Interval(Integral, 0.5, None, closed="left")


def test_str_options_list_the_allowed_values_sorted():
    c = StrOptions({"stack", "coassociation"})
    assert c.is_satisfied_by("stack") and not c.is_satisfied_by("Stack") and not c.is_satisfied_by(1)
    assert not c.is_satisfied_by(["stack"])  # unhashable: refused, not a crash
    with pytest.raises(InvalidParameterError) as err:
        validate_params({"combine": [c]}, {"combine": "average"}, "Ensemble")
    assert str(err.value) == ("The 'combine' parameter of Ensemble must be a str among {'coassociation', 'stack'}; "
                              "got 'average' (str).")


def test_options_of_numbers_refuse_bools():
    c = Options(Integral, {1, 2, 3})
    assert c.is_satisfied_by(np.int64(2)) and not c.is_satisfied_by(True) and not c.is_satisfied_by(4)
    assert str(c) == "an int among {1, 2, 3}"


@pytest.mark.parametrize("constraint, good, bad", [
    ("boolean", [True, False, np.bool_(True)], [1, 0, "True", None]),
    ("array-like", [[1, 2], (1,), np.zeros(3), np.zeros((2, 2))], [3, "abc", None, np.float32(1), np.array(1.0)]),
    ("random_state", [0, np.int64(5), 2**32 - 1, None, np.random.RandomState(0)],
     [-1, 2**32, 1.5, True, "0", np.random.default_rng(0)]),
    (None, [None], [0, "", False]),
    (callable, [len, lambda x: x], ["cosine", 3]),
    ("callable", [len], ["len"]),
    (dict, [{}, {"a": 1}], [[], None]),
])
def test_named_and_type_constraints(constraint, good, bad):
    options = V.make_constraint(constraint)
    for value in good:
        assert any(c.is_satisfied_by(value) for c in options), value
    for value in bad:
        assert not any(c.is_satisfied_by(value) for c in options), value


def test_description_of_several_constraints_puts_none_last():
    with pytest.raises(InvalidParameterError, match=r"must be an int in the range \[0, 4294967295\], an instance of "
                                                    r"'numpy\.random.*RandomState' or None; got -1 \(int\)\."):
        validate_params({"random_state": ["random_state"]}, {"random_state": -1}, "f")
    with pytest.raises(InvalidParameterError, match=r"must be a float in the range \(0, inf\) or a str among "
                                                    r"\{'auto'\}; got 'knee' \(str\)"):
        validate_params({"eps": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})]},
                        {"eps": "knee"}, "DBSCAN")


def test_long_values_are_shortened_in_messages():
    with pytest.raises(InvalidParameterError) as err:
        validate_params({"k": [Interval(Integral, 1, None, closed="left")]}, {"k": list(range(1000))}, "f")
    assert len(str(err.value)) < 200 and "..." in str(err.value) and "(list)" in str(err.value)


def test_undeclared_parameter_is_a_kit_bug_not_silently_passed():
    with pytest.raises(KeyError, match="'typo'"):
        validate_params({"k": [None]}, {"typo": 3}, "f")
    with pytest.raises(ValueError, match="unknown constraint 'integer'"):
        validate_params({"k": ["integer"]}, {"k": 3}, "f")


def test_check_exclusive_names_both():
    V.check_exclusive("Agglomerative", n_clusters=3, distance_threshold=None)
    V.check_exclusive("Agglomerative", n_clusters=None, distance_threshold=None)
    with pytest.raises(InvalidParameterError, match=r"n_clusters=3 and distance_threshold=0\.5"):
        V.check_exclusive("Agglomerative", n_clusters=3, distance_threshold=0.5)


def test_mixin_validates_the_class_constraints():
    class Est(V.ParamsValidationMixin):
        _parameter_constraints = {"k": [Interval(Integral, 2, None, closed="left")], "mode": [StrOptions({"a"})]}

        def __init__(self, k=2, mode="a"):
            self.k, self.mode = k, mode

    Est(np.int64(3))._validate_params()
    with pytest.raises(InvalidParameterError, match=r"^The 'k' parameter of Est must be an int in the range \[2, inf\); "
                                                    r"got 1 \(int\)\.$"):
        Est(1)._validate_params()
    with pytest.raises(InvalidParameterError, match="'mode' parameter of Est must be a str among {'a'}; got 'b'"):
        Est(mode="b")._validate_params()


def test_importing_the_module_loads_no_sklearn():
    code = "import kit._utils.validation, sys; print('sklearn' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "False"]


# ============================================================================ estimators of kit.cluster
C = pytest.importorskip("kit.cluster")

# class -> (valid params with numpy scalars, int params, float params, option params)
ESTIMATORS = {
    "KMeans": (dict(n_clusters=np.int64(3), n_init=np.int32(1), max_iter=np.int64(20),
                    max_points_per_centroid=np.int64(64), random_state=np.int64(0)),
               ["n_clusters", "n_init", "max_iter", "max_points_per_centroid"], [], ["backend"]),
    "MiniBatchKMeans": (dict(n_clusters=np.int64(3), batch_size=np.int64(64), n_init=np.int64(1)),
                        ["n_clusters", "batch_size", "n_init"], [], []),
    "Agglomerative": (dict(n_clusters=np.int64(3), linkage="average", metric="cosine"),
                      ["n_clusters"], ["distance_threshold"], ["linkage", "metric"]),
    "DBSCAN": (dict(eps=np.float32(0.05), min_samples=np.int64(3)), ["min_samples"], ["eps"], ["metric"]),
    "HDBSCAN": (dict(min_cluster_size=np.int64(5), min_samples=np.int64(3), reduce_to=np.int64(4)),
                ["min_cluster_size", "min_samples", "reduce_to"], [], []),
    "Spectral": (dict(n_clusters=np.int64(3), n_neighbors=np.int64(8)), ["n_clusters", "n_neighbors"], [], []),
    "ChineseWhispers": (dict(threshold=np.float32(0.5), k=np.int64(8), iterations=np.int64(10)),
                        ["k", "iterations"], ["threshold"], []),
    "Leiden": (dict(k=np.int64(8), resolution=np.float32(1.0), threshold=np.float64(0.0)),
               ["k"], ["resolution", "threshold"], []),
    "Infomap": (dict(k=np.int64(8), threshold=np.float32(0.0)), ["k"], ["threshold"], []),
    "Ensemble": (dict(n_clusters=np.int64(3), base_params={"n_init": np.int64(1)}),
                 ["n_clusters"], [], ["base", "combine"]),
}


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 5
    X = np.vstack([c + rng.normal(scale=0.3, size=(30, 8)) for c in centres]).astype(np.float32)
    return X, np.repeat(np.arange(3), 30)


def _fit(est, X):
    return est.fit([X, X]) if isinstance(est, C.Ensemble) else est.fit(X)


class Untouchable:
    """An X that fails the test if anything reads it: parameter errors must come first."""

    shape = (10**9, 10**4)

    def __array__(self, *args, **kwargs):
        raise AssertionError("X was read before the parameters were checked")

    def __len__(self):
        raise AssertionError("X was read before the parameters were checked")

    def __getitem__(self, item):
        raise AssertionError("X was read before the parameters were checked")

    def __iter__(self):
        raise AssertionError("X was read before the parameters were checked")


def test_every_parameter_of_every_estimator_has_a_constraint():
    for cls in [*(m.load() for m in C.METHODS.values()), C.Ensemble]:
        assert set(cls._parameter_constraints) == set(cls._get_param_names()), cls.__name__
    assert C.Ensemble._parameter_constraints["base"][0].options == set(C.METHODS)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_numpy_scalars_are_accepted(name, blobs):
    X, y = blobs
    params = ESTIMATORS[name][0]
    est = _fit(getattr(C, name)(**params), X)
    assert len(est.labels_) == len(X) and est.n_clusters_ >= 2
    from kit.metrics import nmi
    if name not in ("DBSCAN", "HDBSCAN"):  # density methods may leave noise on 30-point blobs
        assert nmi(y, est.labels_) > 0.9, name


@pytest.mark.parametrize("name, param", [(n, p) for n, spec in sorted(ESTIMATORS.items()) for p in spec[1] + spec[2]])
@pytest.mark.parametrize("bad", [True, False, np.bool_(True)])
def test_bools_are_refused_as_numbers(name, param, bad, blobs):
    est = getattr(C, name)(**{param: bad})  # __init__ only stores
    assert getattr(est, param) is bad
    with pytest.raises(InvalidParameterError, match=rf"^The '{param}' parameter of {name} must be .*; "
                                                    rf"got {bad!r} \((bool|bool_)\)\.$"):
        _fit(est, blobs[0])


@pytest.mark.parametrize("name, param", [(n, p) for n, spec in sorted(ESTIMATORS.items()) for p in spec[1]])
@pytest.mark.parametrize("bad", [0, -3, 2.5, "3"])
def test_int_parameters_refuse_zero_negative_and_non_ints(name, param, bad, blobs):
    with pytest.raises(InvalidParameterError, match=rf"'{param}' parameter of {name} must be an int in the range "
                                                    rf"\[\d+, inf\).*; got {bad!r} \({type(bad).__name__}\)"):
        _fit(getattr(C, name)(**{param: bad}), blobs[0])


@pytest.mark.parametrize("name, param, bad", [
    ("DBSCAN", "eps", 0), ("DBSCAN", "eps", -0.1), ("DBSCAN", "eps", float("nan")),
    ("Agglomerative", "distance_threshold", -1.0), ("ChineseWhispers", "threshold", 1.5),
    ("Leiden", "resolution", 0.0), ("Leiden", "threshold", -2), ("Infomap", "threshold", np.float32(3))])
def test_float_parameters_refuse_out_of_range(name, param, bad, blobs):
    with pytest.raises(InvalidParameterError, match=rf"'{param}' parameter of {name} must be a float in the range"):
        _fit(getattr(C, name)(**{param: bad}), blobs[0])


@pytest.mark.parametrize("name, param", [(n, p) for n, spec in sorted(ESTIMATORS.items()) for p in spec[3]])
def test_bad_option_strings_list_the_allowed_ones(name, param, blobs):
    allowed = C.__dict__[name]._parameter_constraints[param][0].options
    with pytest.raises(InvalidParameterError) as err:
        _fit(getattr(C, name)(**{param: "bogus"}), blobs[0])
    msg = str(err.value)
    assert msg.startswith(f"The '{param}' parameter of {name} must be a str among {{")
    assert msg.endswith("got 'bogus' (str).")
    assert all(repr(option) in msg for option in allowed)


@pytest.mark.parametrize("combine", ["coassociation", "stack"])
def test_ensemble_both_combines_after_validation(combine, blobs):
    from kit.metrics import nmi

    X, y = blobs
    est = C.Ensemble(np.int64(3), combine=combine, base_params={"n_init": 1}).fit([X, X[:, ::-1].copy()])
    assert nmi(y, est.labels_) > 0.9


def test_agglomerative_refuses_n_clusters_and_distance_threshold_together(blobs):
    est = C.Agglomerative(n_clusters=3, distance_threshold=0.5)
    with pytest.raises(InvalidParameterError) as err:
        est.fit(Untouchable())
    assert "'n_clusters'" in str(err.value) and "'distance_threshold'" in str(err.value)
    assert "n_clusters=3 and distance_threshold=0.5" in str(err.value)
    # either one alone works; neither gives the default 8 clusters
    assert C.Agglomerative(distance_threshold=1e9).fit(blobs[0]).n_clusters_ == 1
    assert C.Agglomerative(n_clusters=3).fit(blobs[0]).n_clusters_ == 3
    assert C.Agglomerative().fit(blobs[0]).n_clusters_ == C.DEFAULT_N_CLUSTERS


@pytest.mark.parametrize("est", [
    C.Agglomerative(linkage="ward", metric="cosine"), C.Agglomerative(linkage="ward", metric="precomputed"),
    C.DBSCAN(eps="auto", metric="precomputed")], ids=["ward-cosine", "ward-precomputed", "auto-precomputed"])
def test_conflicting_options_are_refused_before_reading_X(est):
    with pytest.raises(InvalidParameterError, match="precomputed|ward"):
        est.fit(Untouchable())


@pytest.mark.parametrize("name, param, bad", [(n, spec[1][0] if spec[1] else spec[3][0], True)
                                              for n, spec in sorted(ESTIMATORS.items())])
def test_parameter_error_comes_before_any_work(name, param, bad):
    est = getattr(C, name)(**{param: bad})
    t0 = time.perf_counter()
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of {name}"):
        _fit(est, Untouchable())
    nan_X = np.full((50, 4), np.nan, np.float32)  # an invalid array: the parameter is still named first
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of {name}"):
        _fit(est, nan_X)
    assert time.perf_counter() - t0 < 1.0


def test_parameter_error_before_a_huge_array_is_scanned():
    X = np.broadcast_to(np.float32(0), (2_000_000, 512))  # 4 GB if it were materialised or scanned
    t0 = time.perf_counter()
    for est in (C.KMeans(n_clusters=True), C.HDBSCAN(min_cluster_size=1), C.DBSCAN(eps=-1), C.Spectral(n_neighbors=0)):
        with pytest.raises(InvalidParameterError):
            est.fit(X)
    with pytest.raises(InvalidParameterError, match="'n_components' parameter of reduce"):
        C.reduce(X, n_components=0)
    assert time.perf_counter() - t0 < 1.0


def test_init_only_stores_so_clone_and_get_params_work():
    from sklearn.base import clone

    est = C.KMeans(n_clusters="many", backend="gpu")
    assert est.get_params()["n_clusters"] == "many"
    assert clone(est).backend == "gpu"


def test_random_state_accepts_a_random_state_instance_everywhere(blobs):
    X = blobs[0]
    for est in (C.KMeans(3, backend="faiss"), C.ChineseWhispers(0.5, k=8), C.Leiden(k=8), C.Infomap(k=8)):
        est.set_params(random_state=np.random.RandomState(0)).fit(X)
        assert len(est.labels_) == len(X)
    with pytest.raises(InvalidParameterError, match="'random_state' parameter of KMeans"):
        C.KMeans(3, random_state=-1).fit(X)


@pytest.mark.parametrize("call, match", [
    (lambda X: C.k_distance(X, k=0), "'k' parameter of k_distance"),
    (lambda X: C.k_distance(X, k=True), "'k' parameter of k_distance"),
    (lambda X: C.reduce(X, n_components=2.0), "'n_components' parameter of reduce"),
    (lambda X: C.reduce(X, whiten="yes"), "'whiten' parameter of reduce"),
    (lambda X: C.rerank_distance(X, k1=0), "'k1' parameter of rerank_distance"),
    (lambda X: C.rerank_distance(X, k2=True), "'k2' parameter of rerank_distance"),
    (lambda X: C.rerank_distance(X, lambda_value=1.5), r"'lambda_value' parameter of rerank_distance must be a float "
                                                       r"in the range \[0, 1\]; got 1\.5"),
    (lambda X: C.make("kmean"), r"'name' parameter of make must be a str among \{'agglomerative'.*got 'kmean'"),
])
def test_cluster_functions_check_parameters_first(call, match):
    with pytest.raises(InvalidParameterError, match=match):
        call(Untouchable())


def test_cluster_functions_accept_numpy_scalars(blobs):
    X = blobs[0]
    d, eps = C.k_distance(X, k=np.int64(5))
    assert len(d) == len(X) and eps > 0
    assert C.reduce(X, n_components=np.int64(3), whiten=np.bool_(True)).shape == (len(X), 3)
    D = C.rerank_distance(X, k1=np.int64(8), k2=np.int32(3), lambda_value=np.float32(0.3))
    assert D.shape == (len(X), len(X))


# ============================================================================ kit.metrics
from kit import metrics  # noqa: E402


@pytest.mark.parametrize("name", sorted(metrics.EXTERNAL))
def test_every_external_score_names_itself_for_a_bad_noise_policy(name):
    fn = metrics.EXTERNAL[name]
    with pytest.raises(InvalidParameterError, match=rf"'noise' parameter of {fn.__name__} must be a str among "
                                                    r"\{'cluster', 'singletons'\}; got 'drop' \(str\)"):
        fn([0, 1], [0, 1], noise="drop")


def test_metric_parameters_are_checked_before_the_labels():
    with pytest.raises(InvalidParameterError, match="'noise' parameter of nmi"):
        metrics.nmi([], [[1]], noise=None)
    with pytest.raises(InvalidParameterError, match="'noise' parameter of score"):
        metrics.score(None, [0, 1], noise="drop")
    with pytest.raises(InvalidParameterError, match=r"'sample_size' parameter of silhouette must be an int in the "
                                                    r"range \[2, inf\) or None; got True \(bool\)"):
        metrics.silhouette(Untouchable(), [0, 1], sample_size=True)
    with pytest.raises(InvalidParameterError, match="'sample_size' parameter of silhouette"):
        metrics.silhouette(Untouchable(), [0, 1], sample_size=1)
    with pytest.raises(InvalidParameterError, match="'random_state' parameter of score"):
        metrics.score([0, 1], [0, 1], random_state="0")


def test_metrics_accept_numpy_scalars(blobs):
    X, y = blobs
    assert metrics.silhouette(X, y, sample_size=np.int64(50), random_state=np.int64(1)) > 0.5


# ============================================================================ kit.io, kit.embed
import kit  # noqa: E402
from kit.io import load_folder, read_image  # noqa: E402


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_pixels=0), r"'max_pixels' parameter of read_image must be an int in the range \[1, inf\); got 0"),
    (dict(max_pixels=True), "'max_pixels' parameter of read_image"),
    (dict(size=True), r"'size' parameter of read_image must be an int in the range \[1, inf\) or None; got True"),
    (dict(size=64, resize="zoom"), r"'resize' parameter of read_image must be a str among "
                                   r"\{'center_crop', 'pad', 'squash'\}; got 'zoom'"),
])
def test_read_image_checks_parameters_before_opening_the_file(kwargs, match, tmp_path):
    with pytest.raises(InvalidParameterError, match=match):
        read_image(tmp_path / "missing.jpg", **kwargs)  # not the "cannot decode" error


def test_read_image_accepts_numpy_scalars(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "a.png")
    arr = read_image(tmp_path / "a.png", size=np.int64(16), max_pixels=np.int64(10_000))
    assert arr.shape == (16, 16, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_pixels=-5), "'max_pixels' parameter of load_folder"),
    (dict(recursive="yes"), "'recursive' parameter of load_folder must be a bool"),
    (dict(labels=3), "'labels' parameter of load_folder must be an instance of 'str', an instance of "
                     "'os.PathLike' or None; got 3"),
])
def test_load_folder_checks_parameters_before_the_folder(kwargs, match, tmp_path):
    with pytest.raises(InvalidParameterError, match=match):
        load_folder(tmp_path / "no-such-folder", **kwargs)  # not NotADirectoryError


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), r"'batch_size' parameter of embed must be an int in the range \[1, inf\); got 0 \(int\)"),
    (dict(batch_size=True), r"'batch_size' parameter of embed .*; got True \(bool\)"),
    (dict(batch_size=8.0), r"'batch_size' parameter of embed .*; got 8\.0 \(float\)"),
    (dict(num_workers=0), r"'num_workers' parameter of embed must be an int in the range \[1, inf\) or None"),
    (dict(resize="zoom"), "'resize' parameter of embed must be a str among"),
    (dict(use_cache="no"), "'use_cache' parameter of embed must be a bool"),
    (dict(progress="bar"), "'progress' parameter of embed must be a callable or None"),
])
def test_embed_checks_parameters_before_reading_images(kwargs, match, tmp_path):
    with pytest.raises(InvalidParameterError, match=match):
        kit.embed(tmp_path / "no-such-folder", **kwargs)


# ============================================================================ kit.project
from kit import project as P  # noqa: E402


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="isomap"), r"'method' parameter of project must be a str among \{'pca', 'tsne', 'umap'\}; "
                            r"got 'isomap'"),
    (dict(n_components=True), r"'n_components' parameter of project must be an int in the range \[1, 3\]; "
                              r"got True \(bool\)"),
    (dict(n_components=0), r"'n_components' parameter of project .*got 0"),
    (dict(random_state=1.5), "'random_state' parameter of project"),
    (dict(use_cache=1), "'use_cache' parameter of project must be a bool"),
    (dict(method="tsne", perplexity=0), r"'perplexity' parameter of project\(method='tsne'\) must be a float in "
                                        r"the range \(0, inf\); got 0"),
    (dict(method="tsne", perplexity=True), r"'perplexity' parameter of project\(method='tsne'\)"),
    (dict(method="umap", n_neighbors=1), r"'n_neighbors' parameter of project\(method='umap'\) must be an int in "
                                         r"the range \[2, inf\); got 1"),
    (dict(method="umap", min_dist=-0.5), r"'min_dist' parameter of project\(method='umap'\)"),
])
def test_project_checks_parameters_before_reading_X(kwargs, match, tmp_path):
    with pytest.raises(InvalidParameterError, match=match):
        P.project(Untouchable(), cache_dir=tmp_path, **{"method": "pca", **kwargs})


def test_project_accepts_numpy_scalars(tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 6))
    p = P.project(X, method="PCA", n_components=np.int64(2), random_state=np.int64(3), cache_dir=tmp_path)
    assert p.coords.shape == (30, 2) and p.params["random_state"] == 3 and type(p.params["random_state"]) is int
    t = P.project(X, method="tsne", perplexity=np.float32(5.0), n_jobs=1, use_cache=False)
    assert t.coords.shape == (30, 2)


def test_trustworthiness_checks_n_neighbors_first():
    with pytest.raises(InvalidParameterError, match=r"'n_neighbors' parameter of trustworthiness must be an int in "
                                                    r"the range \[1, inf\); got True \(bool\)"):
        P.trustworthiness(Untouchable(), Untouchable(), n_neighbors=True)
    X = np.random.default_rng(0).normal(size=(20, 4))
    assert P.trustworthiness(X, X, n_neighbors=np.int64(3), metric="euclidean") == pytest.approx(1.0)


def test_public_functions_document_no_unchecked_numeric_parameter():
    """Every numeric or option parameter of these public functions is named in a validate_params call."""
    import importlib

    kit = type("Modules", (), {m: importlib.import_module(f"kit.{m}")
                               for m in ("cluster", "embedding", "io", "metrics", "project")})
    checked = {
        kit.cluster.k_distance: {"k"}, kit.cluster.reduce: {"n_components", "whiten", "random_state"},
        kit.cluster.rerank_distance: {"k1", "k2", "lambda_value"},
        kit.metrics.silhouette: {"sample_size", "random_state", "metric"},
        kit.io.read_image: {"size", "resize", "max_pixels"}, kit.io.load_folder: {"labels", "recursive", "max_pixels"},
        kit.embedding.embed: {"batch_size", "resize", "num_workers", "use_cache"},
        kit.project.project: {"method", "n_components", "random_state"},
        kit.project.trustworthiness: {"n_neighbors", "metric"},
    }
    for fn, names in checked.items():
        source = inspect.getsource(fn)
        assert "validate_params(" in source, fn.__name__
        for name in names:
            assert f'"{name}"' in source, (fn.__name__, name)


# ============================================================================ kit.k
from kit import k as K  # noqa: E402


@pytest.mark.parametrize("fn, kwargs, match", [
    (K.estimate, dict(random_state=True), r"'random_state' parameter of estimate .*got True \(bool\)"),
    (K.estimate, dict(n_bootstrap=-1), r"'n_bootstrap' parameter of estimate must be an int in the range \[0, inf\)"),
    (K.estimate, dict(bootstrap_fraction=0), r"'bootstrap_fraction' parameter of estimate"),
    (K.estimate, dict(reduce_to=True), r"'reduce_to' parameter of estimate"),
    (K.estimate, dict(methods="elbow"), r"'methods' parameter of estimate"),
    (K.estimate, dict(methods=["elbow", "kmeans"]), r"methods has \['kmeans'\]"),
    (K.prediction_strength, dict(threshold=1.5), r"'threshold' parameter of prediction_strength"),
    (K.prediction_strength, dict(n_splits=True), r"'n_splits' parameter of prediction_strength"),
    (K.dendrogram, dict(criterion="largest"), r"'criterion' parameter of dendrogram must be a str among"),
    (K.dendrogram, dict(linkage="median"), r"'linkage' parameter of dendrogram"),
    (K.gap_statistic, dict(n_refs=0), r"'n_refs' parameter of gap_statistic"),
    (K.eigengap, dict(n_neighbors=2.5), r"'n_neighbors' parameter of eigengap"),
    (K.probe_count, dict(threshold=2.0), r"'threshold' parameter of probe_count"),
    (K.elbow, dict(random_state=-1), r"'random_state' parameter of elbow"),
])
def test_k_functions_check_parameters_before_reading_X(fn, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        fn(Untouchable(), **kwargs)


@pytest.mark.parametrize("k_range", [(2,), (2.0, 5), (True, 5), "2-5"])
def test_k_range_must_be_a_pair_of_ints(k_range):
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match="k_range"):
        K.elbow(X, k_range=k_range)


def test_word_vectors_checks_top_before_any_image_is_read():
    with pytest.raises(InvalidParameterError, match=r"'top' parameter of word_vectors .*got True \(bool\)"):
        K.word_vectors(["/nonexistent/photo.jpg"], top=True)


def test_k_functions_accept_numpy_scalars():
    X = np.random.default_rng(0).normal(size=(60, 4))
    est = K.prediction_strength(X, k_range=(np.int64(2), np.int64(4)), threshold=np.float32(0.8),
                                n_splits=np.int64(1), random_state=np.int64(1))
    assert est.method == "prediction_strength"
    assert K.dendrogram(X, k_range=(2, 5), criterion="ratio").k in range(2, 6)
