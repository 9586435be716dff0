"""Errors that reach the user as one line and a distinct exit code.

Each class owns an exit code; the CLI prints `error: <message>` and exits with it. The
table of codes is in docs/exit-codes.md; keep the two in step.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path


class StrcliError(Exception):
    """A failure the user can act on: `message` says what is wrong, `hint` how to fix it."""

    exit_code = 1
    # A message laid out on lines of its own on purpose (a list of missing files): the CLI
    # prints these lines (each made one line); any other newline is joined into one line.
    lines: tuple[str, ...] = ()

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


class DivergedError(StrcliError):
    """A training run diverged: its loss, its weights or its validation predictions became
    NaN or infinite (a learning rate too high, most often). The epochs before are kept."""

    exit_code = 10


class NonFiniteError(CorruptAssetError):
    """Joints or vertices to be scored hold NaN or infinite values: no error can be measured
    from them (a metric refuses them instead of failing deep in an SVD). Exit 4, as for a
    checkpoint that holds NaN: a network predicts them from weights that overflow."""


class Interrupted(BaseException):
    """The user or the system stopped the run (SIGINT: Ctrl-C, exit 130; SIGTERM: exit
    143, 128 + the signal's number as shells report it). A BaseException, as
    KeyboardInterrupt is, so no `except Exception` swallows it and every `finally` (the
    removal of temporary outputs, the release of locks) runs on the way out."""

    def __init__(self, signal_name: str, exit_code: int, hint: str | None = None) -> None:
        super().__init__(signal_name)
        self.signal_name, self.exit_code = signal_name, exit_code
        self.hint = hint  # what rerunning this command does; None: INTERRUPTED_HINT (reconstruct's)


INTERRUPTED_HINT = ("finished work is kept, the work in progress was removed and nothing half-written has its "
                    "final name; rerun the same command to go on (finished videos are skipped, downloads resume).")


# Errors of writing that the user fixes on their side (free space, another folder): one
# line and exit 6, wherever they come from (Python's own I/O, numpy, torch.save, FFmpeg
# through PyAV, whose errors carry the errno too, or a writer thread).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


# Where to write instead: reconstruct takes -o; render and export write into the output folder.
_ELSEWHERE = "write elsewhere (reconstruct: another -o DIR; render, export: a copy of the output folder)"


def output_error(err: BaseException, path: str | os.PathLike[str] | None = None) -> OutputError:
    """An error while writing `path` -> one line saying what to do (exit 6)."""
    where = path if path is not None else getattr(err, "filename", None) or "the output"
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC:
        return OutputError(f"the disk is full while writing {where}.",
                           f"Free some space, or {_ELSEWHERE}.")
    if code == errno.EDQUOT:
        return OutputError(f"the disk quota is used up while writing {where}.",
                           f"Free some space, or {_ELSEWHERE}.")
    if code == errno.EROFS:
        return OutputError(f"{where} is on a read-only file system.", f"{_ELSEWHERE[0].upper()}{_ELSEWHERE[1:]}.")
    if code in (errno.EACCES, errno.EPERM):
        return OutputError(f"no permission to write {where}.", f"Make it writable, or {_ELSEWHERE}.")
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
    torchvision::nms does not exist`): one line naming both versions and builds (CPU-only
    or CUDA x.y, read from each package's `version.py` without importing it) and the pip
    command that installs a matching pair from the index of torch's build (exit 1); None for
    any other error. The versions can pair up while the builds differ (a `+cpu` torch with
    a CUDA torchvision from PyPI): the command then forces the reinstall, which a plain
    `pip install` of the same versions would skip."""
    text = str(err)
    if not isinstance(err, RuntimeError) or "torchvision::" not in text or "does not exist" not in text:
        return None
    torch_version, torch_build = installed_build("torch")
    vision_version, vision_build = installed_build("torchvision")
    release = torch_version.split("+")[0]
    parts = release.split(".")
    # torchvision 0.N+15 is made for torch 2.N (0.15 for 2.0, 0.20 for 2.5, ...).
    matching = (f"torchvision==0.{int(parts[1]) + 15}.*" if len(parts) > 1 and parts[0] == "2"
                and parts[1].isdigit() else "torchvision")
    index = _wheel_index(torch_build)
    same_build = torch_build == vision_build
    force = "" if same_build else "--force-reinstall "  # same versions, other builds: pip would skip them
    return StrcliError(
        f"torchvision {vision_version} ({build_label(vision_build)}) does not match torch {torch_version} "
        f"({build_label(torch_build)}) "
        f"({text.strip().splitlines()[0]}: " + ("this torchvision was built for another torch)."
                                               if same_build else "the builds differ)."),
        f'Install them as a pair built alike: pip install {force}"torch=={release}" "{matching}" '
        f"--index-url {index} (docs/install.md: PyTorch builds).")


WHEEL_INDEX = "https://download.pytorch.org/whl/"


def installed_build(name: str) -> tuple[str, str]:
    """(version, build) of the installed distribution `name` (torch or torchvision), read
    from its `version.py` without importing it: the local part of `__version__`
    (`2.5.1+cpu`, `0.20.1+cu121`), else its literal `cuda = '12.1'` line. The build is the
    wheel index's name for it: "cpu", "cu121", "rocm6.2", or "unknown build"."""
    import re
    from importlib import metadata

    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return "(not installed)", "not installed"
    version = dist.version
    try:
        source = Path(str(dist.locate_file(f"{name}/version.py"))).read_text()
    except OSError:
        source = ""
    declared = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", source, re.M)
    full = declared.group(1) if declared else version
    if "+" in full:
        return full, full.split("+", 1)[1]
    cuda = re.search(r"^cuda\s*(?::[^=]*)?=\s*(None|['\"]([\d.]+)['\"])\s*$", source, re.M)
    if cuda:
        return full, "cu" + cuda.group(2).replace(".", "") if cuda.group(2) else "cpu"
    return full, "unknown build"


def build_label(build: str) -> str:
    """'cpu' -> 'a CPU-only build', 'cu121' -> 'a CUDA 12.1 build', 'rocm6.2' -> 'a ROCm 6.2 build'."""
    if build == "cpu":
        return "a CPU-only build"
    if build.startswith("cu") and build[2:].isdigit() and len(build) > 3:
        return f"a CUDA {build[2:-1]}.{build[-1]} build"
    if build.startswith("rocm"):
        return f"a ROCm {build[4:]} build"
    return build


def _wheel_index(build: str) -> str:
    """PyTorch's wheel index for a build (https://download.pytorch.org/whl/cpu, .../cu121)."""
    return WHEEL_INDEX + (build if build == "cpu" or build.startswith(("cu", "rocm")) else "cpu")
