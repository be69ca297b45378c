"""Shared fixtures. The kit's home, TF-Hub cache and Keras home point into a temporary folder, so the
suite never touches the user's files; tests that need ../shared/data skip with a reason when it is absent."""
import os
import tempfile
from pathlib import Path

_TMP_HOME = Path(tempfile.mkdtemp(prefix="kit-tests-"))
os.environ["KIT_HOME"] = str(_TMP_HOME / "kit")
os.environ["TFHUB_CACHE_DIR"] = str(_TMP_HOME / "tfhub")
os.environ["KERAS_HOME"] = str(_TMP_HOME / "keras")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_folder(name: str) -> Path:
    folder = SHARED_DATA / name / "images"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the real-photo tests need ../shared/data beside the repository")
    return folder


@pytest.fixture(scope="session")
def clothing10():
    return shared_folder("clothing10")


@pytest.fixture(scope="session")
def clothing10_lite0(clothing10):
    """efficientnet_lite0 embeddings of all of clothing10 (computed once per session)."""
    import kit

    return kit.embed(kit.load_folder(clothing10), backbone="efficientnet_lite0")


@pytest.fixture(scope="session")
def coffee_and_cat():
    from skimage import data

    return data.coffee(), data.chelsea()


@pytest.fixture
def photo():
    """A real photo (skimage's astronaut), RGB uint8."""
    from skimage import data

    return data.astronaut()
