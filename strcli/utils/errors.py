"""Errors that reach the user as one line and a distinct exit code.

Each class owns an exit code; the CLI prints `error: <message>` and exits with it. The
table of codes is in the README; keep the two in step.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator


class StrcliError(Exception):
    """A failure the user can act on: `message` says what is wrong, `hint` how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        sep = "" if self.hint.startswith("\n") else " "  # a hint on lines of its own (a list of files)
        return f"{self.message}{sep}{self.hint}".strip()


class UsageError(StrcliError):
    """A bad flag or argument value."""

    exit_code = 2


class DataFileError(UsageError):
    """A training or test data file (`--data-dir`) that does not parse or lacks what it must
    hold: a bad argument, exit 2 (it is no weights file)."""


class MissingAssetError(StrcliError):
    """A weights file or the SMPL model is not where strcli looks for it."""

    exit_code = 3


class CorruptAssetError(StrcliError):
    """A weights, checkpoint or SMPL file exists but is unreadable, wrong or mismatched."""

    exit_code = 4


class DownloadError(StrcliError):
    """A download failed (network, HTTP status, interrupted)."""

    exit_code = 5


class OutputError(StrcliError):
    """An output could not be written (permissions, full disk)."""

    exit_code = 6


class VideoError(StrcliError):
    """A video is missing, unreadable, corrupt or has no frames."""

    exit_code = 7


class ResourceError(StrcliError):
    """The machine ran out of something strcli needs (GPU memory)."""

    exit_code = 8


class BusyError(StrcliError):
    """Another strcli process is writing the same video's output folder."""

    exit_code = 9


class Interrupted(BaseException):
    """The user or the system stopped the run (SIGINT: Ctrl-C, exit 130; SIGTERM: exit
    143, 128 + the signal's number as shells report it). A BaseException, as
    KeyboardInterrupt is, so no `except Exception` swallows it and every `finally` (the
    removal of temporary outputs, the release of locks) runs on the way out."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(signal_name)
        self.signal_name, self.exit_code = signal_name, exit_code


INTERRUPTED_HINT = ("finished work is kept, the work in progress was removed and nothing half-written has its "
                    "final name; rerun the same command to go on (finished videos are skipped, downloads resume).")


# Errors of writing that the user fixes on their side (free space, another folder): one
# line and exit 6, wherever they come from (Python's own I/O, numpy, torch.save, FFmpeg
# through PyAV, whose errors carry the errno too, or a writer thread).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def output_error(err: BaseException, path: str | os.PathLike[str] | None = None) -> OutputError:
    """An error while writing `path` -> one line saying what to do (exit 6)."""
    where = path if path is not None else getattr(err, "filename", None) or "the output"
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC:
        return OutputError(f"the disk is full while writing {where}.",
                           "Free some space or choose another output folder with -o.")
    if code == errno.EDQUOT:
        return OutputError(f"the disk quota is used up while writing {where}.",
                           "Free some space or choose another output folder with -o.")
    if code == errno.EROFS:
        return OutputError(f"{where} is on a read-only file system.", "Choose a writable output folder with -o.")
    if code in (errno.EACCES, errno.EPERM):
        return OutputError(f"no permission to write {where}.", "Choose a writable output folder with -o.")
    return OutputError(f"cannot write {where} ({getattr(err, 'strerror', None) or err}).")


def write_failure(err: BaseException, path: str | os.PathLike[str] | None = None) -> OutputError | None:
    """The OutputError for `err` when it, or an error it was raised from, is a full disk, a
    read-only folder or a permission error; else None."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OutputError):
            return current
        if getattr(current, "errno", None) in WRITE_ERRNOS:
            return output_error(current, path if path is not None else getattr(current, "filename", None))
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def writing(path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Within the block, a full disk, a read-only folder or a permission error (see
    `write_failure`) becomes an OutputError naming `path`; other errors pass unchanged."""
    try:
        yield
    except StrcliError:
        raise
    except Exception as err:
        mapped = write_failure(err, path)
        if mapped is None:
            raise
        raise mapped from err


def failed_write(err: BaseException, path: str | os.PathLike[str] | None = None) -> OutputError | None:
    """For an error caught while writing `path`: `write_failure`'s OutputError, or for any
    other OSError a plain 'cannot write'; None for errors that are not about writing."""
    return write_failure(err, path) or (output_error(err, path) if isinstance(err, OSError) else None)


def torch_mismatch(err: BaseException) -> StrcliError | None:
    """For the error importing torchvision (or ultralytics, which imports it) raises when
    the installed torchvision was built for another torch (`RuntimeError: operator
    torchvision::nms does not exist`): one line naming both versions and how to install a
    matching pair (exit 1); None for any other error."""
    text = str(err)
    if not isinstance(err, RuntimeError) or "torchvision::" not in text or "does not exist" not in text:
        return None
    from importlib import metadata

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "(not installed)"

    torch_version, vision_version = installed("torch"), installed("torchvision")
    release = torch_version.split("+")[0]
    parts = release.split(".")
    # torchvision 0.N+15 is made for torch 2.N (0.15 for 2.0, 0.20 for 2.5, ...).
    matching = (f"torchvision==0.{int(parts[1]) + 15}.*" if len(parts) > 1 and parts[0] == "2"
                and parts[1].isdigit() else "torchvision")
    return StrcliError(
        f"torchvision {vision_version} does not match torch {torch_version} ({text.strip().splitlines()[0]}: "
        "this torchvision was built for another torch).",
        f'Install them as a pair: pip install "torch=={release}" "{matching}" (for the CPU-only build add '
        "--index-url https://download.pytorch.org/whl/cpu), or reinstall both with the README's command "
        "(Set up).")
