"""The `derive` command: wires arguments to the library, turns a DeriveError into a
one-line message and an exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .derivation import solve
from .errors import DeriveError, UsageError
from .examples import DESCRIPTIONS
from .files import write_all
from .printing import DEFAULT_DIGITS
from .render import FORMATS, Options, render_files
from .spec import load_spec

DEFAULT_FORMATS = ("md", "tex", "json")
DEFAULT_OUTPUT = Path("outputs")


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(unknown) or repr(text)}; choose from {', '.join(FORMATS)}"
        )
    return chosen


def _digits(text: str) -> int:
    try:
        digits = int(text)
    except ValueError:
        digits = -1
    if not 0 <= digits <= 12:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 12, got {text!r}")
    return digits


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="derive",
        description="Step-by-step worked solutions of forward and backward passes through small neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"derive {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    solve_cmd = commands.add_parser(
        "solve",
        help="write the worked solution of a spec",
        description="Write the worked solution of each SPEC (a YAML/JSON file or a built-in example name).",
    )
    solve_cmd.add_argument("specs", nargs="+", metavar="SPEC", help="spec file or built-in example name")
    solve_cmd.add_argument(
        "--format",
        type=_formats,
        default=DEFAULT_FORMATS,
        help=f"comma-separated output formats: {', '.join(FORMATS)} (default: {','.join(DEFAULT_FORMATS)})",
    )
    solve_cmd.add_argument(
        "--output",
        metavar="DIR|FILE|-",
        help="a directory, a file (one format), or - for standard output (default: outputs/<name>/)",
    )
    solve_cmd.add_argument(
        "--digits", type=_digits, default=DEFAULT_DIGITS, help=f"decimals shown (default: {DEFAULT_DIGITS})"
    )

    commands.add_parser("examples", help="list the built-in examples", description="List the built-in examples.")
    return parser


def _destination(name: str, formats: Sequence[str], output: str | None, count: int) -> tuple[Path | None, str, str | None]:
    """(directory, file stem, exact main file name) for one spec; directory None is standard output."""
    if output == "-":
        if len(formats) != 1 or count != 1:
            raise UsageError("--output - writes one format of one spec to standard output; choose one with --format")
        return None, name, None
    if output is None:
        return DEFAULT_OUTPUT / name, name, None
    path = Path(output)
    if path.suffix and not path.is_dir():
        if len(formats) != 1 or count != 1:
            raise UsageError(f"--output {output}: a file takes one format of one spec; give a directory instead")
        return path.parent, path.stem, path.name
    return path, name, None


def _solve(args: argparse.Namespace) -> int:
    jobs, destinations = [], []
    for source in args.specs:
        spec = load_spec(source)
        directory, stem, main_name = _destination(spec.name, args.format, args.output, len(args.specs))
        options = Options(digits=args.digits, stem=stem, inline_images=directory is None)
        jobs.append((solve(spec), args.format, options))
        destinations.append((directory, stem, main_name))
    results, errors = render_files(jobs)
    if destinations[0][0] is None:
        (files,) = results
        main = files.get(f"{destinations[0][1]}.{FORMATS[args.format[0]].extension}")
        if main is not None:
            stream = sys.stdout.buffer if isinstance(main, bytes) else sys.stdout
            stream.write(main)
    else:
        planned = []
        for files, (directory, stem, main_name), (_, formats, _) in zip(results, destinations, jobs):
            main = f"{stem}.{FORMATS[formats[0]].extension}"
            planned += [(directory / (main_name if name == main and main_name else name), content) for name, content in files.items()]
        # Everything is rendered before anything is written: a failure writes nothing half-done.
        for path in write_all(planned):
            print(path)
    for error in errors:
        print(error, file=sys.stderr)
    return max((error.exit_code for error in errors), default=0)


def _examples(args: argparse.Namespace) -> int:
    width = max(map(len, DESCRIPTIONS))
    for name, description in DESCRIPTIONS.items():
        print(f"{name:<{width}}  {description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"solve": _solve, "examples": _examples}[args.command](args)
    except DeriveError as error:
        print(error, file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def run() -> None:
    sys.exit(main())
