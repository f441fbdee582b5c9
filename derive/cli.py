"""The `derive` command: wires arguments to the library, turns a DeriveError into a
one-line message and an exit code."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from .errors import DeriveError, UsageError, one_line, plain
from .limits import DEFAULT_LIMITS, Limits
from .spec.examples import DESCRIPTIONS
from .files import Terminated, install_signal_handlers, safe_stem, write_all
from .spec.vocabulary import (
    DEFAULT_DIGITS, DETAILS, EXERCISE_FORMATS, MAX_DIGITS, NOTATION_NAMES, QTI_LAYOUTS, ROUNDING_NAMES, SOLUTION_FORMATS,
)
from .version import __version__

# The commands import what they use when they run: `derive --version`, `derive examples`
# and `derive grade` (without follow-through) start without SymPy, Jinja2 or LaTeX.

DEFAULT_FORMATS = ("md", "tex", "json")
PARALLEL_COUNT = 20  # from this many variants, draws are judged by a process per core unless --jobs says otherwise
MAX_SEED = 0xFFFF  # as derive.exercise.MAX_SEED: a variant id holds the seed in four hex digits
DEFAULT_OUTPUT = Path("outputs")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _format_list(allowed: Sequence[str]):
    """An argument type: comma-separated format names, each one of `allowed`."""

    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(_names(text)))
        unknown = [f for f in chosen if f not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"unknown format {', '.join(unknown) or repr(text)}; choose from {', '.join(allowed)}"
            )
        return chosen

    return parse


def _whole(low: int, high: int | None = None):
    """An argument type: a whole number from `low` (to `high`); 0x… is read as hexadecimal."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            limits = f"from {low} to {high}" if high is not None else f"≥ {low}"
            raise argparse.ArgumentTypeError(f"expected a whole number {limits}, got {text!r}")
        return value

    return parse


def _shape(text: str) -> list[int]:
    parts = text.split(",")
    if len(parts) > 100 or not all(re.fullmatch(r"\s*[0-9]{1,9}\s*", part) for part in parts):
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, e.g. 3,2,1; got {plain(text)[:40]!r}")
    return [int(n) for n in parts]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (and says how to ask for
    several formats when a second one was given after a space)."""

    def error(self, message: str):  # type: ignore[override]
        stray = re.match(r"unrecognized arguments: (.*)", message)
        if stray and all(name in SOLUTION_FORMATS or name in EXERCISE_FORMATS for name in stray.group(1).split()):
            message += " (separate several formats with commas: --format pdf,md)"
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _limit_setting(text: str) -> str:
    if not re.fullmatch(r"[a-z]+=[0-9]+", text.strip()):
        raise argparse.ArgumentTypeError(f"expected NAME=N, e.g. units=200; got {plain(text)[:40]!r}")
    return text.strip()


def _add_limit(command: argparse.ArgumentParser) -> None:
    names = ", ".join(DEFAULT_LIMITS.__dataclass_fields__)
    command.add_argument(
        "--limit", type=_limit_setting, action="append", default=[], metavar="NAME=N",
        help=f"raise a limit ({names}); see the README's Limits and safety",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="derive",
        description="Step-by-step worked solutions of forward and backward passes through small neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"derive {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    solve_cmd = commands.add_parser(
        "solve",
        help="write the worked solution of a spec",
        description="Write the worked solution of each SPEC (a YAML/JSON file or a built-in example name).",
    )
    solve_cmd.add_argument("specs", nargs="+", metavar="SPEC", help="spec file or built-in example name")
    solve_cmd.add_argument(
        "--format",
        type=_format_list(SOLUTION_FORMATS),
        default=DEFAULT_FORMATS,
        help=f"comma-separated output formats: {', '.join(SOLUTION_FORMATS)} (default: {','.join(DEFAULT_FORMATS)})",
    )
    solve_cmd.add_argument(
        "--output",
        metavar="DIR|FILE|-",
        help="a directory, a file (one format), or - for standard output (default: outputs/<name>/)",
    )
    solve_cmd.add_argument(
        "--digits", type=_whole(0, MAX_DIGITS), default=DEFAULT_DIGITS, help=f"decimals shown (default: {DEFAULT_DIGITS})"
    )
    solve_cmd.add_argument("--notation", choices=NOTATION_NAMES, help="symbols as in a course (default: the spec's, else layered)")
    solve_cmd.add_argument(
        "--rounding", choices=ROUNDING_NAMES,
        help="carry: every shown value rounded and used as shown, so each line checks out on a calculator; "
        "exact: full precision, rounded only for display (default: the spec's, else carry)",
    )
    solve_cmd.add_argument("--no-shortcut", action="store_true", help="show ∂E/∂ŷ·∂ŷ/∂z instead of ŷ − y for sigmoid+bce and softmax+cross-entropy")
    solve_cmd.add_argument(
        "--indent", type=_whole(0, 8), default=None,
        help="indentation of the JSON key (default: 2, or compact on one line for more than 100 updates)",
    )
    solve_cmd.add_argument(
        "--detail", choices=DETAILS, default="handout",
        help="handout (default: the first sample in full, the rest in tables), compact (the same without sentences), "
        "full (every sample and factor), or answers (the values alone)",
    )
    solve_cmd.add_argument(
        "--template-dir", metavar="DIR",
        help="templates here replace the built-in ones of the same name (they run sandboxed; see the README)",
    )
    _add_limit(solve_cmd)

    check_cmd = commands.add_parser(
        "check",
        help="audit the values a written solution states (exit 3 if any is not right)",
        description="Audit a written solution: each stated value (by answer-key id) right, right within rounding, "
        "follow-through, truncated, a named mistake or wrong; a misread number of the spec; where errors start. "
        "Exit 0 when all are right, 3 otherwise.",
    )
    check_cmd.add_argument("spec", metavar="SPEC", help="the network spec the solution works")
    check_cmd.add_argument("answers", metavar="ANSWERS", help="YAML, JSON or CSV (question,value) of the stated values by id")
    check_cmd.add_argument("--digits", type=_whole(0, 8), default=None,
                           help="the decimals the solution carries (default: the most any stated value has, at least 3)")
    commands.add_parser("examples", help="list the built-in examples", description="List the built-in examples.")

    exercise_cmd = commands.add_parser(
        "exercise",
        help="make exercise variants: student sheets, worked solutions, answer keys, Moodle export",
        description="Make COUNT variants of an exercise from SPEC (used as a template: its numbers are drawn "
        "anew) or from --shape/--activations/--loss.",
    )
    exercise_cmd.add_argument("spec", nargs="?", metavar="SPEC", help="template spec file or built-in example name")
    exercise_cmd.add_argument("--shape", type=_shape, help="inputs and units per layer instead of a SPEC, e.g. 3,2,1")
    exercise_cmd.add_argument("--activations", type=_names, help="with --shape: one per layer, e.g. relu,sigmoid")
    exercise_cmd.add_argument("--loss", help="with --shape: the loss, e.g. half_sse")
    exercise_cmd.add_argument("--learning-rate", type=float, default=0.1, help="with --shape (default 0.1)")
    exercise_cmd.add_argument("--count", type=_whole(1), default=1, help="how many variants (default 1)")
    exercise_cmd.add_argument("--seed", type=_whole(0, MAX_SEED), default=1, help=f"0 to {MAX_SEED} (default 1); same seed, same files")
    exercise_cmd.add_argument("--ask", help="forward, loss, gradients, updates or question ids such as a2[0],grad:W1[0,0]")
    exercise_cmd.add_argument("--points", help="what each question is worth: N for all, or groups/ids such as gradients=2,loss=1 (default 1)")
    exercise_cmd.add_argument(
        "--format", type=_format_list(EXERCISE_FORMATS), default=("md", "tex", "json", "moodle"),
        help=f"comma-separated: {', '.join(EXERCISE_FORMATS)} (default: md,tex,json,moodle)",
    )
    exercise_cmd.add_argument("--output", metavar="DIR", help="output directory (default: exercises/<name>/)")
    exercise_cmd.add_argument("--variant", metavar="ID", help="regenerate one variant exactly, e.g. V07-3f9a")
    exercise_cmd.add_argument("--stress", type=_whole(1), metavar="N", help="draw N variants and report the rejections and spreads")
    exercise_cmd.add_argument(
        "--jobs", type=_whole(1, 64), metavar="N",
        help=f"processes judging draws (default: every core, {os.cpu_count() or 1} here, from {PARALLEL_COUNT} variants; the files are the same for any N)",
    )
    exercise_cmd.add_argument("--low", type=float, default=-1.0, help="smallest drawn number (default -1)")
    exercise_cmd.add_argument("--high", type=float, default=1.0, help="largest drawn number (default 1)")
    exercise_cmd.add_argument("--decimals", type=int, default=1, help="decimals of drawn numbers (default 1)")
    exercise_cmd.add_argument("--digits", type=_whole(0, MAX_DIGITS), default=DEFAULT_DIGITS, help=f"decimals of answers (default {DEFAULT_DIGITS})")
    exercise_cmd.add_argument("--rounding", choices=ROUNDING_NAMES, help="how the key is computed: exact or carry (default: the spec's, else exact)")
    exercise_cmd.add_argument("--notation", choices=NOTATION_NAMES, help="symbols of the sheets and solutions")
    exercise_cmd.add_argument(
        "--qti-layout", choices=QTI_LAYOUTS, default=QTI_LAYOUTS[0],
        help="group (default): qti.zip, one Canvas quiz with a question group per question, one variant drawn per "
        "student; variants: qti/V…zip, one quiz per variant",
    )
    _add_limit(exercise_cmd)

    grade_cmd = commands.add_parser(
        "grade",
        help="grade students' answers against answers.csv",
        description="Grade RESPONSES (columns student,variant,question,value) against ANSWERS (an answers.csv).",
    )
    grade_cmd.add_argument("answers", metavar="ANSWERS", help="the answers.csv of the exercise")
    grade_cmd.add_argument("responses", metavar="RESPONSES", help="CSV with columns student,variant,question,value")
    grade_cmd.add_argument("--output", metavar="FILE", default="grades.csv",
                           help="grades (default grades.csv); wrong answers go to FILE's name + -details.csv")
    grade_cmd.add_argument("--follow-through", metavar="CREDIT", type=_credit, default=1.0,
                           help="credit (0 to 1, default 1) for an answer right from the student's own earlier wrong answers; 0: off")
    grade_cmd.add_argument("--mistakes", metavar="FILE", default=None,
                           help="the exercise's mistakes.csv (default: the one beside ANSWERS, if any), to name wrong answers")
    grade_cmd.add_argument("--force", action="store_true",
                           help="replace a symbolic link, FIFO or socket at --output or its -details file")
    return parser


def _destination(name: str, formats: Sequence[str], output: str | None, count: int) -> tuple[Path | None, str, str | None]:
    """(directory, file stem, exact main file name) for one spec; directory None is standard
    output. Stems made from a spec's name are safe file names (`...yaml` writes `solution.*`)."""
    name = safe_stem(name)
    if output == "-":
        if len(formats) != 1 or count != 1:
            raise UsageError("--output - writes one format of one spec to standard output; choose one with --format")
        return None, name, None
    if output is None:
        return DEFAULT_OUTPUT / name, name, None
    path = Path(output)
    if path.suffix and not path.is_dir():
        if len(formats) != 1 or count != 1:
            raise UsageError(f"--output {plain(output)[:80]}: a file takes one format of one spec; give a directory instead")
        return path.parent, safe_stem(path.stem), path.name
    return path, name, None


def _root(output: str | None, destinations: Sequence[tuple[Path | None, str, str | None]]) -> Path:
    """The folder every output of a `solve` lies in: write_all stages there and keeps the
    names inside it."""
    if output is None:
        return DEFAULT_OUTPUT
    directory = destinations[0][0]
    assert directory is not None
    return directory


def _solve(args: argparse.Namespace) -> int:
    from .solution.derivation import solve
    from .spec.schema import load_spec
    from .views.document import Options, check_view, render_files

    limits = DEFAULT_LIMITS.raised(args.limit)
    jobs, destinations = [], []
    for source in args.specs:
        spec = load_spec(source, limits=limits)
        directory, stem, main_name = _destination(spec.name, args.format, args.output, len(args.specs))
        options = Options(
            digits=args.digits, stem=stem, inline_images=directory is None, notation=args.notation, detail=args.detail,
            template_dir=args.template_dir, indent=args.indent,
        )
        solution = solve(spec, rounding=args.rounding, digits=args.digits, shortcut=not args.no_shortcut)
        check_view(args.notation, args.detail, solution)
        jobs.append((solution, args.format, options))
        destinations.append((directory, stem, main_name))
    results, errors = render_files(jobs)
    if errors:
        return _failed(errors)
    if destinations[0][0] is None:
        (files,) = results
        main = files.get(f"{destinations[0][1]}.{args.format[0]}")
        if main is not None:
            stream = sys.stdout.buffer if isinstance(main, bytes) else sys.stdout
            try:
                for piece in [main] if isinstance(main, (str, bytes)) else main:
                    stream.write(piece)
            except (KeyboardInterrupt, Terminated) as stop:  # part of it may be out already
                print(f"derive: {'interrupted' if isinstance(stop, KeyboardInterrupt) else 'stopped'}; "
                      "what was written to standard output is incomplete", file=sys.stderr)
                return getattr(stop, "exit_code", 130)
    else:
        root = _root(args.output, destinations)
        planned, stale = [], []
        for files, (directory, stem, main_name), (_, formats, _) in zip(results, destinations, jobs):
            main = f"{stem}.{formats[0]}"
            folder = directory.relative_to(root)
            planned += [(folder / (main_name if name == main and main_name else name), content) for name, content in files.items()]
            if "md" in formats and f"{stem}.loss.svg" not in files:
                stale.append(directory / f"{stem}.loss.svg")  # from an earlier run with several updates
        # Everything is rendered before anything is written: a failure writes nothing half-done.
        for path in write_all(planned, root=root):
            print(path)
        for path in stale:
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
    return 0


def _failed(errors: Sequence[DeriveError]) -> int:
    """All or nothing: when a document could not be made (a PDF), nothing is written; the
    first error is reported in one line, with how many others there were."""
    others = f" (and {len(errors) - 1} more document{'s' if len(errors) > 2 else ''} failed)" if len(errors) > 1 else ""
    print(one_line(f"{errors[0]}{others}"), file=sys.stderr)
    return max(error.exit_code for error in errors)


@contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on standard error (a terminal only) for more than one item, cleared
    when the work ends or fails; None otherwise."""
    if total <= 1 or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=what, unit="", file=sys.stderr, leave=False)
    try:
        yield lambda number: bar.update(number - bar.n)
    finally:
        bar.close()


def _exercise(args: argparse.Namespace) -> int:
    from .exercises.variants import exercise, parse_variant, shape_template, stress
    from .spec.schema import load_spec
    from .views.document import check_view, compile_latex_sources
    limits = DEFAULT_LIMITS.raised(args.limit)
    options = dict(
        low=args.low, high=args.high, decimals=args.decimals, ask=args.ask, digits=args.digits, rounding=args.rounding,
        limits=limits,
    )
    if (args.spec is None) == (args.shape is None):
        raise UsageError("derive exercise: give a SPEC or --shape (with --activations and --loss), not both")
    if args.shape is not None:
        if not args.activations or not args.loss:
            raise UsageError("--shape needs --activations and --loss")
        template = shape_template(args.shape, args.activations, args.loss, learning_rate=args.learning_rate, limits=limits)
        name = "-".join(map(str, args.shape))
    else:
        template = load_spec(args.spec, limits=limits)
        name = template.name
    count, seed, only = args.count, args.seed, None
    if args.variant is not None:
        only, seed = parse_variant(args.variant)
        count = only
    if args.stress is not None:
        with _progress(args.stress, "drawing") as update:
            report = stress(template, seed, args.stress, progress=update, **options)
        print(_stress_table(report))
        return 0
    with _progress(count, "variants") as update:
        jobs = args.jobs or ((os.cpu_count() or 1) if count >= PARALLEL_COUNT else 1)
        exercises = exercise(template, seed, count=count, only=only, progress=update, points=args.points, jobs=jobs, **options)
    check_view(args.notation, "full", exercises[0].derivation)
    from .exercises.sheets import exercise_files

    files = exercise_files(exercises, args.format, args.digits, notation=args.notation, qti_layout=args.qti_layout, jobs=jobs)
    results = [files]
    errors = compile_latex_sources(results)
    if errors:
        return _failed(errors)
    directory = Path(args.output) if args.output else Path("exercises") / safe_stem(name)
    for path in write_all([(Path(relative), content) for relative, content in results[0].items()], root=directory):
        print(path)
    return 0


def _stress_table(report) -> str:
    lines = [f"{report.draws} draws, {report.accepted} accepted ({100 * report.accepted / report.draws:.0f}%)", "", "rejected because"]
    width = max(len(reason.value) for reason in report.rejected)
    for reason, count in report.rejected.items():
        lines.append(f"  {reason.value:<{width}}  {count:6d}")
    lines += ["", "asked values over the accepted variants (min / median / max)"]
    if report.spreads:
        width = max(len(s.question) for s in report.spreads)
        for spread in report.spreads:
            lines.append(f"  {spread.question:<{width}}  {spread.low:10.4g} {spread.median:10.4g} {spread.high:10.4g}")
    return "\n".join(lines)


def _credit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _grade(args: argparse.Namespace) -> int:
    from .exercises.grading import grade, summary_lines, write_grades
    answers, responses = Path(args.answers), Path(args.responses)
    mistakes = Path(args.mistakes) if args.mistakes else None
    result = grade(answers, responses, mistakes, args.follow_through)
    inputs = [answers, responses] + ([mistakes] if mistakes else [])
    output, details, summary = write_grades(result, Path(args.output), inputs, force=args.force)
    for problem in result.problems:
        print(one_line(problem), file=sys.stderr)
    print(f"graded {len(result.grades)} students into {output}; {len(result.details)} wrong or missing answers in {details}")
    for line in summary_lines(result):
        print(one_line(line))
    print(f"the summary per question is in {summary}")
    return 0


def _examples(args: argparse.Namespace) -> int:
    width = max(map(len, DESCRIPTIONS))
    for name, description in DESCRIPTIONS.items():
        print(f"{name:<{width}}  {description}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .exercises.audit import check, report

    audit = check(args.spec, Path(args.answers), digits=args.digits)
    for line in report(audit):
        print(one_line(line))
    return 0 if audit.ok else 3


COMMANDS = {"solve": _solve, "exercise": _exercise, "grade": _grade, "check": _check, "examples": _examples}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print(f"derive: choose a command: {', '.join(COMMANDS)} (see derive --help)", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args)
    except DeriveError as error:
        print(one_line(error), file=sys.stderr)
        return error.exit_code
    except Terminated as stop:
        print("derive: stopped; nothing was written", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("derive: interrupted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of standard output went away (derive … | head): nothing to report.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        # The file system refused a path (too long a name, a loop of links, no permission).
        where = f"{plain(error.filename)[:80]}: " if error.filename else ""
        print(f"derive: {where}{plain(error.strerror or error)}", file=sys.stderr)
        return 1
    except (MemoryError, RecursionError) as error:
        print(f"derive: out of resources ({type(error).__name__}); try a smaller spec or lower --limit values", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 — a bug of ours: one line, not a traceback
        if os.environ.get("DERIVE_DEBUG"):
            raise
        print(f"derive: internal error ({type(error).__name__}: {one_line(error)[:200]}); "
              "please report it with the spec (DERIVE_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def run() -> None:
    install_signal_handlers()  # SIGTERM and SIGHUP clean up as Ctrl-C does
    code = main()
    # Tearing down SymPy's heap of objects takes longer than the work of a small command:
    # the collector is told they are all permanent, and the interpreter ends as usual.
    import gc

    gc.freeze()
    sys.exit(code)
