"""Long runs in bounded memory: a run of more than KEPT_UPDATES updates keeps its first
few updates, its last and every update's loss; the JSON key's steps are computed again as
they are written, piece by piece. The documents and the key are the same as when every
update is kept, the key's numbers agree with PyTorch, and the memory a run needs no
longer grows with its steps."""

from __future__ import annotations

import gc
import json
import pickle
import tracemalloc

import pytest

from derive.cli import main
from derive.errors import OutputError
from derive.files import Pieces, write_all
from derive.model import numeric
from derive.solution.derivation import solve
from derive.views.document import render
from tests import torch_oracle

RELU_NET = {
    "inputs": 2,
    "layers": [
        {"units": 2, "activation": "relu", "weights": [[0.1, -0.2], [-0.3, 0.4]], "bias": [0.1, -0.5]},
        {"units": 1, "activation": "sigmoid", "weights": [[0.5, -0.6]], "bias": [0.2]},
    ],
    "loss": "bce",
    "learning_rate": 0.1,
    "steps": 40,
    "data": [{"x": [1, 2], "y": [1]}, {"x": [-1, 0.5], "y": [0]}, {"x": [0.3, -2], "y": [1]}],
}
SOFTMAX_NET = {
    "inputs": 2,
    "layers": [
        {"units": 3, "activation": "tanh", "weights": [[0.2, -0.1], [0.4, 0.3], [-0.5, 0.1]], "bias": [0.0, 0.1, -0.1]},
        {"units": 2, "activation": "softmax", "weights": [[0.3, -0.2, 0.1], [-0.4, 0.2, 0.5]], "bias": [0.05, -0.05]},
    ],
    "loss": "cross_entropy",
    "learning_rate": 0.3,
    "steps": 30,
    "data": [{"x": [0.5, -1], "y": [1, 0]}, {"x": [-0.2, 0.8], "y": [0, 1]}],
}

CASES = {
    "relu, batch": RELU_NET,
    "relu, one sample per update": dict(RELU_NET, update="sample"),
    "a relu unit that dies": {
        "inputs": 2,
        "layers": [
            {"units": 2, "activation": "relu", "weights": [[-0.5, -0.5], [1.0, -0.1]], "bias": [0.7, 0.0]},
            {"units": 1, "activation": "linear", "weights": [[0.3, -0.7]], "bias": [0.1]},
        ],
        "loss": "mse", "learning_rate": 0.5, "steps": 30, "data": [{"x": [1, 2], "y": [1]}, {"x": [-1, 0.5], "y": [0]}],
    },
    "adam": dict(RELU_NET, optimizer={"name": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, learning_rate=0.05, steps=30),
    "coupled weight decay": dict(RELU_NET, weight_decay=0.01, steps=30),
    "momentum, exact rounding": dict(SOFTMAX_NET, optimizer={"name": "momentum", "momentum": 0.9}, rounding="exact"),
    "softmax, 150 updates (a compact key)": dict(SOFTMAX_NET, steps=150),
}


def _documents(spec: dict) -> tuple:
    solution = solve(spec)
    return solution, tuple(render(solution, name) for name in ("md", "tex", "json"))


@pytest.mark.parametrize("name", CASES)
def test_a_long_run_gives_the_documents_of_a_run_kept_whole(monkeypatch, name):
    spec = CASES[name]
    whole, expected = _documents(spec)
    assert whole.updates.complete
    monkeypatch.setattr(numeric, "KEPT_UPDATES", 5)
    streamed, documents = _documents(spec)
    assert not streamed.updates.complete and not streamed.exact.updates.complete
    for format, one, other in zip(("md", "tex", "json"), expected, documents):
        assert one == other, format
    if name == "a relu unit that dies":  # found by going through the run's forward passes again
        assert [note.kind.name for note in streamed.notes] == ["DEAD"]


def test_a_run_of_many_values_is_long_whatever_its_steps(monkeypatch):
    """KEPT_VALUES: a wide network's few updates can hold more values than many of a small one's."""
    whole, expected = _documents(SOFTMAX_NET)
    per_update = 2 * 17 + 2 * (3 * 5 + 1)  # 17 parameters; 2 samples, 5 units
    monkeypatch.setattr(numeric, "KEPT_VALUES", 29 * per_update)
    streamed, documents = _documents(SOFTMAX_NET)
    assert whole.updates.complete and not streamed.updates.complete and documents == expected
    monkeypatch.setattr(numeric, "KEPT_VALUES", 30 * per_update)
    assert solve(SOFTMAX_NET).updates.complete


def test_the_updates_of_a_long_run_are_those_of_a_whole_one(monkeypatch):
    whole = solve(RELU_NET).shown.updates
    monkeypatch.setattr(numeric, "KEPT_UPDATES", 5)
    streamed = solve(RELU_NET).shown.updates
    assert len(streamed) == len(whole) == 40
    assert list(streamed) == list(whole) and list(streamed) == list(streamed)  # gone through twice, the same
    for k in (0, 3, numeric.HEAD_UPDATES, 17, 38, -1, -40):
        assert streamed[k] == whole[k]
    assert streamed[2:30:7] == whole[2:30:7] and streamed[1:4] == whole[1:4] and streamed[::-9] == whole[::-9]
    assert list(streamed.losses) == [u.loss for u in whole]
    assert [streamed.samples(k) for k in range(40)] == [u.samples for u in whole]
    with pytest.raises(IndexError):
        streamed[40]
    # the rest of a sequence's ways, each going through the run once
    assert streamed == whole and whole == tuple(whole) and streamed != list(whole)[:-1]
    assert list(reversed(streamed)) == list(whole)[::-1]
    assert streamed.index(whole[30]) == 30 and streamed.index(whole[5], 3, 10) == 5 and whole[12] in streamed
    with pytest.raises(ValueError):
        streamed.index(whole[5], 6)
    copy = pickle.loads(pickle.dumps(streamed))  # pickled whole: what computes it again cannot be
    assert copy.complete and copy == whole


@pytest.mark.parametrize("name", ["relu, one sample per update", "adam", "coupled weight decay", "momentum, exact rounding"])
def test_the_key_of_a_long_run_agrees_with_pytorch(monkeypatch, name):
    spec = dict(CASES[name], rounding="exact")
    monkeypatch.setattr(numeric, "KEPT_UPDATES", 5)
    solution = solve(spec)
    assert not solution.updates.complete
    key = json.loads(render(solution, "json"))
    oracle = torch_oracle.train(spec)
    assert len(key["steps"]) == len(oracle["steps"]) > numeric.KEPT_UPDATES
    for ours, theirs in zip(key["steps"], oracle["steps"]):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-9, abs=1e-12)
        for part in ("gradients", "updated"):
            assert ours[part].keys() == theirs[part].keys()
            for name_, value in ours[part].items():
                assert value == pytest.approx(theirs[part][name_], rel=1e-8, abs=1e-11), (ours["step"], part, name_)


def test_the_key_written_in_pieces_is_json_dumps_of_the_whole_key(monkeypatch, tmp_path):
    # a title with what the pieces are cut at: inside a JSON string its quotes are escaped
    spec = dict(SOFTMAX_NET, steps=150, title='A "steps":[] title')
    monkeypatch.setattr(numeric, "KEPT_UPDATES", 5)
    solution = solve(spec)
    text = render(solution, "json")
    assert text == json.dumps(solution.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n"
    key = json.loads(text)
    assert key["title"] == 'A "steps":[] title' and [s["step"] for s in key["steps"]] == list(range(1, 151))
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert main(["solve", str(path), "--format", "json", "--output", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "spec.json").read_text() == text


@pytest.mark.parametrize("indent", [0, 2, 4])
def test_an_indented_key_is_written_in_pieces_too(monkeypatch, tmp_path, indent):
    spec = dict(SOFTMAX_NET, steps=120, title='A "steps": [] title')
    monkeypatch.setattr(numeric, "KEPT_UPDATES", 5)
    solution = solve(spec)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert main(["solve", str(path), "--format", "json", "--indent", str(indent), "--output", str(tmp_path / "out")]) == 0
    written = (tmp_path / "out" / "spec.json").read_text()
    assert written == json.dumps(solution.to_dict(), indent=indent, ensure_ascii=False) + "\n"


def test_an_interrupt_while_a_key_goes_to_standard_output_says_it_is_incomplete(monkeypatch, tmp_path, capsys):
    from derive.views import document

    def interrupted(solution, indent):
        yield '{"format":'
        raise KeyboardInterrupt

    monkeypatch.setattr(document, "_key_pieces", interrupted)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(dict(SOFTMAX_NET, steps=150)))
    assert main(["solve", str(path), "--format", "json", "--output", "-"]) == 130
    out, err = capsys.readouterr()
    assert out == '{"format":' and err == "derive: interrupted; what was written to standard output is incomplete\n"


def test_pieces_are_written_all_or_nothing(tmp_path):
    def broken():
        yield "{"
        raise OSError("disk full")

    (tmp_path / "key.json").write_text("before")
    with pytest.raises(OutputError, match=r"key\.json: cannot write: disk full$"):
        write_all([(tmp_path / "key.json", Pieces(broken)), (tmp_path / "other.md", "text")])
    assert (tmp_path / "key.json").read_text() == "before" and not (tmp_path / "other.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.json"]


def _peak(spec: dict, path) -> int:
    """Peak bytes allocated by Python while solving `spec` and writing its JSON key."""
    gc.collect()
    tracemalloc.start()
    try:
        solution = solve(spec)
        from derive.views.document import Options, render_files

        (files,), _ = render_files([(solution, ["json"], Options(stem="key"))])
        write_all([(path, files["key.json"])])
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_memory_of_a_long_run_does_not_grow_with_its_steps(monkeypatch, tmp_path):
    from derive.views import document

    monkeypatch.setattr(document, "_PIECE", 20_000)  # characters of the key written at a time
    spec = dict(RELU_NET, learning_rate=0.01, data=RELU_NET["data"][:1])
    _peak(dict(spec, steps=150), tmp_path / "warm-up.json")  # what is compiled and cached once
    kept = {steps: _peak(dict(spec, steps=steps), tmp_path / f"kept-{steps}.json") for steps in (200, 800)}
    monkeypatch.setattr(numeric, "KEPT_UPDATES", 50)
    streamed = {steps: _peak(dict(spec, steps=steps), tmp_path / f"streamed-{steps}.json") for steps in (800, 2400)}
    # kept whole, four times the steps take over three times the memory; streamed, three
    # times the steps take no more (8 bytes per update for its loss; Python's free lists of
    # floats and tuples, which fill up to their size over the first few hundred updates)
    assert kept[800] > 3 * kept[200]
    assert streamed[2400] < 1.05 * streamed[800] and streamed[800] < kept[800] / 3
    assert (tmp_path / "streamed-800.json").read_bytes() == (tmp_path / "kept-800.json").read_bytes()
