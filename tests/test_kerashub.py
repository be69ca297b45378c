"""The KerasHub kind (issue 30), without internet: tiny randomly initialised presets are built with KerasHub's own
classes, saved with ``save_to_preset`` and loaded through the same path as a downloaded preset (by folder, and by a
``kaggle://``/``hf://`` handle whose cache folder the test fills)."""
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kit
from kit import backbones

pytest.importorskip("keras_hub")

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "assets" / "clothing" / "images"
SIZE = 56  # 4 x 4 patches of 14 px: tiny and fast


def _photos(n=6):
    folders = sorted(p for p in PHOTOS.iterdir() if p.is_dir())
    return [sorted(f.glob("*.jpg"))[0] for f in folders[:n]]


def _save_tiny_dinov2(folder, seed=0):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    net = keras_hub.models.DINOV2Backbone(patch_size=14, num_layers=2, hidden_dim=32, num_heads=2, intermediate_dim=64,
                                         image_shape=(SIZE, SIZE, 3), position_embedding_shape=(SIZE, SIZE, 3))
    net.save_to_preset(str(folder))
    std, mean = (0.229, 0.224, 0.225), (0.485, 0.456, 0.406)
    keras_hub.layers.DINOV2ImageConverter(image_size=(SIZE, SIZE), scale=[1 / 255 / s for s in std],
                                          offset=[-m / s for m, s in zip(mean, std)]).save_to_preset(str(folder))
    return folder


@pytest.fixture(scope="module")
def dino_folder(tmp_path_factory):
    return _save_tiny_dinov2(tmp_path_factory.mktemp("presets") / "tiny_dinov2")


def test_import_kit_and_listing_do_not_import_keras_hub():
    code = ("import sys, kit; t = kit.backbones.available(); "
            "row = t.set_index('name').loc['dinov2_small']; "
            "print(row.source, bool(row.offline), 'keras_hub' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env={**__import__("os").environ, "KAGGLEHUB_CACHE": "/nonexistent-kagglehub"})
    assert out.stdout.split() == ["kerashub", "False", "False", "False"]


def test_registry_names_and_their_notes():
    for name in ("dinov2_small", "dinov2_base", "siglip_base_patch16_224", "clip_vit_base_patch32"):
        spec = backbones.get(name)
        assert spec.source == "kerashub" and spec.input_size == 224 and spec.feature_dim
        assert "download on first use" in spec.description
    assert backbones.has_text("clip_vit_base_patch32") and not backbones.has_text("dinov2_small")


def test_preset_folder_embeds_l2_normalised_cls_vectors_and_hits_the_cache(dino_folder, tmp_path):
    photos = _photos()
    spec = backbones.get(str(dino_folder))
    assert spec.source == "kerashub" and spec.name == str(dino_folder.resolve())
    emb = kit.embed(photos, backbone=str(dino_folder), cache_dir=tmp_path / "cache")
    assert emb.vectors.shape == (len(photos), 32)
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    assert emb.stats["computed"] == len(photos)
    assert emb.preprocessing["input_size"] == 224 and emb.preprocessing["range"] == "0-255"
    again = kit.embed(photos, backbone=str(dino_folder), cache_dir=tmp_path / "cache")
    assert again.stats["cached"] == len(photos) and again.stats["computed"] == 0
    np.testing.assert_array_equal(again.vectors, emb.vectors)
    # the vector is the CLS token of the model's own output on the converter's normalisation
    import keras_hub

    net = keras_hub.models.Backbone.from_preset(str(dino_folder), image_shape=(224, 224, 3))
    x = np.stack([kit.read_image(p, size=224) for p in photos[:2]]).astype("float32")
    x = x * np.float32(1 / 255) / np.array([0.229, 0.224, 0.225], "float32") - \
        np.array([0.485, 0.456, 0.406], "float32") / np.array([0.229, 0.224, 0.225], "float32")
    cls = np.array(net({"images": x})[:, 0])
    cls /= np.linalg.norm(cls, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.vectors[:2], cls, atol=1e-4)


def test_cache_key_holds_identity_weights_and_size(dino_folder, tmp_path):
    spec = backbones.get(str(dino_folder))
    key = spec.cache_key
    assert key.startswith("kerashub:folder:DINOV2Backbone:") and key.endswith(":cls:224")
    assert backbones.get(str(dino_folder), input_size=112).cache_key != key
    other = _save_tiny_dinov2(tmp_path / "other", seed=1)  # same architecture, other weights
    assert backbones.get(str(other)).cache_key != key
    copy = shutil.copytree(dino_folder, tmp_path / "copy")  # same files elsewhere: same key
    assert backbones.get(str(copy)).cache_key == key


def _fill_kaggle_cache(root, folder, handle):
    owner, model, framework, variation, version = handle.removeprefix("kaggle://").split("/")
    shutil.copytree(folder, Path(root) / "models" / owner / model / framework / variation / version)


def test_handle_loads_from_a_filled_cache_offline(dino_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    handle = "kaggle://tester/tiny/keras/tiny_dinov2/2"
    assert not backbones.is_offline_ready(backbones.get(handle))
    _fill_kaggle_cache(tmp_path / "kagglehub", dino_folder, handle)
    assert backbones.is_offline_ready(backbones.get(handle))
    photos = _photos(3)
    by_handle = kit.embed(photos, backbone=handle, use_cache=False)
    by_folder = kit.embed(photos, backbone=str(dino_folder), use_cache=False)
    np.testing.assert_allclose(by_handle.vectors, by_folder.vectors, atol=1e-6)
    assert by_handle.backbone == handle
    # without a version: the newest one in the cache
    assert backbones.fetch("kaggle://tester/tiny/keras/tiny_dinov2").name == "2"
    # a Hugging Face handle: the snapshot its refs/main names
    repo = tmp_path / "hf" / "models--tester--tiny_dinov2"
    shutil.copytree(dino_folder, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    by_hf = kit.embed(photos, backbone="hf://tester/tiny_dinov2", use_cache=False)
    np.testing.assert_allclose(by_hf.vectors, by_folder.vectors, atol=1e-6)


@pytest.mark.parametrize("handle", ["kaggle://nobody/nothing/keras/none/1", "hf://nobody/nothing", "dinov2_small"])
def test_a_preset_not_in_the_cache_fails_fast_with_what_to_do(handle, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    start = time.perf_counter()
    with pytest.raises(backbones.BackboneUnavailableError) as info:
        kit.embed(_photos(1), backbone=handle, cache_dir=tmp_path / "cache")
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert handle in message and "kit.backbones.fetch(" in message and "offline" in message
    assert "download of" in message and "efficientnet_lite0" in message
    if handle == "dinov2_small":
        assert "90 MB" in message and "kaggle://keras/dinov2/keras/dinov2_small/1" in message


def test_malformed_handles_and_non_presets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="kaggle://owner/model"):
        backbones.get("kaggle://just/two")
    with pytest.raises(ValueError, match="hf://owner/model"):
        backbones.get("hf://a/b/c")
    with pytest.raises(ValueError, match="fetch\\(\\) downloads KerasHub presets"):
        backbones.fetch("efficientnet_lite0")


def test_batch_size_is_capped_by_input_size():
    from kit.backbones import _kerashub

    small = dict(patch=14, hidden=384, heads=6, intermediate=1536, weights_bytes=90e6)  # dinov2_small
    large = dict(patch=14, hidden=1024, heads=16, intermediate=4096, weights_bytes=1.2e9)
    assert _kerashub.batch_cap(small, 224) >= 32
    assert _kerashub.batch_cap(small, 518) < _kerashub.batch_cap(small, 224)
    assert 1 <= _kerashub.batch_cap(large, 518) < 8


def test_batch_size_used_is_reported(dino_folder, tmp_path):
    emb = kit.embed(_photos(2), backbone=str(dino_folder), use_cache=False, batch_size=4)
    assert emb.stats["batch_size"] == 4 and emb.stats["runtime"] == "keras-tensorflow"
