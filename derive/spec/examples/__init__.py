"""The built-in example specs, shipped inside the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DESCRIPTIONS = {
    "esuli": "3-2-1 ReLU/sigmoid network, half SSE, one sample (Esuli's handout)",
    "elbasheer": "a single ReLU neuron, mean squared error, one step; the neuron dies (Elbasheer)",
    "students": "2-2-1 ReLU/sigmoid network, binary cross-entropy, six students, 10 full-batch steps",
    "momentum": "2-2-1 sigmoid network, half SSE, two updates with momentum 0.9",
    "adam": "2-2-1 tanh/sigmoid network, binary cross-entropy, two samples, three Adam updates",
    "circuit": "a sigmoid neuron as a computational graph, gate by gate (CS231n)",
}
NAMES = tuple(DESCRIPTIONS)


def path(name: str) -> Path:
    return Path(str(resources.files(__package__).joinpath(f"{name}.yaml")))
