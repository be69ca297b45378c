"""kit.adapt (issue 16): a tiny fine-tune runs offline, changes only the layers before the feature vector, saves a
backbone that a new process finds by name, reloads and embeds with the same vectors, and works in kit.embed (own
cache key), kit.compare and CAM; bad input gets a clear error. The real-photo gain is measured by bench/adapt.py."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kit
from kit import adapt
from kit import backbones as bb
from kit.adapt import _adapt


def _photo_folder(root: Path, per_class: dict) -> Path:
    """A labelled folder of real photos copied from the shipped clothing set: {class: count}."""
    src = Path(kit.datasets.clothing())
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True)
        for p in sorted((src / cls).iterdir())[:n]:
            shutil.copy(p, root / cls / p.name)
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two steps of 4 photos on 12 photos of 2 classes (one augmented view), last block + head trained."""
    folder = _photo_folder(tmp_path_factory.mktemp("tiny") / "shop", {"hat": 6, "shoes": 6})
    calls = []
    result = adapt.fine_tune(folder, name="tiny_ft", trainable_blocks=1, views=1, epochs=1, batch_size=4,
                             max_steps=2, random_state=0, verbose=False,
                             progress=lambda d, t, s: calls.append((d, t, s)))
    return result, folder, calls


def test_tiny_fine_tune_result(tiny):
    result, folder, calls = tiny
    assert result.name == "tiny_ft" and result.base == "efficientnet_lite0" and result.method == "supervised"
    assert result.classes == ["hat", "shoes"] and not result.reused
    assert result.params["trained_layers"] == adapt.trainable_layers("efficientnet_lite0", 1)
    assert result.params["random_state"] == 0 and result.params["trainable_blocks"] == 1
    assert len(result.history) == 1 and np.isfinite(result.history["val_loss"]).all()
    assert result.estimate["seconds_per_step"] > 0 and result.estimate["peak_memory_gb"] > 0
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] == 2 and "fine-tuning" in calls[-1][2]
    assert any("frozen blocks" in stage for _, _, stage in calls)  # the augmented views went through them first
    assert (result.path / "features" / "saved_model.pb").is_file()
    assert (result.path / "classifier" / "saved_model.pb").is_file()


def test_a_fine_tune_leaves_a_forecast_for_the_next_one(tiny):
    """Issue 17 (cost preview): the next fine-tune of the same kind is forecast from this machine's measured cost
    per photo-view or photo-epoch, scaled to the new number of photos."""
    result, _, _ = tiny
    from kit import backbones

    n_train = backbones.finetuned_note(result.path)["n_train"]
    same = adapt.forecast(n_train, "efficientnet_lite0", trainable_blocks=1, views=1, epochs=1)
    assert same is not None and same.per_item > 0
    # the same run again: the forecast is what it took (an upper bound in general: no early stop assumed)
    assert 0.5 * result.estimate["training_seconds"] <= same.seconds <= 2 * result.estimate["training_seconds"]
    bigger = adapt.forecast(10 * n_train, "efficientnet_lite0", trainable_blocks=1, views=1, epochs=1)
    assert bigger.seconds == pytest.approx(10 * same.seconds)
    assert adapt.forecast(100, "efficientnet_lite0", trainable_blocks=3) is None  # never measured here
    with pytest.raises(ValueError, match="'method' parameter of forecast"):
        adapt.forecast(100, method="magic")


def test_only_the_layers_before_the_feature_vector_change(tiny):
    result, _, _ = tiny
    tuned, base = bb.keras_model(result.name), bb.keras_model("efficientnet_lite0")
    changed = set()
    for lt, lb in zip(tuned.layers, base.layers):
        assert lt.name == lb.name
        if any(not np.array_equal(a, b) for a, b in zip(lt.get_weights(), lb.get_weights())):
            changed.add(lt.name)
    allowed = set(adapt.trainable_layers("efficientnet_lite0", 1))
    assert changed == allowed  # every allowed layer moved, nothing else did (the ImageNet head is intact)
    assert "logits" not in changed


def test_saved_backbone_reloads_and_embeds_with_the_same_vectors(tiny):
    result, folder, _ = tiny
    images = kit.load_folder(folder)
    x = np.stack([kit.read_image(p, size=224) for p in images.paths[:4]]).astype(np.float32) / 255.0
    in_memory = np.array(bb.keras_model(result.name)(x, training=False)[0])
    reloaded = bb.Backbone(bb.get(result.name)).features(x)  # a fresh hub.load from disk
    np.testing.assert_allclose(reloaded, in_memory, atol=1e-4)
    emb = kit.embed(images, backbone=result.name)
    expected = in_memory / np.linalg.norm(in_memory, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.vectors[:4], expected, atol=1e-5)
    assert emb.backbone == result.name
    base_emb = kit.embed(images, backbone="efficientnet_lite0")
    assert not np.allclose(base_emb.vectors, emb.vectors, atol=1e-3)  # its own cache entry, not the base's
    key = bb.get(result.name).cache_key
    assert key != bb.get("efficientnet_lite0").cache_key and result.name in key
    assert json.loads((result.path / bb.FINETUNED_NOTE).read_text())["weights_digest"] in key


def test_a_new_process_finds_it_by_name_without_loading_tensorflow(tiny):
    result, _, _ = tiny
    code = ("import sys, kit\n"
            "t = kit.backbones.available()\n"
            "row = t[t.name == 'tiny_ft'].iloc[0]\n"
            "spec = kit.backbones.get('tiny_ft')\n"
            "print(row.source, bool(row.offline), bool(row.can_classify), spec.feature_dim, spec.input_size,"
            " 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ}, check=True).stdout.split()
    assert out == ["finetuned", "True", "True", "1280", "224", "False"]


def test_cam_and_compare_work_on_it(tiny):
    result, folder, _ = tiny
    images = kit.load_folder(folder)
    expl = kit.inspect.cam(images.paths[:2], backbone=result.name)
    assert len(expl.heatmaps) == 2 and all(0 <= h.min() and h.max() <= 1 for h in expl.heatmaps)
    table = kit.compare(images, backbones=["efficientnet_lite0", result.name], k=2)
    assert list(table["backbone"]) == ["efficientnet_lite0", result.name]
    assert table["nmi"].notna().all()


def test_same_call_reuses_and_a_different_one_must_overwrite(tiny):
    result, folder, _ = tiny
    again = adapt.fine_tune(folder, name="tiny_ft", trainable_blocks=1, views=1, epochs=1, batch_size=4,
                            max_steps=2, random_state=0, verbose=False)
    assert again.reused and again.path == result.path
    with pytest.raises(ValueError, match=r"name='tiny_ft' is taken.*overwrite=True"):
        adapt.fine_tune(folder, name="tiny_ft", trainable_blocks=1, views=1, epochs=1, batch_size=4,
                        max_steps=2, random_state=1, verbose=False)


def test_contrastive_fine_tune_without_labels(tmp_path):
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    src = Path(kit.datasets.clothing())
    for p in [*sorted((src / "dress").iterdir())[:5], *sorted((src / "pants").iterdir())[:5]]:
        shutil.copy(p, folder / p.name)
    with pytest.raises(ValueError, match=r"views=1 must be at least 2"):
        adapt.fine_tune_contrastive(folder, views=1, verbose=False)
    result = adapt.fine_tune_contrastive(folder, name="tiny_simclr", trainable_blocks=0, views=2, epochs=1,
                                         batch_size=4, max_steps=1, verbose=False)
    assert result.method == "contrastive" and result.classes is None
    assert result.params["trained_layers"] == ["head"]
    emb = kit.embed(folder, backbone="tiny_simclr", use_cache=False)
    assert emb.vectors.shape == (10, 1280) and np.isfinite(emb.vectors).all()
    adapt.remove("tiny_simclr")
    assert "tiny_simclr" not in set(kit.backbones.available()["name"])


def test_nt_xent_prefers_matching_views():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(8, 16)).astype(np.float32)
    same = float(adapt.nt_xent(z, z + 0.01 * rng.normal(size=z.shape).astype(np.float32)))
    shuffled = float(adapt.nt_xent(z, z[::-1].copy()))
    assert same < shuffled


# ------------------------------------------------------------------ bad input, caught before any training
def test_one_class_is_refused(tmp_path):
    folder = _photo_folder(tmp_path / "one", {"hat": 10})
    with pytest.raises(ValueError, match=r"1 class \('hat'\).*at least 2 classes.*fine_tune_contrastive"):
        adapt.fine_tune(folder, verbose=False)


def test_too_few_photos_are_refused(tmp_path):
    folder = _photo_folder(tmp_path / "few", {"hat": 3, "shoes": 2})
    with pytest.raises(ValueError, match=r"5 readable photos; fine-tuning needs at least 8"):
        adapt.fine_tune(folder, verbose=False)
    folder = _photo_folder(tmp_path / "lopsided", {"hat": 9, "shoes": 1})
    with pytest.raises(ValueError, match=r"'shoes': 1.*fewer than 2 readable photos"):
        adapt.fine_tune(folder, verbose=False)


def test_unreadable_files_are_named(tmp_path):
    folder = _photo_folder(tmp_path / "broken", {"hat": 5, "shoes": 5})
    (folder / "hat" / "zz_broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=r"1 of the photos cannot be read \(.*zz_broken\.jpg.*on_unreadable='skip'"):
        adapt.fine_tune(folder, verbose=False)


def test_unlabelled_photos_point_to_the_contrastive_variant(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for p in sorted((Path(kit.datasets.clothing()) / "hat").iterdir())[:8]:
        shutil.copy(p, folder / p.name)
    with pytest.raises(ValueError, match="no labels.*fine_tune_contrastive"):
        adapt.fine_tune(folder, verbose=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"backbone": "inception_v3"}, r"backbone='inception_v3' cannot be fine-tuned.*efficientnet_lite0"),
    ({"trainable_blocks": 99}, r"trainable_blocks=99 must be an integer from 0 .* to 16"),
    ({"name": "efficientnet_lite0"}, r"name='efficientnet_lite0' is a built-in backbone"),
    ({"name": "Bad Name!"}, r"name='Bad Name!' must be"),
    ({"validation_fraction": 1.5}, r"validation_fraction"),
    ({"on_unreadable": "ignore"}, r"on_unreadable"),
    ({"views": 0}, r"views"),
])
def test_bad_parameters_name_themselves(tmp_path, kwargs, message):
    folder = _photo_folder(tmp_path / "ok", {"hat": 4, "shoes": 4})
    with pytest.raises(ValueError, match=message):
        adapt.fine_tune(folder, verbose=False, **kwargs)


def test_a_folder_the_kit_did_not_make_is_never_replaced(tmp_path):
    folder = _photo_folder(tmp_path / "ok", {"hat": 4, "shoes": 4})
    mine = bb.finetuned_root() / "users_own"
    mine.mkdir(parents=True)
    (mine / "keep.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="not made by kit.adapt"):
            adapt.fine_tune(folder, name="users_own", overwrite=overwrite, verbose=False)
    with pytest.raises(ValueError, match="not a fine-tuned backbone saved by kit.adapt"):
        adapt.remove("users_own")
    assert (mine / "keep.txt").read_text() == "mine"
    assert "users_own" not in set(kit.backbones.available()["name"])


def test_frozen_part_and_trained_part_compose_to_the_whole_network(tiny):
    result, folder, _ = tiny
    model = bb.keras_model(result.name)
    x = np.stack([kit.read_image(p, size=224) for p in kit.load_folder(folder).paths[:2]]).astype(np.float32) / 255
    for blocks in (0, 1, 4):
        prefix, tail = _adapt._split_model(model, "efficientnet_lite0", blocks)
        np.testing.assert_allclose(np.asarray(tail(prefix(x))), np.asarray(model(x)[0]), atol=1e-5)
