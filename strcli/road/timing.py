"""Frame times that always increase: the rule the reader, the exporters and the viewer share.

numpy only (no PyAV), so the exporters can mend the times of a track file without the video
library. docs/video-input.md ("Timestamps that do not increase") says it for users.
"""

from __future__ import annotations

import numpy as np

# A timestamp this much before the previous frame's, in frame steps, starts a new stretch
# of time (clips joined, a clock reset); less is one frame out of order.
BACKWARD_JUMP_FRAMES = 2.0
# FFmpeg's -dts_delta_threshold: in a format whose timestamps may jump (MPEG-TS, ...,
# AVFMT_TS_DISCONT), a jump forward by more than this many seconds is a discontinuity.
FORWARD_JUMP_SECONDS = 10.0


class FrameClock:
    """Presentation times made strictly increasing, one frame at a time (what scipy's
    `Slerp`, the glTF key times and the encoder need, and what a player shows).

    `step` is one frame (seconds, 1 / the nominal rate). A frame's time is its timestamp
    (seconds), moved by the offset of the discontinuities before it:
    - a timestamp that repeats the previous one, or goes back by up to
      BACKWARD_JUMP_FRAMES steps (a copy-cut's duplicate, a frame out of order), is placed
      half a step after the previous frame; the frames after it keep their own times;
    - a jump back by more than that (clips joined with their clocks, a clock reset or
      wrapped) and, in formats whose timestamps may jump (`discontinuous`: MPEG-TS, ...),
      a jump forward by more than FORWARD_JUMP_SECONDS is a discontinuity, as FFmpeg
      treats one: the frame is placed one step after the previous and every later frame
      moves with it (an offset);
    - a frame without a timestamp comes one step after the previous.
    Times are seconds from the first frame. `mended` counts the frames whose timestamp
    was not used as it is (frames of a stream without any timestamps are not counted).
    """

    def __init__(self, step: float, discontinuous: bool = False, timed: bool = True,
                 origin: float | None = None) -> None:
        self.step = step if step > 0 else 1 / 25
        self.discontinuous = discontinuous
        self.timed = timed
        self.offset = 0.0  # seconds added to the timestamps since the last discontinuity
        # The first frame's timestamp (seconds in the file); given when decoding resumes
        # after a seek, so times stay counted from the file's first frame.
        self.origin: float | None = origin
        self.last: float | None = None  # the previous frame's time, in the file's seconds + offset
        self.mended = 0

    def __call__(self, timestamp: float | None) -> float:
        """The time (seconds from the first frame) of the next frame, whose timestamp in
        the file is `timestamp` seconds (None: it has none)."""
        if self.last is None:
            self.last = timestamp if timestamp is not None else (self.origin or 0.0)
            self.origin = self.last if self.origin is None else self.origin
            return self.last - self.origin
        if timestamp is None:
            time = self.last + self.step
            self.mended += self.timed
        else:
            time = timestamp + self.offset
            back = self.last - time
            if back > BACKWARD_JUMP_FRAMES * self.step or (
                    self.discontinuous and -back > FORWARD_JUMP_SECONDS):
                self.offset += self.last + self.step - time
                time = self.last + self.step
                self.mended += 1
            elif back >= 0:
                time = self.last + self.step / 2
                self.mended += 1
        self.last = time
        assert self.origin is not None
        return time - self.origin


def increasing_times(times: np.ndarray, step: float) -> np.ndarray:
    """(N,) seconds -> (N,) strictly increasing seconds by `FrameClock`'s rule (times from
    an output folder of an older strcli, or edited); increasing times come back unchanged."""
    times = np.asarray(times, np.float64)
    if len(times) < 2 or bool(np.all(np.diff(times) > 0)):
        return times
    clock = FrameClock(step)
    return times[0] + np.array([clock(float(t)) for t in times])
