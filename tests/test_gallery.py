"""outputs/ is the gallery (the built-in examples, and esuli in every notation); it must
match what derive makes now. Regenerate it from the repository root with:

    python -m derive.gallery
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from derive.gallery import gallery_files

GALLERY = Path(__file__).resolve().parent.parent / "outputs"
HOW = "outputs/ is stale: regenerate it with `python -m derive.gallery` from the repository root"


@pytest.fixture(scope="module")
def expected():
    return gallery_files()


def test_gallery_has_exactly_the_files(expected):
    stored = sorted(str(p.relative_to(GALLERY)) for p in GALLERY.rglob("*") if p.is_file())
    assert stored == sorted(expected), HOW


def test_gallery_is_current(expected):
    for relative, content in expected.items():
        stored = (GALLERY / relative).read_text()
        if relative.endswith(".json"):
            assert _same_key(json.loads(stored), json.loads(content)), f"{relative}: {HOW}"
        else:
            assert stored == content, f"{relative}: {HOW}"


def test_every_notation_is_in_the_gallery(expected):
    from derive.notation import NOTATION_NAMES

    assert {relative.split(".")[1] for relative in expected if relative.startswith("notations/")} == set(NOTATION_NAMES)


def _same_key(stored, current) -> bool:
    """Equal up to the last bits of a float (libm may differ between machines)."""
    if isinstance(stored, dict):
        return stored.keys() == current.keys() and all(_same_key(stored[k], current[k]) for k in stored)
    if isinstance(stored, list):
        return len(stored) == len(current) and all(_same_key(a, b) for a, b in zip(stored, current))
    if isinstance(stored, float):
        return stored == pytest.approx(current, rel=1e-12, abs=1e-15)
    return stored == current
