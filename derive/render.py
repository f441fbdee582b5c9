"""Solution → files in an output format. The one place that picks a format.

Markdown and LaTeX come from Jinja2 templates that only format the record: every
piece of math goes through the `tex`/`num` filters (the printing layer), and any free
text from the spec is escaped for the format on its way out. Markdown brings its
pictures as SVG files; PDF is the LaTeX compiled by a real toolchain.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import jinja2
import sympy as sp

from . import __version__
from .errors import DeriveError, UsageError
from .notation import LayeredNotation
from .pdf import check_toolchain, compile_all
from .printing import DEFAULT_DIGITS, Printer, latex_text, markdown_text
from .solution import Equation, Form, Solution
from .spec import Text
from .svg import loss_svg, network_svg


def template_dir() -> Path:
    """Templates ship inside the wheel (derive/templates); in a source checkout they
    are the top-level templates/ folder."""
    here = Path(__file__).resolve().parent
    inside = here / "templates"
    return inside if inside.is_dir() else here.parent / "templates"


@dataclass(frozen=True)
class LatexSource:
    """A LaTeX document that becomes a file's content once compiled to PDF."""

    tex: str
    name: str


Content = str | bytes | LatexSource


@dataclass(frozen=True)
class Options:
    digits: int = DEFAULT_DIGITS
    stem: str = "solution"  # files are <stem>.<extension>, pictures <stem>.network.svg, …
    inline_images: bool = False  # pictures as data: URIs inside the Markdown instead of files


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    files: Callable[[Solution, Options], dict[str, Content]]


def _notation(solution: Solution) -> LayeredNotation:
    return LayeredNotation(
        output_layer=len(solution.network.layers),
        outputs=solution.spec.outputs,
        samples=len(solution.detail.samples),
    )


@lru_cache(maxsize=8)
def _printer(solution: Solution, digits: int) -> Printer:
    """One printer per solution and digits, shared by its formats (it remembers what it printed)."""
    return Printer(_notation(solution), digits)


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


def _coordinate(value: float) -> str:
    """A number as pgfplots reads it (full precision is not needed for a plot)."""
    return f"{value:.6g}"


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
    env.filters["coordinate"] = _coordinate
    return env


def _template(solution: Solution, name: str, escape: Callable[[str], str], options: Options, images: dict) -> str:
    text = _environment(escape).get_template(name).render(
        solution=solution, printer=_printer(solution, options.digits), version=__version__, images=images
    )
    # Blocks each bring their own blank lines; one between blocks is enough.
    return re.sub(r"\n{3,}", "\n\n", text)


def _pictures(solution: Solution, options: Options) -> dict[str, str]:
    """The Markdown's pictures: file name → SVG."""
    notation = _notation(solution)
    pictures = {f"{options.stem}.network.svg": network_svg(solution.diagram, notation, options.digits)}
    if solution.training is not None:
        loss = notation.loss
        pictures[f"{options.stem}.loss.svg"] = loss_svg(solution.training.curve, loss, options.digits)
    return pictures


def _markdown(solution: Solution, options: Options) -> dict[str, Content]:
    pictures = _pictures(solution, options)
    if options.inline_images:
        links = {name: "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode() for name, svg in pictures.items()}
    else:
        links = {name: name for name in pictures}
    images = {name.split(".")[-2]: link for name, link in links.items()}
    files: dict[str, Content] = {f"{options.stem}.md": _template(solution, "solution.md.j2", markdown_text, options, images)}
    if not options.inline_images:
        files.update(pictures)
    return files


def _latex(solution: Solution, options: Options) -> dict[str, Content]:
    return {f"{options.stem}.tex": _template(solution, "solution.tex.j2", latex_text, options, {})}


def _pdf(solution: Solution, options: Options) -> dict[str, Content]:
    return {f"{options.stem}.pdf": LatexSource(_latex(solution, options)[f"{options.stem}.tex"], options.stem)}


def _json(solution: Solution, options: Options) -> dict[str, Content]:
    return {f"{options.stem}.json": json.dumps(solution.to_dict(), indent=2, ensure_ascii=False) + "\n"}


FORMATS = {
    f.name: f
    for f in (
        Format("md", "md", _markdown),
        Format("tex", "tex", _latex),
        Format("json", "json", _json),
        Format("pdf", "pdf", _pdf),
    )
}


def _format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def render_files(
    jobs: Sequence[tuple[Solution, Sequence[str], Options]],
) -> tuple[list[dict[str, str | bytes]], list[DeriveError]]:
    """Every file of every (solution, formats, options) job; PDFs compiled in parallel.
    A PDF that cannot be made is left out and its error returned: the other files are
    still good."""
    results: list[dict[str, Content]] = []
    for solution, formats, options in jobs:
        files: dict[str, Content] = {}
        for name in formats:
            files.update(_format(name).files(solution, options))
        results.append(files)
    pending = [(i, name) for i, files in enumerate(results) for name, content in files.items() if isinstance(content, LatexSource)]
    errors: list[DeriveError] = []
    if pending:
        try:
            check_toolchain()
            compiled = compile_all([(results[i][name].tex, results[i][name].name) for i, name in pending])
        except DeriveError as error:
            compiled = [error] * len(pending)
        for (i, name), outcome in zip(pending, compiled):
            if isinstance(outcome, DeriveError):
                del results[i][name]
                if outcome not in errors:
                    errors.append(outcome)
            else:
                results[i][name] = outcome
    return results, errors  # type: ignore[return-value]


def render(solution: Solution, format: str = "md", *, digits: int = DEFAULT_DIGITS) -> str | bytes:
    """The worked solution as Markdown ("md", pictures inline), a LaTeX article ("tex"),
    the JSON answer key ("json") or a PDF ("pdf", bytes)."""
    chosen = _format(format)
    options = Options(digits=digits, stem=solution.spec.name, inline_images=True)
    (files,), errors = render_files([(solution, [chosen.name], options)])
    if errors:
        raise errors[0]
    return files[f"{options.stem}.{chosen.extension}"]
