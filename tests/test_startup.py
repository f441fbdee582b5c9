"""The light commands start without the heavy machinery: `import derive`, `derive --version`,
`derive examples` and `derive grade` (without follow-through) import neither SymPy nor
Jinja2 nor PyYAML; the rest of the API loads on first use, with the records' views."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sympy", "jinja2", "yaml", "derive.exercises.variants", "derive.views.document")


def _loaded(code: str, cwd) -> list[str]:
    probe = f"{code}\nimport sys\nprint('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, check=True)
    line = done.stdout.splitlines()[-1]
    assert line.startswith("loaded:"), done.stdout
    return [m for m in line.removeprefix("loaded:").split(",") if m]


@pytest.mark.parametrize("command", [["--version"], ["examples"]])
def test_light_commands_do_not_import_sympy(tmp_path, command):
    code = f"from derive.cli import main\ntry:\n    main({command!r})\nexcept SystemExit:\n    pass"
    assert _loaded(code, tmp_path) == []


def test_grading_without_follow_through_does_not_import_sympy(tmp_path):
    (tmp_path / "key.csv").write_text("variant,question,value,tolerance\nV1,loss,0.5,0.001\nV1,a2[0],0.3,0.001\n")
    (tmp_path / "responses.csv").write_text("student,variant,question,value\nada,V1,loss,0.5\nada,V1,a2[0],0.2\n")
    code = "from derive.cli import main\nassert main(['grade', 'key.csv', 'responses.csv', '--output', 'grades.csv']) == 0"
    assert _loaded(code, tmp_path) == []
    assert (tmp_path / "grades-details.csv").read_text().count("\n") == 2


def test_import_derive_is_light_and_the_api_loads_on_first_use(tmp_path):
    assert _loaded("import derive\nassert derive.examples()['esuli']\nassert issubclass(derive.SpecError, derive.DeriveError)", tmp_path) == []
    code = (
        "import derive\nsolution = derive.solve('elbasheer')\n"
        "assert solution._repr_markdown_().startswith('# ')\n"
        "assert 'solve' in dir(derive) and derive.exercise and derive.Exercise.sheet"
    )
    assert _loaded(code, tmp_path) == ["sympy", "jinja2", "yaml", "derive.exercises.variants", "derive.views.document"]


def test_an_unknown_attribute_is_an_attribute_error():
    import derive

    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        derive.nonsense  # noqa: B018


def test_a_long_runs_key_is_compact_unless_an_indentation_is_asked_for(tmp_path):
    import json

    from derive.cli import main

    spec = {
        "inputs": 1, "layers": [{"units": 1, "activation": "sigmoid", "weights": [[0.5]], "bias": [0.1]}],
        "loss": "half_sse", "learning_rate": 0.5, "steps": 150, "data": [{"x": [1.0], "y": [0.2]}],
    }
    path = tmp_path / "long.json"
    path.write_text(json.dumps(spec))
    assert main(["solve", str(path), "--format", "json", "--output", str(tmp_path / "a")]) == 0
    assert main(["solve", str(path), "--format", "json", "--output", str(tmp_path / "b"), "--indent", "2"]) == 0
    compact, indented = (tmp_path / "a" / "long.json").read_text(), (tmp_path / "b" / "long.json").read_text()
    assert compact.count("\n") == 1 and ", " not in compact and indented.count("\n") > 1000
    assert json.loads(compact) == json.loads(indented) and len(json.loads(compact)["steps"]) == 150
    assert main(["solve", "esuli", "--format", "json", "--output", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "esuli.json").read_text().startswith('{\n  "format"')  # a short run: indented as before


@pytest.mark.parametrize("template", ["esuli", "circuit"])
def test_parallel_variants_are_byte_identical(tmp_path, template):
    """--jobs changes who does the work, not the files: the draws are judged ahead by other
    processes, the choice is made in order, and each variant's files are written apart."""
    from derive.cli import main

    def tree(folder):
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    outputs = []
    for jobs in ("1", "2", "3"):
        out = tmp_path / jobs
        arguments = ["exercise", template, "--count", "25", "--seed", "11", "--format", "md,json,html,moodle", "--output", str(out)]
        assert main([*arguments, "--jobs", jobs]) == 0
        outputs.append(tree(out))
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) > 75
    assert main(["exercise", template, "--variant", "V19-000b", "--format", "json", "--output", str(tmp_path / "one"), "--jobs", "2"]) == 0
    assert tree(tmp_path / "one")["V19-000b/key.json"] == outputs[0]["V19-000b/key.json"]
