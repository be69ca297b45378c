"""kit.backbones._runtime: the TFLite runtime computes the SavedModel's features, the probe is recorded once per machine
in kit_home()/runtime.json, KIT_RUNTIME forces a runtime, and bad settings fail clearly."""
import json

import numpy as np
import pytest

import kit
from kit import backbones
from kit.backbones import _runtime

NAME = "efficientnet_lite0"


@pytest.fixture(scope="module")
def model_dir():
    """The kit's exported Lite0 folder, in the suite's temporary KIT_HOME (see conftest)."""
    return backbones.builtin_folder(NAME)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh KIT_HOME for runtime.json (the exported model stays where model_dir put it)."""
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "kit"))
    monkeypatch.delenv("KIT_RUNTIME", raising=False)
    return tmp_path / "kit"


@pytest.fixture
def no_timing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the runtimes were timed although they should not have been")

    monkeypatch.setattr(_runtime, "_time_runtimes", refuse)


def fake_speeds(monkeypatch, speeds):
    """Stub the timing (and shrink the warm-up batch): the choice logic without the seconds it takes."""
    monkeypatch.setattr(_runtime, "PROBE_BATCH", 2)
    calls = []

    def timed(runners, x, rounds=3):
        calls.append(sorted(runners))
        return dict(speeds)

    monkeypatch.setattr(_runtime, "_time_runtimes", timed)
    return calls


def test_tflite_matches_savedmodel_on_real_photos(model_dir, home):
    paths = kit.load_folder(kit.datasets.clothing()).paths[::50][:8]
    x = np.stack([kit.read_image(p, size=224) for p in paths]).astype(np.float32) / 255
    ref = _runtime.features_fn(NAME, model_dir, runtime="savedmodel")(x)
    got = _runtime.features_fn(NAME, model_dir, runtime="tflite")(x)
    assert got.shape == ref.shape == (len(paths), 1280) and got.dtype == np.float32
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() >= 0.9999
    assert _runtime.tflite_path(NAME, model_dir).is_file()  # converted once, beside the SavedModel
    assert not list(model_dir.glob(".*tmp*"))  # no temporary file left behind


def test_probe_is_recorded_and_reused(model_dir, home, monkeypatch):
    real = _runtime._time_runtimes
    calls = []
    monkeypatch.setattr(_runtime, "_time_runtimes", lambda *a, **k: calls.append(1) or real(*a, **k))
    choice = _runtime.probe(NAME, model_dir)
    assert calls == [1]
    assert choice.runtime in _runtime.RUNTIMES and set(choice.img_per_s) == set(_runtime.RUNTIMES)
    assert choice.cosine >= 0.9999 and choice.fingerprint == _runtime.fingerprint()
    assert choice.runtime == max(choice.img_per_s, key=choice.img_per_s.get)
    record = json.loads((home / "runtime.json").read_text())["records"][f"{NAME} | {_runtime.fingerprint()}"]
    assert record["runtime"] == choice.runtime and record["img_per_s"] == choice.img_per_s

    again = _runtime.probe(NAME, model_dir / "features")  # a second call reads the record: no timing
    fn = _runtime.features_fn(NAME, model_dir)  # auto reads it too
    assert calls == [1] and again == choice and fn.runtime == choice.runtime
    timed = fake_speeds(monkeypatch, {"savedmodel": 20.0, "tflite": 10.0})
    assert _runtime.probe(NAME, model_dir, force=True).runtime == "savedmodel"  # force: timed again, replaced
    assert len(timed) == 1 and _runtime.probe(NAME, model_dir).runtime == "savedmodel" and len(timed) == 1


def test_record_is_per_machine_and_cosine_guards_the_choice(model_dir, home, monkeypatch):
    fake_speeds(monkeypatch, {"savedmodel": 10.0, "tflite": 20.0})
    monkeypatch.setattr(_runtime, "_min_cosine", lambda a, b: 0.99)
    kept = _runtime.probe(NAME, model_dir)
    assert kept.runtime == "savedmodel" and "0.99" in kept.reason and "0.9999" in kept.reason

    monkeypatch.setattr(_runtime, "fingerprint", lambda: "another machine")
    monkeypatch.setattr(_runtime, "_min_cosine", lambda a, b: 1.0)
    assert _runtime.probe(NAME, model_dir).runtime == "tflite"
    records = json.loads((home / "runtime.json").read_text())["records"]
    assert {r["runtime"] for r in records.values()} == {"savedmodel", "tflite"} and len(records) == 2


@pytest.mark.parametrize("runtime", ["savedmodel", "tflite", "TFLite "])
def test_kit_runtime_forces_a_runtime(model_dir, home, monkeypatch, no_timing, runtime):
    monkeypatch.setenv("KIT_RUNTIME", runtime)
    fn = _runtime.features_fn(NAME, model_dir)
    assert fn.runtime == runtime.strip().lower()
    assert fn(np.full((2, 224, 224, 3), 0.5, np.float32)).shape == (2, 1280)
    assert fn(np.zeros((0, 224, 224, 3), np.float32)).shape == (0, 1280)
    assert not (home / "runtime.json").exists()  # forced: nothing probed, nothing recorded


@pytest.mark.parametrize("value", ["fastest", "gpu"])
def test_bad_kit_runtime_is_a_clear_error(model_dir, home, monkeypatch, value):
    monkeypatch.setenv("KIT_RUNTIME", value)
    with pytest.raises(ValueError, match=f"KIT_RUNTIME='{value}' is not one of 'auto', 'savedmodel', 'tflite'"):
        _runtime.features_fn(NAME, model_dir)
    with pytest.raises(ValueError, match="runtime='fast' is not one of"):
        _runtime.features_fn(NAME, model_dir, runtime="fast")


def test_without_litert_auto_keeps_savedmodel_and_tflite_says_what_to_install(model_dir, home, monkeypatch,
                                                                             no_timing):
    def missing():
        raise ImportError("No module named 'ai_edge_litert'")

    monkeypatch.setattr(_runtime, "_import_litert", missing)
    choice = _runtime.probe(NAME, model_dir)
    assert choice.runtime == "savedmodel" and "pip install ai-edge-litert" in choice.reason
    assert _runtime.features_fn(NAME, model_dir).runtime == "savedmodel"
    monkeypatch.setenv("KIT_RUNTIME", "tflite")
    with pytest.raises(ImportError, match="pip install ai-edge-litert"):
        _runtime.features_fn(NAME, model_dir)


def test_bad_arguments_name_the_parameter(model_dir, home, tmp_path):
    with pytest.raises(ValueError, match="name='resnet50' is not a built-in EfficientNet-Lite"):
        _runtime.features_fn("resnet50", model_dir)
    with pytest.raises(ValueError, match="savedmodel_dir=.* holds no SavedModel"):
        _runtime.features_fn(NAME, tmp_path)
    fn = _runtime.features_fn(NAME, model_dir, runtime="savedmodel")
    with pytest.raises(ValueError, match=r"expected \(N, 224, 224, 3\)"):
        fn(np.zeros((1, 200, 200, 3), np.float32))
    foreign = tmp_path / "mine" / "features"  # a SavedModel folder the kit did not make: never written into
    foreign.mkdir(parents=True)
    (foreign / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="not a model folder exported by this kit"):
        _runtime.tflite_path(NAME, foreign)
    choice = _runtime.probe(NAME, foreign)
    assert choice.runtime == "savedmodel" and "not a model folder exported by the kit" in choice.reason
    assert sorted(p.name for p in foreign.parent.rglob("*")) == ["features", "saved_model.pb"]


def test_unreadable_record_is_never_overwritten(model_dir, home, monkeypatch):
    fake_speeds(monkeypatch, {"savedmodel": 20.0, "tflite": 10.0})
    home.mkdir(parents=True)
    (home / "runtime.json").write_text("not json")
    with pytest.warns(RuntimeWarning, match="not a runtime record the kit can read"):
        assert _runtime.probe(NAME, model_dir).runtime == "savedmodel"
    assert (home / "runtime.json").read_text() == "not json"
