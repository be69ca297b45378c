"""TensorFlow kept quiet (issue 31): its C++ log lines, written straight to descriptor 2, are held back around the
kit's TensorFlow work; anything else written there still shows; the user's logging settings are untouched."""
import logging
import os
import subprocess
import sys

import pytest

from kit._utils.quiet import is_tensorflow_noise, quiet

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796652931.347454   14558 port.cc:153] oneDNN custom operations are on. You may see slightly\n",
    "E0000 00:00:1796652121.550742    6745 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
    "W0000 00:00:1796652125.572682    6745 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.\n",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    "INFO:tensorflow:Assets written to: /tmp/kit/models/.efficientnet_lite0.tmp-1/assets\n",
]


def test_the_log_lines_are_recognised_and_nothing_else():
    assert all(is_tensorflow_noise(line) for line in NOISE)
    for line in ("Traceback (most recent call last):\n", "ValueError: bad photo\n", "I0000 is my label\n",
                 "Embedding 10/20 photos\n", "WARNING: your disk is full\n", "INFO:mymodule:started\n"):
        assert not is_tensorflow_noise(line)


def test_quiet_holds_back_the_noise_passes_on_the_rest_and_restores_logging(capfd):
    absl = logging.getLogger("absl")
    absl.setLevel(logging.INFO)  # the user's setting
    with quiet():
        with quiet():  # nested: one capture
            assert absl.level == logging.ERROR
            for line in NOISE:
                os.write(2, line.encode())
            os.write(2, b"a real error\n")
    assert absl.level == logging.INFO
    err = capfd.readouterr().err
    assert err == "a real error\n"
    os.write(2, NOISE[1].encode())  # outside: descriptor 2 is the caller's again
    assert capfd.readouterr().err == NOISE[1]


def test_embedding_in_a_new_process_prints_no_tensorflow_line(tmp_path):
    """The whole path a notebook takes on a fresh machine: TensorFlow imported, the default backbone exported
    and converted, the photos embedded; then again from the caches."""
    code = ("import kit; images = kit.load_folder(kit.datasets.sample_folder()); "
            "print(kit.embed(images, backbone='efficientnet_lite0').vectors.shape)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["KIT_HOME"] = str(tmp_path / "home")
    for run in ("cold", "warm"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        noisy = [line for line in out.stderr.splitlines(keepends=True) if is_tensorflow_noise(line)]
        assert not noisy, (run, noisy[:5])
        assert "1280" in out.stdout


@pytest.mark.parametrize("session", ["interactive", "basicConfig"])
def test_a_model_export_logs_nothing_in_a_notebook_like_session(tmp_path, session):
    """In a notebook (an interactive session: TensorFlow then sets its Python logger to INFO with its own handler)
    or a script with logging.basicConfig(level=INFO), every built-in model the kit exported printed
    'INFO:tensorflow:Assets written to: <temporary path>' (seen in notebook 04). The kit holds those records back
    during its work and leaves the user's own INFO lines alone."""
    code = ("import logging\n"
            + ("logging.basicConfig(level=logging.INFO)\n" if session == "basicConfig" else "")
            + "import kit\n"
            "imgs = kit.load_folder(kit.datasets.sample_folder())\n"
            "kit.embed(imgs.paths[:4], backbone='efficientnet_lite0')\n"
            "logging.getLogger('tensorflow').warning('mine')\n")
    env = {**os.environ, "KIT_HOME": str(tmp_path / "kit")}
    flags = ["-i"] if session == "interactive" else []  # -i: sys.flags.interactive, as TensorFlow checks
    run = subprocess.run([sys.executable, *flags, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout + run.stderr
    assert "Assets written" not in out and not [ln for ln in out.splitlines() if is_tensorflow_noise(ln)], out[-2000:]
    assert "mine" in out  # the user's own logging through the same logger still shows
