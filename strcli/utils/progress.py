"""Progress on stderr: rich bars on a terminal, plain lines anywhere else.

rich draws nothing when stderr is not a terminal (a file, a pipe, CI, nohup, a Slurm job),
so there `work_progress` gives a `LineProgress` instead: one line per task at its start,
then at most one every `interval()` seconds ($STRCLI_PROGRESS_INTERVAL, default 10), and
one at its end, e.g.

    running.mp4: tracking 120/795 (15%), 3.2 frames/s, elapsed 0:00:37, eta 0:03:28

`LineProgress` has the part of `rich.progress.Progress`'s interface strcli uses
(`add_task`, `update`, `advance`, `remove_task`, a context manager), so a command drives
either the same way. `StageNotes` does the same for the notes before the first frame
("loading torch...", downloads): a rich status line on a terminal, plain
lines elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn,
                           TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)
from rich.table import Column
from rich.text import Text

INTERVAL_ENV = "STRCLI_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0  # seconds between two lines of one task


def interval() -> float:
    """Seconds between two progress lines of one task: $STRCLI_PROGRESS_INTERVAL (a number
    >= 0), else 10. A value that is not a number is ignored."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return max(0.0, value)


def clock(seconds: float) -> str:
    """Seconds as H:MM:SS (rich's format for elapsed and remaining time)."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class _LineTask:
    description: str
    total: float | None
    unit: str  # "frames", "bodies", "bytes", ...
    started: float
    completed: float = 0.0
    printed: float | None = None  # time of the last line; None before the first
    printed_completed: float = -1.0
    fields: dict[str, Any] = field(default_factory=dict)


class LineProgress:
    """Progress as plain lines on `stream` (stderr); see the module docstring. Thread-safe:
    a task may be advanced from a worker thread."""

    def __init__(self, stream: TextIO | None = None, every: float | None = None) -> None:
        self.stream = stream
        self.every = interval() if every is None else every
        self.tasks: dict[int, _LineTask] = {}
        self._next = 0
        self._lock = threading.Lock()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:  # an interrupted run says so itself; no "done" lines then
            for task_id in list(self.tasks):
                self.remove_task(TaskID(task_id))

    def add_task(self, description: str, total: float | None = None, unit: str = "", **fields: Any) -> TaskID:
        with self._lock:
            task_id = self._next
            self._next += 1
            self.tasks[task_id] = _LineTask(description, total, unit, time.monotonic(), fields=fields)
        return TaskID(task_id)

    def update(self, task_id: TaskID, *, completed: float | None = None, total: float | None = None,
               advance: float | None = None, description: str | None = None, **fields: Any) -> None:
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None:
                return
            if description is not None and description != task.description:
                task.description, task.printed = description, None  # a new stage: a line at once
                task.started, task.completed = time.monotonic(), 0.0
            if total is not None:
                task.total = total
            if completed is not None:
                task.completed = completed
            if advance is not None:
                task.completed += advance
            now = time.monotonic()
            if task.printed is None or now - task.printed >= self.every:
                self._print(task, now)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def remove_task(self, task_id: TaskID) -> None:
        """End a task: its last line, ending in `done`."""
        with self._lock:
            task = self.tasks.pop(task_id, None)
            if task is not None:
                self._print(task, time.monotonic(), done=True)

    def fail_task(self, task_id: TaskID) -> None:
        """End a task that stopped because of an error: no last line (the error is the
        caller's line to print), and never `done`."""
        with self._lock:
            self.tasks.pop(task_id, None)

    def line(self, task: _LineTask, now: float, done: bool = False) -> str:
        """`what done/total (pct%), rate unit/s, elapsed H:MM:SS, eta H:MM:SS` (no total: no
        percentage and no eta; bytes in MB)."""
        elapsed = now - task.started
        scale, unit = (1e6, "MB") if task.unit == "bytes" else (1.0, task.unit)

        def amount(value: float) -> str:
            return f"{value / scale:.1f}" if scale != 1.0 else f"{value:.0f}"

        count = amount(task.completed) + (f"/{amount(task.total)}" if task.total else "")
        parts = [f"{task.description} {count}" + (f" {unit}" if unit == "MB" else "")
                 + (f" ({100 * task.completed / task.total:.0f}%)" if task.total else "")]
        rate = task.completed / elapsed if elapsed > 0 and task.completed else None
        if rate is not None:
            parts.append(f"{rate / scale:.1f} {unit}/s".replace(" /s", "/s"))
        parts.append(f"elapsed {clock(elapsed)}")
        if done:
            parts.append("done")
        elif task.total and rate:
            parts.append(f"eta {clock((task.total - task.completed) / rate)}")
        return ", ".join(parts)

    def _print(self, task: _LineTask, now: float, done: bool = False) -> None:
        print(self.line(task, now, done), file=self.stream or sys.stderr, flush=True)
        task.printed, task.printed_completed = now, task.completed


def end_task(bar: Progress | LineProgress, task_id: TaskID, failed: bool = False) -> None:
    """End `task_id` on a rich display or plain lines: its `done` line, or with `failed`
    none. A task already ended is left alone."""
    if isinstance(bar, LineProgress):
        (bar.fail_task if failed else bar.remove_task)(task_id)
    elif task_id in bar.task_ids:
        bar.remove_task(task_id)


class RateColumn(ProgressColumn):
    """Items per second (frames, bodies), once rich has measured a speed."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")


def _whole() -> Column:
    """A column that is never cut (numbers, times)."""
    return Column(no_wrap=True, overflow="ignore")


def work_progress(console: Console, quiet: bool) -> Progress | LineProgress:
    """What, bar, done/total, rate, elapsed and time left for reconstruct's and render's
    work: a rich display on a terminal (at 80 columns the description gives way first, the
    numbers stay whole), plain lines otherwise, nothing with `quiet`."""
    if not quiet and not console.is_terminal:
        return LineProgress()
    return Progress(SpinnerColumn(table_column=_whole()),
                    TextColumn("[progress.description]{task.description}",
                               table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=12)),
                    BarColumn(bar_width=16, table_column=_whole()), MofNCompleteColumn(table_column=_whole()),
                    RateColumn(table_column=_whole()), TimeElapsedColumn(table_column=_whole()),
                    TextColumn("eta", table_column=_whole()), TimeRemainingColumn(table_column=_whole()),
                    console=console, disable=quiet, transient=True, expand=True)


def count_progress(console: Console, quiet: bool) -> Progress | LineProgress:
    """Description, bar and done/total (train's iterations, evaluate's sequences)."""
    if not quiet and not console.is_terminal:
        return LineProgress()
    return Progress("[progress.description]{task.description}", BarColumn(), "{task.completed}/{task.total}",
                    console=console, disable=quiet, transient=True)


def download_progress(console: Console, quiet: bool) -> Progress | LineProgress:
    """Description, bar, MB done of total and speed (`weights fetch`)."""
    if not quiet and not console.is_terminal:
        return LineProgress()
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), console=console, disable=quiet, transient=True)


class StageNotes:
    """What the run is doing before its first frame ("loading torch...", "downloading
    spin_checkpoint: 12.0 of 300.0 MB"): one rich status line on a terminal, plain lines
    (downloads at most every `interval()` seconds) elsewhere, nothing when quiet."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console, self.quiet = console, quiet
        self.plain = not quiet and not console.is_terminal
        self._status: Any = None
        self._lines = LineProgress() if self.plain else None

    @contextlib.contextmanager
    def showing(self, text: str) -> Iterator[StageNotes]:
        if self.quiet:
            yield self
            return
        if self.plain:
            self.note(text)
            yield self
            return
        with self.console.status(text, spinner="dots") as status:
            self._status = status
            try:
                yield self
            finally:
                self._status = None

    def note(self, text: str) -> None:
        """A new stage: the status line, or a plain line at once."""
        if self.plain:
            print(text, file=sys.stderr, flush=True)
        elif self._status is not None:
            self._status.update(text)

    def download(self, name: str) -> Callable[[int, int | None], None]:
        """A `strcli.weights.registry.Progress` callback (bytes done, total) for downloading `name`."""
        if self._lines is not None:
            lines = self._lines
            task = lines.add_task(f"downloading {name}:", unit="bytes")

            def plain(done: int, total: int | None) -> None:
                lines.update(task, completed=done, total=total)
                if total is not None and done >= total:
                    lines.remove_task(task)

            return plain

        def status(done: int, total: int | None) -> None:
            of = f" of {total / 1e6:.1f}" if total else ""
            self.note(f"downloading {name}: {done / 1e6:.1f}{of} MB...")

        return status
