"""Output written all-or-nothing (folders, links and special files in the way, failures
while renaming, names that leave the output folder), safe file stems, and interrupts
that leave no temporary folder and no pdflatex behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from derive import files as files_module
from derive.views import pdf as pdf_module
from derive.cli import main
from derive.errors import OutputError
from derive.files import safe_stem, write_all
from derive.views.pdf import LatexFailed, compile_pdf

HAS_LATEX = bool(shutil.which("latexmk") and shutil.which("pdflatex"))
needs_latex = pytest.mark.skipif(not HAS_LATEX or not Path("/proc/self/stat").exists(),
                                 reason="needs latexmk, pdflatex and /proc")


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every path below `folder` with its content (files) or kind (folders, links, others)."""
    result: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            result[name] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            result[name] = "folder"
        elif path.is_file():
            result[name] = path.read_bytes()
        else:
            result[name] = "special"
    return result


def no_staging(folder: Path) -> bool:
    return not list(folder.rglob(".derive-*")) and not list(folder.rglob("*.part"))


@pytest.fixture
def existing(tmp_path) -> Path:
    """An output folder with an earlier run's files in it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "esuli.tex").write_text("old tex")
    (out / "esuli.json").write_text("old json")
    return out


# --- writing ---------------------------------------------------------------------------


def test_every_file_is_written_with_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        written = write_all([(tmp_path / "a" / "b" / "one.md", "ünï"), (tmp_path / "a" / "two.pdf", b"%PDF")])
    finally:
        os.umask(umask)
    assert written == [tmp_path / "a" / "b" / "one.md", tmp_path / "a" / "two.pdf"]
    assert (tmp_path / "a" / "b" / "one.md").read_text(encoding="utf-8") == "ünï"
    assert (tmp_path / "a" / "two.pdf").read_bytes() == b"%PDF"
    assert (tmp_path / "a" / "two.pdf").stat().st_mode & 0o777 == 0o644
    assert no_staging(tmp_path)


def test_names_inside_a_root(tmp_path):
    root = tmp_path / "out"
    written = write_all([(Path("esuli.md"), "md"), (Path("figures/esuli.svg"), "<svg/>")], root=root)
    assert written == [root / "esuli.md", root / "figures" / "esuli.svg"]
    assert snapshot(root) == {"esuli.md": b"md", "figures": "folder", "figures/esuli.svg": b"<svg/>"}


def test_earlier_files_are_replaced(existing):
    write_all([(Path("esuli.tex"), "new tex")], root=existing)
    assert snapshot(existing) == {"esuli.json": b"old json", "esuli.tex": b"new tex"}


def test_nothing_to_write_makes_nothing(tmp_path):
    assert write_all([], root=tmp_path / "out") == []
    assert not (tmp_path / "out").exists()


# --- refused before anything is written ---------------------------------------------------


def test_a_folder_where_a_file_goes_writes_nothing(existing):
    (existing / "esuli.md").mkdir()
    before = snapshot(existing)
    with pytest.raises(OutputError) as refused:
        write_all([(Path("esuli.tex"), "new"), (Path("esuli.md"), "new"), (Path("esuli.pdf"), b"new")], root=existing)
    assert str(refused.value) == f"{existing / 'esuli.md'}: cannot write: it is a folder"
    assert refused.value.exit_code == 1
    assert snapshot(existing) == before and no_staging(existing)


def test_the_cli_reports_a_folder_in_the_way_in_one_line(existing, capsys):
    (existing / "esuli.md").mkdir()
    before = snapshot(existing)
    assert main(["solve", "esuli", "--format", "md,tex,json", "--output", str(existing)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"{existing / 'esuli.md'}: cannot write: it is a folder\n"
    assert captured.out == ""
    assert snapshot(existing) == before


def test_a_symbolic_link_is_not_followed_or_replaced(existing, tmp_path):
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("precious")
    (existing / "esuli.md").symlink_to(elsewhere)
    before = snapshot(existing)
    with pytest.raises(OutputError, match=r"esuli\.md: cannot write: it is a symbolic link$"):
        write_all([(Path("esuli.tex"), "new"), (Path("esuli.md"), "new")], root=existing)
    assert snapshot(existing) == before and elsewhere.read_text() == "precious"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_a_named_pipe_is_refused_without_blocking(existing):
    os.mkfifo(existing / "esuli.md")
    before = snapshot(existing)
    with pytest.raises(OutputError, match=r"esuli\.md: cannot write: it is a named pipe$"):
        write_all([(Path("esuli.tex"), "new"), (Path("esuli.md"), "new")], root=existing)
    assert snapshot(existing) == before


def test_a_file_where_a_folder_goes(tmp_path):
    (tmp_path / "blocker").write_text("")
    with pytest.raises(OutputError) as refused:
        write_all([(tmp_path / "ok.md", "x"), (tmp_path / "blocker" / "sub" / "esuli.md", "x")])
    assert str(refused.value) == f"{tmp_path / 'blocker' / 'sub' / 'esuli.md'}: cannot write: {tmp_path / 'blocker'} is not a folder"
    assert snapshot(tmp_path) == {"blocker": b""}


@pytest.mark.parametrize("name", ["../x.md", "sub/../../x.md", "/tmp/x.md", ".", ""])
def test_names_that_leave_the_root_are_refused(tmp_path, name):
    root = tmp_path / "out"
    with pytest.raises(OutputError, match="cannot write: not a name inside the output folder"):
        write_all([(Path("fine.md"), "x"), (Path(name), "x")], root=root)
    assert snapshot(tmp_path) == {}


def test_two_outputs_with_one_name_are_refused(tmp_path):
    with pytest.raises(OutputError, match=r"a\.md: cannot write: two outputs have this name$"):
        write_all([(Path("a.md"), "1"), (Path("./a.md"), "2")], root=tmp_path)
    with pytest.raises(OutputError, match="another output has the name of its folder"):
        write_all([(Path("a"), "1"), (Path("a/b.md"), "2")], root=tmp_path)
    assert snapshot(tmp_path) == {}


def test_a_refusal_of_the_file_system_is_one_line(tmp_path, monkeypatch):
    """As a read-only folder does for a user without root's rights."""

    def refuse(**options):
        raise PermissionError(13, "Permission denied", str(Path(options["dir"], ".derive-x")))

    monkeypatch.setattr(files_module.tempfile, "mkdtemp", refuse)
    with pytest.raises(OutputError) as refused:
        write_all([(Path("new/esuli.md"), "x")], root=tmp_path)
    assert str(refused.value) == f"{tmp_path}: cannot write: Permission denied"
    assert snapshot(tmp_path) == {}  # the folder `new` it made is gone again


# --- failures half-way ---------------------------------------------------------------------------


def test_a_failure_while_staging_leaves_everything_as_it_was(existing):
    before = snapshot(existing)
    with pytest.raises(UnicodeEncodeError):
        write_all([(Path("esuli.tex"), "new"), (Path("sub/esuli.md"), "\ud800")], root=existing)
    assert snapshot(existing) == before and no_staging(existing)


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failure_while_renaming_puts_back_the_earlier_files(existing, monkeypatch, failure):
    before = snapshot(existing)
    inode = (existing / "esuli.tex").stat().st_ino
    real_replace, calls = os.replace, []

    def replace(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise failure
        real_replace(source, target)

    monkeypatch.setattr(files_module.os, "replace", replace)
    with pytest.raises(type(failure) if isinstance(failure, KeyboardInterrupt) else OutputError) as stopped:
        write_all([(Path("esuli.tex"), "new tex"), (Path("esuli.md"), "new md"), (Path("esuli.json"), "new json")],
                  root=existing)
    if isinstance(failure, OSError):
        assert str(stopped.value) == f"{existing / 'esuli.md'}: cannot write: No space left on device"
    assert snapshot(existing) == before and no_staging(existing)
    assert (existing / "esuli.tex").stat().st_ino == inode  # the very file, not a copy


def test_a_second_run_waits_for_the_first_to_finish_renaming(tmp_path):
    """Two runs into one folder rename their files batch after batch, never interleaved."""
    import fcntl

    holder = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as a first run in the middle of renaming
    second = threading.Thread(target=write_all, args=([(Path("a.md"), "2"), (Path("b.md"), "2")],), kwargs={"root": tmp_path})
    second.start()
    time.sleep(0.3)
    assert not (tmp_path / "a.md").exists()
    os.close(holder)
    second.join(timeout=10)
    assert snapshot(tmp_path) == {"a.md": b"2", "b.md": b"2"}


# --- safe stems --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,stem",
    [
        ("esuli", "esuli"),
        ("wide-8-4-3", "wide-8-4-3"),
        ("my_net.v2", "my_net.v2"),
        (Path("...yaml").stem, "solution"),  # the stem ".." must not become a way into the parent
        ("..", "solution"),
        ("../x", "x"),
        ("../../etc/passwd", "etc-passwd"),
        ("/abs/path", "abs-path"),
        ("a b<c>.yaml", "a-b-c-.yaml"),
        ("\x1b[31mred", "31mred"),
        ("-rf", "rf"),
        (".hidden", "hidden"),
        ("Café Übung", "Cafe-Ubung"),  # accented Latin letters lose their accents
        ("Σ-network 学习", "network"),  # other scripts have no ASCII letters: they become separators
        ("学习", "solution"),
        ("a学b", "a-b"),
        ("ﬁle", "file"),
        ("", "solution"),
        ("x" * 100, "x" * 64),
        ("a" * 63 + " b", "a" * 63),  # never ends in a separator after trimming
    ],
)
def test_safe_stem(text, stem):
    assert safe_stem(text) == stem


# --- interrupts ---------------------------------------------------------------------------------


STOPPED_WITHIN = 2 * pdf_module.GRACE + 3  # seconds from the signal to the exit; the slow document takes ~15 s


def slow_document(iterations: int = 50_000_000) -> str:
    """LaTeX that counts for several seconds (about 3 s per 10 million) before it typesets."""
    return (
        "\\documentclass{article}\n\\begin{document}\n"
        f"\\count255=0 \\loop\\advance\\count255 by 1 \\ifnum\\count255<{iterations} \\repeat\n"
        "slow\n\\end{document}\n"
    )


def pdflatex_below(folder: Path) -> list[int]:
    """The pdflatex processes working in a folder below `folder`."""
    found = []
    prefix = os.path.realpath(folder) + os.sep
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "pdflatex" and os.readlink(entry / "cwd").startswith(prefix):
                found.append(int(entry.name))
        except OSError:  # ended meanwhile, or a zombie
            continue
    return found


def alive(pids: list[int]) -> list[int]:
    result = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            result.append(pid)
    return result


def process_group(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except OSError:
        return None


def wait_for(condition, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    return condition()


def interrupt_when_latex_runs(
    command: list[str], temp: Path, signal_number: int, cwd: Path, running: int = 1
) -> tuple[int, list[int], str]:
    """Starts `command` with TMPDIR=`temp`, sends the signal as soon as pdflatex runs (as
    soon as `running` of them run, or 10 s later), and returns the exit code, the pdflatex
    processes seen and the standard error."""
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, "TMPDIR": str(temp)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = wait_for(lambda: pdflatex_below(temp), 60)
        assert seen, f"pdflatex never started: {process.communicate(timeout=60)}"
        if running > 1:
            wait_for(lambda: len(pdflatex_below(temp)) >= running, 10)
            seen = pdflatex_below(temp)
        process.send_signal(signal_number)
        signalled = time.monotonic()
        _, err = process.communicate(timeout=30)
        assert time.monotonic() - signalled < STOPPED_WITHIN, "derive waited for LaTeX to finish"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, seen, err


def assert_nothing_left(temp: Path, seen: list[int]) -> None:
    wait_for(lambda: not alive(seen), 5)  # an orphan would be reparented and reaped meanwhile
    assert not alive(seen) and not pdflatex_below(temp), "pdflatex outlived derive"
    assert sorted(p.name for p in temp.iterdir() if p.name.startswith("derive-")) == []


DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from derive.files import install_signal_handlers
    from derive.views.pdf import compile_all, compile_pdf
    install_signal_handlers()
    document = Path(sys.argv[2]).read_text()
    try:
        if sys.argv[1] == "one":
            compile_pdf(document, "slow")
        else:
            compile_all([(document, "slow-a"), (document, "slow-b"), (document, "slow-c")])
    except KeyboardInterrupt as stop:  # Ctrl-C, or derive.files.Terminated for SIGTERM
        sys.exit(getattr(stop, "exit_code", 130))
    sys.exit(0)
    """
)


@needs_latex
@pytest.mark.parametrize(
    "batch,signal_number,code",
    [("all", signal.SIGTERM, 143), ("one", signal.SIGTERM, 143), ("all", signal.SIGINT, 130), ("one", signal.SIGINT, 130)],
)
def test_a_signal_during_latex_stops_it_and_removes_its_folders(tmp_path, batch, signal_number, code):
    temp = tmp_path / "temp"
    temp.mkdir()
    (tmp_path / "slow.tex").write_text(slow_document())
    command = [sys.executable, "-c", DRIVER, batch, str(tmp_path / "slow.tex")]
    running = min(3, os.cpu_count() or 1) if batch == "all" else 1
    returncode, seen, err = interrupt_when_latex_runs(command, temp, signal_number, tmp_path, running)
    assert returncode == code, err
    assert_nothing_left(temp, seen)


@needs_latex
def test_ctrl_c_through_the_cli_exits_130_and_leaves_nothing(tmp_path):
    templates, temp, out = tmp_path / "templates", tmp_path / "temp", tmp_path / "out"
    templates.mkdir()
    temp.mkdir()
    (templates / "solution.tex.j2").write_text(slow_document())
    command = [sys.executable, "-m", "derive", "solve", "esuli", "--format", "pdf", "--output", str(out),
               "--template-dir", str(templates)]
    code, seen, err = interrupt_when_latex_runs(command, temp, signal.SIGINT, tmp_path)
    assert code == 130, err
    assert "Traceback" not in err
    assert_nothing_left(temp, seen)
    assert not out.exists() or snapshot(out) == {}


@needs_latex
def test_the_time_limit_kills_pdflatex_and_keeps_only_the_tex_and_log(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_module, "TIME_LIMIT", 1)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(LatexFailed, match=r"^slow: LaTeX took longer than 1 s; the \.tex and \.log are kept in "):
        compile_pdf(slow_document(), "slow")
    assert time.monotonic() - started < 1 + 2 * pdf_module.GRACE + 3
    wait_for(lambda: not pdflatex_below(tmp_path), 5)
    assert not pdflatex_below(tmp_path)
    folders = [p.name for p in tmp_path.iterdir()]
    assert not [name for name in folders if name.startswith("derive-latex-")]
    (kept,) = [tmp_path / name for name in folders if name.startswith("derive-slow-")]
    assert (kept / "solution.tex").read_text() == slow_document()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_group_that_ignores_sigterm_is_killed(monkeypatch):
    monkeypatch.setattr(pdf_module, "GRACE", 0.3)
    group = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 30 & wait"], start_new_session=True)
    try:
        time.sleep(0.2)
        started = time.monotonic()
        pdf_module._stop([group])
        assert time.monotonic() - started < 2
        assert group.wait(timeout=1) == -signal.SIGKILL
        assert not [pid for pid in alive([int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()])
                    if process_group(pid) == group.pid]  # the sleep is gone too (at most a zombie)
    finally:
        if group.poll() is None:
            os.killpg(group.pid, signal.SIGKILL)
            group.wait()
