"""A rerunnable mutation check: a curated list of plausible bugs, each applied alone to a
fresh copy of the working tree, and the part of the test suite that should catch it run
against that copy. A mutant is killed when the tests fail; one that survives names a bug
the suite would let through.

    python -m tests.mutants              # every mutant (a baseline run first)
    python -m tests.mutants --list       # the mutants, and whether each target is found
    python -m tests.mutants --only half_even_rounding --only stale_repeated_pass

Each mutant is an exact piece of text in one file and its replacement. When the text is
not in the file (the code changed since the mutant was written) the mutant is reported as
"target not found", not run: rewrite its `old` text to the code as it is now.

The working tree is copied once at the start (without .venv, .git and caches; outputs/
only with the files of the gallery), so every mutant sees the same code, whatever is
edited meanwhile. Every copy's tests import derive from the copy, never from the editable
install (checked for each copy before its tests run). The mutants' tests first run on the
unmutated copy: a mutant whose tests already fail there is reported "not run".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = shutil.ignore_patterns(
    ".venv", ".git", "outputs", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "*.egg-info", "build", "dist"
)
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
TIMEOUT = 1800  # seconds per test run; a run that takes longer is reported, not counted as killed

GRADIENTS = "tests/test_gradients.py"
PROPERTIES = (f"{GRADIENTS}::test_training_matches_finite_differences", f"{GRADIENTS}::test_first_update_matches_sympy_diff_of_composed_loss")
CONVENTIONS = "tests/test_conventions.py"
ANSWER_KEY = "tests/test_answer_key.py"
GRADING = "tests/test_grading.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str  # the mistake it stands for, in a line
    file: str  # relative to the repository root
    old: str  # exact text, found exactly once in the file
    new: str
    tests: tuple[str, ...] = ()  # pytest arguments (files, node ids); none: the whole suite


MUTANTS = (
    Mutant(
        "update_sign", "the update climbs the gradient: w + η g",
        "derive/spec/optimizers.py", "(), (), _add(THETA, _mul(-1, RATE, GRADIENT)))", "(), (), _add(THETA, _mul(RATE, GRADIENT)))",
        (CONVENTIONS, GRADIENTS),
    ),
    Mutant(
        "output_delta_without_activation_derivative", "σ′ dropped from the output layer's ∂E/∂z",
        "derive/model/numeric.py",
        "delta = [u * row[0] for u, row in zip(upstream, local)]",
        "delta = [u if index == len(self.layers) - 1 else u * row[0] for u, row in zip(upstream, local)]",
        PROPERTIES,
    ),
    Mutant(
        "activation_derivative_at_output", "f′ evaluated at the unit's output a instead of its pre-activation z",
        "derive/model/numeric.py", "float(self.derivative(z)) for z in pre]", "float(self.derivative(z)) for z in out]",
        (CONVENTIONS, GRADIENTS),
    ),
    Mutant(
        "derivative_from_outputs_at_pre_activation", "σ′ = a(1 − a) written with z in place of a (carried numbers)",
        "derive/model/numeric.py",
        "[[keep(float(self.derivative_from_output(a)))] for a in out]",
        "[[keep(float(self.derivative_from_output(a)))] for a in pre]",
        (CONVENTIONS, ANSWER_KEY),
    ),
    Mutant(
        "updated_weights_in_backprop", "a layer's weights updated before ∂E/∂a is passed back through them",
        "derive/model/numeric.py",
        "delta[i] * through[layer.weight_index[i][j]]",
        "delta[i] * (through[layer.weight_index[i][j]] - self.network.spec.learning_rate * gradient[layer.weight_index[i][j]])",
        (CONVENTIONS, GRADIENTS),
    ),
    Mutant(
        "relu_derivative_one_at_zero", "ReLU′(0) = 1 (and LeakyReLU′(0) = 1) in the numbers",
        "derive/model/numeric.py",
        "sp.lambdify(PRE_ACTIVATION, activation.general_derivative,",
        "sp.lambdify(PRE_ACTIVATION, activation.general_derivative.subs(PRE_ACTIVATION <= 0, PRE_ACTIVATION < 0),",
        (CONVENTIONS, GRADIENTS),
    ),
    Mutant(
        "batch_sum_for_mean", "the batch loss and gradient summed where the spec asks for the mean",
        "derive/model/numeric.py",
        "total / len(values) if batch is Batch.MEAN else total", "total",
        (CONVENTIONS, GRADIENTS),
    ),
    Mutant(
        "transposed_weight_in_backprop", "∂E/∂a_j summed over w_ji instead of w_ij",
        "derive/model/numeric.py",
        "delta[i] * through[layer.weight_index[i][j]]", "delta[i] * through[layer.weight_index[j][i]]",
        (CONVENTIONS, GRADIENTS),
    ),
    Mutant(
        "transposed_weight_names", "weights[i][j] named W[j,i]: the key's names transposed",
        "derive/model/network.py",
        "symbol(Quantity(Kind.WEIGHT, number, i, j))", "symbol(Quantity(Kind.WEIGHT, number, j, i))",
        (CONVENTIONS, GRADIENTS),
    ),
    Mutant(
        "stale_repeated_pass", "the forward pass after the update computed with the old parameters",
        "derive/model/numeric.py", "repeated = self.evaluate(first.after,", "repeated = self.evaluate(first.before,",
        (CONVENTIONS,),
    ),
    Mutant(
        "half_even_rounding", "carried values rounded half to even (Python's round) instead of half away from zero",
        "derive/model/numeric.py",
        'whole = math.floor(float(f"{scaled:.14g}") + 0.5)', 'whole = round(float(f"{scaled:.14g}"))',
        (CONVENTIONS,),
    ),
    Mutant(
        "displayed_half_even", "shown numbers and the key's answers (exact mode) rounded half to even",
        "derive/views/printing.py", "rounding=ROUND_HALF_UP, context=_WIDE)", 'rounding="ROUND_HALF_EVEN", context=_WIDE)',
        (CONVENTIONS, ANSWER_KEY),
    ),
    Mutant(
        "key_tolerance_doubled", "the tolerance written into the answer key (answers.csv, Moodle, QTI) doubled",
        "derive/exercises/variants.py", "tolerance = _round_up(", "tolerance = 2 * _round_up(",
        (ANSWER_KEY,),
    ),
    Mutant(
        "grading_tolerance_doubled", "grading accepts twice the tolerance",
        "derive/exercises/grading.py", "abs(number - value) <= tolerance", "abs(number - value) <= 2 * tolerance",
        (ANSWER_KEY, GRADING),
    ),
    Mutant(
        "grading_boundary_excluded", "an answer exactly on the tolerance's boundary graded wrong",
        "derive/exercises/grading.py", "abs(number - value) <= tolerance +", "abs(number - value) < tolerance + 0 *",
        (ANSWER_KEY, GRADING),
    ),
    Mutant(
        "cloze_tolerance_shifted", "Moodle's embedded tolerance one unit wider than the key's",
        "derive/exercises/exports.py",
        ":{key.tolerance!r}{wrong}}}", ":{key.tolerance + 10 ** -exercise.digits!r}{wrong}}}",
        (ANSWER_KEY,),
    ),
    Mutant(
        "qti_range_widened", "Canvas's answer range twice the key's tolerance",
        "templates/qti.txt.j2", "+- {{ key.tolerance }}", "+- {{ key.tolerance * 2 }}",
        (ANSWER_KEY,),
    ),
    Mutant(
        "answer_key_two_decimals", "the Markdown answer key prints 2 decimals where the sheet asks for 3",
        "templates/md/macros.j2",
        "${{ exercise.answers[question.id].value|num }}$ | ±",
        '${{ "%.2f"|format(exercise.answers[question.id].value) }}$ | ±',
        (ANSWER_KEY,),
    ),
)


# -- the copies ----------------------------------------------------------------------------------


def gallery_files(root: Path) -> list[Path]:
    """The files of outputs/ that belong to the gallery: those git tracks in a checkout
    (tests/test_gallery.py counts every file of outputs/ when there is no .git)."""
    if shutil.which("git") and (root / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "outputs"], cwd=root, capture_output=True, text=True, check=False)
        if listed.returncode == 0 and listed.stdout.strip():
            return [root / line for line in listed.stdout.splitlines() if (root / line).is_file()]
    return [p for p in (root / "outputs").rglob("*") if p.is_file()]


def snapshot(root: Path, target: Path) -> Path:
    shutil.copytree(root, target, ignore=SKIPPED)
    for path in gallery_files(root):
        destination = target / path.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    return target


def environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def imported_from(copy: Path) -> Path:
    """Where the copy's tests import derive from (they run with this environment)."""
    where = subprocess.run(
        [sys.executable, "-c", "import derive; print(derive.__file__)"],
        cwd=copy, env=environment(copy), capture_output=True, text=True, timeout=300, check=False,
    )
    if where.returncode != 0:
        raise RuntimeError(f"importing derive in {copy} failed:\n{where.stderr[-2000:]}")
    return Path(where.stdout.strip()).resolve()


def check_isolated(copy: Path) -> None:
    module = imported_from(copy)
    if not module.is_relative_to(copy.resolve()):
        raise RuntimeError(f"the copy's tests would import derive from {module}, not from {copy}")


def target_status(mutant: Mutant, tree: Path) -> str | None:
    """None when the mutant's text is in its file exactly once, else why it cannot apply."""
    path = tree / mutant.file
    if not path.is_file():
        return f"target not found: no file {mutant.file}"
    count = path.read_text(encoding="utf-8").count(mutant.old)
    if count == 0:
        return f"target not found in {mutant.file}: {mutant.old!r}"
    if count > 1:
        return f"target ambiguous in {mutant.file}: {mutant.old!r} occurs {count} times"
    return None


def apply(mutant: Mutant, copy: Path) -> None:
    path = copy / mutant.file
    path.write_text(path.read_text(encoding="utf-8").replace(mutant.old, mutant.new, 1), encoding="utf-8")


def selected_tests(tests: tuple[str, ...], tree: Path) -> list[str]:
    """The mutant's tests that exist in the tree (another engineer's file may not yet)."""
    return [t for t in tests if (tree / t.split("::", 1)[0]).exists()]


# -- running -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    result: str  # killed | survived | target not found … | error … | timeout
    seconds: float = 0.0
    detail: str = ""  # the first failing test, or why it did not run


def run_tests(copy: Path, tests: list[str], timeout: int, first_failure_stops: bool = True) -> tuple[int | None, str]:
    """(pytest's exit code, or None on a timeout; its output)."""
    stop = ["-x"] if first_failure_stops else []
    try:
        done = subprocess.run(
            [sys.executable, *PYTEST, *stop, *tests], cwd=copy, env=environment(copy), capture_output=True, text=True,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stdout + done.stderr


def failures(output: str) -> list[str]:
    """The failing tests of a run, from pytest's short summary: "FAILED tests/x.py::test"."""
    return [line.split(" - ", 1)[0] for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]


def first_failure(output: str) -> str:
    failed = failures(output)
    if failed:
        return failed[0]
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def blocked_by(mutant: Mutant, failing: list[str]) -> str | None:
    """A test the mutant relies on that fails without any mutant, if there is one."""
    for failure in failing:
        node = failure.split(" ", 1)[1]
        if not mutant.tests or any(node == t or node.startswith((t + "::", t + "[")) for t in mutant.tests):
            return node
    return None


def run_mutant(mutant: Mutant, pristine: Path, work: Path, timeout: int, keep: bool, failing: list[str] = ()) -> Outcome:
    reason = target_status(mutant, pristine)
    if reason:
        return Outcome(mutant.name, reason)
    broken = blocked_by(mutant, list(failing))
    if broken:
        return Outcome(mutant.name, "not run", detail=f"{broken} fails without a mutant")
    tests = selected_tests(mutant.tests, pristine) if mutant.tests else []
    if mutant.tests and not tests:
        return Outcome(mutant.name, "error: none of its test files exist", detail=", ".join(mutant.tests))
    copy = work / mutant.name
    shutil.copytree(pristine, copy)
    started = time.monotonic()
    try:
        apply(mutant, copy)
        check_isolated(copy)
        code, output = run_tests(copy, tests, timeout)
    finally:
        if not keep:
            shutil.rmtree(copy, ignore_errors=True)
    seconds = time.monotonic() - started
    if code is None:
        return Outcome(mutant.name, "timeout", seconds, f"no result in {timeout} s")
    if code == 0:
        return Outcome(mutant.name, "survived", seconds, "every selected test passed")
    if code in (1, 2):  # tests failed, or the mutated code broke collection
        return Outcome(mutant.name, "killed", seconds, first_failure(output))
    return Outcome(mutant.name, f"error: pytest exit code {code}", seconds, first_failure(output))


def baseline(mutants: list[Mutant], pristine: Path, work: Path, timeout: int) -> tuple[float, list[str]]:
    """The tests the mutants use, on the unmutated copy: a mutant whose tests fail already
    is not run (its kill would mean nothing). Returns the time and the failing tests."""
    if any(not m.tests for m in mutants):
        tests: list[str] = []
    else:
        tests = list(dict.fromkeys(t for m in mutants for t in selected_tests(m.tests, pristine)))
    copy = work / "baseline"
    shutil.copytree(pristine, copy)
    started = time.monotonic()
    try:
        check_isolated(copy)
        code, output = run_tests(copy, tests, timeout, first_failure_stops=False)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    failing = failures(output)
    if code is None:
        raise RuntimeError(f"the baseline run gave no result in {timeout} s")
    if code != 0 and not failing:
        raise RuntimeError(f"the baseline run failed (pytest exit code {code}):\n{output[-3000:]}")
    return time.monotonic() - started, failing


def listing(mutants: list[Mutant]) -> None:
    width = max(len(m.name) for m in mutants)
    for mutant in mutants:
        status = target_status(mutant, ROOT) or "target found"
        tests = " ".join(mutant.tests) or "(whole suite)"
        print(f"{mutant.name:<{width}}  {mutant.file}: {mutant.bug}\n{'':<{width}}  {status}; tests: {tests}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutant (repeatable, or comma-separated)")
    parser.add_argument("--list", action="store_true", help="list the mutants and whether each target is found")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated copy")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copies (their folder is printed)")
    parser.add_argument("--timeout", type=int, default=TIMEOUT, help=f"seconds per test run (default {TIMEOUT})")
    options = parser.parse_args(argv)

    mutants = list(MUTANTS)
    if options.only:
        wanted = [name.strip() for group in options.only for name in group.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in {m.name for m in MUTANTS}]
        if unknown:
            parser.error(f"unknown mutant {', '.join(unknown)}; --list shows them")
        mutants = [m for m in MUTANTS if m.name in wanted]
    if options.list:
        listing(mutants)
        return 0

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="derive-mutants-"))
    try:
        pristine = snapshot(ROOT, work / "pristine")
        print(f"working tree copied to {pristine}; derive imported from {imported_from(pristine)}", flush=True)
        failing: list[str] = []
        if not options.no_baseline:
            seconds, failing = baseline(mutants, pristine, work, options.timeout)
            print(f"baseline (no mutant): {len(failing)} failing tests in {seconds:.0f} s", flush=True)
            for failure in failing:
                print(f"  {failure}: the mutants that use it are not run", flush=True)
        outcomes = []
        width = max(len(m.name) for m in mutants)
        for mutant in mutants:
            outcome = run_mutant(mutant, pristine, work, options.timeout, options.keep, failing)
            outcomes.append(outcome)
            print(f"{outcome.name:<{width}}  {outcome.result:<9} {outcome.seconds:6.0f} s  {outcome.detail}", flush=True)
    finally:
        if options.keep:
            print(f"copies kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    ran = [o for o in outcomes if o.result in ("killed", "survived")]
    killed = [o for o in ran if o.result == "killed"]
    print(f"\n{len(killed)}/{len(ran)} mutants killed in {time.monotonic() - started:.0f} s")
    for outcome in outcomes:
        if outcome.result != "killed":
            print(f"  {outcome.name}: {outcome.result}" + (f" ({outcome.detail})" if outcome.detail else ""))
    return 0 if len(killed) == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
