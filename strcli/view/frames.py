"""The video's frames for the viewer's camera frustum: decoded on demand, by time."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import cv2
import numpy as np

from strcli.road.timing import FrameClock
from strcli.road.video import stream_rate, upright, video_stream
from strcli.utils.errors import VideoError

FRAME_WIDTH = 480  # pixels: the frustum image is downscaled to this width
_SEEK_AHEAD = 2.0  # seconds: a jump further than this (or backwards) seeks instead of decoding on


class FrameSource:
    """Frames of a video by presentation time (seconds from its first frame, as
    `VideoReader` gives them: `FrameClock`'s times), upright and downscaled to `width`,
    decoded on demand with one open decoder from the stream every command reads
    (`video_stream`). `seekable` False (a file whose timestamps had to be mended: its own
    times are not the frames') decodes from the start instead of seeking back."""

    def __init__(self, path: Path, rotation: int, width: int = FRAME_WIDTH, mirrored: bool = False,
                 seekable: bool = True) -> None:
        self.path, self.rotation, self.width, self.mirrored = path, rotation, width, mirrored
        self.seekable = seekable
        self.lock = threading.Lock()
        self.container = av.open(str(path))
        stream = video_stream(self.container)
        if stream is None:
            self.container.close()
            raise VideoError(f"{path} has no video stream.")
        self.stream = stream
        self.stream.thread_type = "AUTO"
        rate = stream_rate(self.stream) or 25.0  # the reader's step (`probe`), for the same times
        self.discontinuous = bool(self.container.format.flags & av.format.Flags.ts_discont.value)
        self.step = 1 / rate
        self.clock = FrameClock(self.step, self.discontinuous)
        self.size: tuple[int, int] | None = None  # the first frame's (width, height), as decoded
        self.frames = self.container.decode(self.stream)
        self.last: tuple[float, av.VideoFrame] | None = None
        first = self._next()
        if first is None:
            raise VideoError(f"{path} has no decodable frames.")

    def _next(self) -> tuple[float, av.VideoFrame] | None:
        try:
            frame = next(self.frames)
        except (StopIteration, av.error.FFmpegError):
            return None
        self.size = self.size or (frame.width, frame.height)
        self.last = (self.clock(float(frame.time) if frame.time is not None else None), frame)
        return self.last

    def _seek(self, seconds: float) -> None:
        """Go back to just before `seconds`: by the file's own times when they are the
        frames', else by decoding again from the start."""
        if self.seekable and self.clock.origin is not None and self.stream.time_base is not None:
            self.container.seek(int((seconds + self.clock.origin) / self.stream.time_base), stream=self.stream,
                                backward=True, any_frame=False)
            self.clock = FrameClock(self.step, self.discontinuous, origin=self.clock.origin)
            self.frames = self.container.decode(self.stream)
            self.last = None
            return
        self.container.seek(0, backward=True, any_frame=False)
        self.clock = FrameClock(self.step, self.discontinuous)
        self.frames = self.container.decode(self.stream)
        self.last = None

    def at(self, seconds: float) -> np.ndarray | None:
        """(h, w, 3) uint8 RGB of the frame shown at `seconds`, or None past the end."""
        with self.lock:
            if self.last is None or seconds < self.last[0] - 1e-4 or (
                    self.seekable and seconds > self.last[0] + _SEEK_AHEAD):
                self._seek(seconds)
                self._next()
            while self.last is not None and self.last[0] < seconds - 1e-4:
                if self._next() is None:
                    break
            if self.last is None:
                return None
            frame = self.last[1]
            if self.size is not None and (frame.width, frame.height) != self.size:
                frame = frame.reformat(width=self.size[0], height=self.size[1])
            image = upright(frame.to_ndarray(format="rgb24"), self.rotation, self.mirrored)
        scale = self.width / image.shape[1]
        return cv2.resize(image, (self.width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)

    def close(self) -> None:
        self.container.close()
