from fractions import Fraction

import av
import numpy as np
import pytest

from strcli.errors import UsageError, VideoError
from strcli.video import VideoReader, parse_position, probe


def write_video(path, frames=20, size=(64, 48), rate=30, rotation=0, pts_ms=None, codec="libx264"):
    """A small H.264 MP4 whose frame i has brightness 10 i and a white block at the top left."""
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
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
    assert parse_position("0.5s", fps=30) == 15
    assert parse_position("12", fps=30) == 12
    with pytest.raises(UsageError):
        parse_position("1.5", fps=30)
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
