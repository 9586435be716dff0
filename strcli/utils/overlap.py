"""Overlap the stages of a stream: read ahead in one thread, write behind in another.

Decoding (FFmpeg), drawing or the networks (PyTorch) and encoding (x264) all release
Python's lock while they work, so running them in threads keeps every core busy: while
frame k is drawn, frame k+1 is decoded and frame k-1 encoded. Queues are bounded, so
memory stays a few frames whatever the length of the video. An error in a thread is
raised again in the caller; stopping early stops the threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()
_POLL = 0.1  # seconds between checks for a stop request while a queue is full


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """Iterate `source` in a background thread, at most `depth` items ahead of the caller."""

    def __init__(self, source: Iterable[T], depth: int = 4) -> None:
        self.source = source
        self.depth = depth

    def __iter__(self) -> Iterator[T]:
        items: queue.Queue[object] = queue.Queue(self.depth)
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(items, stop), daemon=True,
                                  name="strcli-read-ahead")
        thread.start()
        try:
            while True:
                item = items.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    items.get(timeout=_POLL)
                except queue.Empty:
                    pass
            thread.join()

    def _produce(self, items: queue.Queue[object], stop: threading.Event) -> None:
        iterator = iter(self.source)
        try:
            for item in iterator:
                if not _put(items, item, stop):
                    return
            _put(items, _END, stop)
        except BaseException as error:  # handed to the caller, raised there
            _put(items, _Failure(error), stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's cleanup (closing files) runs in its own thread


class WriteBehind(Generic[T]):
    """Hand items to `consume` in a background thread, at most `depth` waiting.

    `put` raises what `consume` raised on an earlier item; `close` waits until all are
    consumed (and raises likewise); `abort` drops what waits and stops the thread."""

    def __init__(self, consume: Callable[[T], None], depth: int = 4) -> None:
        self.consume = consume
        self.items: queue.Queue[object] = queue.Queue(depth)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="strcli-write-behind")
        self.thread.start()

    def put(self, item: T) -> None:
        self._raise()
        while not _put(self.items, item, self.stop, timeout=_POLL):
            self._raise()
            if not self.thread.is_alive():
                raise RuntimeError("the writer thread has stopped")

    def close(self) -> None:
        if self.thread.is_alive() and self.error is None:
            while not _put(self.items, _END, self.stop, timeout=_POLL):
                if self.error is not None or not self.thread.is_alive():
                    break
        self.thread.join()
        self._raise()

    def abort(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.items.get(timeout=_POLL)
            except queue.Empty:
                pass
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                item = self.items.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _END:
                return
            try:
                self.consume(item)  # type: ignore[arg-type]
            except BaseException as error:  # raised in the caller at its next put/close
                self.error = error
                self.stop.set()
                return

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def _put(items: queue.Queue[object], item: object, stop: threading.Event, timeout: float | None = None) -> bool:
    """Put `item`, waiting while the queue is full; False when told to stop (or timed out)."""
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL)
            return True
        except queue.Full:
            if timeout is not None:
                return False
    return False
