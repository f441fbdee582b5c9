"""HTML: Markdown with LaTeX math turned into an HTML fragment with MathML (by pandoc, so
the page needs no script or font from the network to show its math), and a program's
steps printed as JavaScript functions for the self-check page's script."""

from __future__ import annotations

import re
import shutil
import subprocess

import sympy as sp
from sympy.printing.jscode import JavascriptCodePrinter

from ..errors import DeriveError
from ..solution.program import Program

TIME_LIMIT = 120  # seconds for one conversion


class PandocMissing(DeriveError):
    """No pandoc on PATH (bad set-up, exit code 2)."""


class PandocFailed(DeriveError):
    exit_code = 1


def check_pandoc() -> None:
    if not shutil.which("pandoc"):
        raise PandocMissing("HTML output needs pandoc; install it (Debian: apt-get install pandoc; or https://pandoc.org)")


def markdown_to_html(markdown: str, name: str) -> str:
    """The HTML fragment of a Markdown document: math as MathML, each section in a
    <section>; `name` is what a message calls the document."""
    check_pandoc()
    try:
        done = subprocess.run(
            ["pandoc", "--from", "markdown-smart", "--to", "html5", "--mathml", "--section-divs", "--wrap", "none"],
            input=markdown.encode("utf-8"), capture_output=True, timeout=TIME_LIMIT, check=False,
        )
    except subprocess.TimeoutExpired:
        raise PandocFailed(f"{name}: pandoc took longer than {TIME_LIMIT} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PandocFailed(f"{name}: pandoc failed: {message[-1] if message else done.returncode}")
    # pandoc writes \hat as the combining circumflex U+0302, which Chromium sometimes
    # leaves out (ŷ − y shown as y − y); the modifier letter U+02C6 always shows
    return done.stdout.decode("utf-8").replace('<mo accent="true">\u0302</mo>', '<mo accent="true">\u02c6</mo>')


class _Printer(JavascriptCodePrinter):
    """Numbers written with all the digits of a double (17 significant)."""

    def _print_Float(self, expr):
        return repr(float(expr))


def step_functions(program: Program) -> str:
    """The steps of `program` as a JavaScript array of functions, one per step in order,
    each taking its inputs' values as arguments."""
    printer = _Printer({"strict": False})
    functions = []
    for step in program.steps:
        names = [sp.Symbol(f"v{k}") for k in range(len(step.symbols))]
        body = printer.doprint(step.expr.xreplace(dict(zip(step.symbols, names))))
        body = re.sub(r"\s+", " ", body).strip()
        functions.append(f"({', '.join(map(str, names))}) => {body}")
    return "[\n" + ",\n".join(functions) + "\n]"
