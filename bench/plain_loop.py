"""The anchor of the long-run benchmark: the same training as derive's (a 2-2-2 sigmoid
network, half SSE, one sample, plain gradient descent) written as a plain-Python float
loop, each step's forward values, loss, gradients and parameters kept and written as
compact JSON, as derive's key keeps them. Not a second implementation of derive: only a
yardstick for its speed.

    python bench/plain_loop.py SPEC.json OUT.json
"""

from __future__ import annotations

import json
import math
import sys


def main() -> None:
    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    (w1, b1), (w2, b2) = ((layer["weights"], layer["bias"]) for layer in spec["layers"])
    x, y = spec["data"][0]["x"], spec["data"][0]["y"]
    rate = spec["learning_rate"]
    sigmoid = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    steps = []
    for step in range(spec["steps"]):
        z1 = [sum(w * v for w, v in zip(row, x)) + b for row, b in zip(w1, b1)]
        a1 = [sigmoid(z) for z in z1]
        z2 = [sum(w * v for w, v in zip(row, a1)) + b for row, b in zip(w2, b2)]
        a2 = [sigmoid(z) for z in z2]
        loss = sum((t - o) ** 2 for t, o in zip(y, a2)) / 2
        d2 = [(o - t) * o * (1 - o) for o, t in zip(a2, y)]
        d1 = [sum(d2[k] * w2[k][j] for k in range(len(d2))) * a * (1 - a) for j, a in enumerate(a1)]
        g2 = [[d * a for a in a1] for d in d2]
        g1 = [[d * v for v in x] for d in d1]
        w2 = [[w - rate * g for w, g in zip(row, grow)] for row, grow in zip(w2, g2)]
        b2 = [b - rate * d for b, d in zip(b2, d2)]
        w1 = [[w - rate * g for w, g in zip(row, grow)] for row, grow in zip(w1, g1)]
        b1 = [b - rate * d for b, d in zip(b1, d1)]
        steps.append({"step": step + 1, "forward": [z1, a1, z2, a2], "loss": loss, "gradients": [g1, d1, g2, d2],
                      "updated": [w1, b1, w2, b2]})
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        json.dump({"steps": steps}, out, separators=(",", ":"))


if __name__ == "__main__":
    main()
