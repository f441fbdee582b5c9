"""PDF through a real LaTeX toolchain: latexmk + pdflatex in a temporary directory,
no shell escape, paranoid file access, a time limit. Only a finished PDF comes back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from .errors import DeriveError

INSTALL = "apt-get install texlive-latex-base texlive-latex-recommended texlive-pictures latexmk"
TIME_LIMIT = 300  # seconds for one document


class ToolchainMissing(DeriveError):
    """No latexmk/pdflatex on PATH (bad set-up, exit code 2)."""


class LatexFailed(DeriveError):
    """LaTeX stopped with an error; the .tex and .log are kept for inspection."""

    exit_code = 1


def check_toolchain() -> None:
    if not (shutil.which("latexmk") and shutil.which("pdflatex")):
        raise ToolchainMissing(f"PDF output needs latexmk and pdflatex (TeX Live); install: {INSTALL}")


def compile_pdf(tex: str, name: str) -> bytes:
    """The PDF of a LaTeX document; `name` is what messages call it."""
    check_toolchain()
    with tempfile.TemporaryDirectory(prefix="derive-latex-") as work:
        source = Path(work, "solution.tex")
        source.write_text(tex, encoding="utf-8")
        command = [
            "latexmk", "-pdf", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
            source.name,
        ]
        # Paranoid: TeX may read and write only below the working directory. A fixed
        # date makes the same document give the same bytes (pdfTeX honours SOURCE_DATE_EPOCH).
        environment = {**os.environ, "openout_any": "p", "openin_any": "p", "SOURCE_DATE_EPOCH": "1767225600", "FORCE_SOURCE_DATE": "1"}
        try:
            result = subprocess.run(command, cwd=work, env=environment, capture_output=True, text=True, timeout=TIME_LIMIT)
        except subprocess.TimeoutExpired:
            raise LatexFailed(f"{name}: LaTeX took longer than {TIME_LIMIT} s; {_keep(work, name)}") from None
        pdf = Path(work, "solution.pdf")
        if result.returncode != 0 or not pdf.exists():
            log = Path(work, "solution.log")
            reason = _first_error(log.read_text(errors="replace") if log.exists() else result.stdout)
            raise LatexFailed(f"{name}: LaTeX failed: {reason}; {_keep(work, name)}")
        return pdf.read_bytes()


def compile_all(documents: Sequence[tuple[str, str]]) -> list[bytes | DeriveError]:
    """Compiles (tex, name) documents in parallel across the cores; a failure is
    returned in its place rather than raised, so the others still finish."""
    from concurrent.futures import ThreadPoolExecutor

    check_toolchain()

    def one(document: tuple[str, str]) -> bytes | DeriveError:
        try:
            return compile_pdf(*document)
        except DeriveError as error:
            return error

    with ThreadPoolExecutor(max_workers=max(1, min(len(documents), os.cpu_count() or 1))) as pool:
        return list(pool.map(one, documents))


def _first_error(log: str) -> str:
    for line in log.splitlines():
        match = re.match(r"^(?:\./)?solution\.tex:(\d+): (.*)", line) or re.match(r"^! (.*)", line)
        if match:
            return f"line {match.group(1)}: {match.group(2)}" if match.lastindex == 2 else match.group(1)
    return "see the log"


def _keep(work: str, name: str) -> str:
    kept = Path(tempfile.mkdtemp(prefix=f"derive-{re.sub(r'[^A-Za-z0-9_-]', '_', name)}-"))
    for suffix in (".tex", ".log"):
        if Path(work, "solution" + suffix).exists():
            shutil.copy(Path(work, "solution" + suffix), kept / ("solution" + suffix))
    return f"the .tex and .log are kept in {kept}"
