"""The camera-motion stage (strcli/road/camera_motion.py) on synthetic pans made from a real
frame of a shared clip, on the shared tripod clip, and on moving cameras ray-cast over a
floor and a wall textured with real frames."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ASSETS
from scipy.spatial.transform import Rotation

from strcli.body.camera import Intrinsics
from strcli.road.camera_motion import CameraMotion, CameraMotionEstimator
from strcli.road.tracking import read_mot_detections
from strcli.road.video import VideoReader, probe

RUNNING = ASSETS / "videos" / "running.mp4"
MOVING_BASE = Rotation.from_euler("X", -10, degrees=True).as_matrix() @ np.diag([1.0, -1.0, -1.0])  # camera -> scene: 10 degrees down
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


def _write_moving(path: Path, centres: np.ndarray, turns: Rotation, person: np.ndarray) -> tuple[Intrinsics, np.ndarray, np.ndarray]:
    """A 3D scene seen by a moving camera, ray-cast into an H.264 video: a floor (y = 0)
    textured with a frame of running.mp4 and a wall (z = -12 m) with one of pedestrians.avi,
    and a 1.7 m tall flat 'person' standing at `person` (x, z). The camera (y down, z
    forward) is at `centres` (P, 3), turned by `turns` from looking down -z tilted 10
    degrees. Returns the intrinsics, the person's box (P, 4) and the depth of its feet (P,) per
    frame (camera z, metres)."""
    import cv2

    intrinsics = Intrinsics.default_for(*SIZE)
    floor_texture = _source_frame()
    wall_texture = next(iter(VideoReader(PEDESTRIANS, 0, 1, 1))).image
    u, v = np.meshgrid(np.arange(SIZE[0]) + 0.5, np.arange(SIZE[1]) + 0.5)
    rays = np.stack((u, v, np.ones_like(u)), -1) @ np.linalg.inv(intrinsics.matrix).T  # camera frame
    boxes, depths = [], []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "18"}
        for centre, turn in zip(centres, turns):
            to_world = turn.as_matrix() @ MOVING_BASE  # camera -> world
            world = rays @ to_world.T
            t_floor = np.where(world[..., 1] < -1e-6, -centre[1] / np.minimum(world[..., 1], -1e-6), np.inf)
            t_wall = np.where(world[..., 2] < -1e-6, (-12.0 - centre[2]) / np.minimum(world[..., 2], -1e-6), np.inf)
            hit_floor = t_floor < t_wall
            t = np.where(hit_floor, t_floor, t_wall)
            point = centre + world * t[..., None]
            fx = ((point[..., 0] + 10) / 20 * floor_texture.shape[1]).astype(np.float32)
            fz = ((point[..., 2] + 12) / 16 * floor_texture.shape[0]).astype(np.float32)
            wx = ((point[..., 0] + 15) / 30 * wall_texture.shape[1]).astype(np.float32)
            wy = ((6 - point[..., 1]) / 6 * wall_texture.shape[0]).astype(np.float32)
            image = np.where(hit_floor[..., None],
                             cv2.remap(floor_texture, fx, fz, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT),
                             cv2.remap(wall_texture, wx, wy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
            corners = np.array([[person[0] - 0.3, 0.0, person[1]], [person[0] + 0.3, 1.7, person[1]]])
            seen = (corners - centre) @ to_world  # world -> camera
            pixels = seen @ intrinsics.matrix.T
            pixels = pixels[:, :2] / pixels[:, 2:]
            x1, x2 = sorted(pixels[:, 0])
            y1, y2 = sorted(pixels[:, 1])
            box = np.array([x1, y1, x2, y2])
            boxes.append(box)
            depths.append(float(((np.array([person[0], 0.0, person[1]]) - centre) @ to_world)[2]))  # its feet
            a, b = np.clip(box, 0, [SIZE[0], SIZE[1], SIZE[0], SIZE[1]]).astype(int).reshape(2, 2)
            image[a[1]:b[1], a[0]:b[0]] = (90, 60, 50)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image.astype(np.uint8)), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return intrinsics, np.array(boxes), np.array(depths)


def _moving_case(folder: Path, name: str, frames: int = 60) -> tuple[Path, Intrinsics, np.ndarray, np.ndarray,
                                                                    np.ndarray, np.ndarray]:
    """A moving camera 1.5 m above a ray-cast floor, a person 5 m ahead: `dolly` moves 1.5 m
    sideways and 1 m forward while turning 8 degrees, `truck` 1 m sideways without turning.
    Returns the video, intrinsics, the person's boxes (P, 4) and feet's depths (P,), and the true
    camera motion relative to the first camera: rotations (P, 3, 3) and centres (P, 3)."""
    s = np.linspace(0, 1, frames)
    if name == "dolly":
        centres = np.stack((-0.75 + 1.5 * s, np.full(frames, 1.5), 4.0 - 1.0 * s), 1)
        turns, person = Rotation.from_euler("Y", (8 * s)[:, None], degrees=True), np.array([0.2, -1.0])
    else:
        centres = np.stack((-0.5 + 1.0 * s, np.full(frames, 1.5), np.full(frames, 4.0)), 1)
        turns, person = Rotation.from_euler("Y", np.zeros((frames, 1))), np.array([0.0, -1.0])
    video = folder / f"{name}.mp4"
    intrinsics, boxes, depths = _write_moving(video, centres, turns, person)
    first = turns[0].as_matrix() @ MOVING_BASE  # the first camera -> the scene
    rotations = np.einsum("ji,njk->nik", first, turns.as_matrix() @ MOVING_BASE)
    return video, intrinsics, boxes, depths, rotations, (centres - centres[0]) @ first


def moving_errors(motion: CameraMotion, rotations: np.ndarray, centres: np.ndarray) -> dict[str, float]:
    """A moving camera's errors against the truth (rotations (P, 3, 3), centres (P, 3) in the
    first camera): rotation (degrees, mean and max over frames), travel direction (degrees:
    of the whole path, and mean and max over keyframe steps), scale (the path's length, %),
    final position (cm)."""
    rotation = np.degrees((Rotation.from_matrix(motion.rotations).inv() * Rotation.from_matrix(rotations)).magnitude())
    found, true = np.diff(motion.centres[motion.keyframes], axis=0), np.diff(centres[motion.keyframes], axis=0)

    def degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        cosine = np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
        return np.degrees(np.arccos(np.clip(cosine, -1, 1)))

    steps = degrees(found, true)
    return {"rotation_mean": float(rotation.mean()), "rotation_max": float(rotation.max()),
            "direction": float(degrees(motion.centres[-1], centres[-1])),
            "step_direction_mean": float(steps.mean()), "step_direction_max": float(steps.max()),
            "scale_percent": float(100 * (np.linalg.norm(found, axis=1).sum() / np.linalg.norm(true, axis=1).sum() - 1)),
            "final_cm": float(100 * np.linalg.norm(motion.centres[-1] - centres[-1]))}


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
    moves by about a third of the frame) along the track: it comes out moving."""
    info = probe(RUNNING)
    estimator = CameraMotionEstimator(Intrinsics.default_for(info.width, info.height), info.fps, size=320)
    for position, frame in enumerate(VideoReader(RUNNING, 0, 60, 1)):
        estimator.add(position, frame.image, np.array([[600.0, 100.0, 1000.0, 1000.0]]))
    motion = estimator.finish()
    assert motion.model == "moving", motion.window_parallax  # windows' parallax 2.86 keyframe px (320 px), threshold 2.0
    assert np.median(motion.step_pixels) > 3.0


def test_a_camera_never_seen_is_taken_as_still_with_a_warning() -> None:
    """A box over the whole frame hides every background point of running.mp4 (a moving
    camera): `auto` cannot tell, takes it as still, and says so (it said nothing)."""
    info = probe(RUNNING)
    estimator = CameraMotionEstimator(Intrinsics.default_for(info.width, info.height), info.fps, size=320)
    everything = np.array([[0.0, 0.0, float(info.width), float(info.height)]])
    for position, frame in enumerate(VideoReader(RUNNING, 0, 16, 1)):
        estimator.add(position, frame.image, everything, np.array([0]))
    motion = estimator.finish()
    assert motion.model == "static" and np.array_equal(motion.rotations, np.repeat(np.eye(3)[None], 16, 0))
    assert len(motion.warnings) == 1 and "none of the 5 keyframe steps had background" in motion.warnings[0]
    assert "--camera rotating" in motion.warnings[0]


def test_forced_static_is_identity_without_solving() -> None:
    estimator = CameraMotionEstimator(Intrinsics.default_for(64, 48), 30.0, requested="static")
    for position in range(5):
        estimator.add(position, np.random.default_rng(position).integers(0, 255, (48, 64, 3), np.uint8), np.zeros((0, 4)))
    motion = estimator.finish()
    assert motion.model == "static" and np.array_equal(motion.rotations, np.repeat(np.eye(3)[None], 5, 0))



def _estimate_moving(video: Path, intrinsics: Intrinsics, boxes: np.ndarray, depths: np.ndarray | None,
                     requested: str) -> CameraMotion:
    estimator = CameraMotionEstimator(intrinsics, 30.0, requested)
    for position, frame in enumerate(VideoReader(video, 0, None, 1)):
        estimator.add(position, frame.image, boxes[position][None], np.array([0]))
    return estimator.finish({0: dict(enumerate(depths.tolist()))} if depths is not None else None)


def test_moving_camera_translation_and_scale(tmp_path: Path) -> None:
    """The dolly (1.8 m while turning 8 degrees): `auto` sees a moving camera; its turn, its
    direction of travel and the scale from the person's depth (limits: the errors measured
    in docs/world.md with margin)."""
    video, intrinsics, boxes, depths, rotations, centres = _moving_case(tmp_path, "dolly", frames=45)
    motion = _estimate_moving(video, intrinsics, boxes, depths, "auto")
    assert motion.model == "moving" and not motion.warnings
    errors = moving_errors(motion, rotations, centres)
    assert errors["rotation_max"] < 0.5, errors  # measured 0.17 (45 frames)
    assert errors["direction"] < 2.0 and errors["step_direction_mean"] < 3.0, errors  # 1.31, 1.31 (a window every 4 steps; every 2: 0.70, 0.83)
    assert abs(errors["scale_percent"]) < 6.0, errors  # +1.5
    assert errors["final_cm"] < 10.0, errors  # 4.9
    assert abs(motion.camera_height - 1.5) < 0.15 and motion.scale_source.startswith("camera height")  # 1.48


@pytest.fixture(scope="module")
def truck(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Intrinsics, np.ndarray, np.ndarray, np.ndarray,
                                                             np.ndarray]:
    """The truck (1 m sideways in 1.5 s, no turn), 45 frames: `_moving_case`'s values, made once."""
    return _moving_case(tmp_path_factory.mktemp("truck"), "truck", frames=45)


def test_truck_is_moving_under_auto(truck: tuple) -> None:
    """A camera travelling sideways without turning: over one keyframe step its parallax is
    within the flow's noise (the floor's is explained by a roll and a pan), so `auto` once
    called it `rotating` and read the travel as a turn; over the 4-step windows it is clear.
    Its turn, direction and scale (limits: the dolly's; measured in docs/world.md)."""
    video, intrinsics, boxes, depths, rotations, centres = truck
    motion = _estimate_moving(video, intrinsics, boxes, depths, "auto")
    assert np.median(motion.parallax_pixels) < 1.5  # 0.66: the single steps show no travel, the windows decide
    assert motion.model == "moving" and not motion.warnings, motion.window_parallax
    assert np.median(motion.window_parallax) > 4.0, motion.window_parallax  # 5.10 (threshold 2.0)
    errors = moving_errors(motion, rotations, centres)
    assert errors["rotation_max"] < 0.5, errors  # measured 0.14
    assert errors["direction"] < 2.0 and errors["step_direction_mean"] < 3.0, errors  # 0.94, 0.92
    assert abs(errors["scale_percent"]) < 6.0, errors  # -0.5
    assert errors["final_cm"] < 10.0, errors  # 1.7
    assert abs(motion.camera_height - 1.5) < 0.15  # 1.41


def test_moving_camera_without_people_has_no_scale(truck: tuple) -> None:
    """No person's depth: the direction is found but no metres, so the camera stays put, saying so."""
    video, intrinsics, boxes, _, _, _ = truck
    motion = _estimate_moving(video, intrinsics, boxes, None, "moving")
    assert motion.model == "moving" and np.all(motion.centres == 0)
    assert motion.scale_source.startswith("none") and any("no metric scale" in w for w in motion.warnings)
    assert np.isnan(motion.camera_height)


def test_an_implausible_camera_height_is_warned_about(truck: tuple) -> None:
    """People's depths 50 times too small (an untrained network's, say) put the camera 3 cm
    above the floor: the path is scaled by it, and the manifest says the scale is doubtful."""
    video, intrinsics, boxes, depths, _, _ = truck
    motion = _estimate_moving(video, intrinsics, boxes, depths / 50, "moving")
    assert 0.02 < motion.camera_height < 0.04, motion.camera_height  # 1.41 m / 50
    (warning,) = motion.warnings
    assert warning.startswith(f"camera model 'moving': the people's depths put the camera {motion.camera_height:.2f} m")
    assert "outside 0.3-30 m" in warning
