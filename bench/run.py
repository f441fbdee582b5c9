"""Benchmarks (not tests): prints the figures the README reports.

    python bench/run.py [--repeat N]

1. `derive solve esuli` as a whole CLI process, beside `python -c "import sympy"`
   (target: at most 1.5 times the bare import);
2. 10,000 training steps of a 2-2-2 sigmoid network with half_sse (target: ≤ 2 s);
3. the full worked solution of a 4-8-8-3 network with 4 samples (target: ≤ 5 s).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time

import derive


def process_time(argv: list[str], repeat: int, cwd: str) -> float:
    """Median wall time of a whole process, after one warm-up run."""
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        sympy_import = process_time([sys.executable, "-c", "import sympy"], args.repeat, work)
        esuli = process_time(cli, args.repeat, work)
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

    width = max(len(name) for name, _, _ in rows)
    print(f"derive {derive.__version__}, Python {sys.version.split()[0]}, median of {args.repeat} runs for processes")
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds:7.3f} s  {note}")


if __name__ == "__main__":
    main()
