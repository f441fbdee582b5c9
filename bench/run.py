"""Benchmarks (not tests): each figure as a ratio against an anchor measured in the same
run, whole processes timed by turns with their anchor (median of --repeat runs), so that a
busy moment on a shared machine hits both alike.

    python bench/run.py [--repeat N] [--quick] [--readme]

--readme writes the table into README.md between its benchmark markers; --quick skips the
slowest figures (the 32-32-10 network, the growth exponent, 1,000 variants with PDFs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import derive

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# As on a normal installation, Python may cache the bytecode of what it imports (this
# machine sets PYTHONDONTWRITEBYTECODE, which would recompile derive each run).
ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(command: list[str], cwd: str) -> tuple[float, int]:
    """Wall time and peak resident memory (KiB) of one whole process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=ENVIRONMENT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-400:]}")
    process.stderr.close()
    return elapsed, usage.ru_maxrss


def by_turns(commands: list[list[str]], repeat: int, cwd: str) -> list[tuple[float, int]]:
    """Median time and the largest peak memory of each command, after a warm-up round."""
    times: list[list[float]] = [[] for _ in commands]
    memory = [0] * len(commands)
    for round_ in range(repeat + 1):
        for k, command in enumerate(commands):
            elapsed, peak = run(command, cwd)
            if round_:
                times[k].append(elapsed)
                memory[k] = max(memory[k], peak)
    return [(statistics.median(t), m) for t, m in zip(times, memory)]


def in_process(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layer(rng: random.Random, units: int, fan_in: int, activation: str) -> dict:
    return {
        "units": units,
        "activation": activation,
        "weights": [[round(rng.uniform(-1, 1), 2) for _ in range(fan_in)] for _ in range(units)],
        "bias": [round(rng.uniform(-0.5, 0.5), 2) for _ in range(units)],
    }


def network(rng: random.Random, widths: list[int], samples: int) -> dict:
    """A tanh/softmax network of the given widths with `samples` samples, one update; the
    weights scaled by 1/√fan-in, as an initialisation would, so that nothing saturates."""
    layers = [layer(rng, units, fan_in, "tanh") for fan_in, units in zip(widths, widths[1:-1])]
    layers.append(layer(rng, widths[-1], widths[-2], "softmax"))
    for spec_layer in layers:
        fan_in = len(spec_layer["weights"][0])
        spec_layer["weights"] = [[round(w / math.sqrt(fan_in), 2) for w in row] for row in spec_layer["weights"]]
    data = []
    for _ in range(samples):
        y = [0] * widths[-1]
        y[rng.randrange(widths[-1])] = 1
        data.append({"x": [round(rng.uniform(-1, 1), 2) for _ in range(widths[0])], "y": y})
    return {"inputs": widths[0], "layers": layers, "loss": "cross_entropy", "learning_rate": 0.1, "data": data}


def parameters(spec: dict) -> int:
    return sum(len(l["weights"]) * len(l["weights"][0]) + len(l["bias"]) for l in spec["layers"])


def worked_solution(spec: dict, folder: str) -> float:
    """Seconds for the whole worked solution (solve, md, tex, json) as one process."""
    path = Path(folder, "net.json")
    path.write_text(json.dumps(spec))
    return run([PYTHON, "-m", "derive", "solve", str(path), "--format", "md,tex,json", "--output", str(Path(folder, "out"))], folder)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--readme", action="store_true")
    args = parser.parse_args()
    rng = random.Random(2026)
    rows: list[tuple[str, str, str, str]] = []  # what, measured, ratio, target
    repeat = args.repeat

    with tempfile.TemporaryDirectory() as work:
        os.environ["DERIVE_CACHE_DIR"] = ENVIRONMENT["DERIVE_CACHE_DIR"] = str(Path(work, "cache"))
        key = Path(work, "key.csv")
        key.write_text("variant,question,value,tolerance\n" + "".join(f"V1,q{k},0.5,0.001\n" for k in range(20)))
        responses = Path(work, "responses.csv")
        responses.write_text("student,variant,question,value\n" + "".join(f"s{s},V1,q{k},0.5\n" for s in range(30) for k in range(20)))
        cli = [PYTHON, "-m", "derive"]
        (sympy_import, _), (esuli, _), (bare, _), (version, _), (examples, _), (grading, _) = by_turns([
            [PYTHON, "-c", "import sympy"],
            [*cli, "solve", "esuli", "--output", work],
            [PYTHON, "-c", "pass"],
            [*cli, "--version"],
            [*cli, "examples"],
            [*cli, "grade", str(key), str(responses), "--output", str(Path(work, "grades.csv"))],
        ], repeat, work)
        rows.append(("`python -c \"import sympy\"` (anchor)", f"{sympy_import:.2f} s", "", ""))
        rows.append(("`derive solve esuli` (md, tex, json; whole process)", f"{esuli:.2f} s", f"{esuli / sympy_import:.2f}× the import", "≤ 1.2×"))
        rows.append(("`python -c pass` (anchor)", f"{bare:.3f} s", "", ""))
        for name, seconds in (("--version", version), ("examples", examples), ("grade (30 students, no follow-through)", grading)):
            rows.append((f"`derive {name}`", f"{seconds:.3f} s", f"{seconds / bare:.1f}× `python -c pass`", "≤ 0.25 s, no SymPy"))

        floor_tex = (
            "\\documentclass[10pt]{article}\\usepackage{tikz}\\usepackage{pgfplots}\\pgfplotsset{compat=1.17}"
            "\\begin{document}Floor.\\end{document}\n"
        )
        Path(work, "floor.tex").write_text(floor_tex)
        latexmk = ["latexmk", "-pdf", "-gg", "-interaction=nonstopmode", "-halt-on-error", "floor.tex"]
        pdf_cli = [*cli, "solve", "esuli", "--format", "pdf", "--output", work]
        (floor, _), (pdf, _) = by_turns([latexmk, pdf_cli], repeat, work)  # the warm-up round builds the format file
        rows.append(("`latexmk -pdf` of a minimal article with TikZ and pgfplots (anchor)", f"{floor:.2f} s", "", ""))
        rows.append(("`derive solve esuli --format pdf` (whole process, format cached)", f"{pdf:.2f} s", f"{pdf / floor:.2f}× latexmk", "≤ 1.0×"))

        long_run = {
            "inputs": 2, "layers": [layer(rng, 2, 2, "sigmoid"), layer(rng, 2, 2, "sigmoid")], "loss": "half_sse",
            "learning_rate": 0.5, "steps": 10_000, "data": [{"x": [0.05, 0.1], "y": [0.01, 0.99]}],
        }
        Path(work, "long.json").write_text(json.dumps(long_run))
        (plain, plain_memory), (steps, steps_memory) = by_turns([
            [PYTHON, str(ROOT / "bench" / "plain_loop.py"), str(Path(work, "long.json")), str(Path(work, "plain.json"))],
            [*cli, "solve", str(Path(work, "long.json")), "--format", "json", "--output", str(Path(work, "long"))],
        ], max(1, repeat // 2), work)
        rows.append(("10,000 steps of a 2-2-2 sigmoid net as a plain-Python float loop, JSON (anchor)", f"{plain:.2f} s", "", ""))
        rows.append(("… `derive solve --format json` of the same", f"{steps:.2f} s, {steps_memory / 1024:.0f} MB peak",
                     f"{steps / plain:.1f}× the loop", "≤ 2×, ≤ 200 MB"))
        if not args.quick:
            # ten times the steps: the run keeps its first updates, its last and the losses,
            # and writes its key piece by piece, so its memory stays that of 10,000 steps
            Path(work, "longer.json").write_text(json.dumps(dict(long_run, steps=100_000)))
            raised = ["--limit", "steps=100000", "--limit", "kept=10000000", "--limit", "work=100000000"]
            (longer, longer_memory), = by_turns([[*cli, "solve", str(Path(work, "longer.json")), "--format", "json", *raised,
                                                  "--output", str(Path(work, "longer"))]], 1, work)
            rows.append(("… 100,000 steps of the same (key written in pieces)", f"{longer:.0f} s, {longer_memory / 1024:.0f} MB peak",
                         f"{longer / steps:.1f}× 10,000 steps", "memory bounded"))

        exercise = [*cli, "exercise", "esuli", "--count", "100", "--seed", "7"]
        (md_json, _), (with_pdf, _) = by_turns([
            [*exercise, "--format", "md,json", "--output", str(Path(work, "x1"))],
            [*exercise, "--format", "md,json,pdf", "--output", str(Path(work, "x2"))],
        ], max(1, repeat // 3), work)
        rows.append(("`derive exercise esuli --count 100 --format md,json`", f"{md_json:.1f} s", f"{md_json / sympy_import:.0f}× the import", "≤ 2 s"))
        rows.append(("… with `sheets.pdf` and `solutions.pdf`", f"{with_pdf:.1f} s", f"{with_pdf / sympy_import:.0f}× the import", "≤ 8 s"))

        if not args.quick:
            (thousand, _), = by_turns([[*exercise[:-4], "--count", "1000", "--seed", "7", "--format", "md,json,pdf",
                                         "--output", str(Path(work, "x3"))]], 1, work)
            rows.append(("`derive exercise esuli --count 1000` with PDFs", f"{thousand:.0f} s", "", "≤ 60 s"))
            wide = network(rng, [32, 32, 10], 16)
            seconds = worked_solution(wide, work)
            rows.append(("full worked solution of a 32-32-10 network, 16 samples (solve, md, tex, json)", f"{seconds:.1f} s",
                         f"{seconds / sympy_import:.0f}× the import", "≤ 10 s"))
            # in one process, after a first solve: the time of the work, not of starting Python and SymPy
            derive.render(derive.solve("esuli"), "md")
            small = network(rng, [8, 8, 4], 8)
            sizes = [parameters(small) * 8, parameters(wide) * 16]
            times = [in_process(lambda s=s: [derive.render(derive.solve(s), f) for f in ("md", "tex", "json")], 1)
                     for s in (small, wide)]
            exponent = math.log(times[1] / times[0]) / math.log(sizes[1] / sizes[0])
            rows.append((f"growth of the worked solution's time with parameters × samples ({sizes[0]:,} → {sizes[1]:,}, in process)",
                         f"{times[0]:.2f} s → {times[1]:.1f} s", f"exponent {exponent:.2f}", "≤ 1.02"))

    header = (f"`python bench/run.py{' --quick' if args.quick else ''} --readme` on {datetime.date.today().isoformat()}: "
              f"{os.cpu_count()} cores, Python {platform.python_version()}, derive {derive.__version__}; whole processes "
              f"timed by turns with their anchor, median of {repeat} runs (fewer for the long ones).")
    table = [header, "", "| what | measured | ratio | target |", "|---|---|---|---|"]
    table += [f"| {what} | {measured} | {ratio} | {target} |" for what, measured, ratio, target in rows]
    text = "\n".join(table)
    print(text)
    if args.readme:
        readme = ROOT / "README.md"
        content = readme.read_text(encoding="utf-8")
        updated, found = re.subn(r"(<!-- bench:start -->\n)(?:.*?\n)?(<!-- bench:end -->)", lambda m: m.group(1) + text + "\n" + m.group(2),
                                 content, flags=re.S)
        if not found:
            raise SystemExit("README.md has no <!-- bench:start --> … <!-- bench:end --> markers")
        readme.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    main()
