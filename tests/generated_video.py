"""Small videos made with PyAV for tests: a variable-frame-rate clip with audio."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# 15 frames at 30 fps, 15 at 10 fps, 15 at 30 fps: each frame's time in seconds.
VFR_TIMES = np.concatenate([np.arange(15) / 30, 14 / 30 + np.arange(1, 16) / 10,
                            14 / 30 + 1.5 + np.arange(1, 16) / 30])
VFR_SIZE = (96, 64)  # width, height


def vfr_image(i: int) -> np.ndarray:
    """Frame i: the left third grey level 12 + 5 i, the rest mid grey."""
    w, h = VFR_SIZE
    image = np.full((h, w, 3), 128, np.uint8)
    image[:, : w // 3] = 12 + 5 * i
    return image


def write_vfr_clip(path: Path, audio: bool = True) -> Path:
    """An H.264 MP4 whose frames have the real timestamps VFR_TIMES (1/1000 s time base),
    with an AAC tone as long as the video when `audio`."""
    w, h = VFR_SIZE
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.time_base = Fraction(1, 1000)
        video.codec_context.time_base = Fraction(1, 1000)
        sound = out.add_stream("aac", rate=16000) if audio else None
        for i, t in enumerate(VFR_TIMES):
            frame = av.VideoFrame.from_ndarray(vfr_image(i), format="rgb24")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for packet in video.encode(frame):
                out.mux(packet)
        if sound is not None:
            length = int(16000 * (VFR_TIMES[-1] + 0.1))
            samples = (0.3 * np.sin(np.arange(length) * 2 * math.pi * 440 / 16000)).astype(np.float32)
            for start in range(0, length, 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp",
                                                   layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
                for packet in sound.encode(frame):
                    out.mux(packet)
        for stream in (video, sound):
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)
    return path


def write_clip(path: Path, frames: int = 60, rate: int = 30, codec: str = "libx264", fmt: str | None = None,
               size: tuple[int, int] = (64, 48), options: dict[str, str] | None = None) -> Path:
    """A constant-rate clip of noise (so every frame takes room in the file) in any
    container PyAV writes: .mp4, .mkv, .avi (H.264 or MJPEG), a raw H.264 stream
    (fmt="h264")."""
    w, h = size
    noise = np.random.default_rng(0)
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for i in range(frames):
            image = noise.integers(0, 256, (h, w, 3), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
