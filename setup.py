"""Build hook: ship the built-in photos (``assets/clothing``, CC0, 500 photos) as package data of ``kit.datasets``.

The photos live at the top of the repository (``assets/``, with their licence and source note); a wheel carries a
copy under ``kit/datasets/clothing`` so that ``pip install .`` gives ``kit.datasets.clothing()`` from any folder.
An editable install (``pip install -e .``, what ``make`` does) reads them from ``assets/`` directly.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSETS = Path(__file__).resolve().parent / "assets" / "clothing"


class BuildPyWithPhotos(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or not ASSETS.is_dir():
            return
        target = Path(self.build_lib) / "kit" / "datasets" / "clothing"
        shutil.copytree(ASSETS, target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithPhotos})
