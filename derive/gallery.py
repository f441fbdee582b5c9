"""The gallery in outputs/: the built-in examples (Markdown with its pictures, LaTeX,
JSON) and the esuli example in every notation (the single-neuron notation with the
elbasheer example). Regenerate it from the repository root with

    python -m derive.gallery --pdf

(`--pdf` adds each example's PDF, for reading; the tests compare the other files.)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .solution.derivation import solve
from .spec.examples import NAMES
from .files import write_all
from .views.document import Options, render_files

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


def gallery_pdfs() -> dict[str, bytes]:
    """The examples' PDFs (`--pdf`): kept beside the gallery for reading, not compared
    byte by byte (they differ between TeX versions)."""
    jobs = [(solve(name), ("pdf",), Options(stem=name)) for name in NAMES]
    results, errors = render_files(jobs)
    if errors:
        raise errors[0]
    return {f"{name}/{file}": content for name, files in zip(NAMES, results) for file, content in files.items()}


def main(argv: list[str] | None = None) -> int:
    arguments = list(argv if argv is not None else sys.argv[1:])
    pdf = "--pdf" in arguments
    arguments = [a for a in arguments if a != "--pdf"]
    target = Path(arguments[0] if arguments else "outputs")
    files = gallery_files()
    if pdf:
        files.update(gallery_pdfs())
    if target.exists():
        shutil.rmtree(target)  # files no longer made must not linger
    for path in write_all([(target / relative, content) for relative, content in files.items()]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
