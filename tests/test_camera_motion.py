"""The camera-motion stage (strcli/road/camera_motion.py) on synthetic pans made from a real
frame of a shared clip, and on the shared tripod clip."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ASSETS
from scipy.spatial.transform import Rotation

from strcli.body.camera import Intrinsics
from strcli.road.camera_motion import CameraMotionEstimator
from strcli.road.tracking import read_mot_detections
from strcli.road.video import VideoReader, probe

RUNNING = ASSETS / "videos" / "running.mp4"
PEDESTRIANS = ASSETS / "videos" / "pedestrians.avi"
SIZE = (640, 360)  # the synthetic video's width, height
SOURCE_FOCAL = 560.0  # the source frame taken as a wide-angle view, so a 30 degree pan stays inside it


def _source_frame() -> np.ndarray:
    for frame in VideoReader(RUNNING, 0, 1, 1):
        return frame.image
    raise AssertionError("no frame")


def _pan(frames: int, yaw: float, pitch: float, roll: float) -> Rotation:
    """Per frame camera -> first camera rotations: yaw (about y), pitch (x), roll (z) degrees
    at the end, eased in and out."""
    s = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, frames))
    return Rotation.from_euler("YXZ", np.stack((yaw * s, pitch * s, roll * s), axis=1), degrees=True)


def _write_pan(path: Path, source: np.ndarray, rotations: Rotation, box: np.ndarray) -> Intrinsics:
    """Warp `source` (a pure rotation of the source camera: the homography K_s R K_v^-1) into
    an H.264 video, with a moving grey 'person' pasted at `box` of every frame (it does not
    move with the background: masked, it must not matter)."""
    import cv2

    virtual = Intrinsics.default_for(*SIZE)
    h, w = source.shape[:2]
    k_s = np.array([[SOURCE_FOCAL, 0, w / 2], [0, SOURCE_FOCAL, h / 2], [0, 0, 1]])
    k_v_inv = np.linalg.inv(virtual.matrix)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "18"}
        for k, rotation in enumerate(rotations):
            to_source = k_s @ rotation.as_matrix() @ k_v_inv  # virtual pixel -> source pixel
            image = cv2.warpPerspective(source, to_source, SIZE, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            x1, y1, x2, y2 = box.astype(int)
            image[y1:y2, x1:x2] = rng.integers(0, 255, 3)[None, None]  # a 'person' in the frame's own colours
            image[y1 + (k * 3) % (y2 - y1), x1:x2] = 255  # with texture that moves with it, not the scene
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return virtual


@pytest.mark.parametrize("yaw, pitch, roll", [(30.0, 0.0, 0.0), (-20.0, 10.0, 5.0), (12.0, -12.0, -10.0)])
def test_synthetic_pan_rotation_error(tmp_path: Path, yaw: float, pitch: float, roll: float) -> None:
    frames = 60
    truth = _pan(frames, yaw, pitch, roll)
    box = np.array([260.0, 90.0, 340.0, 300.0])
    video = tmp_path / "pan.mp4"
    intrinsics = _write_pan(video, _source_frame(), truth, box)
    estimator = CameraMotionEstimator(intrinsics, 30.0)
    for position, frame in enumerate(VideoReader(video, 0, None, 1)):
        estimator.add(position, frame.image, box[None], np.array([0]))
    motion = estimator.finish()
    assert motion.model == "rotating"
    assert len(motion) == frames
    error = np.degrees((Rotation.from_matrix(motion.rotations).inv() * truth).magnitude())
    assert error.mean() < 0.3, error
    assert error.max() < 1.0, error
    assert np.all(motion.centres == 0)


def test_tripod_clip_is_static_exactly() -> None:
    info = probe(PEDESTRIANS)
    detections = read_mot_detections(ASSETS / "detections" / "pedestrians.det.txt", 0.0)
    estimator = CameraMotionEstimator(Intrinsics.default_for(info.width, info.height), info.fps)
    for position, frame in enumerate(VideoReader(PEDESTRIANS, 0, 200, 1)):
        found = detections.get(frame.index)
        estimator.add(position, frame.image, found.xyxy if found is not None else np.zeros((0, 4)))
    motion = estimator.finish()
    assert motion.model == "static"
    assert len(motion) == 200
    assert np.array_equal(motion.rotations, np.repeat(np.eye(3)[None], 200, 0))
    assert np.array_equal(motion.centres, np.zeros((200, 3)))
    assert motion.step_degrees.max() < 0.05 and motion.step_pixels.max() < 0.25


def test_running_clip_camera_follows_the_runner() -> None:
    """running.mp4 is not a tripod shot: the camera follows the runner (the background
    moves by about a third of the frame); it must not come out static."""
    info = probe(RUNNING)
    estimator = CameraMotionEstimator(Intrinsics.default_for(info.width, info.height), info.fps, size=320)
    for position, frame in enumerate(VideoReader(RUNNING, 0, 60, 1)):
        estimator.add(position, frame.image, np.array([[600.0, 100.0, 1000.0, 1000.0]]))
    motion = estimator.finish()
    assert motion.model in ("rotating", "moving")
    assert np.median(motion.step_pixels) > 3.0


def test_forced_static_is_identity_without_solving() -> None:
    estimator = CameraMotionEstimator(Intrinsics.default_for(64, 48), 30.0, requested="static")
    for position in range(5):
        estimator.add(position, np.random.default_rng(position).integers(0, 255, (48, 64, 3), np.uint8), np.zeros((0, 4)))
    motion = estimator.finish()
    assert motion.model == "static" and np.array_equal(motion.rotations, np.repeat(np.eye(3)[None], 5, 0))

