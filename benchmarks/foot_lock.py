"""`--foot-lock` on the tests' generated walkers and stander (tests/test_world.py), printed
as docs/world.md's Measured table quotes it: foot slide (cm per contact frame) before the
lock, with the root correction alone and with the legs' IK, for a whole-body drift and for
a network's per-joint noise (degrees on every local rotation, as `_scene(pose_noise=...)`
makes it; the joints are SMPL's for the noisy pose), how far the joints are from the truth,
how much the IK turned the knees and hips, the largest reach, how far the reach clamp left
an ankle from its pin, and the real body posed with
the corrected parameters against the locked joints.

    PYTHONPATH=. python benchmarks/foot_lock.py [--pose-noise 0 1 1.5 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_world import _joints, _scene

from strcli.body.generated import make_smpl_arrays
from strcli.body.smpl import Body, SMPLArrays
from strcli.road.world import LEGS, MAX_REACH, build_world, lock_feet, pin_offsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pose-noise", type=float, nargs="+", default=[0.0, 1.0, 1.5, 2.0],
                        help="degrees of noise on every local rotation")
    parser.add_argument("--drift", type=float, default=0.008, help="whole-body drift, metres a frame")
    args = parser.parse_args()
    body = Body(SMPLArrays.from_mapping(make_smpl_arrays(seed=0), "generated"))
    print("pose noise | joint error cm (all / feet) | person | contact frames | slide before | root only | "
          "with IK | knee turned max deg | hip turned max deg | reach max / leg | pin missed max mm | SMPL vs locked joints mm | ms")
    for noise in args.pose_noise:
        tracks, motion, truth, _, _, cameras, centre = _scene(body, 20.0, 15.0, drift=args.drift, pose_noise=noise)
        clean, *_ = _scene(body, 20.0, 15.0, pose_noise=noise, noise=0.0)
        error = np.concatenate([np.linalg.norm(np.einsum("nij,nkj->nki", cameras, t.joints3d) + centre - joints, axis=2)
                                for t, joints in zip(clean, truth)])
        world = build_world(tracks, motion)
        for track, person in zip(world.tracks, tracks):
            root, before, root_only = lock_feet(track, person.sole_heights)
            started = time.perf_counter()
            locked, _, after = lock_feet(track, person.sole_heights, person.body_pose)
            ms = 1000 * (time.perf_counter() - started)
            turned = np.degrees((Rotation.from_rotvec(person.body_pose.reshape(-1, 3)).inv()
                                 * Rotation.from_rotvec(locked.body_pose.reshape(-1, 3))).magnitude()).reshape(-1, 23)
            j = locked.joints3d
            reach = max(float((np.linalg.norm(j[:, a] - j[:, h], axis=1)
                               / (np.linalg.norm(j[:, k] - j[:, h], axis=1) + np.linalg.norm(j[:, a] - j[:, k], axis=1))).max())
                        for h, k, a, _ in LEGS)
            missed = max(float(np.linalg.norm(j[:, a] - root.joints3d[:, a] - pin_offsets(
                root.joints3d[:, a], track.contacts[:, side], float(person.sole_heights[side])), axis=1).max())
                for side, (_, _, a, _) in enumerate(LEGS))
            rebuilt = _joints(body, locked.global_orient, locked.body_pose, locked.transl)
            kind = "standing" if track.track_id == 3 else "walking"  # _scene's fourth person stands
            print(f"{noise:.1f} | {100 * error.mean():.2f} / {100 * error[:, [7, 8, 10, 11]].mean():.2f} | "
                  f"{track.track_id} {kind} | {int(track.contacts.any(axis=1).sum())} | {before:.2f} | {root_only:.2f} | "
                  f"{after:.2f} | {turned[:, [3, 4]].max():.1f} | {turned[:, [0, 1]].max():.1f} | {reach:.4f} | "
                  f"{1000 * missed:.2f} | {1000 * np.abs(rebuilt - j).max():.3f} | {ms:.1f}")
    print(f"(reach: the hip-ankle distance over thigh + shin; the IK clamps it to {MAX_REACH} or the network's own)")


if __name__ == "__main__":
    main()
