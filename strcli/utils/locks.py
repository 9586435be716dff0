"""One writer per video folder, and no temporary file outlives its process.

`video_lock(out_root, stem)` takes an exclusive `fcntl.flock` on `out_root/.<stem>.lock`, a
file beside the video's folder (never inside it, so replacing the folder leaves the lock in
place). `reconstruct`, `render` and `export` hold it while they write a video's folder; a second process that wants it is refused at once with `BusyError` (exit
9) naming the holder, so no process deletes or replaces what another live one is writing.
The kernel drops the lock when its process ends, however it ends: a killed run never
leaves a lock held. The holder removes the file as it lets go; a process that had opened
the removed file sees it is no longer the one at that path and tries again. (A killed
run's file stays, empty and unlocked, until the next run on that video.)

Every temporary name strcli writes carries its process id: `.<name>.partial-<pid>...`
(files and folders being written) or `.<stem>.old-<pid>-...` (a replaced folder being
deleted). `sweep_stale` removes those of processes that no longer run (or, for a pid that
runs again, over a day old: the pid was reused); the holder of a video's lock sweeps that
video's temporaries (inside its folder too) and dead runs' temporaries of any video beside
it, so a killed run's leftovers go at the next run into that folder. `WholeFile` is the one
way a file is written whole: under such a temporary name, renamed when complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from strcli.utils.errors import BusyError, StrcliError, failed_write, output_error

# A temporary's name: ".<anything>.partial-<pid>..." or ".<anything>.old-<pid>-...".
_TEMPORARY = re.compile(r"^\..+\.(?:partial|old)-(\d+)(?:[-.].*)?$")
_STALE_AFTER = 86400.0  # seconds: a live pid's temporary older than this is a reused pid's

_held: dict[Path, int] = {}  # lock path -> nesting depth, in this process
_held_lock = threading.Lock()
_LOOK_PATIENCE = 0.3  # seconds a refused lock is retried: longer than a look (lock_holder), far shorter than a write


def temporary_owner(path: Path) -> int | None:
    """The pid in a temporary's name, or None when `path` is not a strcli temporary."""
    match = _TEMPORARY.match(path.name)
    return int(match.group(1)) if match else None


def owner_gone(path: Path) -> bool:
    """Whether the process that wrote temporary `path` no longer runs (on this machine)."""
    pid = temporary_owner(path)
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        pass
    try:
        return time.time() - path.lstat().st_mtime > _STALE_AFTER
    except OSError:
        return False


def sweep_stale(directory: Path, prefix: str = ".") -> list[Path]:
    """Remove the temporaries (files or folders) in `directory` whose names start with
    `prefix` and whose process is gone; returns what was removed. Never raises."""
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or not owner_gone(entry):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass  # read-only, or another sweeper was first
    return removed


def lock_path(out_root: Path, stem: str) -> Path:
    return out_root / f".{stem}.lock"


@contextlib.contextmanager
def video_lock(out_root: Path, stem: str, purpose: str) -> Iterator[None]:
    """Hold the lock of `out_root/<stem>/` (module docstring) while writing it; sweep the
    video's stale temporaries once held. Raises BusyError when another process holds it,
    OutputError when the lock file cannot be made (read-only folder, full disk)."""
    path = lock_path(out_root, stem)
    key = path.absolute()
    with _held_lock:
        if key in _held:  # this process holds it already (nested use)
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_lock:
                _held[key] -= 1
        return
    fd = _acquire(path, out_root / stem)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"strcli {purpose} (pid {os.getpid()})\n".encode(), 0)
        with _held_lock:
            _held[key] = 1
        try:
            sweep_video(out_root, stem)
            yield
        finally:
            with _held_lock:
                del _held[key]
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still held: a process that opened it sees it gone and retries
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def lock_holder(out_root: Path, stem: str) -> str | None:
    """Who holds the lock of `out_root/<stem>/` now, another process ("strcli render (pid
    4242)"), or None when nobody else does. A look, not a claim: it creates nothing and
    holds a shared lock for an instant only (`video_lock` still decides when the video's
    turn comes); `strcli reconstruct` uses it to refuse a busy video before loading a model."""
    path = lock_path(out_root, stem)
    with _held_lock:
        if path.absolute() in _held:
            return None  # this process holds it
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: nobody holds it (or it cannot be read: video_lock will say)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another strcli process"
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def busy_error(folder: Path, holder: str) -> BusyError:
    """The one line (exit 9) for a video's folder that `holder` is writing."""
    return BusyError(f"{folder} is being written by {holder}.", "Wait for it to finish, then run this again.")


def _acquire(path: Path, folder: Path) -> int:
    """A descriptor of `path` holding its flock, and `path` still names that file (a holder
    removes the file as it lets go; whoever locked the removed file tries again)."""
    # `lock_holder`'s look holds a shared lock for an instant: a refusal waits that out first.
    patience = time.monotonic() + _LOOK_PATIENCE
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise output_error(err, folder) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            if time.monotonic() < patience:
                time.sleep(0.01)
                continue
            raise busy_error(folder, holder or "another strcli process") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def sweep_video(out_root: Path, stem: str) -> list[Path]:
    """The stale temporaries of one video and beside it: dead runs' partial and replaced
    folders in `out_root` (of any stem: a run into a folder clears what dead runs left there),
    and partial files inside the video's folder and its subfolders (tracks/, frames/, bvh/,
    models/<name>/)."""
    folder = out_root / stem
    removed = sweep_stale(out_root) + sweep_stale(folder)
    for sub in _subfolders(folder):
        removed += sweep_stale(sub)
        if sub.name == "models":
            removed += [p for inner in _subfolders(sub) for p in sweep_stale(inner)]
    return removed


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    except OSError:
        return []


class WholeFile:
    """`path` written whole or not at all: the writer gets a temporary path in the same
    folder, `.<name>.partial-<pid>` (`keep_suffix`: `.<stem>.partial-<pid><suffix>`, for
    writers that choose the format by the extension: FFmpeg, OpenCV, Blender), renamed to
    `path` when complete, so a file under its final name is whole and a killed process's
    temporary is swept by a later run (`sweep_stale`).

        with WholeFile(path) as tmp:
            tmp.write_bytes(data)

    The folder is made and its stale temporaries of `path` swept (`sweep`: False where the
    folder is new, or swept already) on entering. An exception in the block removes the
    temporary and leaves any earlier `path` as it was; a full disk, a read-only folder or a
    permission error, also found through a library's own error raised from it (torch's
    RuntimeError), and any other OSError become an OutputError (exit 6) naming `path`; other
    errors pass unchanged. A writer whose life spans calls (`VideoWriter`) uses `begin`,
    `commit` and `discard` instead of `with`."""

    def __init__(self, path: str | os.PathLike[str], *, keep_suffix: bool = False, sweep: bool = True) -> None:
        self.path = Path(path)
        pid = os.getpid()
        if keep_suffix:
            self.tmp = self.path.with_name(f".{self.path.stem}.partial-{pid}{self.path.suffix}")
            self._prefix = f".{self.path.stem}.partial-"
        else:
            self.tmp = self.path.with_name(f".{self.path.name}.partial-{pid}")
            self._prefix = f".{self.path.name}."
        self.sweep = sweep

    def begin(self) -> Path:
        """Make the folder, sweep the stale temporaries of `path`; the temporary path."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise output_error(err, self.path) from err
        if self.sweep:
            sweep_stale(self.path.parent, self._prefix)
        return self.tmp

    def commit(self) -> Path:
        """Rename the complete temporary to `path` (OutputError, and no temporary, if it fails)."""
        try:
            os.replace(self.tmp, self.path)
        except OSError as err:
            self.discard()
            raise output_error(err, self.path) from err
        return self.path

    def discard(self) -> None:
        """Remove the temporary, if there is one; never raises."""
        with contextlib.suppress(OSError):
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.begin()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, trace: object) -> None:
        _end_whole(self, err, self.path)


class WholeSet:
    """Several files written as one set, all or none (`strcli export`'s .glb, BVHs and their
    info.json): each under its `WholeFile` temporary (`add`), all renamed once the block ends
    without an error, with the files the set removes (`replaces`: names older strcli wrote, or
    an export of the other frame). An error in the block discards every temporary, and the
    folders `add` made if they are left empty, so the earlier set stays as it was, nothing
    removed; errors are mapped as `WholeFile` maps them (OutputError, exit 6, for a full disk
    or a read-only folder). The removed files are first renamed aside in their folder
    (`.<name>.old-<pid>-<n>`, a temporary `sweep_stale` knows), before any of the set's files
    is renamed in: a failure there puts them back and discards the set; once the set is in
    place they are deleted (one that cannot be is swept by a later run).

        with WholeSet() as files:
            files.add(folder / "a.glb").write_bytes(...)
            files.add(folder / "bvh" / "info.json").write_text(...)
    """

    def __init__(self) -> None:
        self._files: list[WholeFile] = []
        self._made: list[Path] = []  # folders `add` created, deepest last
        self._replaced: list[Path] = []

    def add(self, path: str | os.PathLike[str], *, keep_suffix: bool = False) -> Path:
        """The temporary path to write `path` to (its folder made, its stale temporaries swept)."""
        whole = WholeFile(path, keep_suffix=keep_suffix)
        missing = []
        folder = whole.path.parent
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        self._files.append(whole)
        tmp = whole.begin()
        self._made += reversed(missing)
        return tmp

    def replaces(self, path: Path) -> None:
        """Remove the file `path` (if there is one) with the set, unless the set writes it."""
        if path not in self._replaced:
            self._replaced.append(path)

    def commit(self) -> list[Path]:
        """Move the replaced files aside, rename every temporary to its final name, delete the
        replaced files; a failure to move aside or rename puts the files moved aside back and
        discards the temporaries not yet renamed (OutputError)."""
        targets = {whole.path for whole in self._files}
        aside: list[tuple[Path, Path]] = []
        try:
            for n, path in enumerate(p for p in self._replaced if p not in targets and p.is_file()):
                moved = path.with_name(f".{path.name}.old-{os.getpid()}-{n}")
                os.replace(path, moved)
                aside.append((path, moved))
        except OSError as err:
            self._put_back(aside)
            self.discard()
            raise output_error(err, path) from err
        try:
            done = [whole.commit() for whole in self._files]
        except StrcliError:
            self._put_back(aside)
            self.discard()
            raise
        for _, moved in aside:
            with contextlib.suppress(OSError):
                moved.unlink()
        return done

    @staticmethod
    def _put_back(aside: list[tuple[Path, Path]]) -> None:
        for path, moved in reversed(aside):
            with contextlib.suppress(OSError):
                os.replace(moved, path)

    def discard(self) -> None:
        """Remove every temporary and the folders `add` made that are left empty; never raises."""
        for whole in self._files:
            whole.discard()
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()

    def __enter__(self) -> WholeSet:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, trace: object) -> None:
        _end_whole(self, err, self._files[-1].path if self._files else Path("."))


def _end_whole(whole: WholeFile | WholeSet, err: BaseException | None, path: Path) -> None:
    """The end of a `with` block of `whole`: committed when it raised nothing; else discarded, and
    a failed write (full disk, read-only folder, any OSError) raised on as an OutputError naming
    `path`. Strcli's own errors, interruptions (Ctrl-C, SIGTERM) and other errors are raised on
    unchanged."""
    if err is None:
        whole.commit()
        return
    whole.discard()
    if isinstance(err, StrcliError) or not isinstance(err, Exception):
        return
    mapped = failed_write(err, path)
    if mapped is not None:
        raise mapped from err


def write_text_whole(path: Path, text: str) -> None:
    """Write `text` to `path` whole (`WholeFile`): OutputError (exit 6) for a full disk, a
    read-only folder or no permission."""
    with WholeFile(path) as tmp:
        tmp.write_text(text)
