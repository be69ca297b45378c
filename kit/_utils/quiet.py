"""TensorFlow kept quiet: its C++ (absl) log lines never reach a user's notebook, terminal or server log.

TensorFlow 2.21 writes lines such as ``I0000 00:00:... port.cc:153] oneDNN custom operations are on``,
``Could not find cuda drivers``, ``failed call to cuInit`` and the SavedModel loader's and TFLite converter's
lines straight to file descriptor 2, before (and regardless of) ``TF_CPP_MIN_LOG_LEVEL``; in Jupyter they show as
red boxes that look like failures. :func:`quiet` runs a block with descriptor 2 sent to a temporary file, then
passes on every line that is not such a log line (a real error still shows), raises the ``absl`` Python logger to
ERROR and holds back records below ERROR of the ``tensorflow`` Python logger, for the block only. (TensorFlow sets
its own logger to INFO, with a handler of its own, the first time it logs in an interactive session such as a
notebook, and a model export then prints ``INFO:tensorflow:Assets written to: ...``; a filter holds whatever level
it sets.) The user's logging settings are as they were afterwards.

Every place the kit imports TensorFlow (or Keras, TF-Hub), exports, converts or loads a model runs inside it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading

# absl's format: a severity letter, MMDD, a time, a thread id, file:line] message
_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] ")
_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"^To enable the following instructions: .* in other operations, rebuild TensorFlow"),
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.?$"),
    re.compile(r"^(INFO|DEBUG):(tensorflow|absl):"),  # the Python loggers, printed by logging's default format
)


def _error_and_above(record: logging.LogRecord) -> bool:
    """Logging filter: keep a record only at ERROR or above (TensorFlow's INFO lines stay out of the notebook)."""
    return record.levelno >= logging.ERROR


_LOCK = threading.RLock()
_DEPTH = [0]


def is_tensorflow_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's C++ log lines (what :func:`quiet` holds back)."""
    line = line.rstrip("\n")
    return bool(_LOG_LINE.match(line)) or any(p.match(line) for p in _NOISE)


@contextlib.contextmanager
def quiet():
    """Run the block with TensorFlow's C++ log lines held back (see the module); nests; other output written
    to descriptor 2 meanwhile is passed on to ``sys.stderr`` when the block ends."""
    with _LOCK:
        _DEPTH[0] += 1
        outer = _DEPTH[0] == 1
        saved = capture = None
        absl, tensorflow = logging.getLogger("absl"), logging.getLogger("tensorflow")
        level = absl.level
        if outer:
            absl.setLevel(logging.ERROR)
            tensorflow.addFilter(_error_and_above)
            try:
                for stream in (sys.stderr, sys.__stderr__):
                    if stream is not None:
                        stream.flush()
                capture = tempfile.TemporaryFile(mode="w+b")
                saved = os.dup(2)
                os.dup2(capture.fileno(), 2)
            except (OSError, ValueError, AttributeError):  # no descriptor 2 (some embedded hosts): just run
                if capture is not None:
                    capture.close()
                saved = capture = None
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if outer:
                absl.setLevel(level)
                tensorflow.removeFilter(_error_and_above)
                if saved is not None:
                    os.dup2(saved, 2)
                    os.close(saved)
                    capture.seek(0)
                    text = capture.read().decode("utf-8", "replace")
                    capture.close()
                    kept = [ln for ln in text.splitlines(keepends=True) if not is_tensorflow_noise(ln)]
                    if kept and sys.stderr is not None:
                        sys.stderr.write("".join(kept))
                        sys.stderr.flush()


def tensorflow():
    """``import tensorflow`` quietly; the module."""
    with quiet():
        import tensorflow as tf
    return tf


def quiet_import(name: str):
    """``importlib.import_module(name)`` quietly (``"tensorflow"``, ``"keras"``, ``"tensorflow_hub"``)."""
    import importlib

    with quiet():
        return importlib.import_module(name)
