"""The kit installs like a library (issue 26): ``pip install .`` gives a kit whose built-in photos load from any
folder and that embeds them; the declared dependency ranges admit the exact versions ``make`` installs; the
console script runs."""
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The repository installed with ``pip install --no-deps --target DIR .`` (from a copy of what a wheel is built
    from, so nothing is written into the checkout; the build uses this environment's setuptools)."""
    work = tmp_path_factory.mktemp("pip")
    src = work / "src"
    for name in ("kit", "assets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, timeout=900, cwd=work)
    shutil.rmtree(src)  # the installed kit must not need the source
    return target


def test_pip_install_loads_the_photos_and_embeds_from_any_folder(installed, tmp_path):
    code = ("import sys, kit\n"
            f"assert kit.__file__.startswith({str(installed)!r}), kit.__file__\n"
            "folder = kit.datasets.clothing()\n"
            f"assert str(folder).startswith({str(installed)!r}), folder\n"
            "paths = sorted(str(p) for p in folder.rglob('*.jpg'))\n"
            "emb = kit.embed(paths[:3], cache_dir='cache')\n"
            "print(len(paths), emb.vectors.shape, emb.unreadable.shape[0])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONPATH": str(installed)})  # the suite's own KIT_HOME
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[-2] == "500 (3, 1280) 0"
    assert not (tmp_path / "kit").exists()  # nothing of the kit was written beside the user's files but the cache


def test_the_console_script_is_declared_and_runs(installed, tmp_path):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"kit": "kit.cli:main"}
    out = subprocess.run([sys.executable, "-c", "import sys; from kit.cli import main; sys.exit(main(['--help']))"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(installed)})  # the suite's own KIT_HOME
    assert out.returncode == 0, out.stderr[-3000:]
    assert "usage:" in out.stdout and "embed" in out.stdout and "compare" in out.stdout


def test_declared_ranges_admit_the_locked_versions():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    for extra, reqs in project["optional-dependencies"].items():
        declared += [Requirement(r) for r in reqs if not r.startswith("kit[")]
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s#]+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(3)
    names = {r.name.lower().replace("_", "-") for r in declared}
    assert {"tensorflow", "numpy", "scikit-learn", "faiss-cpu", "dlib-bin", "streamlit"} <= names
    for r in declared:
        name = r.name.lower().replace("_", "-")
        if name in pins:
            assert r.specifier.contains(pins[name], prereleases=True), (str(r), pins[name])
    assert {"faces", "scale", "dashboard", "notebooks", "dev"} <= set(project["optional-dependencies"])
