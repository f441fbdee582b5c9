"""outputs/ is the gallery of the built-in examples; it must match what derive makes now.

Regenerate it from the repository root with:  derive solve esuli elbasheer students
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import derive

GALLERY = Path(__file__).resolve().parent.parent / "outputs"
HOW = "outputs/ is stale: regenerate it with `derive solve esuli elbasheer students` from the repository root"


@pytest.mark.parametrize("name", list(derive.examples()))
def test_gallery_is_current(name):
    solution = derive.solve(name)
    for extension in ("md", "tex"):
        path = GALLERY / name / f"{name}.{extension}"
        assert path.exists(), HOW
        assert path.read_text() == derive.render(solution, extension), f"{path.name}: {HOW}"
    stored = json.loads((GALLERY / name / f"{name}.json").read_text())
    assert _same_key(stored, solution.to_dict()), HOW


def _same_key(stored, current) -> bool:
    """Equal up to the last bits of a float (libm may differ between machines)."""
    if isinstance(stored, dict):
        return stored.keys() == current.keys() and all(_same_key(stored[k], current[k]) for k in stored)
    if isinstance(stored, list):
        return len(stored) == len(current) and all(_same_key(a, b) for a, b in zip(stored, current))
    if isinstance(stored, float):
        return stored == pytest.approx(current, rel=1e-12, abs=1e-15)
    return stored == current
