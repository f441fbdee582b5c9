"""outputs/ is the gallery of the built-in examples; it must match what derive makes now.

Regenerate it from the repository root with:  derive solve esuli elbasheer students
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import derive
from derive.render import Options, render_files

GALLERY = Path(__file__).resolve().parent.parent / "outputs"
HOW = "outputs/ is stale: regenerate it with `derive solve esuli elbasheer students` from the repository root"


@pytest.mark.parametrize("name", list(derive.examples()))
def test_gallery_is_current(name):
    solution = derive.solve(name)
    (files,), errors = render_files([(solution, ["md", "tex", "json"], Options(stem=name))])
    assert not errors
    assert sorted(p.name for p in (GALLERY / name).iterdir()) == sorted(files), HOW
    for file_name, content in files.items():
        stored = (GALLERY / name / file_name).read_text()
        if file_name.endswith(".json"):
            assert _same_key(json.loads(stored), json.loads(content)), f"{file_name}: {HOW}"
        else:
            assert stored == content, f"{file_name}: {HOW}"


def _same_key(stored, current) -> bool:
    """Equal up to the last bits of a float (libm may differ between machines)."""
    if isinstance(stored, dict):
        return stored.keys() == current.keys() and all(_same_key(stored[k], current[k]) for k in stored)
    if isinstance(stored, list):
        return len(stored) == len(current) and all(_same_key(a, b) for a, b in zip(stored, current))
    if isinstance(stored, float):
        return stored == pytest.approx(current, rel=1e-12, abs=1e-15)
    return stored == current
