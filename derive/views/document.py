"""Solution → files in an output format. The one place that picks a format.

Markdown and LaTeX come from Jinja2 templates that only format the record: every
piece of math goes through the `tex`/`num` filters (the printing layer), and any free
text from the spec is escaped for the format on its way out. Markdown brings its
pictures as SVG files; PDF is the LaTeX compiled by a real toolchain.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import jinja2
import jinja2.sandbox
import sympy as sp

from ..solution.derivation import check_digits, solve
from ..errors import DeriveError, UsageError, plain, quoted
from ..files import Pieces
from ..model.quantities import quantity_of
from .notation import NOTATION_NAMES, Notation, make, notation_problem
from .printing import DEFAULT_DIGITS, Printer, latex_text, markdown_text
from ..solution.record import Equation, Form, Solution
from ..spec.schema import Rounding, Text
from ..spec.vocabulary import DETAILS, SOLUTION_FORMATS
from .svg import loss_svg, network_svg
from ..version import __version__

def template_dir() -> Path:
    """Templates ship inside the wheel (derive/templates); in a source checkout they
    are the top-level templates/ folder."""
    here = Path(__file__).resolve().parent.parent
    inside = here / "templates"
    return inside if inside.is_dir() else here.parent / "templates"


@dataclass(frozen=True)
class LatexSource:
    """A LaTeX document that becomes a file's content once compiled to PDF."""

    tex: str
    name: str


Content = str | bytes | LatexSource | Pieces


# handout (the default: the first sample worked in full, the rest in tables, general forms
# stated once), compact (the same equations without the sentences), full (every sample and
# every factor written out), answers (the values alone).


@dataclass(frozen=True)
class Options:
    digits: int = DEFAULT_DIGITS
    stem: str = "solution"  # files are <stem>.<extension>, pictures <stem>.network.svg, …
    inline_images: bool = False  # pictures as data: URIs inside the Markdown instead of files
    notation: str | None = None  # a preset; None: the spec's, else layered
    detail: str = "handout"  # one of DETAILS
    template_dir: str | None = None  # templates here override the built-in ones by name
    indent: int | None = None  # of the JSON key; None: 2, or compact for a long run (COMPACT_UPDATES)


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    files: Callable[[Solution, Options], dict[str, Content]]


def _notation(solution: Solution, name: str | None = None) -> Notation:
    """The notation asked for, else the spec's, else the layered one (a graph's names are
    its own in every notation)."""
    if solution.kind == "graph":
        return make("layered", units=[1], inputs=1, samples=1, overrides={})
    choice = solution.spec.notation
    return make(
        name or (choice.base if choice else "layered"),
        units=[layer.units for layer in solution.spec.layers],
        inputs=solution.spec.inputs,
        samples=len(solution.detail.samples),
        overrides=dict(choice.overrides) if choice else {},
    )


@lru_cache(maxsize=8)
def _matrix_view(solution: Solution):
    from ..solution.matrixview import matrix_view

    return matrix_view(solution)


@lru_cache(maxsize=8)
def printer_for(solution: Solution, digits: int, notation: str | None = None) -> Printer:
    """One printer per solution, digits and notation, shared by its formats (it remembers
    what it printed). Carrying rounded values, the digits are those carried."""
    carry = solution.rounding is Rounding.CARRY
    return Printer(_notation(solution, notation), solution.digits if carry else digits, short_numbers=carry)


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


@jinja2.pass_context
def _given(context, value: float) -> str:
    """A number the spec gives (an input, a target, an initial weight), printed as given."""
    return context["printer"].number(value, given=True)


def _digest(text: str) -> str:
    """A short name made from a text (the same text, the same name): LaTeX names a box
    drawn once by it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _coordinate(value: float) -> str:
    """A number as pgfplots reads it (full precision is not needed for a plot)."""
    return f"{value:.6g}"


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept in the user's cache folder between runs; a cache that
    cannot be read or written (full disk, another owner) is skipped, never an error."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 — a broken cache entry is a cache miss
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except Exception:  # noqa: BLE001 — not cached this time
            pass


def _bytecode_cache(kind: str) -> jinja2.BytecodeCache | None:
    """A cache under $XDG_CACHE_HOME/derive (or ~/.cache/derive), private to the user; None
    when there is no such folder we own and can write."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base, "derive", "templates")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = folder.stat()
        if not folder.is_dir() or folder.is_symlink() or status.st_uid != os.getuid() or not os.access(folder, os.W_OK):
            return None
    except (OSError, RuntimeError):
        return None
    return _BytecodeCache(str(folder), pattern=f"derive_{__version__}_{kind}_%s.cache")


def _template_folder(overrides: str) -> str:
    folder = Path(overrides)
    if not folder.is_dir():
        problem = "no such folder" if not folder.exists() else "not a folder"
        raise UsageError(f"--template-dir {quoted(overrides, 80)}: {problem}")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UsageError(f"--template-dir {quoted(overrides, 80)}: cannot be read")
    return str(folder)


@lru_cache(maxsize=None)
def environment(escape: Callable[[str], str] | None, overrides: str | None = None) -> jinja2.Environment:
    """The templates of one output format. `escape` prints free text from a spec literally
    in that format; None is HTML, where everything printed is escaped. Templates in the
    `overrides` directory replace the built-in ones of the same name.

    Templates run sandboxed (jinja2.sandbox): they read the solution record and call the
    printing filters, but cannot reach private attributes, Python internals or the system."""
    folders = ([_template_folder(overrides)] if overrides else []) + [str(template_dir())]
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=escape is None,
        finalize=None if escape is None else (lambda value: escape(value) if isinstance(value, Text) else value),
        # One cache per kind of environment: the compiled code depends on finalize and autoescape.
        bytecode_cache=_bytecode_cache("html" if escape is None else escape.__name__),
    )
    env.filters["tex"] = _tex
    env.filters["num"] = _num
    env.filters["given"] = _given
    env.filters["coordinate"] = _coordinate
    env.filters["digest"] = _digest
    return env


def render_template(solution: Solution, name: str, escape: Callable[[str], str], options: Options, **context) -> str:
    printer = printer_for(solution, options.digits, options.notation)
    view = {"detail": options.detail, "notation": printer.notation.name, **context}
    if printer.notation.name == "matrix":
        view["matrix"] = _matrix_view(solution)
    try:
        text = environment(escape, options.template_dir).get_template(name).render(
            solution=solution, printer=printer, version=__version__, **view
        )
    except jinja2.TemplateSyntaxError as error:
        where = f"{error.name or name}, line {error.lineno}"
        raise UsageError(f"template {where}: {plain(error.message)[:160]}") from None
    except jinja2.TemplateNotFound as error:
        raise UsageError(f"template {error.name or name}: not found") from None
    except jinja2.TemplateError as error:
        raise UsageError(f"template {name}: {plain(error.message or type(error).__name__)[:160]}") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as error:
        if not options.template_dir:
            raise
        # A template of the user's failed while rendering: name it, as for a syntax error.
        raise UsageError(f"template {name} (or one it includes): {type(error).__name__}: {plain(error)[:160]}") from None
    # Blocks each bring their own blank lines; one between blocks is enough.
    return re.sub(r"\n{3,}", "\n\n", text)


def _pictures(solution: Solution, options: Options, curve: bool = True) -> dict[str, str]:
    """The Markdown's pictures: file name → SVG."""
    notation = _notation(solution, options.notation)
    if solution.kind == "graph":
        if solution.diagram is None:
            return {}
        from .circuit_svg import circuit_svg

        return {f"{options.stem}.circuit.svg": circuit_svg(solution.diagram, options.digits, exact=solution.rounding is Rounding.CARRY)}
    pictures = {f"{options.stem}.network.svg": network_svg(solution.diagram, notation, options.digits)}
    if curve and solution.training is not None:
        pictures[f"{options.stem}.loss.svg"] = loss_svg(solution.training.curve, notation.latex(quantity_of(solution.training.loss)), options.digits)
    return pictures


def markdown_view(solution: Solution, options: Options, template: str = "solution.md.j2", curve: bool = True, **context) -> dict[str, Content]:
    """A Markdown view and its pictures, linked as files beside it or inline."""
    pictures = _pictures(solution, options, curve)
    if options.inline_images:
        links = {name: "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode() for name, svg in pictures.items()}
    else:
        links = {name: name for name in pictures}
    images = {name.split(".")[-2]: link for name, link in links.items()}
    text = render_template(solution, template, markdown_text, options, images=images, **context)
    files: dict[str, Content] = {f"{options.stem}.md": text}
    if not options.inline_images:
        files.update(pictures)
    return files


def latex_view(solution: Solution, options: Options, template: str = "solution.tex.j2", **context) -> dict[str, Content]:
    return {f"{options.stem}.tex": render_template(solution, template, latex_text, options, **context)}


def _pdf(solution: Solution, options: Options) -> dict[str, Content]:
    return {f"{options.stem}.pdf": LatexSource(latex_view(solution, options)[f"{options.stem}.tex"], options.stem)}


# A key of more updates than this is written compact (one line, by json's C encoder; an
# indented one is written by its pure-Python encoder, seconds for 10,000 updates) unless
# an indentation is asked for; either way it is written piece by piece, never whole in memory.
COMPACT_UPDATES = 100
_PIECE = 1 << 20  # characters


def _json(solution: Solution, options: Options) -> dict[str, Content]:
    name = f"{options.stem}.json"
    if solution.kind == "network" and len(solution.updates) > COMPACT_UPDATES:
        return {name: Pieces(lambda: _key_pieces(solution, options.indent))}
    key = solution.to_dict()
    indent = 2 if options.indent is None else options.indent
    return {name: json.dumps(key, indent=indent, ensure_ascii=False) + "\n"}


def _key_pieces(solution: Solution, indent: int | None) -> Iterator[str]:
    """The key as json.dumps writes it (compact, or with `indent`), in pieces of about
    _PIECE characters: never whole in memory."""
    options = {"separators": (",", ":")} if indent is None else {"indent": indent}
    frame = json.dumps(solution.to_dict(steps=False), ensure_ascii=False, **options)
    mark = '"steps":[]' if indent is None else '"steps": []'
    head, _, tail = frame.partition(mark)  # a title's quotes are escaped: the key is the only match
    encode = json.JSONEncoder(ensure_ascii=False, **options).encode
    # indented, a step is two levels deep, and the steps are one per line
    inside, between, close = ("", ",", "]") if indent is None else ("\n" + " " * 2 * indent, ",", "\n" + " " * indent + "]")
    piece, size = [head + mark[:-1]], 0
    for number, step in enumerate(solution.key_steps()):
        text = inside + encode(step).replace("\n", inside) if indent is not None else encode(step)
        piece.append(between + text if number else text)
        size += len(text)
        if size >= _PIECE:
            yield "".join(piece)
            piece, size = [], 0
    piece.append(close + tail + "\n")
    yield "".join(piece)


FORMATS = {
    f.name: f
    for f in (
        Format("md", "md", markdown_view),
        Format("tex", "tex", latex_view),
        Format("json", "json", _json),
        Format("pdf", "pdf", _pdf),
    )
}
assert tuple(FORMATS) == SOLUTION_FORMATS


def compile_latex_sources(results: list[dict[str, Content]]) -> list[DeriveError]:
    """Replaces every LaTeX source among the files by its PDF, compiled in parallel; a
    PDF that cannot be made is left out and its error returned."""
    pending = [(i, name) for i, files in enumerate(results) for name, content in files.items() if isinstance(content, LatexSource)]
    errors: list[DeriveError] = []
    if not pending:
        return errors
    from .pdf import check_toolchain, compile_all

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
    return errors


def check_view(notation: str | None, detail: str, solution: Solution | None = None) -> None:
    if notation is not None and notation not in NOTATION_NAMES:
        raise UsageError(f"unknown notation {notation!r}; choose one of {', '.join(NOTATION_NAMES)}")
    if detail not in DETAILS:
        raise UsageError(f"unknown detail {detail!r}; choose one of {', '.join(DETAILS)}")
    if notation is not None and solution is not None and solution.kind != "graph":
        problem = notation_problem(notation, [layer.units for layer in solution.spec.layers])
        if problem:
            raise UsageError(f"--notation {notation}: {problem}")


def _format(name: str) -> Format:
    if not isinstance(name, str) or name not in FORMATS:
        raise UsageError(f"unknown format {quoted(name)}; choose one of {', '.join(FORMATS)}")
    return FORMATS[name]


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
    errors = compile_latex_sources(results)
    return results, errors  # type: ignore[return-value]


def render(
    solution: Solution,
    format: str = "md",
    *,
    digits: int | None = None,
    notation: str | None = None,
    detail: str = "handout",
    template_dir: str | None = None,
) -> str | bytes:
    """The worked solution as Markdown ("md", pictures inline), a LaTeX article ("tex"),
    the JSON answer key ("json") or a PDF ("pdf", bytes).

    digits: the decimals shown (default: the solution's; a solution that carries rounded
    values is derived again for other digits, since its numbers depend on them);
    notation: layered, esuli, flat, single or matrix (default: the spec's, else layered);
    detail: handout, compact, full or answers; template_dir: templates that override the built-in ones."""
    chosen = _format(format)
    if digits is None:
        digits = solution.digits
    check_digits(digits)
    if solution.rounding is Rounding.CARRY and digits != solution.digits:
        again = {} if solution.kind == "graph" else {"shortcut": solution.network.shortcut}
        solution = solve(solution.spec, rounding=Rounding.CARRY, digits=digits, **again)
    check_view(notation, detail, solution)
    options = Options(digits=digits, stem=solution.spec.name, inline_images=True, notation=notation, detail=detail,
                      template_dir=str(template_dir) if template_dir else None)
    (files,), errors = render_files([(solution, [chosen.name], options)])
    if errors:
        raise errors[0]
    content = files[f"{options.stem}.{chosen.extension}"]
    return content.text() if isinstance(content, Pieces) else content
