"""What users receive points at nothing outside the repository (issue 11).

The library, the dashboard, the notebooks and the README must not cite the developers' shared folder (which users
never get) nor the internal project numbers ("seed 002"); they name the method and its source instead.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted([*ROOT.joinpath("kit").rglob("*.py"), *ROOT.joinpath("dashboard").rglob("*.py"),
                  *ROOT.joinpath("notebooks").glob("*.ipynb"), ROOT / "README.md", *ROOT.joinpath("docs").glob("*.md")])
FORBIDDEN = re.compile(r"\.\./shared|shared/data|shared\"\s*/\s*\"data|seed\s*0\d\d|K-ESTIMATION\.md|DESIGN\.md",
                       re.IGNORECASE)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_outside_the_repository(path):
    hits = [f"line {i}: {line.strip()[:120]}" for i, line in enumerate(path.read_text().splitlines(), 1)
            if FORBIDDEN.search(line)]
    assert not hits, f"{path.relative_to(ROOT)} points outside the repository:\n" + "\n".join(hits)


def test_the_shipped_files_are_found():
    names = {p.name for p in SHIPPED}
    assert {"README.md", "streamlit_app.py", "__init__.py", "06_face_clustering.ipynb"} <= names
