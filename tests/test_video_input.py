"""The video as FFmpeg's tools see it (docs/video-input.md): the stream ffmpeg maps, the
display matrix as ffplay applies it, timestamps that do not increase, a size that changes,
sound against pictures whatever time each stream starts at, a header's frame count. Every
input is made here with PyAV, the way muxers make such files."""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from strcli.road.video import (FrameClock, VideoReader, VideoWriter, increasing_times, length_warning, orientation,
                               probe, reading_warnings, upright)
from strcli.utils.errors import VideoError

RATE = 30
SIZE = (64, 48)


def _image(i: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Frame i: grey 4 i (so frames can be told apart) with a white block at the top left."""
    w, h = size
    image = np.full((h, w, 3), 4 * i % 256, np.uint8)
    image[: h // 4, : w // 4] = 255
    return image


def _encode(out: av.container.OutputContainer, stream: av.stream.Stream, frame: av.frame.Frame | None) -> None:
    for packet in stream.encode(frame):
        out.mux(packet)


def _tone(out, seconds: float, click_at: float | None, rate: int = 16000, start: float = 0.0,
          codec: str = "aac"):
    """An audio stream of `seconds` of silence with a 30 ms 1 kHz burst at `click_at` (seconds
    of the stream's own time from `start`), its first sample at `start` seconds."""
    sound = out.add_stream(codec, rate=rate)
    length = int(rate * seconds)
    samples = np.zeros(length, np.float32)
    if click_at is not None:
        k = int(click_at * rate)
        samples[k : k + int(0.03 * rate)] = 0.8 * np.sin(np.arange(int(0.03 * rate)) * 2 * math.pi * 1000 / rate)
    return sound, samples, int(round(start * rate))


def write_av(path: Path, frames: int = 60, fmt: str | None = None, codec: str = "libx264",
             video_start: float = 0.0, audio_start: float | None = None, click_at: float | None = None,
             flash: int | None = None, pts: list[float] | None = None, size: tuple[int, int] = SIZE,
             matrix: list[int] | None = None) -> Path:
    """A clip of `frames` frames at 30 fps (frame i at `video_start` + i / 30 s, or at
    `pts` seconds), frame `flash` all white; with `audio_start`, an AAC track from that time
    whose burst is at `click_at` seconds of the file's clock. `matrix`: a display matrix."""
    w, h = size
    # The ffmpeg command's -muxdelay of 0.7 s, which starts its MPEG-TS files at 1.4 s.
    options = {"max_delay": "700000"} if fmt == "mpegts" else {}
    with av.open(str(path), "w", format=fmt, options=options) as out:
        video = out.add_stream(codec, rate=RATE)
        video.width, video.height = w, h
        video.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        video.time_base = Fraction(1, 90000)
        if matrix is not None:
            video.set_display_matrix(matrix)
        sound = None
        if audio_start is not None:
            total = video_start + frames / RATE + 0.2 - audio_start
            sound, samples, first = _tone(out, total, None if click_at is None else click_at - audio_start,
                                          start=audio_start)
        for i in range(frames):
            image = np.full((h, w, 3), 255, np.uint8) if i == flash else _image(i, size)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            at = pts[i] if pts is not None else video_start + i / RATE
            frame.pts, frame.time_base = int(round(at * 90000)), Fraction(1, 90000)
            _encode(out, video, frame)
        _encode(out, video, None)
        if sound is not None:
            for k in range(0, len(samples), 1024):
                piece = av.AudioFrame.from_ndarray(samples[None, k : k + 1024], format="fltp", layout="mono")
                piece.sample_rate, piece.pts, piece.time_base = 16000, first + k, Fraction(1, 16000)
                _encode(out, sound, piece)
            _encode(out, sound, None)
    return path


# ----------------------------------------------------------------------------- the stream ffmpeg maps


def _boxes(data: bytes, start: int, end: int) -> list[tuple[int, int, bytes]]:
    """ISO BMFF boxes in data[start:end] -> (offset, size, type)."""
    out, at = [], start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        out.append((at, size, kind))
        at += size
    return out


def cover_first_mp4(path: Path) -> Path:
    """An MP4 whose cover picture (iTunes 'covr', which FFmpeg reads as an attached picture)
    is stream 0, before the film: the muxer writes the cover in moov/udta after the film's
    trak, and other tools write udta first; moving it there is what they do (mdat, the
    chunks' target, is before moov and does not move)."""
    with av.open(str(path), "w") as out:
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 320, 320, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        film = out.add_stream("libx264", rate=RATE)
        film.width, film.height, film.pix_fmt = *SIZE, "yuv420p"
        _encode(out, cover, av.VideoFrame.from_ndarray(np.full((320, 320, 3), 200, np.uint8), format="rgb24"))
        _encode(out, cover, None)
        for i in range(10):
            _encode(out, film, av.VideoFrame.from_ndarray(_image(i), format="rgb24"))
        _encode(out, film, None)
    data = bytearray(path.read_bytes())
    (moov,) = [b for b in _boxes(data, 0, len(data)) if b[2] == b"moov"]
    children = _boxes(data, moov[0] + 8, moov[0] + moov[1])
    assert moov[0] + moov[1] == len(data)  # moov last: reordering its children moves no chunk
    udta = [c for c in children if c[2] == b"udta"]
    rest = [c for c in children if c[2] != b"udta"]
    first_trak = next(k for k, c in enumerate(rest) if c[2] == b"trak")
    order = rest[:first_trak] + udta + rest[first_trak:]
    body = b"".join(bytes(data[a : a + n]) for a, n, _ in order)
    path.write_bytes(bytes(data[: moov[0] + 8]) + body)
    return path


def test_a_cover_picture_stored_first_is_not_the_video(tmp_path):
    path = cover_first_mp4(tmp_path / "cover.mp4")
    with av.open(str(path)) as container:
        kinds = [(s.index, s.codec_context.name, bool(s.disposition & av.stream.Disposition.attached_pic))
                 for s in container.streams.video]
    assert kinds == [(0, "mjpeg", True), (1, "h264", False)]  # the cover is stream 0, as reported
    info = probe(path)
    assert (info.stream_index, info.width, info.height, info.codec) == (1, *SIZE, "h264")
    frames = list(VideoReader(path))
    assert len(frames) == 10 and frames[3].image.shape == (SIZE[1], SIZE[0], 3)
    assert abs(float(frames[3].image[-1, -1].mean()) - 12) < 4  # the film's frame 3, not the cover
    from strcli.view.viewer import FrameSource  # the viewer decodes the same stream

    source = FrameSource(path, 0)
    try:
        assert source.stream.index == 1
    finally:
        source.close()


def test_an_audio_file_with_a_cover_is_no_video(tmp_path):
    path = tmp_path / "song.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        sound, samples, _ = _tone(out, 1.0, 0.5)
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        _encode(out, cover, av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24"))
        _encode(out, cover, None)
        for k in range(0, len(samples), 1024):
            piece = av.AudioFrame.from_ndarray(samples[None, k : k + 1024], format="fltp", layout="mono")
            piece.sample_rate, piece.pts, piece.time_base = 16000, k, Fraction(1, 16000)
            _encode(out, sound, piece)
        _encode(out, sound, None)
    with pytest.raises(VideoError) as caught:
        probe(path)
    assert caught.value.exit_code == 7 and "only a cover picture" in str(caught.value)


def test_ffmpeg_maps_the_largest_video_stream(tmp_path):
    """Two films in one file (a small preview first): ffmpeg maps the one of most pixels."""
    path = tmp_path / "two.mkv"
    with av.open(str(path), "w") as out:
        small = out.add_stream("libx264", rate=RATE)
        small.width, small.height, small.pix_fmt = 32, 24, "yuv420p"
        large = out.add_stream("libx264", rate=RATE)
        large.width, large.height, large.pix_fmt = *SIZE, "yuv420p"
        for i in range(5):
            _encode(out, small, av.VideoFrame.from_ndarray(_image(i, (32, 24)), format="rgb24"))
            _encode(out, large, av.VideoFrame.from_ndarray(_image(i), format="rgb24"))
        _encode(out, small, None)
        _encode(out, large, None)
    info = probe(path)
    assert (info.stream_index, info.width, info.height) == (1, *SIZE)
    assert [f.image.shape for f in VideoReader(path)] == [(SIZE[1], SIZE[0], 3)] * 5


# ----------------------------------------------------------------------------- display matrix


def _fixed(m: list[float]) -> list[int]:
    return [int(round(v * 65536)) for v in m[:8]] + [1 << 30]


# ffplay's filters for each display matrix (fftools' autorotate), written with numpy.
FFPLAY = {
    "hflip": lambda x: x[:, ::-1],
    "vflip": lambda x: x[::-1],
    "hflip,vflip": lambda x: x[::-1, ::-1],
    "transpose=clock": lambda x: np.rot90(x, -1),
    "transpose=cclock": lambda x: np.rot90(x, 1),
    "transpose=cclock_flip": lambda x: x.transpose(1, 0, 2),
    "transpose=clock_flip": lambda x: x[::-1, ::-1].transpose(1, 0, 2),
    "": lambda x: x,
}


@pytest.mark.parametrize("matrix, filters", [
    ([-1, 0, 0, 0, 1, 0, 0, 0], "hflip"),  # a mirrored selfie: not a half turn
    ([1, 0, 0, 0, -1, 0, 0, 0], "vflip"),
    ([-1, 0, 0, 0, -1, 0, 0, 0], "hflip,vflip"),  # a half turn
    ([0, 1, 0, -1, 0, 0, 0, 0], "transpose=clock"),  # set_display_rotation(90)
    ([0, -1, 0, 1, 0, 0, 0, 0], "transpose=cclock"),
    ([0, 1, 0, 1, 0, 0, 0, 0], "transpose=cclock_flip"),
    ([0, -1, 0, -1, 0, 0, 0, 0], "transpose=clock_flip"),
    ([1, 0, 0, 0, 1, 0, 0, 0], ""),
])
def test_the_display_matrix_is_applied_as_ffplay_applies_it(matrix, filters):
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    m = tuple(float(v) for v in matrix) + (0.0,)
    rotation, mirrored, warning = orientation(m)
    assert warning is None
    assert np.array_equal(upright(image, rotation, mirrored), FFPLAY[filters](image))


def test_a_mirrored_video_is_shown_mirrored_end_to_end(tmp_path):
    path = write_av(tmp_path / "selfie.mp4", frames=3, matrix=_fixed([-1, 0, 0, 0, 1, 0, 0, 0]))
    info = probe(path)
    assert (info.rotation, info.mirrored, info.width, info.height) == (0, True, *SIZE)
    image = next(iter(VideoReader(path))).image
    assert image[2, -3].mean() > 200 and image[2, 2].mean() < 100  # the block moved to the top right
    assert image[-3, -3].mean() < 100  # not turned: the bottom stays dark


# ----------------------------------------------------------------------------- timestamps


def test_the_frame_clock_makes_any_timestamps_increase():
    step = 1 / 30

    def times(stamps, discontinuous=False):
        clock = FrameClock(step, discontinuous)
        return np.array([clock(t) for t in stamps]), clock.mended

    repeated, mended = times([0.0, 0.1, 0.1, 0.2, 0.3])
    assert repeated == pytest.approx([0, 0.1, 0.1 + step / 2, 0.2, 0.3]) and mended == 1
    swapped, mended = times([0.0, step, 3 * step, 2 * step, 4 * step])  # one frame out of order
    assert swapped == pytest.approx([0, step, 3 * step, 3.5 * step, 4 * step]) and mended == 1
    joined, mended = times([5.0, 5 + step, 5 + 2 * step, 1.0, 1 + step])  # clips joined with their clocks
    assert joined == pytest.approx([0, step, 2 * step, 3 * step, 4 * step]) and mended == 1
    paused, mended = times([0.0, step, 20.0, 20 + step])  # a pause: kept in MP4 ...
    assert paused == pytest.approx([0, step, 20.0, 20 + step]) and mended == 0
    wrapped, mended = times([0.0, step, 20.0, 20 + step], discontinuous=True)  # ... a jump in MPEG-TS
    assert wrapped == pytest.approx([0, step, 2 * step, 3 * step]) and mended == 1
    missing, mended = times([0.0, None, 2 * step])
    assert missing == pytest.approx([0, step, 2 * step]) and mended == 1
    for sequence in ([0.0] * 6, [3.0, 2.0, 1.0, 0.0], [0.0, 1e9, 0.0, -5.0]):
        got, _ = times(sequence)
        assert np.all(np.diff(got) > 0)
    assert increasing_times(np.array([0.0, 0.5, 0.5, 1.0]), 0.5) == pytest.approx([0, 0.5, 0.75, 1.0])


def write_stamped(path: Path, stamps: list[float]) -> Path:
    """An intra-only (MJPEG) Matroska file whose packets carry `stamps` (seconds) as a
    muxer bug or a copy-cut leaves them: the encoder numbers frames in order, the muxer
    (Matroska allows equal timestamps) writes the times given."""
    w, h = SIZE
    with av.open(str(path), "w") as out:
        video = out.add_stream("mjpeg", rate=RATE)
        video.width, video.height, video.pix_fmt = w, h, "yuvj420p"
        k = 0
        for i in range(len(stamps) + 1):
            frame = av.VideoFrame.from_ndarray(_image(i), format="rgb24") if i < len(stamps) else None
            for packet in video.encode(frame):
                packet.pts = packet.dts = int(round(stamps[k] / packet.time_base))
                out.mux(packet)
                k += 1
    return path


def test_a_repeated_timestamp_in_a_file_gives_increasing_times(tmp_path):
    """A Matroska file whose frame 5 repeats frame 4's timestamp."""
    stamps = [i / RATE for i in range(12)]
    stamps[5] = stamps[4]
    path = write_stamped(tmp_path / "repeated.mkv", stamps)
    with av.open(str(path)) as container:
        raw = [round(float(f.time), 3) for f in container.decode(video=0)]
    assert raw[4] == raw[5]  # the file holds the repeat
    reader = VideoReader(path)
    times = [f.time for f in reader]
    assert len(times) == 12 and np.all(np.diff(times) > 0) and reader.mended == 1
    assert times[5] == pytest.approx(stamps[4] + 0.5 / RATE, abs=2e-3)
    assert times[6] == pytest.approx(stamps[6], abs=2e-3)  # the frames after keep their times
    assert "1 frame timestamp(s) did not increase" in reading_warnings(probe(path), reader)[0]


def write_ts(path: Path, parts: list[tuple[int, tuple[int, int], float]]) -> Path:
    """MPEG-TS segments joined byte for byte (`cat a.ts b.ts`), as cameras and HLS
    recorders leave them: each (frames, size, first frame's time in seconds)."""
    with open(path, "wb") as joined:
        for k, (frames, size, start) in enumerate(parts):
            part = path.with_name(f"{path.stem}-{k}.ts")
            write_av(part, frames=frames, fmt="mpegts", size=size, video_start=start)
            joined.write(part.read_bytes())
    return path


def test_a_clock_that_restarts_and_a_size_that_changes(tmp_path):
    """Two recordings joined: the second restarts its clock and is larger. Times increase
    one frame a step across the join; later frames are scaled to the first size."""
    path = write_ts(tmp_path / "joined.ts", [(10, SIZE, 0.0), (10, (96, 72), 0.0)])
    reader = VideoReader(path)
    frames = list(reader)
    assert len(frames) == 20 and reader.mended == 1
    assert np.diff([f.time for f in frames]) == pytest.approx([1 / RATE] * 19, abs=2e-3)
    assert {f.image.shape for f in frames} == {(SIZE[1], SIZE[0], 3)}
    assert reader.resized == 10 and reader.other_size == (96, 72)
    block = frames[15].image  # the scaled frame keeps its picture: block top left, grey 4 x 5 elsewhere
    assert block[2, 2].mean() > 200 and abs(float(block[-3, -3].mean()) - 20) < 6
    said = reading_warnings(probe(path), reader)
    assert any("from 64x48 to 96x72" in w and "10 frame(s) were scaled" in w for w in said)


def test_a_frame_count_above_what_the_header_says_is_warned(tmp_path):
    """An AVI whose header counts 15 frames but holds 20 (a recorder that appended frames
    and did not rewrite its header's lengths, avih and strh): all 20 are used, and said."""
    from generated_video import write_clip

    path = write_clip(tmp_path / "long.avi", frames=20, codec="mjpeg")
    data = bytearray(path.read_bytes())
    for box, field in ((b"avih", 16), (b"strh", 32)):  # dwTotalFrames, dwLength
        at = data.find(box) + 8 + field
        assert struct.unpack("<I", data[at : at + 4]) == (20,)
        data[at : at + 4] = struct.pack("<I", 15)
    path.write_bytes(bytes(data))
    info = probe(path)
    reader = VideoReader(path)
    assert info.frames_in_file == 15 and len(list(reader)) == 20 and reader.finished
    warning = length_warning(info, reader.decoded, reader.last_time)
    assert warning == ("decoded 20 frames, 5 more than the 15 the file announces (its header is wrong): "
                       "all are used, as a player shows them.")


# ----------------------------------------------------------------------------- sound against pictures


def _flash_and_click(path: Path) -> tuple[float, float]:
    """Seconds from the first picture of the white frame and of the audio burst. The frame's
    top half is measured: an overlay of untrained networks carries its caption band at the
    bottom (strcli.render.caption)."""
    with av.open(str(path)) as container:
        video = [(float(f.time), f.to_ndarray(format="rgb24")[: f.height // 2].mean())
                 for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        loud = None
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()[0]
            above = np.flatnonzero(np.abs(samples) > 0.3)
            if len(above) and frame.time is not None:
                loud = float(frame.time) + above[0] / frame.sample_rate
                break
    first = video[0][0]
    flash = next(t for t, level in video if level > 250)
    assert loud is not None
    return flash - first, loud - first


def _rewrite(source: Path, target: Path) -> Path:
    """What `render` does with a source: every frame at its time, the sound copied."""
    reader = VideoReader(source)
    info = reader.info
    writer = VideoWriter(target, info.width, info.height, info.fps, copy_audio_from=source)
    last = 0.0
    for frame in reader:
        writer.write(frame.image, frame.time)
        last = frame.time
    return writer.close(0.0, last + 1 / info.fps)


@pytest.mark.parametrize("name, fmt, video_start, audio_start", [
    ("mpegts.ts", "mpegts", 0.0, 0.0),  # both streams start at 1.4 s (the muxer's delay)
    ("late-video.mp4", None, 0.5, 0.0),  # the sound starts 0.5 s before the pictures
    ("late-audio.mkv", None, 0.0, 0.3),
])
def test_the_overlay_sound_stays_with_its_pictures(tmp_path, name, fmt, video_start, audio_start):
    flash = 30  # the white frame, 1.0 s after the first picture; the burst at the same time
    source = write_av(tmp_path / name, fmt=fmt, video_start=video_start, audio_start=audio_start,
                      click_at=video_start + flash / RATE, flash=flash)
    seen, heard = _flash_and_click(source)
    assert heard == pytest.approx(seen, abs=1 / RATE)  # in sync in the source, as a player plays it
    if fmt == "mpegts":
        assert probe(source).start_time == pytest.approx(1.4, abs=0.07)  # 1.4 s and the B-frame delay
    seen, heard = _flash_and_click(_rewrite(source, tmp_path / "overlay.mp4"))
    assert seen == pytest.approx(flash / RATE, abs=1e-3)
    assert heard == pytest.approx(seen, abs=1 / RATE)  # within one frame


# ----------------------------------------------------------------------------- the viewer's frames


def test_the_viewer_shows_the_frames_the_reader_reads(tmp_path):
    """`strcli view`'s frame source gives, at each frame's time (the reader's, mended), the
    picture the reader gives: across a restarted clock and a size change, forward and back
    (no seek by the file's own times, which are not the frames'), and mirrored as ffplay
    shows a mirrored file."""
    from strcli.view.viewer import FrameSource

    path = write_ts(tmp_path / "joined.ts", [(10, SIZE, 0.0), (10, (96, 72), 0.0)])
    frames = list(VideoReader(path))
    source = FrameSource(path, 0, width=SIZE[0], seekable=False)
    try:
        for k in (2, 15, 19, 4, 12):
            shown = source.at(frames[k].time)
            assert shown.shape == (SIZE[1], SIZE[0], 3)
            assert abs(float(shown[-3, -3].mean()) - float(frames[k].image[-3, -3].mean())) < 3, k
    finally:
        source.close()
    mirrored = write_av(tmp_path / "selfie.mp4", frames=3, matrix=_fixed([-1, 0, 0, 0, 1, 0, 0, 0]))
    source = FrameSource(mirrored, 0, width=SIZE[0], mirrored=True)
    try:
        shown = source.at(0.0)
        assert shown[2, -3].mean() > 200 and shown[2, 2].mean() < 100
    finally:
        source.close()
