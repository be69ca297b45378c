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
    net = keras_hub.models.DINOV2Backbone(patch_size=14, num_layers=2, hidden_dim=32, num_heads=2,
                                         intermediate_dim=64, image_shape=(SIZE, SIZE, 3),
                                         position_embedding_shape=(SIZE, SIZE, 3))
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
    assert emb.preprocessing["input_size"] == SIZE and emb.preprocessing["range"] == "0-255"  # the converter's
    again = kit.embed(photos, backbone=str(dino_folder), cache_dir=tmp_path / "cache")
    assert again.stats["cached"] == len(photos) and again.stats["computed"] == 0
    np.testing.assert_array_equal(again.vectors, emb.vectors)
    # the vector is the CLS token of the model's own output on the converter's normalisation
    import keras_hub

    net = keras_hub.models.Backbone.from_preset(str(dino_folder))
    x = np.stack([kit.read_image(p, size=SIZE) for p in photos[:2]]).astype("float32")
    x = x * np.float32(1 / 255) / np.array([0.229, 0.224, 0.225], "float32") - \
        np.array([0.485, 0.456, 0.406], "float32") / np.array([0.229, 0.224, 0.225], "float32")
    cls = np.array(net({"images": x})[:, 0])
    cls /= np.linalg.norm(cls, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.vectors[:2], cls, atol=1e-4)


def test_cache_key_holds_identity_weights_and_size(dino_folder, tmp_path):
    spec = backbones.get(str(dino_folder))
    key = spec.cache_key
    assert key.startswith("kerashub:folder:DINOV2Backbone:") and key.endswith(f":cls:{SIZE}")
    assert backbones.get(str(dino_folder), input_size=112).cache_key != key  # DINOv2 runs at any size
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


# ------------------------------------------------------------------ text: a tiny CLIP with a vocabulary of its own
WORDS = ["a", "red", "dress", "blue", "shoe", "green", "hat", "white", "shirt", "photo", "of", "pants", "grey"]
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def _tiny_bpe(words):
    """A byte-pair vocabulary and merges covering ``words`` as whole tokens and any other text byte by byte, like
    CLIP's (the end-of-text token has the largest id, as CLIP's text pooler expects)."""
    from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

    vocab, merges = {}, []
    for ch in sorted(set("".join(words)) | set(bytes_to_unicode()[1])):
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    for w in words:
        parts = [*w[:-1], w[-1] + "</w>"]
        cur = parts[0]
        for t in parts[1:]:
            if f"{cur} {t}" not in merges:
                merges.append(f"{cur} {t}")
            cur += t
            vocab.setdefault(cur, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def _clip_parts(size=SIZE, seed=0):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    vocab, merges = _tiny_bpe(WORDS)
    tokenizer = keras_hub.models.CLIPTokenizer(vocabulary=vocab, merges=merges)
    vision = keras_hub.models.CLIPVisionEncoder(patch_size=14, hidden_dim=32, num_layers=2, num_heads=2,
                                                intermediate_dim=64, image_shape=(size, size, 3))
    text = keras_hub.models.CLIPTextEncoder(vocabulary_size=len(vocab), embedding_dim=32, hidden_dim=32, num_layers=2,
                                            num_heads=2, intermediate_dim=64, max_sequence_length=16)
    net = keras_hub.models.CLIPBackbone(vision_encoder=vision, text_encoder=text, projection_dim=16)
    converter = keras_hub.layers.CLIPImageConverter(image_size=(size, size), scale=[1 / 255 / s for s in CLIP_STD],
                                                    offset=[-m / s for m, s in zip(CLIP_MEAN, CLIP_STD)])
    prep = keras_hub.models.CLIPPreprocessor(tokenizer=tokenizer, image_converter=converter, sequence_length=16)
    return net, prep


def _contrastive_fit(net, prep, images, captions, steps=80):
    """Align each photo with its caption (CLIP's symmetric contrastive loss), a few Adam steps."""
    import keras
    import tensorflow as tf

    x = prep.image_converter(tf.constant(images, tf.float32))
    tokens = prep.packer(prep.tokenizer(tf.strings.lower(tf.constant(captions))))[0]
    weights = [w for w in net.trainable_weights if "logit_scale" not in w.path]
    opt = keras.optimizers.Adam(3e-3)
    opt.build(weights)
    labels = tf.range(len(captions))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            v = tf.math.l2_normalize(net.get_vision_embeddings(x), axis=1)
            t = tf.math.l2_normalize(net.get_text_embeddings(tokens), axis=1)
            logits = 10.0 * tf.matmul(v, t, transpose_b=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)) + \
                tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, tf.transpose(logits),
                                                                            from_logits=True))
        opt.apply(tape.gradient(loss, weights), weights)
        return loss

    for _ in range(steps):
        loss = step()
    return float(loss)


CAPTIONS = ["a red dress", "a blue shoe", "a green hat", "a white shirt", "grey pants"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A tiny CLIP preset fitted so that each of five photos matches its caption."""
    net, prep = _clip_parts()
    prep.build(None)
    photos = _photos(len(CAPTIONS))
    images = np.stack([kit.read_image(p, size=SIZE) for p in photos]).astype("float32")
    loss = _contrastive_fit(net, prep, images, CAPTIONS)
    assert loss < 0.5, loss
    folder = tmp_path_factory.mktemp("presets") / "tiny_clip"
    net.save_to_preset(str(folder))
    prep.save_to_preset(str(folder))
    return folder, photos


def test_text_and_photos_share_one_space_and_rank_the_aligned_photo_first(clip_folder, tmp_path):
    folder, photos = clip_folder
    assert backbones.has_text(str(folder))
    emb = kit.embed(photos, backbone=str(folder), cache_dir=tmp_path / "cache")
    assert emb.vectors.shape == (len(photos), 16) and emb.preprocessing["input_size"] == SIZE
    T = kit.embed_text(CAPTIONS, backbone=str(folder))
    assert T.shape == (len(CAPTIONS), 16) and T.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(T, axis=1), 1.0, atol=1e-5)
    assert kit.search.embed_text("a red dress", backbone=str(folder)).shape == (1, 16)
    for i, caption in enumerate(CAPTIONS):
        hits = kit.search.by_text(emb, caption, k=3)
        assert list(hits.columns) == ["rank", "row", "path", "score"]
        assert hits["row"].iloc[0] == i and hits["path"].iloc[0] == str(photos[i]), (caption, hits)
        assert hits["score"].is_monotonic_decreasing and list(hits["rank"]) == [1, 2, 3]
    scores = kit.search.text_scores(emb, CAPTIONS)
    assert (scores.argmax(axis=0) == np.arange(len(CAPTIONS))).all()
    # the same rows come from the model's own text path (tokenizer, projection) and image path
    import keras_hub

    net = keras_hub.models.CLIPBackbone.from_preset(str(folder))
    prep = keras_hub.models.CLIPPreprocessor.from_preset(str(folder))
    out = prep({"images": np.stack([kit.read_image(p, size=SIZE) for p in photos]).astype("float32"),
                "prompts": CAPTIONS})
    ref_t = np.array(net.get_text_embeddings(out["token_ids"]))
    ref_v = np.array(net.get_vision_embeddings(out["images"]))
    np.testing.assert_allclose(T, ref_t / np.linalg.norm(ref_t, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(emb.vectors, ref_v / np.linalg.norm(ref_v, axis=1, keepdims=True), atol=1e-4)


def test_text_needs_a_language_aligned_backbone(dino_folder, clip_folder):
    emb = kit.embed(_photos(2), backbone=str(dino_folder), use_cache=False)
    with pytest.raises(ValueError, match="no text tower"):
        kit.search.by_text(emb, "a red dress")
    with pytest.raises(ValueError, match="no text tower"):
        kit.embed_text("a red dress", backbone="efficientnet_lite0")
    with pytest.raises(ValueError, match="query="):
        kit.search.by_text(emb, "")
    with pytest.raises(ValueError, match="k"):
        kit.search.by_text(emb, "a red dress", k=0)
    with pytest.raises(ValueError, match="same model"):
        kit.search.by_text(emb, "a red dress", backbone=str(clip_folder[0]))


# ------------------------------------------------------------------ the kit's preprocessing = the preset's converter
def test_preprocessing_equals_the_presets_own_image_converter_on_real_photos(tmp_path):
    """The kit decodes and centre-crops with Pillow, then applies the converter's scale and offset; the preset's
    converter (KerasHub, TensorFlow resize) does both itself. Same normalisation exactly; same crop and resize
    within a grey level on average (the converter does not antialias); the same vectors."""
    import keras_hub

    folder = _save_tiny_dinov2(tmp_path / "dino224")
    std, mean = (0.229, 0.224, 0.225), (0.485, 0.456, 0.406)
    keras_hub.layers.DINOV2ImageConverter(image_size=(224, 224), scale=[1 / 255 / s for s in std],
                                          offset=[-m / s for m, s in zip(mean, std)]).save_to_preset(str(folder))
    converter = keras_hub.layers.ImageConverter.from_preset(str(folder))
    spec = backbones.get(str(folder))
    assert spec.input_size == 224
    photos = sorted(PHOTOS.glob("*/*.jpg"))[::40]  # 13 real photos of every class, 240 px short side
    assert len(photos) >= 10
    kind = backbones.kind_of(spec)
    pre = kind.preprocessing(spec, backbones.EmbedOptions())
    assert pre["input_size"] == 224 and pre["resize"] == "center_crop"
    kit_inputs, own_inputs = [], []
    for p in photos:
        square = kind.decode(spec, str(p), backbones.EmbedOptions())
        x = square.astype("float32") * np.float32(1)  # what the kit feeds: the converter's scale and offset
        kit_input = x * np.asarray(pre["scale"], "float32") + np.asarray(pre["offset"], "float32")
        np.testing.assert_allclose(kit_input, np.asarray(converter(x)), atol=1e-5)  # same normalisation
        kit_inputs.append(kit_input)
        own_inputs.append(np.asarray(converter(kit.read_image(p).astype("float32"))))  # the preset's own resize
    kit_inputs, own_inputs = np.stack(kit_inputs), np.stack(own_inputs)
    grey_levels = np.abs(kit_inputs - own_inputs) * 255 * np.asarray(std, "float32")
    assert grey_levels.mean() < 1.0, grey_levels.mean()
    for a, b in zip(kit_inputs, own_inputs):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999
    net = keras_hub.models.Backbone.from_preset(str(folder), image_shape=(224, 224, 3))
    ours = kit.embed(photos, backbone=str(folder), use_cache=False).vectors
    theirs = np.array(net({"images": own_inputs})[:, 0])
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    assert (np.sum(ours * theirs, axis=1) > 0.999).all(), np.sum(ours * theirs, axis=1)


def test_clusters_are_named_in_words_by_the_text_tower(clip_folder):
    folder, photos = clip_folder
    emb = kit.embed(photos, backbone=str(folder), use_cache=False)
    labels = [0, 1, 2, 3, -1]
    names = kit.inspect.text_cluster_names(emb, labels, vocabulary=list(reversed(CAPTIONS)), prompt="{}", top=2)
    assert list(names.columns) == ["cluster", "size", "name", "score", "words", "source"]
    assert names["name"].tolist() == [*CAPTIONS[:4], "noise"]
    assert names["source"].tolist() == ["text"] * 4 + ["noise"] and np.isnan(names["score"].iloc[-1])
    assert names["words"].iloc[0].split("; ")[0] == CAPTIONS[0] and len(names["words"].iloc[0].split("; ")) == 2
    with pytest.raises(ValueError, match="prompt="):
        kit.inspect.text_cluster_names(emb, labels, vocabulary=CAPTIONS, prompt="no slot")
    with pytest.raises(ValueError, match="labels has 2 entries"):
        kit.inspect.text_cluster_names(emb, [0, 1], vocabulary=CAPTIONS)
    words = kit.inspect.imagenet_words()
    assert len(words) > 900 and "goldfish" in words and len(set(words)) == len(words)


def test_an_incomplete_preset_folder_says_so(dino_folder, tmp_path):
    broken = shutil.copytree(dino_folder, tmp_path / "broken")
    (broken / "model.weights.h5").unlink()
    assert backbones.get(str(broken)).source == "kerashub"  # listing and resolving read no weights
    with pytest.raises(backbones.BackboneUnavailableError, match="no weights file.*fetch it again"):
        kit.embed(_photos(1), backbone=str(broken), cache_dir=tmp_path / "cache")


def test_a_siglip_preset_embeds_photos_and_text_through_its_own_tokenizer(tmp_path):
    """SigLIP (attention-pooled image tower, SentencePiece tokenizer) through the same path as CLIP."""
    import io

    import keras
    import keras_hub
    import sentencepiece

    keras.utils.set_random_seed(0)
    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CAPTIONS * 3 + ["a photo of a shoe", "the pants are grey"]), model_writer=proto,
        vocab_size=19, model_type="WORD", pad_id=0, bos_id=1, eos_id=2, unk_id=3, unk_piece="<unk>")
    tokenizer = keras_hub.models.SigLIPTokenizer(proto=proto.getvalue())
    vision = keras_hub.models.SigLIPVisionEncoder(patch_size=14, hidden_dim=32, num_layers=2, num_heads=2,
                                                  intermediate_dim=64, image_shape=(SIZE, SIZE, 3))
    text = keras_hub.models.SigLIPTextEncoder(vocabulary_size=tokenizer.vocabulary_size(), embedding_dim=32,
                                              hidden_dim=32, num_layers=2, num_heads=2, intermediate_dim=64,
                                              max_sequence_length=16)
    net = keras_hub.models.SigLIPBackbone(vision_encoder=vision, text_encoder=text)
    converter = keras_hub.layers.SigLIPImageConverter(image_size=(SIZE, SIZE), scale=1 / 127.5, offset=-1.0)
    prep = keras_hub.models.SigLIPPreprocessor(tokenizer=tokenizer, image_converter=converter, sequence_length=16)
    folder = tmp_path / "tiny_siglip"
    net.save_to_preset(str(folder))
    prep.save_to_preset(str(folder))

    assert backbones.has_text(str(folder))
    photos = _photos(3)
    emb = kit.embed(photos, backbone=str(folder), use_cache=False)
    T = kit.embed_text(CAPTIONS[:2], backbone=str(folder))
    assert emb.vectors.shape == (3, 32) and T.shape == (2, 32)
    assert emb.preprocessing["scale"] == pytest.approx(1 / 127.5) and emb.preprocessing["offset"] == -1.0
    out = prep({"images": np.stack([kit.read_image(p, size=SIZE) for p in photos]).astype("float32"),
                "prompts": CAPTIONS[:2]})
    ref_v = np.array(net.get_vision_embeddings(out["images"]))
    ref_t = np.array(net.get_text_embeddings(out["token_ids"]))
    np.testing.assert_allclose(emb.vectors, ref_v / np.linalg.norm(ref_v, axis=1, keepdims=True), atol=1e-4)
    np.testing.assert_allclose(T, ref_t / np.linalg.norm(ref_t, axis=1, keepdims=True), atol=1e-5)
    assert kit.search.by_text(emb, "a red dress", k=2)["rank"].tolist() == [1, 2]
