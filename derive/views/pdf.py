"""PDF through a real LaTeX toolchain: pdflatex in a temporary directory, no shell
escape, paranoid file access, a time limit. Only a finished PDF comes back.

The fixed preamble (document class, packages, settings) is compiled once into a format
file (`pdflatex -ini … \\dump`) kept in the user's cache folder, named by a hash of the
preamble and the TeX version; a document then loads that format and compiles its body
alone, which halves the time of a compile. pdflatex runs as often as the log asks (once
for these documents, which write no auxiliary files). Where the cache folder cannot be
written or the format cannot be built, the plain path is taken: latexmk on the whole file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from functools import lru_cache
from typing import Sequence

from ..errors import DeriveError

INSTALL = "apt-get install texlive-latex-base texlive-latex-recommended texlive-pictures latexmk"
TIME_LIMIT = 300  # seconds for one document
CACHE_VARIABLE = "DERIVE_CACHE_DIR"  # the cache folder; empty: no format cache
MAX_RUNS = 4  # pdflatex runs of one document at most (it asks for a rerun while references settle)
# Paranoid: TeX may read and write only below the working directory. A fixed date makes
# the same document give the same bytes (pdfTeX honours SOURCE_DATE_EPOCH).
_ENVIRONMENT = {"openout_any": "p", "openin_any": "p", "SOURCE_DATE_EPOCH": "1767225600", "FORCE_SOURCE_DATE": "1"}
_BODY = "\\begin{document}"
GRACE = 2  # seconds a stopped LaTeX run has to end before it is killed

# Every running latexmk, each the leader of its own process group (pdflatex runs in it);
# stopping a run signals the whole group, so no pdflatex outlives derive.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


class ToolchainMissing(DeriveError):
    """No latexmk/pdflatex on PATH (bad set-up, exit code 2)."""


class LatexFailed(DeriveError):
    """LaTeX stopped with an error; the .tex and .log are kept for inspection."""

    exit_code = 1


class _Cancelled(Exception):
    """A compilation stopped because its batch was interrupted; nothing is kept."""


def check_toolchain() -> None:
    if not (shutil.which("latexmk") and shutil.which("pdflatex")):
        raise ToolchainMissing(f"PDF output needs latexmk and pdflatex (TeX Live); install: {INSTALL}")


def compile_pdf(tex: str, name: str) -> bytes:
    """The PDF of a LaTeX document; `name` is what messages call it. On a time-out, an
    interrupt or SIGTERM (see `derive.files.install_signal_handlers`) LaTeX's process
    group is killed and the temporary folder removed before the exception goes on."""
    check_toolchain()
    return _compile(tex, name, None)


def compile_all(documents: Sequence[tuple[str, str]]) -> list[bytes | DeriveError]:
    """Compiles (tex, name) documents in parallel across the cores; a failure is
    returned in its place rather than raised, so the others still finish. An interrupt
    cancels the documents not yet started and stops the running ones before it goes on."""
    from concurrent.futures import ThreadPoolExecutor

    check_toolchain()
    cancelled = threading.Event()

    def one(document: tuple[str, str]) -> bytes | DeriveError:
        try:
            return _compile(*document, cancelled)
        except DeriveError as error:
            return error
        except _Cancelled:
            return LatexFailed(f"{document[1]}: stopped")

    pool = ThreadPoolExecutor(max_workers=max(1, min(len(documents), os.cpu_count() or 1)))
    try:
        futures = [pool.submit(one, document) for document in documents]
        return [future.result() for future in futures]
    except BaseException:
        cancelled.set()
        pool.shutdown(wait=False, cancel_futures=True)
        stop_running()
        raise
    finally:
        pool.shutdown(wait=True)  # the workers remove their temporary folders before this returns


def stop_running() -> None:
    """Stops every LaTeX run in progress: its whole process group gets SIGTERM, then
    SIGKILL after GRACE seconds."""
    with _running_lock:
        running = list(_running)
    _stop(running)


def _compile(tex: str, name: str, cancelled: threading.Event | None) -> bytes:
    with tempfile.TemporaryDirectory(prefix="derive-latex-") as work:
        source = Path(work, "solution.tex")
        preamble, found, body = tex.partition(_BODY)
        fmt = format_file(preamble, cancelled) if found else None
        environment = {**os.environ, **_ENVIRONMENT}
        if fmt is not None:
            source.write_text(found + body, encoding="utf-8")
            environment["TEXFORMATS"] = f"{fmt.parent}{os.pathsep}"
            command = ["pdflatex", f"-fmt={fmt.stem}", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                       "-file-line-error", source.name]
            for _ in range(MAX_RUNS):
                stdout, code = _run(command, work, environment, name, cancelled, tex)
                log = Path(work, "solution.log")
                if code != 0 or not re.search(r"Rerun to get|Label\(s\) may have changed", log.read_text(errors="replace") if log.exists() else ""):
                    break
            if code != 0 and "format file" in stdout:  # a format pdflatex cannot load: made again next time
                fmt.unlink(missing_ok=True)
                fmt = None
        if fmt is None:
            source.write_text(tex, encoding="utf-8")
            command = ["latexmk", "-pdf", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
                       source.name]
            stdout, code = _run(command, work, environment, name, cancelled, tex)
        pdf = Path(work, "solution.pdf")
        if code != 0 or not pdf.exists():
            log = Path(work, "solution.log")
            # with the format, the file compiled starts at \begin{document}: lines are counted in the whole
            offset = preamble.count("\n") if fmt is not None else 0
            reason = _first_error(log.read_text(errors="replace") if log.exists() else stdout, offset)
            if fmt is not None:
                source.write_text(tex, encoding="utf-8")  # kept whole, as written
            raise LatexFailed(f"{name}: LaTeX failed: {reason}; {_keep(work, name)}")
        return pdf.read_bytes()


def _run(
    command: list[str], work: str, environment: dict[str, str], name: str, cancelled: threading.Event | None, whole: str,
) -> tuple[str, int]:
    """Runs a LaTeX command in `work` as the leader of its own process group, within the
    time limit; stopped with its group on a time-out (keeping the `whole` document and the
    log), an interrupt or a cancelled batch."""
    process: subprocess.Popen | None = None
    try:
        with _running_lock:  # under the lock: stop_running either sees this run or it never starts
            if cancelled is not None and cancelled.is_set():
                raise _Cancelled(name)
            process = subprocess.Popen(
                command, cwd=work, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
            )
            _running.add(process)
        stdout, _ = process.communicate(timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        _stop([process])
        process.communicate()
        Path(work, "solution.tex").write_text(whole, encoding="utf-8")
        raise LatexFailed(f"{name}: LaTeX took longer than {TIME_LIMIT} s; {_keep(work, name)}") from None
    except BaseException:
        if process is not None:
            _stop([process])
            process.stdout.close()
            process.stderr.close()
        raise
    finally:
        with _running_lock:
            _running.discard(process)
    if cancelled is not None and cancelled.is_set():
        raise _Cancelled(name)
    return stdout, process.returncode


def cache_folder() -> Path | None:
    """Where format files are kept: $DERIVE_CACHE_DIR, else $XDG_CACHE_HOME/derive, else
    ~/.cache/derive (the latex folder in it); None when $DERIVE_CACHE_DIR is empty."""
    chosen = os.environ.get(CACHE_VARIABLE)
    if chosen is not None:
        return Path(chosen, "latex") if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "derive", "latex")


@lru_cache(maxsize=1)
def _tex_version() -> str:
    done = subprocess.run(["pdflatex", "--version"], capture_output=True, text=True, errors="replace", timeout=60)
    return done.stdout.splitlines()[0] if done.stdout else ""


_format_lock = threading.Lock()


def format_file(preamble: str, cancelled: threading.Event | None = None) -> Path | None:
    """The format file with `preamble` compiled in, from the cache folder: built there
    first if missing (a format from another TeX version has another name). None when the
    cache folder cannot be written or the format cannot be built: compile the plain way.
    The build runs as every LaTeX run does (its own process group, stopped with the batch)."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        key = hashlib.sha256(f"{_tex_version()}\n{preamble}".encode()).hexdigest()[:20]
    except (OSError, subprocess.SubprocessError):
        return None
    fmt = folder / f"derive-{key}.fmt"
    with _format_lock:  # threads of one batch share one build
        if fmt.is_file() and fmt.stat().st_size > 0:
            return fmt
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix="build-", dir=folder) as work:
                Path(work, "preamble.tex").write_text(f"{preamble}\n\\dump\n", encoding="utf-8")
                command = ["pdflatex", "-ini", "-interaction=nonstopmode", "-halt-on-error", f"-jobname={fmt.stem}", "&pdflatex",
                           "preamble.tex"]
                _, code = _run(command, work, {**os.environ, **_ENVIRONMENT}, "the LaTeX format", cancelled, preamble)
                built = Path(work, fmt.name)
                if code != 0 or not built.is_file():
                    return None
                os.replace(built, fmt)  # whole or not at all: another process may be reading the folder
        except (OSError, subprocess.SubprocessError, LatexFailed):
            return None
    return fmt


def _stop(processes: Sequence[subprocess.Popen]) -> None:
    """SIGTERM to each process group, SIGKILL to those still there after GRACE seconds;
    returns when the groups are gone (or after a last short wait)."""
    for signal_number, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, GRACE)):
        alive = [process for process in processes if _group_alive(process)]
        for process in alive:
            _signal_group(process, signal_number)
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.02)
            alive = [process for process in alive if _group_alive(process)]
        if not alive:
            return


def _signal_group(process: subprocess.Popen, signal_number: int) -> None:
    try:
        os.killpg(process.pid, signal_number)  # the group's id is its leader's, latexmk's, pid
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reaps latexmk once it has ended: a zombie still counts as a member of the group
    try:
        os.killpg(process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _live_member(process.pid) if Path("/proc/self/stat").exists() else True


def _live_member(group: int) -> bool:
    """Whether the group has a member that is not a zombie: an ended pdflatex, orphaned
    when latexmk ended, stays a zombie until init reaps it, which can take a while."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = Path(entry, "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == group and fields[0] != "Z":  # after the name: state, ppid, pgrp
                return True
    return False


def _first_error(log: str, offset: int = 0) -> str:
    for line in log.splitlines():
        match = re.match(r"^(?:\./)?solution\.tex:(\d+): (.*)", line) or re.match(r"^! (.*)", line)
        if match:
            return f"line {int(match.group(1)) + offset}: {match.group(2)}" if match.lastindex == 2 else match.group(1)
    return "see the log"


def _keep(work: str, name: str) -> str:
    kept = Path(tempfile.mkdtemp(prefix=f"derive-{re.sub(r'[^A-Za-z0-9_-]', '_', name)}-"))
    for suffix in (".tex", ".log"):
        if Path(work, "solution" + suffix).exists():
            shutil.copy(Path(work, "solution" + suffix), kept / ("solution" + suffix))
    return f"the .tex and .log are kept in {kept}"
