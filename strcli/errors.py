"""Errors that reach the user as one line and a distinct exit code.

Each class owns an exit code; the CLI prints `error: <message>` and exits with it. The
table of codes is in the README; keep the two in step.
"""

from __future__ import annotations


class StrcliError(Exception):
    """A failure the user can act on: `message` says what is wrong, `hint` how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class UsageError(StrcliError):
    """A bad flag or argument value."""

    exit_code = 2


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
