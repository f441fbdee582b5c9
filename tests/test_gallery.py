"""outputs/ is the gallery (the built-in examples, and esuli in every notation); it must
match what derive makes now. Regenerate it from the repository root with:

    python -m derive.gallery

The gallery is made afresh in a temporary folder and compared with the files of the
gallery in outputs/: files a user writes there (a PDF from the README's example, say) are
not part of it and never make a test fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GALLERY = Path(__file__).resolve().parent.parent / "outputs"
HOW = "outputs/ is stale: regenerate it with `python -m derive.gallery` from the repository root"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("gallery") / "outputs"
    subprocess.run([sys.executable, "-m", "derive.gallery", str(target)], check=True, capture_output=True)
    return target


def _compared(relative: str) -> bool:
    """Files the tests compare: not the PDFs nor the self-check page and its screenshot
    (`--pdf`, `--selfcheck`), which depend on the TeX, pandoc and browser versions."""
    return not relative.endswith(".pdf") and not relative.startswith("selfcheck/")


def _gallery_files() -> set[str]:
    """The files of the stored gallery: those git tracks in a checkout; all of outputs/
    otherwise (an unpacked source archive)."""
    if shutil.which("git") and (GALLERY.parent / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "outputs"], cwd=GALLERY.parent, capture_output=True, text=True)
        if listed.returncode == 0 and listed.stdout.strip():
            return {line.removeprefix("outputs/") for line in listed.stdout.splitlines() if _compared(line.removeprefix("outputs/"))}
    return {str(p.relative_to(GALLERY)) for p in GALLERY.rglob("*") if p.is_file() and _compared(str(p.relative_to(GALLERY)))}


def test_gallery_has_exactly_the_files(fresh):
    made = {str(p.relative_to(fresh)) for p in fresh.rglob("*") if p.is_file()}
    assert sorted(_gallery_files()) == sorted(made), HOW


def test_gallery_is_current(fresh):
    for path in fresh.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(fresh)
        stored, content = (GALLERY / relative).read_text(), path.read_text()
        if relative.suffix == ".json":
            assert _same_key(json.loads(stored), json.loads(content)), f"{relative}: {HOW}"
        else:
            assert stored == content, f"{relative}: {HOW}"


def test_every_notation_is_in_the_gallery(fresh):
    from derive.views.notation import NOTATION_NAMES

    made = {p.name.split(".")[1] for p in (fresh / "notations").iterdir() if p.suffix == ".md"}
    assert made == set(NOTATION_NAMES)


def test_a_users_own_files_in_outputs_do_not_count(fresh):
    """What the README's PDF example leaves in outputs/ is not part of the gallery."""
    if not (GALLERY.parent / ".git").exists():
        pytest.skip("outside a git checkout every file in outputs/ is the gallery's")
    stray = GALLERY / "esuli" / "esuli.test-stray.pdf"
    stray.write_bytes(b"%PDF-1.5")
    try:
        assert "esuli/esuli.test-stray.pdf" not in _gallery_files()
        test_gallery_has_exactly_the_files(fresh)
    finally:
        stray.unlink()


def _same_key(stored, current) -> bool:
    """Equal up to the last bits of a float (libm may differ between machines)."""
    if isinstance(stored, dict):
        return stored.keys() == current.keys() and all(_same_key(stored[k], current[k]) for k in stored)
    if isinstance(stored, list):
        return len(stored) == len(current) and all(_same_key(a, b) for a, b in zip(stored, current))
    if isinstance(stored, float):
        return stored == pytest.approx(current, rel=1e-12, abs=1e-15)
    return stored == current
