"""Writing output files all-or-nothing, safe file names, and signals that end a run
with its clean-up done.

`write_all` stages every file in one hidden folder beside the targets, checks every
target before it renames anything, then renames the files into place; a failure
while renaming puts back what was there before. Either every file is written or the
output folders are as they were, and no staging folder is left behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import stat
import tempfile
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import OutputError

STAGING_PREFIX = ".derive-"  # hidden, and never a name `safe_stem` makes: stems do not start with a dot
MAX_STEM = 64
DEFAULT_STEM = "solution"



class Pieces:
    """A file's text made piece by piece as it is written (the JSON key of a long run), so
    that it is never whole in memory. `make` gives the pieces afresh on each call."""

    def __init__(self, make: Callable[[], Iterable[str]]):
        self.make = make

    def __iter__(self) -> Iterator[str]:
        return iter(self.make())

    def text(self) -> str:
        return "".join(self.make())


_SPECIAL = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"))


def safe_stem(text: str) -> str:
    """A file stem made from a user-given name (a spec file's stem, a title).

    Accented Latin letters become plain ASCII (é → e); letters, digits, `-`, `_` and `.`
    stay; every other run of characters (spaces, slashes, control characters, letters of
    other scripts) becomes one `-`. A stem never starts with `.` or `-` (no hidden files,
    no `..`, nothing read as an option), is at most 64 characters long, and is "solution"
    when nothing is left."""
    # NFKD splits é into e and a combining accent (and ﬁ into fi); the accents go.
    letters = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", letters)
    stem = re.sub(r"-{2,}", "-", stem).lstrip(".-")[:MAX_STEM].rstrip(".-")
    return stem or DEFAULT_STEM


def write_all(files: Iterable[tuple[Path, str | bytes | Pieces]], *, root: Path | None = None) -> list[Path]:
    """Writes every (path, content) all-or-nothing and returns the paths written.

    With `root`, each path is a relative name inside `root` (absolute paths and `..` are
    refused) and the files are staged in `root`; without it, in the folders' common
    parent. Missing folders are made. A target that is a folder, a symbolic link or a
    special file, or below a path that is not a folder, is an `OutputError` before
    anything is written. Created files have the usual permissions (0o666 less the umask)."""
    planned = [(_target(Path(path), root), content) for path, content in files]
    targets = [target for target, _ in planned]
    if not targets:
        return []
    _check_names(targets)
    for target in targets:
        _check_target(target)
    base = Path(root) if root is not None else Path(os.path.commonpath([os.path.abspath(t.parent) for t in targets]))
    created: list[Path] = []  # folders made here, removed again if the writing fails
    staging: Path | None = None
    written = False
    try:
        for target in targets:
            _make_folders(target, created)
        with _reported(base):
            staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base))
        staged = []
        for number, (target, content) in enumerate(planned):
            staged.append(staging / str(number))
            with _reported(target):
                _write_new(staged[-1], content)
        with _locked(base):
            for target in targets:  # again: another process may have changed the folder meanwhile
                _check_target(target)
            _replace_all(list(zip(staged, targets)), staging)
        written = True
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not written:
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return targets


def _target(path: Path, root: Path | None) -> Path:
    if root is None:
        return path
    if path.is_absolute() or ".." in path.parts or path in (Path(""), Path(".")):
        raise OutputError(f"{path}: cannot write: not a name inside the output folder {root}")
    return Path(root) / path


def _check_names(targets: list[Path]) -> None:
    seen: set[str] = set()
    for target in targets:
        key = os.path.normpath(os.path.abspath(target))
        if key in seen:
            raise OutputError(f"{target}: cannot write: two outputs have this name")
        seen.add(key)
    for target in targets:
        for parent in Path(os.path.normpath(os.path.abspath(target))).parents:
            if str(parent) in seen:
                raise OutputError(f"{target}: cannot write: another output has the name of its folder {parent}")


def _check_target(target: Path) -> None:
    """Raises OutputError unless `target` is absent or an ordinary file, below folders."""
    with _reported(target):
        for folder in target.parents:
            if folder.is_dir():
                break
            if os.path.lexists(folder):
                what = "a broken symbolic link" if folder.is_symlink() and not folder.exists() else "not a folder"
                raise OutputError(f"{target}: cannot write: {folder} is {what}")
        try:
            mode = target.lstat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            return
    if stat.S_ISDIR(mode):
        raise OutputError(f"{target}: cannot write: it is a folder")
    if stat.S_ISLNK(mode):
        raise OutputError(f"{target}: cannot write: it is a symbolic link")
    for test, what in _SPECIAL:
        if test(mode):
            raise OutputError(f"{target}: cannot write: it is {what}")


def _make_folders(target: Path, created: list[Path]) -> None:
    missing = []
    for folder in target.parents:
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with _reported(target):
            folder.mkdir()
        created.append(folder)


def _write_new(path: Path, content: str | bytes | Pieces) -> None:
    # os.open applies the umask to 0o666, as for any ordinary file the user makes.
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    with os.fdopen(handle, "wb") as stream:
        if isinstance(content, Pieces):
            for piece in content:
                stream.write(piece.encode("utf-8"))
        else:
            stream.write(content.encode("utf-8") if isinstance(content, str) else content)


def _replace_all(moves: list[tuple[Path, Path]], staging: Path) -> None:
    """Renames each staged file onto its target; on any failure, or an interrupt, puts
    the previous files back and removes the new ones, as far as it can."""
    done: list[tuple[Path, Path | None]] = []  # (target, its previous content in the staging folder)
    try:
        for number, (staged, target) in enumerate(moves):
            previous = _keep_previous(target, staging / f"{number}.previous")
            with _reported(target):
                os.replace(staged, target)
            done.append((target, previous))
    except BaseException:
        for target, previous in reversed(done):
            with contextlib.suppress(OSError):
                if previous is None:
                    target.unlink()
                else:
                    os.replace(previous, target)
        raise


def _keep_previous(target: Path, keep: Path) -> Path | None:
    """A second name for the file at `target` (a hard link, else a copy), or None if there is none."""
    if not os.path.lexists(target):
        return None
    try:
        os.link(target, keep, follow_symlinks=False)
    except OSError:
        with _reported(target):
            shutil.copy2(target, keep, follow_symlinks=False)
    return keep


@contextlib.contextmanager
def _reported(path: Path) -> Iterator[None]:
    """Turns an OSError into one line that names the output concerned."""
    try:
        yield
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {error.strerror or error}") from None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Holds an exclusive lock on `folder` so that two runs writing there rename their
    files one batch after the other, not interleaved. Where folders cannot be locked
    (no fcntl, a file system without locks), the batch goes unlocked."""
    try:
        import fcntl

        handle = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so every clean-up runs; the
    process should exit with `exit_code` (128 + the signal's number)."""

    def __init__(self, signal_number: int):
        self.signal_number = signal_number
        self.exit_code = 128 + signal_number
        super().__init__(f"stopped by {signal.Signals(signal_number).name}")


def install_signal_handlers() -> None:
    """Makes SIGTERM and SIGHUP raise `Terminated` in the main thread (call it from
    there, at start). A signal that is being ignored (nohup) stays ignored; a second
    one during the clean-up is ignored, so the clean-up is not cut short."""

    def terminate(signal_number: int, frame) -> None:
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        raise Terminated(signal_number)

    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) != signal.SIG_IGN:
            signal.signal(number, terminate)
