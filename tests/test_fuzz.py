"""Fuzzing the contract every input is held to: derive exits 0, 1 or 2; a failure is one
short line on standard error (no traceback, no escape sequence, no control character) and
leaves nothing behind (no output, no staging folder, nothing in TMPDIR); a success leaves
its outputs; every run stays within time and memory bounds.

The properties, by source of input:

- spec dicts through the Python API, near-valid (a valid spec with a few mutations) or any
  tree: a result or a DeriveError, never another exception;
- options of any type through the API (rounding, digits, formats, notation, limits, …);
- spec texts (YAML, JSON, hostile documents, other encodings, odd file names) read by the
  command line, in-process and, for a few, in a real process;
- command lines from a grammar of the real commands and flags, in a folder holding
  existing files and folders, symbolic links and a named pipe;
- grading CSVs: responses and answer keys, hostile or not; what derive writes has no cell
  a spreadsheet would run as a formula;
- specs up to the limits, in a real process with its address space capped (only with
  `--hypothesis-profile=long`: minutes per example).

The command line runs in-process (`derive.cli.main`) with its working folder, TMPDIR,
standard output and standard error redirected into a fresh temporary folder per example.
`pytest --hypothesis-profile=long tests/test_fuzz.py` draws 10,000 examples per property;
the default profile draws fewer for the slow properties (see `scaled`). Explicit examples
pin inputs at the edges of the contract."""

from __future__ import annotations

import contextlib
import copy
import csv
import decimal
import fractions
import hashlib
import io
import itertools
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

import derive
import derive.limits
from derive.cli import main
from derive.errors import DeriveError

QUICK = settings.get_current_profile_name() == "default"  # the normal run, not --hypothesis-profile=long

# -- the contract --------------------------------------------------------------------------

EXIT_CODES = (0, 1, 2)
# One line of at most ~400 characters; argparse frames its own messages with
# "derive solve: error: … (see derive solve --help)", hence the margin.
LINE_LIMIT = 460
RUN_SECONDS = 30.0  # one run of a command; the slowest legitimate one here takes ~3 s
HANG_SECONDS = 90  # a run still going then is stopped and reported
FIFO_SECONDS = 2.0  # a run waiting this long to open a named pipe is let go and reported
MEMORY_BYTES = 3 * 1024**3  # the peak resident size of this process
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Warnings a Python process prints by default (DeprecationWarning and the like only in __main__).
SILENT_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)

ACTIVATIONS = ("linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")
HIDDEN = ("linear", "relu", "leaky_relu", "sigmoid", "tanh")
LOSSES = ("half_sse", "sse", "mse", "bce", "cross_entropy")
NOTATIONS = ("layered", "esuli", "flat", "single", "matrix")
DETAILS = ("handout", "compact", "full", "answers")
SPEC_FIELDS = ("title", "inputs", "layers", "loss", "batch", "update", "steps", "learning_rate", "data", "notation", "rounding")
LAYER_FIELDS = ("units", "activation", "alpha", "weights", "bias", "train_bias")

HOSTILE = (
    "\x1b[31mred\x1b[0m", "\x1b]0;owned\x07", "\x1b[2J\x1b[H", "\x9b31m", "\r", "a\rb", "\n", "x\ny", "\t", "\x00", "\x07",
    "\x7f", "\u2028", "\u202e", "\ufeff", "\ufffe", "$(rm -rf ~)", "`id`", "; ls", "\\input{/etc/passwd}",
    "\\write18{ls}", "\\end{document}", "^^5c^^5c", "\\catcode`\\^^M=13", "{{ 7*7 }}", "{% for x in range(9) %}x{% endfor %}",
    "{{ ''.__class__.__mro__ }}", "${7*7}", "../../x", "/etc/passwd", "%s%s%n", "' OR 1=1 --", "<script>alert(1)</script>",
    "]]>", "<![CDATA[", "&amp;", "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "😀", "é", "ﬁ", "Σ∂", "\\", "$", "#", "%",
    "&", "_", "^", "~", "{", "}", "\\\\", "x" * 300, "", " ", "null", "~", "yes", "NaN", "1e400", "0x1F",
)
CHOICE_SPELLINGS = (
    "Sigmoid", " relu ", "leaky-ReLU", "LEAKY RELU", "soft max", "softmax", "half-sse", "Half_SSE", "cross-entropy",
    "crossentropy", "BCE", "relu\x00", "reLu\n", "σ", "gelu", "", "mean", "SUM", "Batch", "sample", "exact", "Carry",
)

# -- runs ----------------------------------------------------------------------------------


@dataclass
class Box:
    """A fresh folder per example: `work` is the working folder, `tmp` is TMPDIR."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"


@contextlib.contextmanager
def sandbox() -> Iterator[Box]:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as root:
        box = Box(Path(root))
        box.work.mkdir()
        box.tmp.mkdir()
        yield box


@dataclass
class Run:
    argv: list[str]
    code: Any
    out: str
    err: str
    seconds: float
    blocked: tuple[str, ...] = ()  # named pipes the run waited on until the watchdog opened them
    hung: bool = False  # stopped by the alarm after HANG_SECONDS

    def __str__(self) -> str:
        return f"argv={self.argv!r}\nexit={self.code!r}\nstderr={self.err[:2000]!r}\nstdout={self.out[:300]!r}"


class Hung(BaseException):
    """Raised in a run that takes longer than HANG_SECONDS (not an Exception: derive's
    last-resort handler must not catch it)."""


@contextlib.contextmanager
def watched(folder: Path | None = None) -> Iterator[list[str]]:
    """Runs the body with an alarm after HANG_SECONDS (raising Hung) and, for `folder`, a
    watchdog that every FIFO_SECONDS opens each named pipe there for writing, so that a
    run blocked opening one for reading goes on (and is reported) instead of hanging.
    Yields the list of pipes that were opened so."""
    blocked: list[str] = []
    done = threading.Event()

    def release() -> None:
        while not done.wait(FIFO_SECONDS):
            for path in folder.iterdir():
                if stat.S_ISFIFO(os.lstat(path).st_mode):
                    try:
                        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                    except OSError:
                        continue  # nobody is reading it
                    blocked.append(path.name)

    def alarm(signal_number, frame):
        raise Hung(f"still running after {HANG_SECONDS} s")

    watchdog = threading.Thread(target=release, daemon=True) if folder is not None else None
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    if watchdog:
        watchdog.start()
    try:
        yield blocked
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        done.set()
        if watchdog:
            watchdog.join()


def run_cli(argv: list[str], box: Box) -> Run:
    """`derive ARGV` in-process, in `box`: standard streams as a UTF-8 process has them,
    warnings printed as Python prints them by default."""
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    stderr = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace", write_through=True)
    hung = False
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        patch.chdir(box.work)
        patch.setenv("TMPDIR", str(box.tmp))
        patch.setattr(tempfile, "tempdir", str(box.tmp))
        patch.setattr(sys, "stdout", stdout)
        patch.setattr(sys, "stderr", stderr)
        started = time.monotonic()
        with watched(box.work) as blocked:
            try:
                code = main(argv)
            except SystemExit as exit:
                code = exit.code
            except Hung:
                code, hung = None, True
        seconds = time.monotonic() - started
        stdout.flush()
        stderr.flush()
    err = err_bytes.getvalue().decode("utf-8", "replace")
    if code is None and not hung:
        code = 0
    elif isinstance(code, str):  # sys.exit("message"): Python prints it and exits with 1
        err, code = err + code + "\n", 1
    for warning in caught:
        if not issubclass(warning.category, SILENT_WARNINGS):
            err += warnings.formatwarning(warning.message, warning.category, warning.filename, warning.lineno, warning.line)
    stdout.detach()
    stderr.detach()
    return Run(list(argv), code, out_bytes.getvalue().decode("utf-8", "replace"), err, seconds, tuple(blocked), hung)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every entry below `root`: its kind and (files, links) its content's hash or target."""
    entries = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            content = ""
            if stat.S_ISREG(mode):
                with open(path, "rb") as stream:
                    content = hashlib.sha256(stream.read()).hexdigest()
            elif stat.S_ISLNK(mode):
                content = os.readlink(path)
            entries[os.path.relpath(path, root)] = (stat.S_IFMT(mode), content)
    return entries


def leftovers(root: Path) -> list[str]:
    """Staging folders and partial files anywhere below `root`."""
    found = []
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            if name.startswith(".derive-") or name.endswith(".part"):
                found.append(os.path.relpath(os.path.join(folder, name), root))
    return found


def peak_memory() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def check_clean_stderr(run: Run) -> None:
    assert "Traceback" not in run.err, f"a traceback on standard error\n{run}"
    assert "internal error" not in run.err, f"an internal error (a bug, caught by the last resort)\n{run}"
    assert "\x1b" not in run.err, f"an escape sequence on standard error\n{run}"
    assert not CONTROL.search(run.err), f"a control character on standard error\n{run}"
    for line in run.err.split("\n"):
        assert len(line) <= LINE_LIMIT, f"a line of {len(line)} characters on standard error\n{run}"


def check_contract(run: Run, box: Box, before: dict, *, writes: bool) -> None:
    """The contract of one run; `writes`: a success must have written something."""
    event(f"exit {run.code}")
    assert not run.hung, f"still running after {HANG_SECONDS} s\n{run}"
    assert not run.blocked, f"waited for a named pipe to be opened: {run.blocked}\n{run}"
    audit = bool(run.argv) and run.argv[0] == "check"
    assert run.code in EXIT_CODES or (audit and run.code == 3), f"exit code outside 0, 1, 2 (3 for check)\n{run}"
    check_clean_stderr(run)
    if audit and run.code == 3:  # a report of values not right: on standard output, nothing written
        assert run.err == "" and run.out.strip(), f"check found values not right but did not say so\n{run}"
        assert snapshot(box.root) == before, f"check changed files: {changes(before, snapshot(box.root))}\n{run}"
    elif run.code != 0:
        assert run.err.endswith("\n") and run.err.count("\n") == 1, f"a failure is not one line on standard error\n{run}"
        after = snapshot(box.root)
        # The one thing a failure keeps, as documented: the .tex and .log of a LaTeX error, in
        # the folder its message names.
        kept = re.search(r"the \.tex and \.log are kept in (\S+)$", run.err.strip())
        if run.code == 1 and kept:
            folder = Path(kept.group(1)).relative_to(box.root).as_posix()
            assert re.fullmatch(r"tmp/derive-[A-Za-z0-9_-]+", folder), run
            after = {path: entry for path, entry in after.items() if path != folder and not path.startswith(folder + "/")}
        assert after == before, f"a failure left files behind or changed them: {changes(before, after)}\n{run}"
        if run.code == 1 and kept:
            shutil.rmtree(kept.group(1))
    elif writes:
        assert snapshot(box.root) != before, f"a success wrote nothing\n{run}"
    assert not leftovers(box.root), f"staging or partial files left: {leftovers(box.root)}\n{run}"
    assert not any(box.tmp.iterdir()), f"left in TMPDIR: {sorted(p.name for p in box.tmp.iterdir())}\n{run}"
    assert run.seconds < RUN_SECONDS, f"took {run.seconds:.1f} s\n{run}"
    assert peak_memory() < MEMORY_BYTES, f"peak memory {peak_memory() / 2**20:.0f} MiB\n{run}"


def changes(before: dict, after: dict) -> list[str]:
    names = sorted(set(before) | set(after))
    return [name for name in names if before.get(name) != after.get(name)][:10]


def scaled(default_examples: int) -> settings:
    """Settings of a property: in the default profile at most `default_examples` examples
    (the slow properties), in any other profile the profile's own number."""
    if settings.get_current_profile_name() == "default":
        return settings(max_examples=default_examples, deadline=None, suppress_health_check=list(HealthCheck))
    return settings(deadline=None, suppress_health_check=list(HealthCheck))


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


# -- specs ---------------------------------------------------------------------------------


def decimals(low: float, high: float, places: int = 2):
    """Numbers as a spec writes them."""
    scale = 10**places
    return st.integers(round(low * scale), round(high * scale)).map(lambda n: n / scale)


titles = st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE), st.sampled_from(["Forward pass", "Σ-net", "a" * 201]))


@st.composite
def valid_specs(draw) -> dict:
    """A small spec that loads (unless its notation does not fit the network), and solves
    fast: up to 3 inputs, 3 layers of 3 units, 3 samples, 3 steps."""
    number = decimals(-1.5, 1.5)
    loss = draw(st.sampled_from(LOSSES))
    output = {"bce": "sigmoid", "cross_entropy": "softmax"}.get(loss) or draw(st.sampled_from(ACTIVATIONS))
    inputs = draw(st.integers(1, 3))
    depth = draw(st.integers(1, 3))
    layers, fan_in = [], inputs
    for index in range(depth):
        activation = output if index == depth - 1 else draw(st.sampled_from(HIDDEN))
        units = draw(st.integers(2 if activation == "softmax" else 1, 3))
        layer: dict[str, Any] = {
            "units": units, "activation": activation, "weights": [[draw(number) for _ in range(fan_in)] for _ in range(units)],
        }
        if activation == "leaky_relu" and draw(st.booleans()):
            layer["alpha"] = draw(decimals(0.01, 0.5))
        bias = draw(st.sampled_from(["list", "shared", "none"]))
        if bias == "list":
            layer["bias"] = [draw(number) for _ in range(units)]
        elif bias == "shared":
            layer["bias"] = draw(number)
        if draw(st.booleans()):
            layer["train_bias"] = draw(st.booleans())
        layers.append(layer)
        fan_in = units
    samples = []
    for _ in range(draw(st.integers(1, 3))):
        x = [draw(decimals(-2, 2)) for _ in range(inputs)]
        if loss == "bce":
            y = [draw(st.sampled_from([0, 1, 0.5, 0.25])) for _ in range(fan_in)]
        elif loss == "cross_entropy":
            hot = draw(st.integers(0, fan_in - 1))
            y = [1 if k == hot else 0 for k in range(fan_in)]
        else:
            y = [draw(decimals(-1, 1)) for _ in range(fan_in)]
        samples.append({"x": x[0] if inputs == 1 and draw(st.booleans()) else x, "y": y})
    spec: dict[str, Any] = {
        "inputs": inputs, "layers": layers, "loss": loss, "learning_rate": draw(decimals(0.01, 1)), "data": samples,
    }
    if draw(st.booleans()):
        spec["title"] = draw(titles)
    for name, choices in (("batch", ("mean", "sum")), ("update", ("batch", "sample")), ("rounding", ("carry", "exact"))):
        if draw(st.booleans()):
            spec[name] = draw(st.sampled_from(choices))
    if draw(st.booleans()):
        spec["steps"] = draw(st.integers(1, 3))
    if draw(st.integers(0, 3)) == 0:
        base = draw(st.sampled_from(NOTATIONS))
        symbol = draw(st.sampled_from(["L", "\\mathcal{L}", "J"]))
        spec["notation"] = base if draw(st.booleans()) else {"base": base, "loss": symbol}
    return spec


BIG_NUMBERS = (
    10**400, -(10**400), 2**63, 2**64 + 1, 10**6, 10**6 + 1, -(10**6) - 1, 10**12, 10**12 + 1, 10**15, 0, -1, 1, 10_000, 10_001,
    1001, 65, 64, 11, 5001, 50_001,
)
ODD_FLOATS = (
    math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 1e-300, 1e6, 1.0000001e6, -1e6, 1e-7, 0.5, 1.0, 2.0, 0.0,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.integers(),
    st.sampled_from(BIG_NUMBERS),
    st.floats(),
    st.sampled_from(ODD_FLOATS),
    st.text(max_size=12),
    st.sampled_from(HOSTILE + CHOICE_SPELLINGS),
)
keys = st.one_of(
    st.text(max_size=10), st.sampled_from(SPEC_FIELDS + LAYER_FIELDS + ("x", "y", "base", "__class__")), st.sampled_from(HOSTILE)
)
json_trees = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4), max_leaves=12
)
# What only a Python caller can pass: other key types, tuples, bytes, exact numbers.
python_scalars = st.one_of(
    scalars,
    st.binary(max_size=6),
    st.decimals(allow_nan=True),
    st.fractions(),
    st.complex_numbers(),
    st.sampled_from([decimal.Decimal("1e400"), fractions.Fraction(1, 3), 1j, b"relu", bytearray(b"x"), range(3), frozenset([1])]),
)
python_keys = st.one_of(keys, st.integers(), st.none(), st.booleans(), st.floats(), st.tuples(st.integers()))
python_trees = st.recursive(
    python_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.lists(children, max_size=4).map(tuple)
    | st.dictionaries(python_keys, children, max_size=4),
    max_leaves=12,
)


def locations(tree: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from locations(value, path + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from locations(value, path + (index,))


def at(tree: Any, path: tuple) -> Any:
    for step in path:
        tree = tree[step]
    return tree


@st.composite
def mutated(draw, spec: dict, junk) -> dict:
    """`spec` with one change somewhere: a value replaced by junk, scaled, retyped or
    respelled; a field removed or added; a list made longer or shorter; softmax put on a
    hidden layer."""
    spec = copy.deepcopy(spec)
    path = draw(st.sampled_from(list(locations(spec))))
    target = at(spec, path)
    parent, last = (at(spec, path[:-1]), path[-1]) if path else (None, None)
    kind = draw(st.sampled_from(["replace", "remove", "add", "scale", "retype", "respell", "softmax", "length"]))
    if kind == "softmax" and spec.get("layers") and isinstance(spec["layers"], list):
        layer = draw(st.sampled_from(spec["layers"]))
        if isinstance(layer, dict):
            layer["activation"] = draw(st.sampled_from(["softmax", "Softmax", "soft-max"]))
    elif kind == "remove" and parent is not None:
        del parent[last]
    elif kind == "add" and isinstance(target, dict):
        target[draw(keys)] = draw(junk)
    elif kind in ("add", "length") and isinstance(target, list):
        if target and draw(st.booleans()):
            target.pop(draw(st.integers(0, len(target) - 1)))
        else:
            added = copy.deepcopy(target[0]) if target and draw(st.booleans()) else draw(junk)
            target.insert(draw(st.integers(0, len(target))), added)
    elif kind == "scale" and parent is not None and isinstance(target, (int, float)) and not isinstance(target, bool):
        factor = draw(st.sampled_from([10**3, 10**6, 10**7, 10**400, -1, 0, 1e-300, 1e300, math.inf, math.nan]))
        try:
            parent[last] = target * factor
        except OverflowError:
            parent[last] = factor
    elif kind == "retype" and parent is not None:
        parent[last] = draw(st.sampled_from([str, lambda v: [v], lambda v: {"value": v}, lambda v: [[v]], repr, bool]))(target)
    elif kind == "respell" and parent is not None and isinstance(target, str):
        parent[last] = draw(st.sampled_from([str.upper, str.title, lambda s: f" {s}\t", lambda s: s.replace("_", "-"),
                                             lambda s: s + "\x00", lambda s: s[:-1], lambda s: s + "\u200b"]))(target)
    elif parent is not None:
        parent[last] = draw(junk)
    return spec


@st.composite
def near_valid_specs(draw, junk=json_trees) -> dict:
    spec = draw(valid_specs())
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        spec = draw(mutated(spec, junk))
    return spec


spec_dicts = st.one_of(
    near_valid_specs(),
    near_valid_specs(),
    near_valid_specs(python_trees),
    st.dictionaries(st.sampled_from(SPEC_FIELDS) | keys, json_trees, max_size=8),
    python_trees,
)

# -- spec dicts through the API ------------------------------------------------------------


@dataclass
class View:
    rounding: Any = None
    digits: Any = 3
    shortcut: Any = True
    formats: tuple = ("md",)
    notation: Any = None
    detail: Any = "handout"


views = st.builds(
    View,
    rounding=st.sampled_from([None, None, "carry", "exact", "Carry", "round"]),
    digits=st.sampled_from([0, 1, 2, 3, 3, 3, 4, 5, 6, 12, -1, 13]),
    shortcut=st.booleans(),
    formats=st.lists(st.sampled_from(["md", "tex", "json"] * 3 + ["html", "MD"]), min_size=1, max_size=3, unique=True).map(tuple),
    notation=st.sampled_from((None,) * 6 + NOTATIONS + ("bogus",)),
    detail=st.sampled_from(DETAILS * 2 + ("bogus",)),
)


def through_the_api(spec: Any, view: View) -> None:
    """load_spec, solve and render with `view`: every outcome is a result or a DeriveError."""
    before = repr(spec)
    try:
        loaded = derive.load_spec(spec)
        assert repr(spec) == before, "load_spec changed the dict it was given"
        again = derive.load_spec(loaded.to_dict())
        assert again == loaded, f"to_dict does not load back to the same spec:\n{loaded}\n{again}"
        solution = derive.solve(loaded, rounding=view.rounding, digits=view.digits, shortcut=view.shortcut)
        for format in view.formats:
            text = derive.render(solution, format, notation=view.notation, detail=view.detail)
            assert isinstance(text, str) and text.strip()
            if format == "json":
                strict_json(text)
        event("solved")
    except DeriveError as error:
        event(type(error).__name__)
        assert error.exit_code in (1, 2), error
        assert str(error).strip(), "an error without a message"


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=spec_dicts, view=views)
@example(spec=None, view=View())  # not a mapping, nor a path
@example(spec=[{"inputs": 1}], view=View())
def test_spec_dicts_through_the_api(spec, view):
    """Any dict (or other value) as a spec: a solution rendered in every format asked for,
    or a DeriveError; the dict is left as it was and the spec loads back from to_dict."""
    started = time.monotonic()
    with watched():
        through_the_api(spec, view)
    assert time.monotonic() - started < RUN_SECONDS
    assert peak_memory() < MEMORY_BYTES


ESULI = yaml.safe_load(Path(derive.__file__).parent.joinpath("spec", "examples", "esuli.yaml").read_text(encoding="utf-8"))

any_value = st.one_of(
    python_scalars, st.lists(python_scalars, max_size=3), st.dictionaries(python_keys, python_scalars, max_size=3), python_trees
)


def valid_or_any(*valid):
    """One of `valid` three times in four, else any value: most examples then have one
    option of the wrong type, the one that must be reported."""
    return st.integers(0, 3).flatmap(lambda n: st.sampled_from(valid) if n else any_value)


@scaled(60)
@given(
    view=st.builds(
        View, rounding=valid_or_any(None, "carry", "exact"), digits=valid_or_any(3, 0, 12), shortcut=valid_or_any(True, False),
        formats=st.lists(valid_or_any("md", "tex", "json"), min_size=1, max_size=2).map(tuple),
        notation=valid_or_any(None, *NOTATIONS), detail=valid_or_any(*DETAILS),
    ),
    limits=valid_or_any(derive.limits.DEFAULT_LIMITS),
    name=valid_or_any(None, "esuli"),
)
@example(view=View(), limits=None, name=None)
@example(view=View(formats=([],)), limits=derive.limits.DEFAULT_LIMITS, name=None)
def test_api_options_of_any_type(view, limits, name):
    """A valid spec with options of any type: a result or a DeriveError, nothing else."""
    with watched():
        options_of_any_type(view, limits, name)


def options_of_any_type(view: View, limits: Any, name: Any) -> None:
    try:
        derive.load_spec(ESULI, name=name, limits=limits)
    except DeriveError:
        pass
    try:
        derive.load_spec(ESULI, limits=limits)
    except DeriveError:
        pass
    through_the_api(ESULI, view)


# -- spec texts through the command line ---------------------------------------------------

RAW = "RAWVALUE7"  # a leaf replaced by a raw snippet after the spec is written out

YAML_SNIPPETS = (
    "&a 1", "*a", "&a [1, 2]", "{<<: *a}", "!!python/object/apply:os.system ['echo owned']", "!!python/name:os.system",
    "!!binary aGVsbG8=", "!!set {a, b}", "!!timestamp 2001-12-14", "!!float .nan", "!!int 0x10", "!!str 3", "!foo bar",
    "!!map {a: 1}", "!<tag:yaml.org,2002:int> 3", ".inf", "-.inf", ".NaN", "0x1F", "0o17", "0b101", "1_000", "1:30", "1e400",
    "-1e400", "1e-400", "+.5", "9" * 300, "1" + "0" * 99, "1" + "0" * 100, "0." + "0" * 500 + "1", "0x" + "f" * 200,
    "1.0e+6", "1000001", "-0", "~", "null", "yes", "no", "on", "off", "Y", "1e6", "1E6", "2e5", "1__0", "0.", ".",
    "'\\x1b[31m'", '"\\x1b[31mred"', '"\\u0000"', '"\\ud800"', '"\\r\\n"', '"\\U0001F600"', '"\\N"', "|\n  block\n  text",
    ">-\n  folded", "[1, 2", "{a: 1", "]", "}", ": :", "- - -", "? complex\n: key", "%TAG ! tag:x,2000:", "--- ", "...",
    "'unterminated", '"unterminated', "# just a comment", "\t1", "[" * 21 + "]" * 21, "[" * 19 + "1" + "]" * 19,
    "{a: " * 25 + "1" + "}" * 25,
)
JSON_SNIPPETS = (
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "9" * 101, "9" * 5000, "0." + "1" * 5000, "1.5e+6", "-0",
    "true", "null", '"\\u0000"', '"\\ud800"', '"\\udfff\\ud800"', '"\\u001b[31m"', '"\\x41"', "[1, 2,]", "{,}", "'x'",
    "01", ".5", "+1", "0x10", "/* c */ 1", "[" * 21 + "]" * 21, "[" * 100_000, "{" * 30, '{"a": 1, "a": 2}', "[1 2]",
)
DEEP = (
    "[" * 21 + "]" * 21, "[" * 20 + "]" * 20, "- " * 25 + "1\n", "a: " + "[" * 25_000 + "]" * 25_000 + "\n",
    "[" * 100_000 + "]" * 100_000, '{"a":' * 30 + "1" + "}" * 30, "\n".join(" " * i + "a:" for i in range(40)) + " 1\n",
)
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
MERGE_KEYS = """\
base: &base {units: 1, activation: sigmoid, weights: [[0.5]]}
inputs: 1
layers: [{<<: *base, bias: 0.1}]
loss: half_sse
learning_rate: 0.1
data: [{x: 1, y: 0}]
"""


@st.composite
def spec_texts(draw) -> tuple[bytes, bool]:
    """(content, as JSON) of a spec file: a near-valid spec written out as YAML or JSON with
    raw snippets at its leaves and text mutations, in some encoding; or a hostile document,
    random text or bytes."""
    kind = draw(st.sampled_from(["yaml"] * 4 + ["json"] * 3 + ["document", "random", "bytes"]))
    as_json = kind == "json" or (kind in ("document", "random", "bytes") and draw(st.booleans()))
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=300)), as_json
    if kind == "document":
        text = draw(st.sampled_from(DEEP + (BILLION_LAUGHS, MERGE_KEYS, "", " \n", "\ufeff", "# nothing\n", "---\n...\n",
                                           "--- 1\n--- 2\n", "%YAML 1.2\n---\ninputs: 1\n", "[]", "{}", "null", "3",
                                           "x" * 2_000_000)))
    elif kind == "random":
        text = draw(st.text(max_size=200))
    else:
        spec = draw(near_valid_specs())
        snippets = YAML_SNIPPETS if kind == "yaml" else JSON_SNIPPETS
        raw = []
        for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
            path = draw(st.sampled_from(list(locations(spec))))
            if path:
                at(spec, path[:-1])[path[-1]] = RAW
                raw.append(draw(st.sampled_from(snippets + HOSTILE)))
        try:
            if kind == "yaml":
                text = yaml.safe_dump(spec, default_flow_style=draw(st.sampled_from([None, True, False])),
                                      allow_unicode=draw(st.booleans()), sort_keys=False)
            else:
                text = json.dumps(spec, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1, "\t"])))
        except (TypeError, ValueError, yaml.YAMLError):
            text = repr(spec)
        for snippet in raw:
            text = text.replace(f'"{RAW}"', snippet, 1) if f'"{RAW}"' in text else text.replace(RAW, snippet, 1)
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
            text = draw(text_mutation(text))
    return encoded(text, draw(st.sampled_from(ENCODINGS))), as_json


@st.composite
def text_mutation(draw, text: str) -> str:
    where = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["insert", "delete", "tabs", "crlf", "cr", "bom", "nul", "truncate", "long line", "document"]))
    if kind == "insert":
        return text[:where] + draw(st.sampled_from(HOSTILE + YAML_SNIPPETS[:20]) | st.text(max_size=5)) + text[where:]
    if kind == "delete":
        return text[:where] + text[where + draw(st.integers(1, 10)):]
    if kind == "tabs":
        return text.replace("  ", "\t")
    if kind == "crlf":
        return text.replace("\n", "\r\n")
    if kind == "cr":
        return text.replace("\n", "\r")
    if kind == "bom":
        return "\ufeff" + text
    if kind == "nul":
        return text[:where] + "\x00" + text[where:]
    if kind == "truncate":
        return text[:where]
    if kind == "long line":
        return text + "\n# " + "x" * draw(st.sampled_from([70_000, 1_000_001])) + "\n"
    return text + "\n---\n" + text


FILE_NAMES = (
    "spec.yaml", "...yaml", "a b.yaml", "-x.yaml", "--format.yaml", "ñandú.yaml", "спец.json", "规格.yml", "x.JSON", ".yaml",
    "x", "x.txt", "x.yaml.json", "\x1b[31mred.yaml", "a\nb.yaml", "a\rb.json", "$(rm -rf).yaml", "esuli", "esuli.yaml",
    "'q\".yaml", "a" * 200 + ".yaml", "*.yaml", "~.yaml", "x;y.yaml", "%s.yaml", "{{7*7}}.yaml", "\\input{x}.yaml",
    " lead.yaml", "trail .yaml", "x..yaml", "😀.json", "\u202eevil.yaml", "con.yaml", "é.yaml", "e\u0301.yaml",
)
file_names = st.one_of(
    st.sampled_from(FILE_NAMES),
    st.tuples(
        st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=30),
        st.sampled_from([".yaml", ".yml", ".json", ""]),
    ).map("".join).filter(lambda name: name not in (".", "..") and len(name.encode()) < 250),
)
ENCODINGS = ("utf-8",) * 8 + ("utf-8-sig", "utf-16", "latin-1", "surrogates")


def encoded(text: str, encoding: str) -> bytes:
    if encoding == "surrogates":
        return text.encode("utf-8", "surrogatepass")
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


@scaled(100)
@given(
    text=spec_texts(),
    name=file_names,
    spelled=st.sampled_from(["plain", "./", "absolute", "--"]),
    command=st.sampled_from(["solve", "solve", "solve", "exercise"]),
    formats=st.lists(st.sampled_from(["md", "tex", "json"]), min_size=1, max_size=3, unique=True),
    output=st.sampled_from(["out", None, "-"]),
)
def test_spec_texts_through_the_command_line(text, name, spelled, command, formats, output):
    content, as_json = text
    if as_json and not name.lower().endswith(".json"):
        name += ".json"
    with sandbox() as box:
        path = box.work / name
        path.write_bytes(content)
        argument = {"plain": [name], "./": [f"./{name}"], "absolute": [str(path)], "--": ["--", name]}[spelled]
        if command == "solve":
            argv = ["solve", "--format", ",".join(formats[:1] if output == "-" else formats)]
        else:
            argv = ["exercise", "--count", "2", "--format", "json"]
            output = "out" if output == "-" else output
        argv += ["--output", output] if output else []
        before = snapshot(box.root)
        run = run_cli(argv + argument, box)
        check_contract(run, box, before, writes=output != "-")
        try:
            derive.load_spec(path)
        except DeriveError:
            pass


@scaled(6)
@given(text=spec_texts(), name=file_names)
def test_spec_texts_in_a_real_process(text, name):
    """What only a process shows: bytes on the real standard error (warnings of libraries,
    the interpreter's own messages), TMPDIR from the environment, the exit status."""
    content, as_json = text
    if as_json and not name.lower().endswith(".json"):
        name += ".json"
    with sandbox() as box:
        (box.work / name).write_bytes(content)
        before = snapshot(box.root)
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("DERIVE_", "PYTHON"))}
        environment.update(TMPDIR=str(box.tmp), LC_ALL="C.UTF-8", COLUMNS="80")
        started = time.monotonic()
        process = subprocess.run(
            [sys.executable, "-m", "derive", "solve", "--output", "out", "--", name],
            check=False, cwd=box.work, env=environment, capture_output=True, timeout=120,
        )
        run = Run(["solve", "--output", "out", "--", name], process.returncode, process.stdout.decode("utf-8", "replace"),
                  process.stderr.decode("utf-8", "replace"), time.monotonic() - started)
        assert process.stderr.decode("utf-8", "replace").encode() == process.stderr, f"standard error is not UTF-8\n{run}"
        check_contract(run, box, before, writes=True)


# -- command lines -------------------------------------------------------------------------

SPEC_TEXT = yaml.safe_dump({
    "title": "A title with $ and \\input{x} and {{ 7*7 }}", "inputs": 2,
    "layers": [{"units": 2, "activation": "tanh", "weights": [[0.5, -0.4], [0.3, 0.8]], "bias": [0.1, -0.2]},
               {"units": 1, "activation": "sigmoid", "weights": [[0.7, -1.1]], "bias": 0.05}],
    "loss": "bce", "learning_rate": 0.5, "steps": 2, "data": [{"x": [0.9, -0.3], "y": [1]}, {"x": [0.4, 0.6], "y": [0]}],
}, allow_unicode=True)
TEMPLATES = (
    "{{ 7*7 }}", "{{ ''.__class__.__mro__ }}", "{{ solution.__class__ }}", "{{ cycler.__init__.__globals__ }}",
    "{% include '/etc/passwd' %}", "{% include '../../x' %}", "{% extends 'solution.md.j2' %}", "{{ undefined_name }}",
    "{{ 1/0 }}", "{{ solution.title|tex }}", "{{ 'x' * 100000000 }}", "{% for i in range(10**9) %}{% endfor %}",
    "{% raw %}", "{{", "{% if %}", "\x00", "plain text", "{{ solution.spec.layers[99] }}", "{{ printer }}",
)


def box_with_files(box: Box) -> None:
    """The files a command line may name: a valid spec, a broken one, an existing folder
    and file, a responses file, a template folder."""
    work = box.work
    (work / "spec.yaml").write_text(SPEC_TEXT, encoding="utf-8")
    (work / "bad.yaml").write_text("inputs: [\n", encoding="utf-8")
    (work / "existing-dir").mkdir()
    (work / "existing-dir" / "keep.txt").write_text("keep", encoding="utf-8")
    (work / "existing.md").write_text("keep", encoding="utf-8")
    (work / "tpl").mkdir()
    (work / "answers.csv").write_text("variant,question,value,tolerance\nV01-0001,loss,0.5,0.01\n", encoding="utf-8")
    (work / "stated.yaml").write_text("z2[0]: 0.103\na2[0]: 0.526\nloss: 0.2\n'grad:W2[0,0]': 0.038\n", encoding="utf-8")
    (work / "responses.csv").write_text(
        'student,variant,question,value\nada,V01-0001,loss,"0,5"\n=x,V01-0001,loss,1\n', encoding="utf-8"
    )
    os.mkfifo(work / "fifo.csv")
    links = (("loop", "loop"), ("link-dir", "existing-dir"), ("dangling.yaml", "missing-target"), ("link.yaml", "spec.yaml"))
    for link, target in links:
        os.symlink(target, work / link)


NOTHING = st.nothing()


def values(*choices: str, extra=NOTHING):
    return st.sampled_from(choices) | extra


def joined(choices, low: int = 1, high: int = 3):
    return st.lists(st.sampled_from(choices), min_size=low, max_size=high, unique=True).map(",".join)


OUTPUTS = ("out", "out/sub/", "existing-dir", "new.tex", "new.json", "out.md", ".", "a b/c", "ñ/x.md", "-")
HOSTILE_OUTPUTS = ("existing.md", "existing.md/inside", "", "..", "spec.yaml", "\x1b[31m", "tpl", "out/./x", "x" * 300,
                   "existing-dir/keep.txt", "out/../out", "-x", "loop", "link-dir", "dangling.yaml", "fifo.csv", "link.yaml")
# Each option: (values a user means, values that probe the edges).
OPTIONS = {
    "--format": (joined(("md", "tex", "json")),
                 values("html", "", ",", "md,", "MD", "md tex", "json md tex", "md,md", " md , json ",
                        extra=joined(("md", "json", "moodle", "qti", "html")))),
    "--output": (st.sampled_from(OUTPUTS), st.sampled_from(HOSTILE_OUTPUTS)),
    "--digits": (st.integers(0, 6).map(str),
                 values("", "x", "0x3", "1e1", "３", " 3", "99999999999999999999", "-0", "-1", "13", "12")),
    "--count": (st.integers(1, 3).map(str), values("0", "-1", "1001", "abc", "0x2", "1e3", "  2", "10" * 30)),
    "--seed": (st.integers(0, 65_535).map(str), values("65536", "0xffff", "0x10000", "-1", "x", "")),
    "--variant": (values("V01-0001", "V02-07ea", "V03-ffff", "V1-0001", "V2-0000"),
                  values("V00-0001", "V1001-0001", "V01-XYZ", "v01-0001", "V01-0001 ", "V" + "0" * 30 + "1-0001", "",
                         "\x1b[31m", "V٣-0001", extra=st.text(max_size=12))),
    "--shape": (st.lists(st.integers(1, 3), min_size=2, max_size=4).map(lambda n: ",".join(map(str, n))),
                values("0,1", "3", "65,1", "3,2,1,", "a,b", "3 2 1", "-1,2", "99999999999,1", "3,,1", "1," * 200 + "1",
                       "２,１")),
    "--activations": (st.lists(st.sampled_from(HIDDEN), min_size=1, max_size=3).map(",".join),
                      values("softmax", "relu,softmax", "sigmoid,softmax", "RELU,Sigmoid", "gelu", "", ",", "relu,,sigmoid")),
    "--loss": (st.sampled_from(LOSSES), values("", "bogus", "BCE", "\x1b[1m")),
    "--learning-rate": (values("0.1", "0.5", "1"),
                        values("0", "-1", "nan", "inf", "1e400", "1e-400", "x", "1e6", "1e7", "0x1p-3")),
    "--low": (values("-1", "-2", "0"), values("1", "nan", "inf", "-inf", "1e6", "-1e7", "x", "5", "-5", "0.5")),
    "--high": (values("1", "2", "0.5"), values("-1", "nan", "inf", "1e6", "1e7", "0", "x", "5")),
    "--decimals": (values("0", "1", "2"), values("6", "7", "-1", "x", "100")),
    "--rounding": (values("carry", "exact"), values("Carry", "", "bogus")),
    "--notation": (st.sampled_from(NOTATIONS), values("bogus", "", "Esuli")),
    "--detail": (st.sampled_from(DETAILS), values("bogus", "", "FULL")),
    "--ask": (values("forward", "loss", "gradients", "updates", "loss,grad:W1[0,0]", "a2[0]", "new:W2[0,0]",
                     "forward,loss,gradients,updates"),
              values("grad:W9[9,9]", "", ",", "z1[0],z1[0]", "\x1b[31m", "a1[5]", "grad:b1", extra=st.text(max_size=15))),
    "--limit": (values("units=100", "steps=5", "variants=5", "layers=3", "parameters=200"),
                values("units=1", "parameters=1", "variants=1", "steps=1", "samples=1", "shown=1", "work=1", "layers=1",
                       "steps=0",
                       "bogus=3", "units=10000000000000", "=", "units", "units=1e3", "UNITS=3", " units = 3 ")),
    "--stress": (values("1", "5", "30"), values("0", "1001", "x")),
    "--template-dir": (st.just("tpl"), values("nonexistent", "existing.md", "existing-dir")),
    "--no-shortcut": (st.just(None), st.just(None)),
    "--version": (st.just(None), st.just(None)),
    "--help": (st.just(None), st.just(None)),
}
COMMAND_OPTIONS = {
    "solve": ("--format", "--output", "--digits", "--notation", "--rounding", "--detail", "--no-shortcut", "--limit",
              "--template-dir"),
    "exercise": ("--format", "--output", "--digits", "--count", "--seed", "--variant", "--ask", "--low", "--high", "--decimals",
                 "--rounding", "--notation", "--limit", "--stress", "--learning-rate"),
    "grade": ("--output",),
    "check": ("--digits",),
}
EXERCISE_FORMATS = ("md", "tex", "json", "moodle", "qti")
SOURCES = ("spec.yaml", "esuli", "elbasheer", "students")
STRAY_TOKENS = ("--bogus", "-x", "--format=md", "--output=out", "--", "--count", "-", "--digits=2", "--shape=2,1")
TEMPLATE_NAMES = ("solution.md.j2", "solution.body.j2", "md/macros.j2", "solution.tex.j2", "other.j2")
HOSTILE_SOURCES = ("bad.yaml", "missing.yaml", "existing-dir", "existing.md", "responses.csv", "-", "", "--", "-x", "\x1b[31m",
                   "fifo.csv", "loop", "link-dir", "dangling.yaml", "link.yaml")


def sometimes_hostile(usual, hostile):
    """The usual strategy three times in four."""
    return st.integers(0, 3).flatmap(lambda n: usual if n else hostile)


def option_value(option: str, command: str):
    usual, hostile = OPTIONS[option]
    if option == "--format" and command == "exercise":
        usual = joined(EXERCISE_FORMATS)
    return sometimes_hostile(usual, hostile)


@st.composite
def command_lines(draw) -> list[str]:
    """A command line from the grammar of derive's commands: mostly what a user means,
    with edge values, stray tokens and options of other commands mixed in."""
    command = draw(st.sampled_from(["solve"] * 3 + ["exercise"] * 2 + ["exercise-shape"] * 2 + ["grade", "check", "examples", "other"]))
    if command == "other":
        return draw(st.sampled_from([[], ["--help"], ["--version"], ["-h"], ["--bogus"], ["help"], ["solve"], ["exercise"],
                                     ["grade"], ["grade", "answers.csv"], ["exercise", "--help"], ["\x1b[31m"], ["solve", "--"]]))
    if command == "examples":
        return ["examples"] + draw(st.lists(st.sampled_from(["--bogus", "x", "--help"]), max_size=1))
    source = sometimes_hostile(st.sampled_from(SOURCES), st.sampled_from(HOSTILE_SOURCES))
    if command == "grade":
        files = ("answers.csv", "responses.csv", "missing.csv", "existing-dir", "spec.yaml", "fifo.csv", "loop", "link-dir")
        argv = ["grade", draw(sometimes_hostile(st.just("answers.csv"), st.sampled_from(files))),
                draw(sometimes_hostile(st.just("responses.csv"), st.sampled_from(files)))]
        if draw(st.integers(0, 9)) == 0:
            argv = argv[: draw(st.integers(1, 3))] + draw(st.lists(st.sampled_from(files), max_size=1))
    elif command == "exercise-shape":
        shape = draw(option_value("--shape", "exercise"))
        layers = max(1, shape.count(","))
        activations = sometimes_hostile(
            st.lists(st.sampled_from(HIDDEN), min_size=layers, max_size=layers).map(",".join), OPTIONS["--activations"][1]
        )
        loss = draw(option_value("--loss", "exercise"))
        argv = ["exercise", "--shape", shape, "--activations", draw(activations), "--loss", loss]
        command = "exercise"
        if draw(st.integers(0, 7)) == 0:
            argv.append(draw(source))
    elif command == "check":
        stated = ("stated.yaml", "responses.csv", "answers.csv", "spec.yaml", "missing.csv", "fifo.csv", "existing-dir", "bad.yaml")
        argv = ["check", draw(source), draw(sometimes_hostile(st.just("stated.yaml"), st.sampled_from(stated)))]
    elif command == "exercise":
        argv = ["exercise", draw(source)]
    else:
        argv = ["solve"] + draw(st.lists(source, min_size=1, max_size=2))
    names = COMMAND_OPTIONS[command]
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 2, 3, 4]))):
        if draw(st.integers(0, 24)) == 0:
            argv.append(draw(st.sampled_from(STRAY_TOKENS)))
            continue
        option = draw(st.sampled_from(names) if draw(st.integers(0, 14)) else st.sampled_from(sorted(OPTIONS)))
        value = draw(option_value(option, command))
        if value is None:
            argv.append(option)
        elif option == "--format" and " " in value.strip() and draw(st.booleans()):
            argv += [option, *value.split()]  # formats separated by spaces, as a shell passes `--format md tex`
        else:
            argv += [option, value]
    if command in ("solve", "exercise", "grade") and "--output" not in argv and draw(st.integers(0, 3)):
        argv += ["--output", draw(option_value("--output", command))]
    return argv


def writes_files(argv: list[str]) -> bool:
    """Whether a success of `argv` must have written files (not to standard output, not a
    report or a listing)."""
    if not argv or argv[0] not in ("solve", "exercise", "grade"):
        return False
    if any(token in ("--help", "-h", "--version", "--stress") or token.startswith("--stress=") for token in argv):
        return False
    outputs = [argv[i + 1] for i, token in enumerate(argv[:-1]) if token == "--output"]
    outputs += [token.split("=", 1)[1] for token in argv if token.startswith("--output=")]
    return not (outputs and outputs[-1] == "-" and argv[0] == "solve")


@scaled(120)
@given(argv=command_lines(), template=st.sampled_from(TEMPLATES), template_name=st.sampled_from(TEMPLATE_NAMES))
@example(argv=[], template="", template_name="other.j2")  # help on standard output, nothing on standard error
@example(argv=["grade", "answers.csv", "responses.csv", "--output", "x" * 300], template="", template_name="other.j2")
@example(argv=["solve", "esuli", "--format", "md", "--output", "x" * 300 + ".md"], template="", template_name="other.j2")
@example(argv=["grade", "answers.csv", "responses.csv", "--output", "loop"], template="", template_name="other.j2")
@example(argv=["grade", "fifo.csv", "responses.csv"], template="", template_name="other.j2")
def test_command_lines(argv, template, template_name):
    with sandbox() as box:
        box_with_files(box)
        (box.work / "tpl" / template_name).parent.mkdir(parents=True, exist_ok=True)
        (box.work / "tpl" / template_name).write_text(template, encoding="utf-8")
        before = snapshot(box.root)
        run = run_cli(argv, box)
        check_contract(run, box, before, writes=writes_files(argv))


# -- PDF ----------------------------------------------------------------------------------

LATEX_BODIES = (
    None,  # the built-in templates
    "\\undefinedcommand", "\\input{/etc/passwd}", "\\openout1=x.tex \\write1{x}\\closeout1", "\\immediate\\write18{touch owned}",
    "{{ solution.title }} \\verb|x", "\\end{document}", "\\csname", "\\begin{itemize}", "$x", "{{ 7*7 }} ^^5c",
)


# Seconds per example (LaTeX): two in the normal run, the profile's count with --hypothesis-profile=long.
@settings(deadline=None, suppress_health_check=list(HealthCheck), **({"max_examples": 2} if QUICK else {}))
@given(
    source=st.sampled_from(["esuli", "spec.yaml"]),
    formats=st.sampled_from(["pdf", "md,pdf", "pdf,tex", "json,pdf"]),
    body=st.sampled_from(LATEX_BODIES),
    output=st.sampled_from(["out", "existing-dir", "new.pdf"]),
)
def test_pdf_command_lines(source, formats, body, output):
    """`--format pdf`, with the built-in templates or a LaTeX template of the user's that
    fails or tries to reach outside: the same contract as every other run."""
    with sandbox() as box:
        box_with_files(box)
        argv = ["solve", source, "--format", formats, "--output", output]
        if body is not None:
            document = "\\documentclass{article}\n\\begin{document}\n" + body + "\n\\end{document}\n"
            (box.work / "tpl" / "solution.tex.j2").write_text(document, encoding="utf-8")
            argv += ["--template-dir", "tpl"]
        before = snapshot(box.root)
        run = run_cli(argv, box)
        check_contract(run, box, before, writes=True)


# -- work up to the limits -----------------------------------------------------------------

LIMIT_SECONDS = 120.0  # a spec within every limit, in its own process
LIMIT_MEMORY = 4 * 1024**3  # address space of that process
LIMIT_OUTPUT = 100 * 1024**2  # bytes written for it


@st.composite
def specs_up_to_the_limits(draw) -> dict:
    """A spec close to one of the default limits: wide (a 64-unit layer, parameters ×
    samples near the limit of values shown), deep (10 layers) or long (the most steps the
    limits accept, or a fraction of it). Small weights, tanh and a small learning rate: the
    run converges. The test keeps those the limits accept."""
    limits = derive.limits.DEFAULT_LIMITS
    rng = random.Random(draw(st.integers(0, 2**32)))  # thousands of numbers: too many to draw one by one
    kind = draw(st.sampled_from(["wide", "deep", "long"]))
    update = draw(st.sampled_from(["batch", "sample"]))
    if kind == "wide":
        widths = [draw(st.integers(limits.units // 2, limits.units - 1)), limits.units, 1]
    elif kind == "deep":
        widths = [draw(st.integers(2, 22))] * limits.layers + [1]
    else:
        widths = [draw(st.integers(1, 3)), draw(st.integers(1, 3)), 1]
    parameters = sum(units * (fan_in + 1) for fan_in, units in itertools.pairwise(widths))
    samples = draw(st.integers(1, max(1, min(limits.samples, limits.shown // parameters))))
    layers = [
        {"units": units, "activation": "tanh" if index < len(widths) - 2 else "sigmoid",
         "weights": [[round(rng.uniform(-0.3, 0.3), 2) for _ in range(fan_in)] for _ in range(units)], "bias": [0.1] * units}
        for index, (fan_in, units) in enumerate(itertools.pairwise(widths))
    ]
    data = [
        {"x": [round(rng.uniform(-1, 1), 1) for _ in range(widths[0])], "y": [round(rng.uniform(0.2, 0.8), 1)]}
        for _ in range(samples)
    ]
    spec = {"inputs": widths[0], "layers": layers, "loss": "half_sse", "learning_rate": 0.01, "update": update, "data": data}
    steps = 1
    if kind == "long":
        steps = max(1, int(most_steps(spec) * draw(st.sampled_from([1, 1, 0.5, 0.1]))))
    spec["steps"] = steps
    spec["title"] = f"{kind}: {parameters} parameters, {samples} samples, {steps} steps, {update} updates"
    return spec


def most_steps(spec: dict) -> int:
    """The most steps the default limits accept for `spec` (at least 1)."""
    low, high = 1, 10**7
    while low < high:
        middle = (low + high + 1) // 2
        try:
            derive.load_spec({**spec, "steps": middle})
            low = middle
        except DeriveError:
            high = middle - 1
    return low


# 9 parameters × 1,000 samples × 2,000 steps = 18,000,000, within the limit on work; 2,000 updates keeping
# 1,000 forward passes each.
LONG_AT_THE_LIMITS = {
    "title": "long: 9 parameters, 1000 samples, 2000 steps",
    "inputs": 2,
    "layers": [{"units": 2, "activation": "tanh", "weights": [[0.1, -0.2], [0.3, 0.1]], "bias": [0.1, 0.1]},
               {"units": 1, "activation": "sigmoid", "weights": [[0.2, -0.1]], "bias": [0.1]}],
    "loss": "half_sse", "learning_rate": 0.01, "steps": 2000,
    "data": [{"x": [round((n % 21) / 10 - 1, 1), round((n % 13) / 6 - 1, 1)], "y": [0.5]} for n in range(1000)],
}


def limited_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_MEMORY, LIMIT_MEMORY))


# Up to minutes per example: the normal run tries the explicit example only (the limits refuse it
# at once); --hypothesis-profile=long draws specs up to every limit.
@settings(deadline=None, suppress_health_check=list(HealthCheck), **({"phases": [Phase.explicit]} if QUICK else {}))
@given(spec=specs_up_to_the_limits(), formats=st.sampled_from(["json", "md", "md,tex,json"]))
@example(spec=LONG_AT_THE_LIMITS, formats="json")
def test_work_up_to_the_limits(spec, formats):
    """What the limits promise: a spec within all of them is solved (or refused) in bounded
    time, memory and output size, in its own process with its address space capped."""
    label = spec.get("title", "spec")
    try:
        derive.load_spec(spec)
    except DeriveError as error:
        event(f"refused: {str(error).split(': ')[-1][:40]}")
        return
    with sandbox() as box:
        (box.work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        argv = ["solve", "spec.json", "--format", formats, "--output", "out"]
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("DERIVE_", "PYTHON"))}
        environment.update(TMPDIR=str(box.tmp), LC_ALL="C.UTF-8")
        started = time.monotonic()
        try:
            process = subprocess.run(
                [sys.executable, "-m", "derive", *argv], check=False, cwd=box.work, env=environment, capture_output=True,
                timeout=LIMIT_SECONDS * 3, preexec_fn=limited_address_space,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{label}: still running after {LIMIT_SECONDS * 3:.0f} s")
        seconds = time.monotonic() - started
        run = Run(argv, process.returncode, process.stdout.decode("utf-8", "replace"), process.stderr.decode("utf-8", "replace"),
                  seconds)
        written = sum(path.stat().st_size for path in (box.work / "out").rglob("*") if path.is_file())
        assert run.code in (0, 2), f"{label}: within the limits, yet\n{run}"
        check_clean_stderr(run)
        assert seconds < LIMIT_SECONDS, f"{label}: took {seconds:.0f} s\n{run}"
        assert written < LIMIT_OUTPUT, f"{label}: wrote {written / 2**20:.0f} MiB\n{run}"


# -- grading CSVs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def answer_key(tmp_path_factory) -> tuple[bytes, list[dict[str, str]]]:
    """A real answers.csv (3 variants of esuli) and its rows."""
    folder = tmp_path_factory.mktemp("key")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["exercise", "esuli", "--count", "3", "--format", "json", "--output", str(folder / "exam")]) == 0
    content = (folder / "exam" / "answers.csv").read_bytes()
    return content, list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


STUDENTS = ("ada", "bob", "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "=1+1", "-1", "0.5", "", " ",
            "Ζωή", "a,b", 'a"b', "a\nb", "\x1b[31mred", "x" * 1000, "'quoted", "=", "-", "+", "@")
VALUES = ("0,5", "0.6_73", "1e400", "-1e400", "nan", "inf", "-inf", "", " ", " 0.5 ", "−0.5", "1,234.5", "=1+1", "\x00",
          "0x10", "1e-400", ".5", "5.", "+.5", "--1", "1e", "٣", "HUGE", "0.5\n", "=cmd|' /C calc'!A0", "@x", "-0", "1" * 400)
CELL_MARKERS = {"HUGE": "9" * 200_000}


def csv_bytes(rows: list[list[str]], draw) -> bytes:
    rows = [[CELL_MARKERS.get(cell, cell) for cell in row] for row in rows]
    style = draw(st.sampled_from(["csv"] * 6 + ["plain", "semicolon"]))
    if style == "csv":
        out = io.StringIO()
        csv.writer(out, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))).writerows(rows)
        text = out.getvalue()
    else:
        text = "\n".join((";" if style == "semicolon" else ",").join(row) for row in rows) + "\n"
    endings = [text.replace("\r\n", "\n"), text.replace("\r\n", "\r"), text + '"unterminated', text + "\x00"]
    text = draw(st.sampled_from([text] * 4 + endings))
    return encoded(text, draw(st.sampled_from(ENCODINGS)))


@st.composite
def responses_files(draw, key_rows: list[dict[str, str]]) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    header = draw(sometimes_hostile(
        st.sampled_from([["student", "variant", "question", "value"], ["value", "question", "variant", "student"],
                         ["student", "variant", "question", "value", "extra"]]),
        st.sampled_from([["student", "variant", "question"], ["Student", "variant", "question", "value"],
                         ["student", "student", "variant", "question", "value"], [],
                         ["\ufeffstudent", "variant", "question", "value"]]),
    ))
    variants = sorted({row["variant"] for row in key_rows})
    questions = sorted({row["question"] for row in key_rows})
    rows = [header] if header else []
    for _ in range(draw(st.integers(0, 8))):
        row = draw(st.sampled_from(key_rows))
        edge = str(float(row["value"]) + float(row["tolerance"]))
        given = draw(st.sampled_from([row["value"], edge, "0"]) | st.sampled_from(VALUES) | st.text(max_size=6))
        cells = {
            "student": draw(st.sampled_from(STUDENTS) | st.text(max_size=8)),
            "variant": draw(st.sampled_from(variants + ["V99-0001", "", "=1+1", "v01-0001"]) | st.text(max_size=5)),
            "question": draw(st.sampled_from(questions + ["bogus", "", "@q", "-x"])),
            "value": given,
        }
        line = [cells.get(name.lstrip("\ufeff"), draw(st.text(max_size=4))) for name in (header or list(cells))]
        line += draw(st.lists(st.sampled_from(["", "x", "=extra"]), max_size=2))
        rows.append(line[: draw(st.integers(0, len(line)))] if draw(st.integers(0, 9)) == 0 else line)
        if draw(st.integers(0, 6)) == 0:
            rows.append(list(rows[-1]))
    return csv_bytes(rows, draw)


@st.composite
def answers_files(draw, key_content: bytes, key_rows: list[dict[str, str]]) -> bytes:
    """The real answers.csv, or a hostile variant of it."""
    if draw(st.integers(0, 2)):
        return key_content
    rows = [dict(row) for row in key_rows]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(
            ["negative", "duplicate", "empty", "value", "formula", "drop column", "extra column", "garbage"]
        ))
        row = draw(st.sampled_from(rows))
        if kind == "negative":
            row["tolerance"] = draw(st.sampled_from(["-0.001", "-0", "−1", "nan", "inf", "", "0"]))
        elif kind == "duplicate":
            rows.append(dict(row))
        elif kind == "empty":
            row[draw(st.sampled_from(["variant", "question"]))] = draw(st.sampled_from(["", " "]))
        elif kind == "value":
            row["value"] = draw(st.sampled_from(VALUES))
        elif kind == "formula":
            formula = draw(st.sampled_from(["=1+1", "+A1", "-A1", "@SUM(1)", "\t=1", "=cmd|' /C calc'!A0"]))
            row[draw(st.sampled_from(["variant", "question"]))] = formula
        elif kind == "drop column":
            for other in rows:
                other.pop("tolerance", None)
        elif kind == "extra column":
            for other in rows:
                other["note"] = "=x"
        else:
            return draw(st.binary(max_size=200))
    header = list(dict.fromkeys(name for row in rows for name in row))
    return csv_bytes([header] + [[row.get(name, "") for name in header] for row in rows], draw)


FORMULA = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def check_cells(path: Path) -> None:
    """Every cell of a CSV derive wrote that a spreadsheet would run as a formula is a
    plain number or starts with '."""
    with path.open(newline="", encoding="utf-8") as stream:
        for number, row in enumerate(csv.reader(stream), 1):
            for cell in row:
                if cell.startswith(FORMULA):
                    assert PLAIN_NUMBER.fullmatch(cell), f"{path.name} line {number}: a formula cell {cell[:80]!r}"


GRADE_OUTPUTS = ("grades.csv", "grades.csv", "grades", "sub/grades.csv", "existing-dir", "responses.csv", "answers.csv",
                 "existing.csv", "g.txt", "-", ".grades.csv")


@scaled(100)
@given(data=st.data(), output=st.sampled_from(GRADE_OUTPUTS))
def test_grading_csvs(answer_key, data, output):
    key_content, key_rows = answer_key
    answers = data.draw(answers_files(key_content, key_rows), label="answers.csv")
    responses = data.draw(responses_files(key_rows), label="responses.csv")
    with sandbox() as box:
        (box.work / "answers.csv").write_bytes(answers)
        (box.work / "responses.csv").write_bytes(responses)
        (box.work / "existing-dir").mkdir()
        (box.work / "existing.csv").write_text("keep\n", encoding="utf-8")
        before = snapshot(box.root)
        run = run_cli(["grade", "answers.csv", "responses.csv", "--output", output], box)
        check_contract(run, box, before, writes=True)
        if run.code == 0:
            grades = box.work / output
            details = grades.with_name(grades.stem + "-details" + (grades.suffix or ".csv"))
            assert grades.is_file() and details.is_file(), f"a success without its files\n{run}"
            check_cells(grades)
            check_cells(details)
