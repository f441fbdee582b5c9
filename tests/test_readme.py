"""The README's two commands stay what CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("apt-get"))
    apt, _, rest = test_command.partition(" && python3 -m venv")
    assert "python3 -m venv" + rest in ci
    assert apt.split("&& ", 1)[1] in ci


def test_readme_starts_with_the_two_commands():
    blocks = (ROOT / "README.md").read_text().split("```sh\n")[1:3]
    assert "derive solve esuli" in blocks[0]
    assert "pytest" in blocks[1]
