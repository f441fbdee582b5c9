"""Bad input: each class gets a short message naming the file, the field and what
was expected (SpecError through the API, exit code 2 and no traceback through the CLI)."""

from __future__ import annotations

import copy

import pytest
import yaml

import derive
from derive.cli import main
from derive.spec.schema import Batch, Update

GOOD = {
    "title": "t",
    "inputs": 3,
    "layers": [
        {"units": 2, "activation": "relu", "weights": [[0.2, -1.2, 0.9], [-0.5, -1.2, 0.3]], "bias": [-0.1, 0.2]},
        {"units": 1, "activation": "sigmoid", "weights": [[0.7, -1.1]], "bias": [-0.1]},
    ],
    "loss": "half_sse",
    "learning_rate": 0.1,
    "data": [{"x": [0.9, 0.2, 0.5], "y": [0]}],
}


def changed(path: str, value, base=GOOD) -> dict:
    """GOOD with one field replaced (value None removes it); path like 'layers.1.weights'."""
    spec = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = spec
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key = int(last) if last.isdigit() else last
    if value is None:
        del node[key]
    else:
        node[key] = value
    return spec


def write(tmp_path, spec, name="esuli.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec) if not isinstance(spec, str) else spec)
    return str(path)


def error_of(tmp_path, spec, name="esuli.yaml") -> str:
    path = write(tmp_path, spec, name)
    with pytest.raises(derive.SpecError) as caught:
        derive.load_spec(path)
    return str(caught.value)


def test_good_spec_loads_with_defaults():
    spec = derive.load_spec(GOOD)
    assert spec.batch is Batch.MEAN and spec.update is Update.BATCH and spec.steps == 1
    assert spec.layers[0].train_bias is True
    assert derive.load_spec(spec.to_dict()) == spec


def test_the_issue_example_message(tmp_path):
    message = error_of(tmp_path, changed("layers.1.weights", [[0.7, -1.1, 0.3]]))
    assert message.endswith("esuli.yaml: layers[1].weights: expected 1 row of 2 numbers, got 3")


@pytest.mark.parametrize(
    "path,value,expected",
    [
        ("layers.0.weights", [[0.2, -1.2], [-0.5, -1.2, 0.3]], "layers[0].weights: expected 2 rows of 3 numbers, got 2 in row 0"),
        ("layers.0.weights", [[0.2, -1.2, 0.9]], "layers[0].weights: expected 2 rows of 3 numbers, got 1 row"),
        ("layers.0.weights", 0.5, "layers[0].weights: expected 2 rows of 3 numbers, got 0.5"),
        ("layers.0.bias", [0.1, 0.2, 0.3], "layers[0].bias: expected 2 numbers, got 3"),
        ("data.0.x", [0.9, 0.2], "data[0].x: expected 3 numbers, got 2"),
        ("data.0.y", [0, 1], "data[0].y: expected 1 number, got 2"),
        ("layers.0.weights", [[0.2, "a", 0.9], [-0.5, -1.2, 0.3]], "layers[0].weights[0][1]: expected a number, got the text 'a'"),
        ("layers.0.weights", [[0.2, True, 0.9], [-0.5, -1.2, 0.3]], "layers[0].weights[0][1]: expected a number, got true"),
        ("layers.0.weights", [[0.2, float("inf"), 0.9], [-0.5, -1.2, 0.3]], "layers[0].weights[0][1]: expected a finite number, got inf"),
        ("data.0.x", [0.9, float("nan"), 0.5], "data[0].x[1]: expected a finite number, got nan"),
        ("layers.0.activation", "relux", "layers[0].activation: unknown activation 'relux' (did you mean relu?); choose one of linear, relu, leaky_relu, sigmoid, tanh, softmax"),
        ("loss", "mae", "loss: unknown loss 'mae' (did you mean mse?); choose one of half_sse, sse, mse, bce, cross_entropy"),
        ("layers.0.activation", "softmax", "layers[0].activation: softmax is only allowed on the output layer"),
        ("learning_rate", 0, "learning_rate: expected a number > 0, got 0"),
        ("learning_rate", -0.1, "learning_rate: expected a number > 0, got -0.1"),
        ("steps", 0, "steps: expected a whole number ≥ 1, got 0"),
        ("steps", 1.5, "steps: expected a whole number ≥ 1, got 1.5"),
        ("data", {"x": [1, 2, 3], "y": [0]}, "data: expected a non-empty list of samples (- x: [...], y: [...]), got a mapping"),
        ("data", [], "data: expected a non-empty list of samples"),
        ("learning_rate", None, "learning_rate: missing (expected a number > 0)"),
        ("inputs", None, "inputs: missing (expected the number of input features)"),
        ("layers.0.weights", None, "layers[0].weights: missing (expected 2 rows of 3 numbers)"),
        ("data.0.y", None, "data[0].y: missing (expected 1 target)"),
        ("batch", "avg", "batch: unknown batch mode 'avg'; choose one of mean, sum"),
        ("update", "online", "update: unknown update mode 'online'; choose one of batch, sample"),
        ("layers.0.alpha", 0.1, "layers[0].alpha: alpha belongs to leaky_relu, not to relu"),
        ("layers.0.train_bias", "yes please", "layers[0].train_bias: expected true or false"),
    ],
)
def test_bad_field(tmp_path, path, value, expected):
    message = error_of(tmp_path, changed(path, value))
    # The whole path of the file, then the field and what was expected (some messages go on
    # with what was found).
    assert message.startswith(f"{tmp_path / 'esuli.yaml'}: {expected}")


def test_unknown_field_suggests_the_closest(tmp_path):
    spec = changed("learning_rate", None)
    spec["learnig_rate"] = 0.1
    assert error_of(tmp_path, spec).endswith("esuli.yaml: learnig_rate: unknown field (did you mean 'learning_rate'?)")
    layer_typo = changed("layers.0.activaton", "relu")
    assert "layers[0].activaton: unknown field (did you mean 'activation'?)" in error_of(tmp_path, layer_typo)


def test_yaml_syntax_error_names_the_line(tmp_path):
    message = error_of(tmp_path, "inputs: 3\nlayers:\n  - units: 2\n   activation: relu\n")
    assert message.startswith(str(tmp_path / "esuli.yaml") + ": line 4: YAML syntax error")


def test_json_syntax_error_names_the_line(tmp_path):
    message = error_of(tmp_path, '{"inputs": 3,\n "layers": [}\n', name="spec.json")
    assert "spec.json: line 2: JSON syntax error" in message


def test_json_spec_loads(tmp_path):
    import json

    path = tmp_path / "spec.json"
    path.write_text(json.dumps(GOOD))
    assert derive.load_spec(str(path)).inputs == 3


def test_empty_and_missing_files(tmp_path):
    assert error_of(tmp_path, "  \n").endswith("esuli.yaml: the file is empty (expected a network spec)")
    with pytest.raises(derive.SpecError, match=r"nope\.yaml: no such file \(nor a built-in example: esuli, elbasheer, students, momentum, adam, circuit\)"):
        derive.load_spec(str(tmp_path / "nope.yaml"))


def test_top_level_must_be_a_mapping(tmp_path):
    assert "esuli.yaml: expected a mapping of spec fields" in error_of(tmp_path, "- 1\n- 2\n")


def test_numbers_in_exponent_form_are_numbers(tmp_path):
    path = write(tmp_path, "inputs: 1\nlayers: [{units: 1, activation: linear, weights: [[2e-1]]}]\nloss: sse\nlearning_rate: 1e-3\ndata: [{x: 1, y: 2}]\n")
    spec = derive.load_spec(path)
    assert spec.learning_rate == 0.001 and spec.layers[0].weights == ((0.2,),)


def test_loss_rules():
    bce = changed("loss", "bce")
    with pytest.raises(derive.SpecError, match=r"data\[0\]\.y\[0\]: bce needs targets in \[0, 1\], got 2"):
        derive.load_spec(changed("data.0.y", [2], bce))
    with pytest.raises(derive.SpecError, match=r"loss: bce needs a sigmoid output layer, but layers\[1\] is relu"):
        derive.load_spec(changed("layers.1.activation", "relu", bce))
    with pytest.raises(derive.SpecError, match=r"loss: cross_entropy needs a softmax output layer, but layers\[1\] is sigmoid"):
        derive.load_spec(changed("loss", "cross_entropy"))
    softmax = changed("layers.1", {"units": 2, "activation": "softmax", "weights": [[0.1, 0.2], [0.3, 0.4]]})
    ce = changed("data.0.y", [0.5, 0.4], changed("loss", "cross_entropy", softmax))
    with pytest.raises(derive.SpecError, match=r"data\[0\]\.y: cross_entropy needs targets that form a distribution"):
        derive.load_spec(ce)
    with pytest.raises(derive.SpecError, match=r"layers\[1\]\.units: a softmax layer needs at least 2 units"):
        derive.load_spec(changed("layers.1", {"units": 1, "activation": "softmax", "weights": [[0.1, 0.2]]}))


def test_bias_forms():
    shared = derive.load_spec(changed("layers.0.bias", 0.5))
    assert shared.layers[0].bias == 0.5 and shared.layers[0].shared_bias
    assert derive.load_spec(changed("layers.0.bias", None)).layers[0].bias is None


def test_numerical_trouble_names_step_and_sample():
    spec = {
        "inputs": 1,
        "layers": [{"units": 1, "activation": "sigmoid", "weights": [[800.0]]}],
        "loss": "bce",
        "learning_rate": 0.1,
        "data": [{"x": [0.001], "y": [1]}, {"x": [1.0], "y": [0]}],
    }
    with pytest.raises(derive.NumericalError, match=r"spec: step 1, sample 2: "):
        derive.solve(spec)


@pytest.mark.parametrize(
    "spec,expected",
    [
        (changed("layers.1.weights", [[0.7, -1.1, 0.3]]), "esuli.yaml: layers[1].weights: expected 1 row of 2 numbers, got 3"),
        ("inputs: [", "esuli.yaml: line 2: YAML syntax error"),
        ("", "esuli.yaml: the file is empty"),
        (changed("steps", 0), "esuli.yaml: steps: expected a whole number ≥ 1, got 0"),
    ],
)
def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys, spec, expected):
    path = write(tmp_path, spec)
    out_dir = tmp_path / "out"
    assert main(["solve", path, "--output", str(out_dir)]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    assert not out_dir.exists()


def test_cli_missing_file(tmp_path, capsys):
    assert main(["solve", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml: no such file" in capsys.readouterr().err


def test_a_bad_spec_among_good_ones_writes_nothing(tmp_path, capsys):
    bad = write(tmp_path, changed("loss", "mae"), "bad.yaml")
    out_dir = tmp_path / "out"
    assert main(["solve", "esuli", bad, "--output", str(out_dir)]) == 2
    assert not out_dir.exists() or not any(out_dir.iterdir())
