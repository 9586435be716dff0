"""The camera-motion and world stages' accuracy on the tests' synthetic cases, printed as
the numbers docs/world.md quotes: rotation error on synthetic pans (warped from a real frame
of running.mp4), moving cameras' rotation, travel direction, scale and final position
errors (a ray-cast floor and wall, a dolly and a truck), floor normal / height / root error and foot slide on generated
walkers, and a walker without contacts (its depth 20% off) put on the floor along the camera's rays.

    PYTHONPATH=. python benchmarks/world_accuracy.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_camera_motion import (
    _moving_case,
    _pan,
    _source_frame,
    _write_pan,
    moving_errors,
)
from test_world import _scene

from strcli.body.generated import make_smpl_arrays
from strcli.body.smpl import Body, SMPLArrays
from strcli.road.camera_motion import CameraMotion, CameraMotionEstimator
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
        print(f"pan yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}: model {motion.model} ({_parallax(motion)}), "
              f"rotation error mean {error.mean():.3f} deg, max {error.max():.3f} deg")


def _parallax(motion: CameraMotion) -> str:
    """What `auto` decided on: its windows' parallax (keyframe px), and the single steps'."""
    windows = motion.window_parallax
    measured = f"median {np.median(windows):.2f}, {windows.min():.2f}-{windows.max():.2f}" if len(windows) else "none"
    return (f"windows' parallax {measured} keyframe px over {len(windows)} windows; steps' median "
            f"{np.median(motion.parallax_pixels):.2f} px")


def moving() -> None:
    """The moving cameras: `dolly` (1.8 m while turning 8 degrees) and `truck` (1 m sideways),
    both 1.5 m above a ray-cast floor and a wall, a person 5 m away, 60 frames at 30 fps."""
    for name, requested in [("dolly", "auto"), ("truck", "auto"), ("truck", "moving")]:
        with tempfile.TemporaryDirectory() as folder:
            video, intrinsics, boxes, depths, rotations, centres = _moving_case(Path(folder), name)
            estimator = CameraMotionEstimator(intrinsics, 30.0, requested)
            for position, frame in enumerate(VideoReader(video, 0, None, 1)):
                estimator.add(position, frame.image, boxes[position][None], np.array([0]))
            motion = estimator.finish({0: dict(enumerate(depths.tolist()))})
        e = moving_errors(motion, rotations, centres)
        seen = f" ({_parallax(motion)})" if requested == "auto" else ""
        line = (f"moving camera {name} (--camera {requested}): model {motion.model}{seen}, rotation error mean "
                f"{e['rotation_mean']:.3f} deg, max {e['rotation_max']:.3f} deg")
        if motion.model == "moving":
            line += (f"; travel direction error {e['direction']:.2f} deg (whole path), per keyframe step mean "
                     f"{e['step_direction_mean']:.2f} deg, max {e['step_direction_max']:.2f} deg; path length "
                     f"{e['scale_percent']:+.1f}%; final position error {e['final_cm']:.1f} cm; camera height "
                     f"{motion.camera_height:.2f} m (truth 1.50 m)")
        print(line)


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



def without_contacts() -> None:
    """One walker of four (person 2) with the network's depth 20% too far or too near, so no
    contact: its root error before (the network's depth, in the others' world) and after
    grounding along the rays; a panning camera, and one also moving 1.4 m."""
    body = Body(SMPLArrays.from_mapping(make_smpl_arrays(seed=0), "generated"))
    for pose_noise in (0.0, 1.5):
        for travel in ((0.0, 0.0, 0.0), (1.0, 0.0, -1.0)):
            for error in (1.2, 0.8):
                tracks, motion, truth, expected, to_first, *_ = _scene(body, 20.0, 15.0, pose_noise=pose_noise,
                                                                     depth_errors={2: error}, travel=travel)
                world = build_world(tracks, motion)
                track = tracks[2]
                network = (np.einsum("nij,nkj->nki", motion.rotations[track.positions], track.joints3d)
                           + motion.centres[track.positions][:, None])
                true_root = expected.points(to_first(truth[2][:, 0]))
                before = np.linalg.norm(world.frame.points(network)[:, 0] - true_root, axis=1)
                after = np.linalg.norm(world.tracks[2].joints3d[:, 0] - true_root, axis=1)
                grounding = world.tracks[2].grounding
                print(f"depth x{error:.1f}, {'moving' if any(travel) else 'panning'} camera, pose noise "
                      f"{pose_noise:.1f} deg: {grounding.method}, factor {grounding.factor:.4f} (truth "
                      f"{1 / error:.4f}); root error before mean {100 * before.mean():.1f} cm, max "
                      f"{100 * before.max():.1f} cm; after mean {100 * after.mean():.2f} cm, max "
                      f"{100 * after.max():.2f} cm")


if __name__ == "__main__":
    pans()
    moving()
    worlds()
    without_contacts()
