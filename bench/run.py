"""Benchmarks (not tests): prints the figures the README reports.

    python bench/run.py [--repeat N]

1. `derive solve esuli` as a whole CLI process, beside `python -c "import sympy"`
   (target: at most 1.5 times the bare import);
2. 10,000 training steps of a 2-2-2 sigmoid network with half_sse (target: ≤ 2 s);
3. the full worked solution of a 4-8-8-3 network with 4 samples (target: ≤ 5 s);
4. `derive solve esuli --format pdf` beside a bare latexmk run of a minimal article with
   the same packages (target: at most 1.3 times that floor);
5. `derive exercise` of 100 variants of a 3-2-1 network: md+json (target ≤ 10 s), and
   with the PDFs (target ≤ 60 s).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import derive


def process_times(commands: list[list[str]], repeat: int, cwd: str) -> list[float]:
    """Median wall time of each command as a whole process, after a warm-up run; the
    commands take turns, so that a busy moment on a shared machine hits them alike."""
    times: list[list[float]] = [[] for _ in commands]
    # As on a normal installation, Python may cache the bytecode of what it imports
    # (this machine sets PYTHONDONTWRITEBYTECODE, which would recompile derive each run).
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for round_ in range(repeat + 1):
        for command, record in zip(commands, times):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=cwd, env=environment)
            if round_:
                record.append(time.perf_counter() - start)
    return [statistics.median(record) for record in times]


def layer(rng: random.Random, units: int, fan_in: int, activation: str) -> dict:
    return {
        "units": units,
        "activation": activation,
        "weights": [[round(rng.uniform(-1, 1), 2) for _ in range(fan_in)] for _ in range(units)],
        "bias": [round(rng.uniform(-0.5, 0.5), 2) for _ in range(units)],
    }


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(2026)
    rows = []

    with tempfile.TemporaryDirectory() as work:
        cli = [sys.executable, "-m", "derive", "solve", "esuli", "--output", work]
        sympy_import, esuli = process_times([[sys.executable, "-c", "import sympy"], cli], args.repeat, work)
    rows.append(("python -c 'import sympy'", sympy_import, ""))
    rows.append(("derive solve esuli (md, tex, json; whole process)", esuli, f"{esuli / sympy_import:.2f}x the import (target ≤ 1.5x)"))

    steps = {
        "inputs": 2,
        "layers": [layer(rng, 2, 2, "sigmoid"), layer(rng, 2, 2, "sigmoid")],
        "loss": "half_sse",
        "learning_rate": 0.5,
        "steps": 10_000,
        "data": [{"x": [0.05, 0.1], "y": [0.01, 0.99]}],
    }
    solve_time, solution = timed(lambda: derive.solve(steps))
    md_time, _ = timed(lambda: derive.render(solution, "md"))
    json_time, _ = timed(lambda: derive.render(solution, "json"))
    rows.append(("10,000 steps, 2-2-2 sigmoid, half_sse: solve", solve_time, "target ≤ 2 s"))
    rows.append(("  ... then render md", md_time, ""))
    rows.append(("  ... then render the JSON key (10,000 steps)", json_time, ""))

    big = {
        "inputs": 4,
        "layers": [layer(rng, 8, 4, "relu"), layer(rng, 8, 8, "tanh"), layer(rng, 3, 8, "softmax")],
        "loss": "cross_entropy",
        "learning_rate": 0.1,
        "data": [{"x": [round(rng.uniform(-1, 1), 2) for _ in range(4)], "y": [0, 1, 0]} for _ in range(4)],
    }
    solve_time, solution = timed(lambda: derive.solve(big))
    render_time, _ = timed(lambda: [derive.render(solution, f) for f in ("md", "tex", "json")])
    rows.append(("4-8-8-3, 4 samples: solve", solve_time, ""))
    rows.append(("4-8-8-3, 4 samples: solve + md + tex + json", solve_time + render_time, "target ≤ 5 s"))

    floor_tex = (
        "\\documentclass[10pt]{article}\\usepackage[T1]{fontenc}\\usepackage[utf8]{inputenc}\\usepackage{lmodern}"
        "\\usepackage{amsmath,amssymb}\\usepackage[a4paper,margin=2cm]{geometry}\\usepackage{tikz}"
        "\\begin{document}Floor.\\end{document}\n"
    )
    with tempfile.TemporaryDirectory() as work:
        Path(work, "floor.tex").write_text(floor_tex)
        latexmk = ["latexmk", "-pdf", "-gg", "-interaction=nonstopmode", "-halt-on-error", "floor.tex"]
        pdf_cli = [sys.executable, "-m", "derive", "solve", "esuli", "--format", "pdf", "--output", work]
        floor, pdf = process_times([latexmk, pdf_cli], args.repeat, work)
    rows.append(("latexmk of a minimal article, same packages (floor)", floor, ""))
    rows.append(("derive solve esuli --format pdf (whole process)", pdf, f"{pdf / floor:.2f}x the floor (target ≤ 1.3x)"))
    compile_time, _ = timed(lambda: derive.render(derive.solve("esuli"), "pdf"))
    rows.append(("  ... of which solve + LaTeX + latexmk, in process", compile_time, f"{compile_time / floor:.2f}x the floor"))

    with tempfile.TemporaryDirectory() as work:
        exercise_md = [sys.executable, "-m", "derive", "exercise", "esuli", "--count", "100", "--format", "md,json",
                       "--output", str(Path(work, "a"))]
        exercise_pdf = [sys.executable, "-m", "derive", "exercise", "esuli", "--count", "100", "--format", "md,json,pdf",
                        "--output", str(Path(work, "b"))]
        md_json, with_pdf = process_times([exercise_md, exercise_pdf], max(1, args.repeat // 4), work)
    rows.append(("derive exercise esuli --count 100 --format md,json", md_json, "target ≤ 10 s"))
    rows.append(("derive exercise esuli --count 100 --format md,json,pdf", with_pdf, "target ≤ 60 s"))

    width = max(len(name) for name, _, _ in rows)
    print(f"derive {derive.__version__}, Python {sys.version.split()[0]}, median of {args.repeat} runs for processes")
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds:7.3f} s  {note}")


if __name__ == "__main__":
    main()
