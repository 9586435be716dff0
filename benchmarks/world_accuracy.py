"""The camera-motion and world stages' accuracy on the tests' synthetic cases, printed as
the numbers docs/world.md quotes: rotation error on synthetic pans (warped from a real frame
of running.mp4), a moving camera's rotation, travel direction and length errors (a
ray-cast floor and wall), floor normal / height / root error and foot slide on generated
walkers.

    PYTHONPATH=. python benchmarks/world_accuracy.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import av
from test_camera_motion import PEDESTRIANS, SIZE, _pan, _source_frame, _write_pan
from test_world import _scene

from strcli.body.camera import Intrinsics
from strcli.body.generated import make_smpl_arrays
from strcli.body.smpl import Body, SMPLArrays
from strcli.road.camera_motion import CameraMotionEstimator
from strcli.road.video import VideoReader
from strcli.road.world import build_world, lock_feet


def pans() -> None:
    box = np.array([260.0, 90.0, 340.0, 300.0])
    source = _source_frame()
    for yaw, pitch, roll in [(30.0, 0.0, 0.0), (-20.0, 10.0, 5.0), (12.0, -12.0, -10.0), (25.0, 8.0, 0.0)]:
        truth = _pan(60, yaw, pitch, roll)
        with tempfile.TemporaryDirectory() as folder:
            video = Path(folder) / "pan.mp4"
            intrinsics = _write_pan(video, source, truth, box)
            estimator = CameraMotionEstimator(intrinsics, 30.0)
            for position, frame in enumerate(VideoReader(video, 0, None, 1)):
                estimator.add(position, frame.image, box[None], np.array([0]))
        motion = estimator.finish()
        error = np.degrees((Rotation.from_matrix(motion.rotations).inv() * truth).magnitude())
        print(f"pan yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}: model {motion.model}, "
              f"rotation error mean {error.mean():.3f} deg, max {error.max():.3f} deg")


def _render_moving(path: Path, centres: np.ndarray, turns: Rotation, person: np.ndarray) -> tuple[Intrinsics, np.ndarray, np.ndarray]:
    """A 3D scene seen by a moving camera, ray-cast into an H.264 video: a floor (y = 0)
    textured with a frame of running.mp4 and a wall (z = -12 m) with one of pedestrians.avi,
    and a 1.7 m tall flat 'person' standing at `person` (x, z). The camera (y down, z
    forward) is at `centres` (P, 3), turned by `turns` from looking down -z tilted 10
    degrees. Returns the intrinsics, the person's box (P, 4) and depth (P,) per frame."""
    import cv2

    intrinsics = Intrinsics.default_for(*SIZE)
    floor_texture = _source_frame()
    wall_texture = next(iter(VideoReader(PEDESTRIANS, 0, 1, 1))).image
    u, v = np.meshgrid(np.arange(SIZE[0]) + 0.5, np.arange(SIZE[1]) + 0.5)
    rays = np.stack((u, v, np.ones_like(u)), -1) @ np.linalg.inv(intrinsics.matrix).T  # camera frame
    base = Rotation.from_euler("X", -10, degrees=True).as_matrix() @ np.diag([1.0, -1.0, -1.0])
    boxes, depths = [], []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "18"}
        for centre, turn in zip(centres, turns):
            to_world = turn.as_matrix() @ base  # camera -> world
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
            depths.append(float(((np.array([person[0], 0.9, person[1]]) - centre) @ to_world)[2]))
            a, b = np.clip(box, 0, [SIZE[0], SIZE[1], SIZE[0], SIZE[1]]).astype(int).reshape(2, 2)
            image[a[1]:b[1], a[0]:b[0]] = (90, 60, 50)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image.astype(np.uint8)), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return intrinsics, np.array(boxes), np.array(depths)


def moving_camera_errors(folder: Path) -> tuple[str, float, float, float]:
    """A camera 1.5 m high dollying 1.5 m sideways and 1 m forward over 60 frames while
    turning 8 degrees: (model chosen, rotation error max (deg), direction error of the whole
    travel (deg), its length error (fraction))."""
    frames = 60
    s = np.linspace(0, 1, frames)
    centres = np.stack((-0.75 + 1.5 * s, np.full(frames, 1.5), 4.0 - 1.0 * s), 1)
    turns = Rotation.from_euler("Y", (8 * s)[:, None], degrees=True)
    video = folder / "dolly.mp4"
    intrinsics, boxes, depths = _render_moving(video, centres, turns, np.array([0.2, -1.0]))
    estimator = CameraMotionEstimator(intrinsics, 30.0, "auto")
    for position, frame in enumerate(VideoReader(video, 0, None, 1)):
        estimator.add(position, frame.image, boxes[position][None], np.array([0]))
    motion = estimator.finish({0: dict(enumerate(depths.tolist()))})
    base = Rotation.from_euler("X", -10, degrees=True).as_matrix() @ np.diag([1.0, -1.0, -1.0])
    first = turns[0].as_matrix() @ base  # first camera -> world
    truth = (centres - centres[0]) @ first  # camera centres in the first camera
    truth_rotation = Rotation.from_matrix(np.einsum("ji,njk->nik", first, turns.as_matrix() @ base))
    rotation_error = np.degrees((Rotation.from_matrix(motion.rotations).inv() * truth_rotation).magnitude()).max()
    travel, true_travel = motion.centres[-1], truth[-1]
    cosine = travel @ true_travel / max(np.linalg.norm(travel) * np.linalg.norm(true_travel), 1e-12)
    direction = float(np.degrees(np.arccos(np.clip(cosine, -1, 1))))
    length = float(np.linalg.norm(travel) / np.linalg.norm(true_travel) - 1)
    return motion.model, float(rotation_error), direction, length



def moving() -> None:
    with tempfile.TemporaryDirectory() as folder:
        model, rotation, direction, length = moving_camera_errors(Path(folder))
    print(f"moving camera (dolly 1.8 m while turning 8 deg, ray-cast floor and wall): model {model}, rotation "
          f"error max {rotation:.2f} deg, travel direction error {direction:.1f} deg, length error {100 * length:+.0f}%")


def worlds() -> None:
    body = Body(SMPLArrays.from_mapping(make_smpl_arrays(seed=0), "generated"))
    for tilt, pan in [(10.0, 25.0), (20.0, 15.0), (30.0, -20.0)]:
        tracks, motion, truth, expected, to_first, *_ = _scene(body, tilt, pan)
        world = build_world(tracks, motion)
        normal = np.degrees(np.arccos(np.clip(world.frame.floor.normal @ expected.axes[1], -1, 1)))
        floor = np.array([[x, 0.0, z] for x in (-2.0, 0.0, 2.0) for z in (-2.0, 0.0, 2.0)])
        height = np.abs(world.frame.points(to_first(floor))[:, 1]).max()
        root = max(np.linalg.norm(t.joints3d[:, 0] - expected.points(to_first(j[:, 0])), axis=1).max()
                   for t, j in zip(world.tracks, truth))
        print(f"tilt {tilt:.0f} pan {pan:+.0f}, 4 people: floor normal {normal:.3f} deg, floor height "
              f"{100 * height:.2f} cm, root max {100 * root:.2f} cm")
        tracks, motion, *_ = _scene(body, tilt, pan, drift=0.008)
        world = build_world(tracks, motion)
        slides = [lock_feet(t, p.sole_heights)[1:] for t, p in zip(world.tracks, tracks)]
        print("  foot slide with 0.8 cm/frame drift, before -> after --foot-lock (cm per contact frame): "
              + ", ".join(f"{b:.2f} -> {a:.3f}" for b, a in slides))


if __name__ == "__main__":
    pans()
    moving()
    worlds()
