"""Video decoding: streamed, upright, with every frame's timestamp.

`probe` reads a file's header; `VideoReader` yields `Frame`s one at a time (memory does
not grow with the video's length), turned upright by the container's display matrix
(portrait phone videos, mirrored selfies) as FFmpeg's players turn them, each with its
presentation time (variable frame rate is kept; timestamps that do not increase are
mended, `FrameClock`), all of one size (a stream whose size changes is scaled to its
first), and counts what it decoded, skipped, mended and could not decode, so nothing is
truncated silently. `video_stream` is the one choice of the video stream every command
makes, FFmpeg's (docs/video-input.md).

Size (over 500 lines): one file's view as FFmpeg's tools give it (the stream chosen, its
display matrix, its times, its length) is shared by the reader, `probe` and the writer's
sound copy, which aligns the sound to the first picture the reader gives; the timing rule
itself is `strcli.road.timing`.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from strcli.road.timing import FrameClock, increasing_times  # noqa: F401 (increasing_times re-exported)
from strcli.utils.errors import UsageError, VideoError, output_error
from strcli.utils.locks import WholeFile


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # upright, after the display rotation
    height: int
    rotation: int  # degrees counter-clockwise applied to decoded frames (0, 90, 180, 270)
    fps: float  # nominal frame rate (see `stream_rate`); frame times come from timestamps
    frames_in_file: int | None  # the container's count; None where it does not say
    duration: float | None  # seconds, the stream's or the container's; None where neither says
    codec: str
    size_bytes: int
    timed: bool = True  # False: the frames carry no timestamps (raw elementary stream)
    rotation_warning: str | None = None  # a display rotation that was ignored, and why (`upright_rotation`)
    mirrored: bool = False  # flipped left-right after the rotation (a mirrored display matrix, `orientation`)
    stream_index: int = 0  # the file's stream chosen as the video (`video_stream`)
    start_time: float = 0.0  # seconds: the first frame's presentation time in the file (0 for MP4, 1.4 for MPEG-TS)

    @property
    def frames_expected(self) -> int | None:
        """How many frames the file says it holds: its frame count, else its duration x
        rate; None where it records neither (a raw stream: its length is unknown)."""
        if self.frames_in_file:
            return self.frames_in_file
        if self.duration and self.fps:
            return int(round(self.duration * self.fps))
        return None


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


def _is_cover(stream: av.stream.Stream) -> bool:
    """A picture attached to the file (album or thumbnail art, FFmpeg's `attached_pic`): not a video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The video stream of a file, chosen as `ffmpeg` chooses it (fftools' automatic
    mapping): among the video streams that are not an attached picture (cover art, a
    thumbnail), the one of most pixels, a stream marked default counting 5 000 000 pixels
    more; the first of equals. None when there is none (an audio file, with or without a
    cover). Every command and the viewer decode this stream."""
    best, best_score = None, -1
    for stream in container.streams.video:
        if _is_cover(stream):
            continue
        context = stream.codec_context
        score = (context.width or 0) * (context.height or 0)
        score += 5_000_000 * bool(stream.disposition & av.stream.Disposition.default)
        if score > best_score:
            best, best_score = stream, score
    return best


def audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    """The audio stream `ffmpeg` maps: the one of most channels, a default one counting
    5 000 000 channels more; the first of equals. None when the file has no audio."""
    best, best_score = None, -1
    for stream in container.streams.audio:
        score = (stream.codec_context.channels or 0) + 5_000_000 * bool(
            stream.disposition & av.stream.Disposition.default)
        if score > best_score:
            best, best_score = stream, score
    return best


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
    if video_stream(container) is None:
        covers = sum(_is_cover(stream) for stream in container.streams.video)
        container.close()
        if covers:
            raise VideoError(f"{path} has no video stream, only a cover picture.", "Is it an audio file? Pass a video.")
        raise VideoError(f"{path} has no video stream.", "Is it an audio file? Pass a video.")
    return container


def _still_image(container: av.container.InputContainer, frames: Iterator[av.VideoFrame]) -> bool:
    """Whether a file FFmpeg read with an image demuxer (`image2`, `png_pipe`, `jpeg_pipe`,
    ..., or `gif`) holds one picture only: a photo, not a video. `frames` is the decoder past
    the first frame; one more is decoded. Several pictures in one file (a raw MJPEG stream,
    an animated GIF) are a video."""
    name = container.format.name
    if name not in ("image2", "gif") and not name.endswith("_pipe"):
        return False
    try:
        return next(frames, None) is None
    except av.error.FFmpegError:
        return True  # nothing decodable after the one picture


# A display rotation within this many degrees of a quarter turn is that quarter turn; any
# other angle cannot be shown by turning the frame, so it is ignored, as players ignore it.
ROTATION_TOLERANCE = 1.0


def display_matrix(frame: av.VideoFrame) -> tuple[float, ...] | None:
    """The frame's display matrix, 9 numbers row-major (16.16 fixed point read as floats),
    or None when it has none."""
    for side in frame.side_data:
        if side.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            return tuple(v / 65536 for v in struct.unpack("<9i", bytes(side)[:36]))
    return None


def matrix_rotation(m: tuple[float, ...] | None) -> float:
    """The counter-clockwise angle in degrees, in (-180, 180], of a display matrix (FFmpeg's
    `av_display_rotation_get`, without PyAV's rounding to a whole degree); 0.0 without a
    matrix, NaN for a degenerate one (a zero column: no angle)."""
    if m is None:
        return 0.0
    scale0, scale1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if scale0 == 0 or scale1 == 0:
        return math.nan
    return -math.degrees(math.atan2(m[1] / scale1, m[0] / scale0))


def display_rotation(frame: av.VideoFrame) -> float:
    """`matrix_rotation` of the frame's display matrix."""
    return matrix_rotation(display_matrix(frame))


def orientation(m: tuple[float, ...] | None) -> tuple[int, bool, str | None]:
    """A display matrix -> (the quarter turn counter-clockwise applied to decoded frames,
    whether the turned frame is then flipped left-right, a warning when the matrix is
    ignored). The choice of ffplay and ffmpeg's autorotate (fftools: `transpose` clock or
    cclock_flip near 90 degrees clockwise, `hflip`/`vflip` by the signs of m[0] and m[4]
    near 180, `transpose` cclock or clock_flip near 270, `vflip` when m[4] < 0 near 0),
    written as one turn and at most one mirror: a mirrored selfie is shown mirrored, not
    turned 180 degrees. Angles that are no quarter turn are ignored (`upright_rotation`)."""
    rotation, warning = upright_rotation(matrix_rotation(m))
    if m is None or warning is not None:
        return rotation, False, warning
    clockwise = (-rotation) % 360  # fftools' theta
    if clockwise == 90:  # transpose: cclock_flip (a transpose) or clock
        return (270, True, None) if m[3] > 0 else (270, False, None)
    if clockwise == 270:  # transpose: clock_flip (an anti-transpose) or cclock
        return (90, True, None) if m[3] < 0 else (90, False, None)
    if clockwise == 180:  # hflip when m[0] < 0, vflip when m[4] < 0; both are a half turn
        hflip, vflip = m[0] < 0, m[4] < 0
        if hflip and vflip:
            return 180, False, None
        return (180, True, None) if vflip else (0, hflip, None)
    return (180, True, None) if m[4] < 0 else (0, False, None)  # near 0: vflip = half turn + mirror


def upright(image: np.ndarray, rotation: int, mirrored: bool) -> np.ndarray:
    """(H, W, 3) as decoded -> as shown: turned `rotation` degrees counter-clockwise, then
    flipped left-right when `mirrored` (see `orientation`)."""
    if rotation:
        image = np.rot90(image, k=rotation // 90)
    if mirrored:
        image = image[:, ::-1]
    return np.ascontiguousarray(image) if rotation or mirrored else image


def upright_rotation(degrees: float | None) -> tuple[int, str | None]:
    """A display rotation (degrees counter-clockwise) -> the quarter turn applied to decoded
    frames (0, 90, 180 or 270) and a warning when the rotation is ignored. An angle within
    `ROTATION_TOLERANCE` of a multiple of 90 is snapped to it; any other angle (45, or a
    degenerate matrix's NaN) turns nothing: the frames are used as stored, with a warning."""
    if degrees is None:
        return 0, None
    if not math.isfinite(degrees):
        return 0, ("the display rotation cannot be read (a degenerate display matrix) and was ignored: "
                   "frames are used as stored.")
    quarter = round(degrees / 90)
    if abs(degrees - 90 * quarter) <= ROTATION_TOLERANCE:
        return (90 * quarter) % 360, None
    return 0, (f"the display rotation {round(degrees % 360, 1):g}° is not a multiple of 90° and was ignored: "
               "frames are used as stored.")


def probe(path: str | Path) -> VideoInfo:
    """Size, rotation, frame rate and length of a video, from its header and first frame.

    Cheap (no torch; decodes one frame, two for an image file), so `strcli reconstruct`
    probes every video before it loads a model. Raises VideoError (exit 7) for a file that
    is missing, empty, not a container FFmpeg can read (text, garbage, an MP4 cut before its
    index), without a video stream or a decodable first frame, or a still image (PNG, JPEG).
    """
    path = Path(path)
    with _open(path) as container:
        stream = video_stream(container)
        assert stream is not None  # `_open` refused a file without one
        frames = container.decode(stream)
        try:
            first = next(frames)
        except StopIteration:
            raise VideoError(f"{path} has no decodable frames.",
                             "Is it corrupt or truncated? Try re-exporting it as H.264 MP4.") from None
        except av.error.FFmpegError as err:
            raise VideoError(f"{path}: the first frame cannot be decoded ({ffmpeg_reason(err)}).",
                             "Is it corrupt? Try re-exporting it as H.264 MP4.") from err
        if _still_image(container, frames):
            raise VideoError(f"{path} is a still image ({stream.codec_context.name}), not a video.",
                             "Pass a video file (MP4, MOV, AVI, MKV, ...).")
        rotation, mirrored, rotation_warning = orientation(display_matrix(first))
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        timed = first.pts is not None
        duration = None
        if timed and stream.duration and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif timed and container.duration:
            duration = container.duration / av.time_base
        rate = stream_rate(stream, timed)
        return VideoInfo(path=path, width=width, height=height, rotation=rotation,
                         fps=rate, frames_in_file=stream.frames or None,
                         duration=duration, codec=stream.codec_context.name,
                         size_bytes=path.stat().st_size, timed=timed, rotation_warning=rotation_warning,
                         mirrored=mirrored, stream_index=stream.index,
                         start_time=float(first.time) if first.time is not None else 0.0)


def stream_rate(stream: av.video.stream.VideoStream, timed: bool = True) -> float:
    """A stream's frame rate in frames per second (0.0 where nothing says).

    A container with timing (MP4, MKV, AVI, ...) gives the average rate of its frames'
    timestamps (`average_rate`). A stream without container timing (a raw H.264 or MJPEG
    elementary stream) has no average to give: FFmpeg then reports its default of 25 as
    `average_rate`, so the stream's own rate comes first there: the decoder's (`codec_context
    .framerate`, from the H.264 VUI timing), then FFmpeg's guess, the average, and
    `base_rate` (r_frame_rate). A raw MJPEG stream records no rate at all: 25, FFmpeg's
    default, is then all there is.
    """
    context = stream.codec_context.framerate if stream.codec_context is not None else None
    order = ((stream.average_rate, stream.guessed_rate, context, stream.base_rate) if timed else
             (context, stream.guessed_rate, stream.average_rate, stream.base_rate))
    for rate in order:
        if rate and 0 < float(rate) < 1000:
            return float(rate)
    return 0.0


@dataclass(frozen=True)
class Position:
    """A --start/--end position: a frame index or a time in seconds (exactly one is set)."""

    frame: int | None = None
    seconds: float | None = None


def parse_position(text: str | None, flag: str = "frame position") -> Position | None:
    """'120' (a frame index) or '4.5s' (seconds from the first frame) -> a `Position`; None
    stays None. Seconds select frames by their timestamps, not by seconds x frame rate
    (`VideoReader`), so a variable frame rate is cut where the user means. Anything else is
    a UsageError naming `flag` (e.g. '--start')."""
    if text is None or text == "":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s?)\s*", str(text))
    if not match:
        raise UsageError(f"bad {flag} {text!r}: use a frame number (120) or seconds (4.5s).")
    value, seconds = float(match.group(1)), bool(match.group(2))
    if seconds:
        return Position(seconds=value)
    if not value.is_integer():
        raise UsageError(f"bad {flag} {text!r}: frame numbers are whole; add 's' for seconds.")
    return Position(frame=int(value))


def empty_range_error(start: str | None, end: str | None, frames: int, seconds: float | None = None) -> UsageError:
    """The one line for a --start/--end range that holds no frame of a video of `frames`
    frames (`seconds` long, where known): the flags as given, the video's real length, and
    what to pass instead."""
    given = " ".join(f"--{flag} {value}" for flag, value in (("start", start), ("end", end)) if value not in (None, ""))
    length = f"{frames} frame{'s' if frames != 1 else ''}" + (f" (0-{frames - 1}" + (f", {seconds:.2f} s" if seconds
                                                                                    else "") + ")" if frames else "")
    hint = (f"Pass a --start below {frames}" + (f" (or below {seconds:.2f}s in seconds)" if seconds else "")
            + ", or leave --start and --end out for the whole video.") if frames else "The video holds no frame."
    return UsageError(f"{given or 'the frame range'}: no frame in that range; the video has {length}.", hint)


# Times closer than this (seconds) are equal: a timestamp of 1.0 s in a 1/90000 time base
# may come back as 0.9999999.
TIME_TOLERANCE = 1e-6


class VideoReader:
    """Iterate over frames [start, end) every `stride`-th, upright, streamed.

    `start`/`end` are frame indices, or `Position`s: a time in seconds selects the frames
    whose timestamp (from the first frame) is in [start, end): start inclusive, end
    exclusive. The stride counts from the first frame selected.

    Frame times come from a `FrameClock` (strictly increasing). Every frame has the size
    of the first: frames of another size (a stream whose resolution changes) are scaled
    to it, as FFmpeg's scaler does in a player.

    After iteration: `decoded` frames were decoded, `yielded` handed out, `damaged`
    packets could not be decoded (their frames are missing, not invented), `finished` says
    whether the end of the stream was reached, `last_time` is the time of the last frame
    decoded (seconds from the first), `mended` frames had a timestamp that did not
    increase (`FrameClock`), `resized` frames were scaled, the first of them from
    `other_size` (width, height as decoded).
    """

    def __init__(self, path: str | Path, start: int | Position | None = 0, end: int | Position | None = None,
                 stride: int = 1, threads: bool = True, images: bool = True) -> None:
        start = Position(frame=0) if start is None else start
        start = start if isinstance(start, Position) else Position(frame=int(start))
        end = end if end is None or isinstance(end, Position) else Position(frame=int(end))
        if stride < 1 or (start.frame or 0) < 0 or (start.seconds or 0) < 0:
            raise UsageError(f"bad frame range: start={start}, end={end}, stride={stride} "
                             "(need 0 <= start < end and stride >= 1).")
        for unit in ("frame", "seconds"):
            a, b = getattr(start, unit), getattr(end, unit) if end is not None else None
            if a is not None and b is not None and b <= a:
                raise UsageError(f"bad frame range: start={a}, end={b} (need start < end).")
        self.info = probe(path)
        self.start_at, self.end_at = start, end
        self.start = start.frame or 0  # frame index bounds (the time bounds are in start_at/end_at)
        self.end = end.frame if end is not None else None
        self.stride = stride
        self.threads = threads
        self.images = images  # False: frames are decoded (to count them and read their times) only
        self.decoded = 0
        self.yielded = 0
        self.damaged = 0
        self.finished = False
        self.last_time: float | None = None
        self.mended = 0
        self.resized = 0
        self.other_size: tuple[int, int] | None = None

    def __iter__(self) -> Iterator[Frame]:
        container = _open(self.info.path)
        try:
            stream = _stream_at(container, self.info)
            if self.threads:
                stream.thread_type = "AUTO"
            clock = FrameClock(1 / (self.info.fps or 25), _discontinuous(container), self.info.timed)
            size: tuple[int, int] | None = None  # (width, height) of the first frame, as decoded
            index = -1
            selected = 0  # frames in the range so far (the stride counts them)
            start_s = self.start_at.seconds
            end_s = self.end_at.seconds if self.end_at is not None else None
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    self.damaged += 1
                    continue
                for frame in frames:
                    index += 1
                    self.decoded += 1
                    time = clock(float(frame.time) if frame.time is not None else None)
                    self.mended = clock.mended
                    self.last_time = time
                    if (self.end is not None and index >= self.end) or (
                            end_s is not None and time >= end_s - TIME_TOLERANCE):
                        return
                    if index < self.start or (start_s is not None and time < start_s - TIME_TOLERANCE):
                        continue
                    selected += 1
                    if (selected - 1) % self.stride:
                        continue
                    size = size or (frame.width, frame.height)
                    if (frame.width, frame.height) != size:
                        self.resized += 1
                        self.other_size = self.other_size or (frame.width, frame.height)
                    image = None
                    if self.images:
                        if (frame.width, frame.height) != size:
                            frame = frame.reformat(width=size[0], height=size[1])  # FFmpeg's scaler
                        image = upright(frame.to_ndarray(format="rgb24"), self.info.rotation, self.info.mirrored)
                    self.yielded += 1
                    yield Frame(index=index, time=time, image=image)
            self.finished = True
        finally:
            container.close()


def _stream_at(container: av.container.InputContainer, info: VideoInfo) -> av.video.stream.VideoStream:
    """The stream `probe` chose (`video_stream`), found again in a new opening of the file."""
    for stream in container.streams.video:
        if stream.index == info.stream_index:
            return stream
    found = video_stream(container)
    assert found is not None
    return found


def _discontinuous(container: av.container.InputContainer) -> bool:
    """Whether the format's timestamps may jump (FFmpeg's AVFMT_TS_DISCONT: MPEG-TS, ...)."""
    return bool(container.format.flags & av.format.Flags.ts_discont.value)


def reading_warnings(info: VideoInfo, reader: VideoReader) -> list[str]:
    """What a reader mended or scaled, said once each, for a video's warnings."""
    out = []
    if reader.mended:
        out.append(f"{reader.mended} frame timestamp(s) did not increase (repeated, out of order or jumping): "
                   "those frames were placed just after the previous one (docs/video-input.md).")
    if reader.resized and reader.other_size is not None:
        first = (info.width, info.height) if info.rotation in (0, 180) else (info.height, info.width)
        out.append(f"the picture size changes within the video (from {first[0]}x{first[1]} to "
                   f"{reader.other_size[0]}x{reader.other_size[1]}): {reader.resized} frame(s) were scaled "
                   "to the first size.")
    return out


def length_warning(info: VideoInfo, decoded: int, last_time: float | None) -> str | None:
    """A warning when a file fully decoded (`decoded` frames, the last at `last_time`
    seconds from the first) holds other than it says: more frames than its frame count
    (a wrong header: every frame is used), fewer than its frame count,
    or ending more than 1.5 frames before its duration (containers that give no count:
    MKV, WebM, MPEG-TS); or, for a file that records neither (a raw stream), that a cut
    cannot be detected. None when the file is whole."""
    frame = 1 / info.fps if info.fps else 0.0
    if info.frames_in_file and decoded < info.frames_in_file:
        return (f"decoded {decoded} of the {info.frames_in_file} frames the file announces: "
                "it may be truncated.")
    if info.frames_in_file and decoded > info.frames_in_file:
        return (f"decoded {decoded} frames, {decoded - info.frames_in_file} more than the {info.frames_in_file} "
                "the file announces (its header is wrong): all are used, as a player shows them.")
    if info.duration and last_time is not None and info.duration - (last_time + frame) > 1.5 * frame:
        return (f"decoded {decoded} frames ({last_time + frame:.2f} s) of a {info.duration:.2f} s video "
                f"(about {info.frames_expected} frames): it may be truncated.")
    if not info.frames_in_file and not info.duration:
        return (f"{info.path.name} does not record its length (a raw {info.codec} stream): "
                f"{decoded} frames decoded; a file cut short cannot be detected.")
    return None


def is_truncated(info: VideoInfo, decoded: int, last_time: float | None) -> bool | None:
    """True/False where the file's length is known (see `length_warning`), None where not."""
    if not info.frames_in_file and not info.duration:
        return None
    if info.frames_in_file and decoded > info.frames_in_file:
        return False
    return length_warning(info, decoded, last_time) is not None


_MP4_AUDIO = ("aac", "mp3", "ac3", "eac3", "opus", "alac", "flac")


# Time base of the frames `VideoWriter` stamps with their own times (MPEG's 90 kHz clock).
WRITER_TIME_BASE = Fraction(1, 90000)


class VideoWriter:
    """H.264 MP4 (yuv420p, which every common player opens), written to a hidden temporary
    name and renamed when complete. Frames are (H, W, 3) uint8 RGB; odd sizes get one
    black row/column (4:2:0 needs even sizes). `copy_audio_from` adds the audio of a source
    file, the part `close` names (copied when MP4 can hold its codec, else re-encoded to
    AAC).

    `write(image, time)` stamps a frame with its time (seconds from the first; a variable
    frame rate is kept, in a 1/90000 s time base); `write(image)` without times gives a
    constant `fps`."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 20,
                 preset: str = "veryfast", copy_audio_from: Path | None = None) -> None:
        self.path = Path(path)
        self.output = WholeFile(self.path, keep_suffix=True)  # FFmpeg picks MP4 by the temporary's suffix
        self.tmp = self.output.begin()
        self.width, self.height = width + width % 2, height + height % 2
        self.frames = 0
        self.timed: bool | None = None  # whether frames come with their times (set by the first)
        self.last_pts = -1
        try:
            self.container = av.open(str(self.tmp), "w")
        except (av.error.FFmpegError, OSError) as err:
            self.output.discard()
            raise output_error(err, self.path) from err
        try:  # a source without readable audio, say: no temporary stays
            rate = Fraction(fps).limit_denominator(1001)
            self.stream = self.container.add_stream("libx264", rate=rate)
            self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
            self.stream.time_base = WRITER_TIME_BASE
            self.stream.codec_context.time_base = WRITER_TIME_BASE  # frames keep their own times
            self.stream.options = {"crf": str(crf), "preset": preset}
            self.stream.thread_type = "AUTO"
            # The audio stream must exist before the first packet is written: made now, filled at close.
            self.audio_source, self.audio_out, self.audio_copy = None, None, False
            self.audio_origin = 0.0  # seconds in the source of its first video frame: the overlay's time 0
            if copy_audio_from is not None:
                with av.open(str(copy_audio_from)) as src:
                    audio = audio_stream(src)
                    if audio is not None:
                        self.audio_source = copy_audio_from
                        self.audio_origin = probe(copy_audio_from).start_time
                        # Packets are copied from containers that keep AAC as MP4 does (MPEG-TS
                        # holds ADTS frames, which MP4 cannot); anything else is re-encoded.
                        self.audio_copy = (audio.codec_context.name in _MP4_AUDIO
                                           and any(name in src.format.name for name in ("mp4", "matroska")))
                        self.audio_out = (self.container.add_stream_from_template(audio) if self.audio_copy else
                                          self.container.add_stream("aac", rate=audio.codec_context.sample_rate))
        except BaseException:
            self.abort()
            raise

    def write(self, image: np.ndarray, time: float | None = None) -> None:
        """Encode one frame; `time`: its presentation time in seconds from the first frame
        (all frames of a file with times, or none)."""
        if self.timed is None:
            self.timed = time is not None
        elif self.timed != (time is not None):
            raise ValueError("VideoWriter.write: give every frame a time, or none")
        h, w = image.shape[:2]
        if (w, h) != (self.width, self.height):
            padded = np.zeros((self.height, self.width, 3), np.uint8)
            padded[:h, :w] = image
            image = padded
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        rate = self.stream.codec_context.framerate or Fraction(30)
        pts = (int(round(time / WRITER_TIME_BASE)) if time is not None
               else int(round(self.frames / rate / WRITER_TIME_BASE)))
        pts = max(pts, self.last_pts + 1)  # strictly increasing, as the muxer needs
        frame.pts, frame.time_base = pts, WRITER_TIME_BASE
        self.last_pts = pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self, audio_start: float = 0.0, audio_end: float | None = None) -> Path:
        """Finish the file (with the source's audio from `audio_start` to `audio_end`
        seconds from the source's first video frame, the frames' time 0: sound and
        pictures stay together whatever time each stream of the source starts at) and move
        it to its final name."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        if self.audio_source is not None:
            self._copy_audio(self.audio_source, audio_start, audio_end)
        self.container.close()
        return self.output.commit()

    def abort(self) -> None:
        try:
            self.container.close()
        except (av.error.FFmpegError, OSError, ValueError):
            pass
        self.output.discard()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None:
            self.abort()

    def _copy_audio(self, source: Path, start: float, end: float | None) -> None:
        start += self.audio_origin  # seconds in the source
        end = end + self.audio_origin if end is not None else None
        with av.open(str(source)) as src:
            audio = audio_stream(src)
            assert audio is not None
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
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate,
                                          frame_size=self.audio_out.codec_context.frame_size or None)
            for frame in src.decode(audio):
                if frame.time is None or frame.time < start or (end is not None and frame.time >= end):
                    continue
                frame.pts = int(round((frame.time - start) * rate))  # its place after the first picture
                frame.time_base = Fraction(1, rate)
                for piece in resampler.resample(frame):
                    for packet in self.audio_out.encode(piece):
                        self.container.mux(packet)
            for packet in self.audio_out.encode(None):
                self.container.mux(packet)
