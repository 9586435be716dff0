"""Read-ahead and write-behind threads: order, errors, early stops, bounded memory."""

import threading
import time

import pytest

from strcli.utils.overlap import ReadAhead, WriteBehind


def test_read_ahead_yields_everything_in_order_and_stays_bounded():
    produced = []

    def source():
        for k in range(50):
            produced.append(k)
            yield k

    seen = []
    for item in ReadAhead(source(), depth=3):
        time.sleep(0.002)
        # the producer is never more than depth (queued) + 1 (waiting to be queued) + 1 ahead
        assert len(produced) - len(seen) <= 5
        seen.append(item)
    assert seen == list(range(50))


def test_read_ahead_raises_the_sources_error_after_its_items():
    def source():
        yield 1
        yield 2
        raise ValueError("damaged")

    seen = []
    with pytest.raises(ValueError, match="damaged"):
        for item in ReadAhead(source()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_closes_the_source_in_its_thread():
    closed = threading.Event()

    def source():
        try:
            for k in range(10_000):
                yield k
        finally:
            closed.set()

    for item in ReadAhead(source(), depth=2):
        if item == 3:
            break
    assert closed.wait(2)
    assert not [t for t in threading.enumerate() if t.name == "strcli-read-ahead"]


def test_write_behind_consumes_in_order_and_close_waits():
    done = []
    sink = WriteBehind(lambda item: (time.sleep(0.001), done.append(item)), depth=2)
    for k in range(30):
        sink.put(k)
    sink.close()
    assert done == list(range(30))


def test_write_behind_raises_the_consumers_error_in_the_caller():
    def consume(item):
        if item == 5:
            raise OSError("disk full")

    sink = WriteBehind(consume, depth=2)
    with pytest.raises(OSError, match="disk full"):
        for k in range(100):
            sink.put(k)
    with pytest.raises(OSError, match="disk full"):
        sink.close()


def test_abort_drops_what_waits():
    started, release = threading.Event(), threading.Event()
    done = []
    sink = WriteBehind(lambda item: (started.set(), release.wait(5), done.append(item)), depth=5)
    for k in range(5):
        sink.put(k)
    assert started.wait(5)  # the consumer holds item 0 before the abort (else abort may drop it too)
    threading.Timer(0.2, release.set).start()  # the consumer is stuck on item 0 until then
    sink.abort()
    assert not sink.thread.is_alive() and done == [0]
