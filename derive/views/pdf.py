"""PDF through a real LaTeX toolchain: latexmk + pdflatex in a temporary directory,
no shell escape, paranoid file access, a time limit. Only a finished PDF comes back."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from ..errors import DeriveError

INSTALL = "apt-get install texlive-latex-base texlive-latex-recommended texlive-pictures latexmk"
TIME_LIMIT = 300  # seconds for one document
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
        source.write_text(tex, encoding="utf-8")
        command = [
            "latexmk", "-pdf", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
            source.name,
        ]
        # Paranoid: TeX may read and write only below the working directory. A fixed
        # date makes the same document give the same bytes (pdfTeX honours SOURCE_DATE_EPOCH).
        environment = {**os.environ, "openout_any": "p", "openin_any": "p", "SOURCE_DATE_EPOCH": "1767225600", "FORCE_SOURCE_DATE": "1"}
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
        pdf = Path(work, "solution.pdf")
        if process.returncode != 0 or not pdf.exists():
            log = Path(work, "solution.log")
            reason = _first_error(log.read_text(errors="replace") if log.exists() else stdout)
            raise LatexFailed(f"{name}: LaTeX failed: {reason}; {_keep(work, name)}")
        return pdf.read_bytes()


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


def _first_error(log: str) -> str:
    for line in log.splitlines():
        match = re.match(r"^(?:\./)?solution\.tex:(\d+): (.*)", line) or re.match(r"^! (.*)", line)
        if match:
            return f"line {match.group(1)}: {match.group(2)}" if match.lastindex == 2 else match.group(1)
    return "see the log"


def _keep(work: str, name: str) -> str:
    kept = Path(tempfile.mkdtemp(prefix=f"derive-{re.sub(r'[^A-Za-z0-9_-]', '_', name)}-"))
    for suffix in (".tex", ".log"):
        if Path(work, "solution" + suffix).exists():
            shutil.copy(Path(work, "solution" + suffix), kept / ("solution" + suffix))
    return f"the .tex and .log are kept in {kept}"
