"""The gallery in outputs/: the built-in examples (Markdown with its pictures, LaTeX,
JSON) and the esuli example in every notation (the single-neuron notation with the
elbasheer example). Regenerate it from the repository root with

    python -m derive.gallery
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .derivation import solve
from .examples import NAMES
from .files import write_all
from .render import Options, render_files

NOTATION_EXAMPLES = (("esuli", "layered"), ("esuli", "esuli"), ("esuli", "flat"), ("esuli", "matrix"), ("elbasheer", "single"))


def gallery_files() -> dict[str, str | bytes]:
    """Every file of the gallery, by path relative to outputs/."""
    jobs, folders = [], []
    for name in NAMES:
        jobs.append((solve(name), ("md", "tex", "json"), Options(stem=name)))
        folders.append(name)
    for name, notation in NOTATION_EXAMPLES:
        jobs.append((solve(name), ("md", "tex"), Options(stem=f"{name}.{notation}", notation=notation)))
        folders.append("notations")
    results, errors = render_files(jobs)
    assert not errors, errors  # no PDFs here
    return {f"{folder}/{file}": content for folder, files in zip(folders, results) for file, content in files.items()}


def main(argv: list[str] | None = None) -> int:
    target = Path((argv if argv is not None else sys.argv[1:])[0] if (argv or sys.argv[1:]) else "outputs")
    files = gallery_files()
    if target.exists():
        shutil.rmtree(target)  # files no longer made must not linger
    for path in write_all([(target / relative, content) for relative, content in files.items()]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
