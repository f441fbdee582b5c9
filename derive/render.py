"""Solution → text in an output format. The one place that picks a format.

Markdown and LaTeX come from Jinja2 templates that only format the record: every
piece of math goes through the `tex`/`num` filters (the printing layer), and any free
text from the spec is escaped for the format on its way out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import jinja2
import sympy as sp

from . import __version__
from .errors import UsageError
from .notation import LayeredNotation
from .printing import DEFAULT_DIGITS, Printer, latex_text, markdown_text
from .solution import Equation, Form, Solution
from .spec import Text


def template_dir() -> Path:
    """Templates ship inside the wheel (derive/templates); in a source checkout they
    are the top-level templates/ folder."""
    here = Path(__file__).resolve().parent
    inside = here / "templates"
    return inside if inside.is_dir() else here.parent / "templates"


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    render: Callable[[Solution, int], str]


def _notation(solution: Solution) -> LayeredNotation:
    return LayeredNotation(
        output_layer=len(solution.network.layers),
        outputs=solution.spec.outputs,
        samples=len(solution.detail.samples),
    )


@jinja2.pass_context
def _tex(context, value) -> str:
    printer: Printer = context["printer"]
    if isinstance(value, Equation):
        return printer.display(value)
    if isinstance(value, Form):
        return printer.expression(value.expr, value.values)
    if isinstance(value, sp.Basic):
        return printer.expression(value)
    raise TypeError(f"tex filter: cannot print {type(value).__name__}")


@jinja2.pass_context
def _num(context, value: float) -> str:
    return context["printer"].number(value)


@lru_cache(maxsize=None)
def _environment(escape: Callable[[str], str]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        # Free text from a spec is printed literally; everything else is ours.
        finalize=lambda value: escape(value) if isinstance(value, Text) else value,
        # Compiled templates are cached between runs (in the user's temporary directory).
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
    )
    env.filters["tex"] = _tex
    env.filters["num"] = _num
    return env


@lru_cache(maxsize=8)
def _printer(solution: Solution, digits: int) -> Printer:
    """One printer per solution and digits, shared by its formats (it remembers what it printed)."""
    return Printer(_notation(solution), digits)


def _templated(template: str, escape: Callable[[str], str]) -> Callable[[Solution, int], str]:
    def render(solution: Solution, digits: int) -> str:
        printer = _printer(solution, digits)
        text = _environment(escape).get_template(template).render(
            solution=solution, printer=printer, version=__version__
        )
        # Blocks each bring their own blank lines; one between blocks is enough.
        return re.sub(r"\n{3,}", "\n\n", text)

    return render


def _json(solution: Solution, digits: int) -> str:
    return json.dumps(solution.to_dict(), indent=2, ensure_ascii=False) + "\n"


FORMATS = {
    f.name: f
    for f in (
        Format("md", "md", _templated("solution.md.j2", markdown_text)),
        Format("tex", "tex", _templated("solution.tex.j2", latex_text)),
        Format("json", "json", _json),
    )
}


def render(solution: Solution, format: str = "md", *, digits: int = DEFAULT_DIGITS) -> str:
    """The worked solution as Markdown ("md"), a LaTeX article ("tex") or the JSON key ("json")."""
    try:
        chosen = FORMATS[format]
    except KeyError:
        raise UsageError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}") from None
    return chosen.render(solution, digits)
