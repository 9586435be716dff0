import math
from fractions import Fraction

import av
import numpy as np
import pytest

from strcli.utils.errors import UsageError, VideoError
from strcli.road.video import Position, VideoReader, parse_position, probe, upright_rotation


def write_video(path, frames=20, size=(64, 48), rate=30, rotation=0, pts_ms=None, codec="libx264", matrix=None):
    """A small H.264 MP4 whose frame i has brightness 10 i and a white block at the top left;
    `matrix`: a display matrix of 9 integers in FFmpeg's layout (e.g. all zeros)."""
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        if matrix is not None:
            stream.set_display_matrix(matrix)
        if pts_ms is not None:
            stream.time_base = Fraction(1, 1000)
        for i in range(frames):
            image = np.full((h, w, 3), 10 * i % 256, np.uint8)
            image[: h // 4, : w // 4] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_decodes_every_frame_in_order_with_times(tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=20)
    info = probe(path)
    assert (info.width, info.height, info.rotation, info.frames_in_file) == (64, 48, 0, 20)
    assert info.fps == pytest.approx(30)
    reader = VideoReader(path)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(20))
    assert [f.time for f in frames] == pytest.approx([i / 30 for i in range(20)], abs=1e-3)
    brightness = [int(f.image[-1, -1].mean()) for f in frames]
    assert brightness == pytest.approx([10 * i for i in range(20)], abs=4)
    assert reader.decoded == reader.yielded == 20 and reader.damaged == 0


def test_start_end_stride(tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=20)
    frames = list(VideoReader(path, start=3, end=15, stride=4))
    assert [f.index for f in frames] == [3, 7, 11]
    assert parse_position("0.5s") == Position(seconds=0.5)
    assert parse_position("12") == Position(frame=12)
    with pytest.raises(UsageError):
        parse_position("1.5")
    with pytest.raises(UsageError):
        VideoReader(path, start=5, end=5)


def test_rotated_video_comes_out_upright(tmp_path):
    path = write_video(tmp_path / "portrait.mp4", frames=3, size=(64, 48), rotation=90)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (90, 48, 64)
    image = next(iter(VideoReader(path))).image
    assert image.shape == (64, 48, 3)
    # The block at the top left of the stored frame is at the bottom left once turned 90 degrees
    # counter-clockwise, as players show it.
    assert image[-4, 4].mean() > 200 and image[4, 4].mean() < 100


@pytest.mark.parametrize("rotation, applied", [(90.4, 90), (89.6, 90), (-90, 270), (180.7, 180), (-0.5, 0)])
def test_a_rotation_within_a_degree_of_a_quarter_turn_is_snapped_to_it(tmp_path, rotation, applied):
    path = write_video(tmp_path / "turned.mp4", frames=2, rotation=rotation)
    info = probe(path)
    upright = (48, 64) if applied in (90, 270) else (64, 48)
    assert (info.rotation, info.width, info.height, info.rotation_warning) == (applied, *upright, None)
    assert next(iter(VideoReader(path))).image.shape == (upright[1], upright[0], 3)


@pytest.mark.parametrize("rotation, matrix, said", [
    (45, None, "the display rotation 45° is not a multiple of 90°"),
    (135, None, "the display rotation 135° is not a multiple of 90°"),
    (-88.5, None, "the display rotation 271.5° is not a multiple of 90°"),
    (0, [0] * 9, "the display rotation cannot be read (a degenerate display matrix)"),  # PyAV says 232
])
def test_a_rotation_that_is_no_quarter_turn_is_ignored_with_a_warning(tmp_path, rotation, matrix, said):
    path = write_video(tmp_path / "skewed.mp4", frames=3, rotation=rotation, matrix=matrix)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (0, 64, 48)
    assert info.rotation_warning.startswith(said) and "was ignored" in info.rotation_warning
    images = [f.image for f in VideoReader(path)]
    assert [i.shape for i in images] == [(48, 64, 3)] * 3
    assert images[0][4, 4].mean() > 200 and images[0][-4, -4].mean() < 100  # as stored: block top left


def test_upright_rotation_rule():
    assert upright_rotation(None) == (0, None) and upright_rotation(0.0) == (0, None)
    assert upright_rotation(-179.2) == (180, None) and upright_rotation(270.9) == (270, None)
    assert upright_rotation(91.5)[0] == 0 and "91.5°" in upright_rotation(91.5)[1]
    assert upright_rotation(232)[0] == 0 and upright_rotation(math.nan)[0] == 0


def test_variable_frame_rate_keeps_timestamps(tmp_path):
    pts = [0, 33, 66, 200, 233, 266, 600, 633, 666, 700]
    path = write_video(tmp_path / "vfr.mp4", frames=len(pts), pts_ms=pts)
    times = [f.time for f in VideoReader(path)]
    assert times == sorted(times) and len(times) == len(pts)
    gaps = np.diff(times)
    assert gaps.max() > 0.25  # the 334 ms pause is kept, not spread evenly
    assert times[-1] == pytest.approx(0.7, abs=0.05)


@pytest.mark.parametrize("content", [b"", b"this is not a video" * 100])
def test_bad_files_are_video_errors(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError) as info:
        probe(path)
    assert info.value.exit_code == 7
    with pytest.raises(VideoError, match="does not exist"):
        probe(tmp_path / "missing.mp4")


def test_truncated_file_reports_fewer_frames_than_the_header(tmp_path, assets):
    data = (assets / "videos" / "pedestrians.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 3])  # the header still says 795 frames
    reader = VideoReader(cut)
    count = sum(1 for _ in reader)
    assert 200 < count < 300 and reader.info.frames_in_file == 795
    assert reader.decoded == count


def test_real_assets(assets):
    running = probe(assets / "videos" / "running.mp4")
    assert (running.width, running.height, running.frames_in_file) == (1920, 1088, 180)
    assert running.fps == pytest.approx(30)
    reader = VideoReader(assets / "videos" / "pedestrians.avi")
    frames = [f.index for f in reader]
    assert reader.info.fps == pytest.approx(10) and (reader.info.width, reader.info.height) == (768, 576)
    assert len(frames) == 795 and reader.damaged == 0


# --------------------------------------------------------------- time from timestamps, length from the stream


def test_seconds_select_frames_by_timestamp_start_inclusive_end_exclusive(tmp_path):
    """On a variable-rate clip (30, 10, then 30 fps) --start 1.0s --end 2.0s are the frames
    whose timestamps are in [1.0, 2.0), not frames 1.0 x and 2.0 x the average rate."""
    from generated_video import write_vfr_clip

    path = write_vfr_clip(tmp_path / "vfr.mp4")
    with av.open(str(path)) as container:
        times = np.array([float(f.time) for f in container.decode(video=0)])
    times -= times[0]
    wanted = np.flatnonzero((times >= 1.0 - 1e-9) & (times < 2.0 - 1e-9)).tolist()
    assert len(wanted) == 10  # the 10 fps stretch: 1.0667 .. 1.9667 s
    frames = list(VideoReader(path, Position(seconds=1.0), Position(seconds=2.0)))
    assert [f.index for f in frames] == wanted
    assert [f.time for f in frames] == pytest.approx(times[wanted].tolist(), abs=1e-6)
    # A timestamp exactly at the start is in, exactly at the end is out.
    at = float(times[20])
    frames = list(VideoReader(path, Position(seconds=at), Position(seconds=float(times[23]))))
    assert [f.index for f in frames] == [20, 21, 22]
    # The stride counts from the first frame selected.
    frames = list(VideoReader(path, Position(seconds=1.0), Position(seconds=2.0), stride=3))
    assert [f.index for f in frames] == wanted[::3]


def test_the_writer_keeps_each_frames_time(tmp_path):
    from generated_video import VFR_TIMES

    from strcli.road.video import VideoWriter

    writer = VideoWriter(tmp_path / "o.mp4", 64, 48, fps=17.8)
    for i, t in enumerate(VFR_TIMES):
        writer.write(np.full((48, 64, 3), 5 * i, np.uint8), float(t))
    writer.close()
    with av.open(str(tmp_path / "o.mp4")) as container:
        stream = container.streams.video[0]
        times = [float(f.time) for f in container.decode(stream)]
        tick = float(stream.time_base)
    assert len(times) == len(VFR_TIMES)
    assert np.abs(np.array(times) - times[0] - VFR_TIMES).max() <= tick


@pytest.mark.parametrize("rate", [25, 30, 12])
def test_a_raw_stream_gets_its_own_frame_rate(tmp_path, rate):
    """A raw H.264 elementary stream has no container timing: FFmpeg's average rate is its
    default 25, the stream's own rate is in its headers."""
    from generated_video import write_clip

    path = write_clip(tmp_path / "clip.h264", frames=30, rate=rate, fmt="h264")
    info = probe(path)
    assert info.fps == pytest.approx(rate) and not info.timed
    frames = list(VideoReader(path, images=False))
    assert [f.time for f in frames] == pytest.approx([i / rate for i in range(30)])
    # Seconds select by those times too.
    assert [f.index for f in VideoReader(path, Position(seconds=0.5), images=False)][0] == math.ceil(0.5 * rate)


@pytest.mark.parametrize("name, kind", [("clip.mp4", "mp4 faststart"), ("clip.mkv", "mkv"),
                                        ("clip.avi", "avi mjpeg"), ("clip.h264", "raw h264")])
def test_a_file_cut_short_is_reported_in_every_container(tmp_path, name, kind):
    """Cut at 60% of its bytes, every container's file says so: by its frame count (MP4,
    AVI), by its duration x rate (MKV gives no count), or, where the file records its length
    nowhere (a raw stream), that a cut cannot be detected."""
    from generated_video import write_clip

    from strcli.road.video import is_truncated, length_warning

    options = {"movflags": "faststart"} if "faststart" in kind else None
    codec = "mjpeg" if "mjpeg" in kind else "libx264"
    whole = write_clip(tmp_path / name, frames=60, rate=30, codec=codec,
                       fmt="h264" if "raw" in kind else None, options=options)
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    for path, short in ((whole, False), (cut, True)):
        info = probe(path)
        reader = VideoReader(path, images=False)
        decoded = sum(1 for _ in reader)
        assert reader.finished and decoded == reader.decoded
        warning = length_warning(info, reader.decoded, reader.last_time)
        if "raw" in kind:
            assert info.frames_expected is None and is_truncated(info, reader.decoded, reader.last_time) is None
            assert warning is not None and "does not record its length" in warning and f"{decoded} frames" in warning
            continue
        assert info.frames_expected == 60
        assert is_truncated(info, reader.decoded, reader.last_time) is short
        if short:
            assert 10 < decoded < 50
            assert warning is not None and "may be truncated" in warning and f"{decoded}" in warning
            assert "60 frames" in warning
        else:
            assert decoded == 60 and warning is None
