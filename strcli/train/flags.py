"""The flags of `strcli train` and `strcli evaluate`, checked before any data is loaded.

Standard library only (no torch), so a bad value (`--lr nan`, `--batch-size 0`, `--out` a
file) is refused at once with one line and exit code 2 (`UsageError`), not after the
data sets are read or an epoch is trained.
"""

from __future__ import annotations

import math
from pathlib import Path

from strcli.utils.errors import UsageError

SEED_MAX = 2**32 - 1  # numpy's seed range, as `reconstruct --seed` (strcli.road.options)
WORKERS_MAX = 256


def check_training_values(*, epochs: int | None = None, iterations: int | None = None,
                          batch_size: int | None = None, lr: float | None = None, seed: int = 0,
                          workers: int = 0) -> None:
    """UsageError (exit 2) for the first value out of range: epochs, iterations and batch
    size whole numbers >= 1 (None: the recipe's), lr a finite number > 0, seed in
    0..2**32-1, workers in 0..256."""
    for flag, value in (("--epochs", epochs), ("--iterations", iterations), ("--batch-size", batch_size)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: must be 1 or more.", f"Leave {flag} out for the recipe's value.")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise UsageError(f"--lr {lr}: the learning rate must be a finite number above 0.",
                         "The recipe's is 5e-5; leave --lr out to use it.")
    if not 0 <= seed <= SEED_MAX:
        raise UsageError(f"--seed {seed}: must be in 0..{SEED_MAX}.")
    if not 0 <= workers <= WORKERS_MAX:
        raise UsageError(f"--workers {workers}: must be in 0..{WORKERS_MAX} (0: load data in the main process).")


def check_folder_flag(flag: str, path: Path) -> None:
    """A folder a command writes into (`--out`, `--runs-dir`): UsageError (exit 2) when it,
    or a folder above it, is a file."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is a file" if probe == path else f"lies under {probe}, a file"
        raise UsageError(f"{flag} {path} {where}, not a folder.", f"Pass a folder for {flag}.")


def check_file_flag(flag: str, path: Path | None) -> None:
    """A file a command writes (`--json-out`): UsageError (exit 2) when it is a folder or
    a folder above it is a file."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder, not a file.", f"Name a file for {flag}.")
    check_folder_flag(flag, path.parent)
