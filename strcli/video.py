"""Video decoding: streamed, upright, with every frame's timestamp.

`probe` reads a file's header; `VideoReader` yields `Frame`s one at a time (memory does
not grow with the video's length), turned upright by the container's display rotation
(portrait phone videos), each with its presentation time (variable frame rate is kept),
and counts what it decoded, skipped and could not decode, so nothing is truncated silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from strcli.errors import UsageError, VideoError


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # upright, after the display rotation
    height: int
    rotation: int  # degrees counter-clockwise applied to decoded frames (0, 90, 180, 270)
    fps: float  # average frame rate
    frames_in_file: int | None  # the container's count; None where it does not say
    duration: float | None  # seconds
    codec: str
    size_bytes: int


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based position in the file
    time: float  # presentation time, seconds from the first frame
    image: np.ndarray | None  # (H, W, 3) uint8 RGB, upright; None when decoded for counting only


def ffmpeg_reason(err: BaseException) -> str:
    """FFmpeg's reason in words, without PyAV's errno number and the file name it repeats:
    "[Errno 1094995529] Invalid data found when processing input: 'x.mp4'" -> "invalid data
    found when processing input"."""
    reason = getattr(err, "strerror", None) or str(err)
    reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(reason)).split(":")[0].strip()
    return (reason[:1].lower() + reason[1:]) if reason else type(err).__name__


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoError(f"video {path} does not exist.", "Check the path.")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video.")
    if path.stat().st_size == 0:
        raise VideoError(f"video {path} is empty (0 bytes).", "Re-copy or re-export it.")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoError(f"{path} is not a readable video ({ffmpeg_reason(err)}).",
                         "Is it corrupt or truncated? Try re-exporting it as H.264 MP4.") from err
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream.")
    return container


def probe(path: str | Path) -> VideoInfo:
    """Size, rotation, frame rate and length of a video, from its header and first frame."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rotation = 0
        try:
            first = next(container.decode(stream))
            rotation = int(getattr(first, "rotation", 0) or 0) % 360
        except StopIteration:
            raise VideoError(f"{path} has no decodable frames.") from None
        except av.error.FFmpegError as err:
            raise VideoError(f"{path}: the first frame cannot be decoded ({ffmpeg_reason(err)}).") from err
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        return VideoInfo(path=path, width=width, height=height, rotation=rotation,
                         fps=float(rate) if rate else 0.0, frames_in_file=stream.frames or None,
                         duration=duration, codec=stream.codec_context.name,
                         size_bytes=path.stat().st_size)


def parse_position(text: str | None, fps: float) -> int | None:
    """'120' (frames) or '4.5s' (seconds) -> a frame index; None stays None."""
    if text is None or text == "":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s?)\s*", str(text))
    if not match:
        raise UsageError(f"bad frame position {text!r}: use a frame number (120) or seconds (4.5s).")
    value, seconds = float(match.group(1)), bool(match.group(2))
    if seconds:
        return int(round(value * fps))
    if not value.is_integer():
        raise UsageError(f"bad frame position {text!r}: frame numbers are whole; add 's' for seconds.")
    return int(value)


class VideoReader:
    """Iterate over frames [start, end) every `stride`-th, upright, streamed.

    After iteration: `decoded` frames were decoded, `yielded` handed out, `damaged`
    packets could not be decoded (their frames are missing, not invented).
    """

    def __init__(self, path: str | Path, start: int = 0, end: int | None = None, stride: int = 1,
                 threads: bool = True, images: bool = True) -> None:
        if start < 0 or (end is not None and end <= start) or stride < 1:
            raise UsageError(f"bad frame range: start={start}, end={end}, stride={stride} "
                             "(need 0 <= start < end and stride >= 1).")
        self.info = probe(path)
        self.start, self.end, self.stride = start, end, stride
        self.threads = threads
        self.images = images  # False: frames are decoded (to count them and read their times) only
        self.decoded = 0
        self.yielded = 0
        self.damaged = 0

    def __iter__(self) -> Iterator[Frame]:
        container = _open(self.info.path)
        try:
            stream = container.streams.video[0]
            if self.threads:
                stream.thread_type = "AUTO"
            first_time: float | None = None
            index = -1
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    self.damaged += 1
                    continue
                for frame in frames:
                    index += 1
                    self.decoded += 1
                    time = float(frame.time) if frame.time is not None else index / (self.info.fps or 1)
                    first_time = time if first_time is None else first_time
                    if index < self.start or (index - self.start) % self.stride:
                        continue
                    if self.end is not None and index >= self.end:
                        return
                    image = frame.to_ndarray(format="rgb24") if self.images else None
                    if image is not None and self.info.rotation:
                        image = np.ascontiguousarray(np.rot90(image, k=self.info.rotation // 90))
                    self.yielded += 1
                    yield Frame(index=index, time=time - first_time, image=image)
        finally:
            container.close()


_MP4_AUDIO = ("aac", "mp3", "ac3", "eac3", "opus", "alac", "flac")


class VideoWriter:
    """H.264 MP4 (yuv420p, which every common player opens), written to a hidden temporary
    name and renamed when complete. Frames are (H, W, 3) uint8 RGB; odd sizes get one
    black row/column (4:2:0 needs even sizes). `copy_audio_from` adds the audio of a source
    file, the part `close` names (copied when MP4 can hold its codec, else re-encoded to
    AAC)."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 20,
                 preset: str = "veryfast", copy_audio_from: Path | None = None) -> None:
        from fractions import Fraction

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")
        self.width, self.height = width + width % 2, height + height % 2
        self.frames = 0
        try:
            self.container = av.open(str(self.tmp), "w")
        except (av.error.FFmpegError, OSError) as err:
            from strcli.errors import output_error

            self.tmp.unlink(missing_ok=True)
            raise output_error(err, self.path) from err
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": preset}
        self.stream.thread_type = "AUTO"
        # The audio stream must exist before the first packet is written: made now, filled at close.
        self.audio_source, self.audio_out, self.audio_copy = None, None, False
        if copy_audio_from is not None:
            with av.open(str(copy_audio_from)) as src:
                if src.streams.audio:
                    audio = src.streams.audio[0]
                    self.audio_source = copy_audio_from
                    self.audio_copy = audio.codec_context.name in _MP4_AUDIO
                    self.audio_out = (self.container.add_stream_from_template(audio) if self.audio_copy else
                                      self.container.add_stream("aac", rate=audio.codec_context.sample_rate))

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if (w, h) != (self.width, self.height):
            padded = np.zeros((self.height, self.width, 3), np.uint8)
            padded[:h, :w] = image
            image = padded
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self, audio_start: float = 0.0, audio_end: float | None = None) -> Path:
        """Finish the file (with the source's audio from `audio_start` to `audio_end`
        seconds) and move it to its final name."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        if self.audio_source is not None:
            self._copy_audio(self.audio_source, audio_start, audio_end)
        self.container.close()
        try:
            os.replace(self.tmp, self.path)
        except OSError:
            self.tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        try:
            self.container.close()
        except (av.error.FFmpegError, OSError, ValueError):
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None:
            self.abort()

    def _copy_audio(self, source: Path, start: float, end: float | None) -> None:
        with av.open(str(source)) as src:
            audio = src.streams.audio[0]
            if self.audio_copy:
                shift = int(round(start / audio.time_base))
                for packet in src.demux(audio):
                    if packet.pts is None or packet.dts is None:
                        continue
                    time = float(packet.pts * audio.time_base)
                    if time < start or (end is not None and time >= end):
                        continue
                    packet.pts -= shift
                    packet.dts -= shift
                    packet.stream = self.audio_out
                    self.container.mux(packet)
                return
            rate = audio.codec_context.sample_rate
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
            for frame in src.decode(audio):
                if frame.time is None or frame.time < start or (end is not None and frame.time >= end):
                    continue
                for piece in resampler.resample(frame):
                    piece.pts = None
                    for packet in self.audio_out.encode(piece):
                        self.container.mux(packet)
            for packet in self.audio_out.encode(None):
                self.container.mux(packet)
