"""The distribution the Dockerfile installs (`pip install .`) carries every package and entry
point: tests import from the source tree, so this is what catches a module left out of the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_has_every_module_and_entry_point(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True,
    )  # fmt: skip
    wheel = next(tmp_path.glob("cast_gatekeeper-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        str(p.relative_to(base)).replace("\\", "/")
        for base, package in [(ROOT, "cast_core"), (ROOT / "api", "cast_api"),
                              (ROOT / "operator", "cast_operator")]
        for p in (base / package).rglob("*.py")
    }  # fmt: skip
    assert sources and sources <= names, sorted(sources - names)
    assert {"cast_core/py.typed", "cast_api/py.typed", "cast_operator/py.typed"} <= names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "cast-api = cast_api.main:main" in text
    assert "cast-operator = cast_operator.main:main" in text
