"""The `derive` command through its entry point: outputs, formats and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import derive
from derive.cli import main
from derive.spec.examples import path as example_path


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"derive {derive.__version__}"


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^    (\w+)\s+\S", out, re.M)
    assert listed == ["solve", "check", "examples", "exercise", "grade"]


def test_no_command_fails_in_one_line(capsys):
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    assert err == "derive: choose a command: solve, exercise, grade, check, examples (see derive --help)\n"


def test_examples_one_line_each(capsys):
    code, out, _ = run(capsys, "examples")
    assert code == 0
    lines = out.strip().splitlines()
    shipped = sorted(p.stem for p in example_path("esuli").parent.glob("*.yaml"))
    assert sorted(line.split()[0] for line in lines) == shipped and len(lines) == len(shipped)
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # a name and its description


def test_solve_default_output_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "solve", "esuli")
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "outputs" / "esuli").iterdir())
    assert names == ["esuli.json", "esuli.md", "esuli.network.svg", "esuli.tex"]
    assert out.split() == [f"outputs/esuli/esuli.{ext}" for ext in ("md", "network.svg", "tex", "json")]


def test_solve_into_a_directory_and_spec_file(capsys, tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text(example_path("esuli").read_text())
    code, _, _ = run(capsys, "solve", str(spec), "--output", str(tmp_path / "out"), "--format", "md")
    assert code == 0
    assert (tmp_path / "out" / "mine.md").read_text().startswith("# Forward and backward pass in a neural network")


def test_solve_to_one_file(capsys, tmp_path):
    target = tmp_path / "key.json"
    code, _, _ = run(capsys, "solve", "esuli", "--format", "json", "--output", str(target))
    assert code == 0
    assert json.loads(target.read_text())["format"] == "derive-solution/1"


def test_solve_to_stdout(capsys):
    code, out, _ = run(capsys, "solve", "elbasheer", "--format", "json", "--output", "-")
    assert code == 0
    assert json.loads(out)["steps"][0]["forward"][0]["a1[0]"] == 21


def test_several_specs(capsys, tmp_path):
    code, out, _ = run(capsys, "solve", "esuli", "elbasheer", "--format", "md,json", "--output", str(tmp_path))
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "elbasheer.json", "elbasheer.md", "elbasheer.network.svg", "esuli.json", "esuli.md", "esuli.network.svg"
    ]


def test_digits(capsys):
    code, out, _ = run(capsys, "solve", "esuli", "--format", "md", "--output", "-", "--digits", "5")
    assert code == 0 and "0.52573" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["solve", "esuli", "--output", "-"], "--output - writes one format of one spec"),
        (["solve", "esuli", "--output", "x.md"], "a file takes one format of one spec"),
        (["solve", "esuli", "elbasheer", "--format", "md", "--output", "-"], "--output - writes one format of one spec"),
    ],
)
def test_impossible_output_requests(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [["solve", "esuli", "--format", "pdfx"], ["solve", "esuli", "--digits", "-1"], ["frobnicate"]])
def test_bad_arguments_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("derive") and "error: " in err and err.count("\n") == 1  # one line, no usage block


def test_real_process_exit_codes(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "derive", "solve", "esuli", "--format", "md", "--output", "-"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("# ")
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: 2\nlayers: []\n")
    failed = subprocess.run([sys.executable, "-m", "derive", "solve", str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert failed.returncode == 2
    assert failed.stderr.strip() == f"{bad}: layers: expected a non-empty list of layers, got a list of 0"
    assert not (tmp_path / "outputs").exists()


def test_unwritable_output_is_reported(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "solve", "esuli", "--output", str(blocker / "sub"))
    assert code == 1 and "cannot write" in err
