"""AMASS files: SMPL motion in AMASS's layout (z up, metres, one frame rate).

`to_amass` turns a motion given in the camera frame (CAMERA_TO_ZUP) or in the video's world
(`strcli.road.world.Y_UP_TO_Z_UP`: the floor becomes z = 0) into AMASS's arrays, resampled
to a constant rate when the video's frame rate varies (`resample_motion`).
"""

from __future__ import annotations

import numpy as np

# Camera frame (x right, y down, z forward) -> AMASS world (z up, y forward).
CAMERA_TO_ZUP = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float64)


def resample_motion(times: np.ndarray, global_orient: np.ndarray, body_pose: np.ndarray,
                    transl: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A motion at increasing `times` (N,) seconds -> the same motion at a constant `rate`
    (fps): samples at times[0] + k / rate up to times[-1]. Each joint's rotation (axis-angle
    (N, 3) per joint: global_orient (N, 3), body_pose (N, 69)) is interpolated along the
    shortest arc (scipy's `Slerp`), the translation (N, 3) linearly. Returns (sample times
    (M,), global_orient (M, 3), body_pose (M, 69), transl (M, 3))."""
    from scipy.spatial.transform import Rotation, Slerp

    from strcli.road.timing import increasing_times

    # Strictly increasing, as Slerp needs (the reader's times are; one step of `rate` mends others).
    times = increasing_times(np.asarray(times, np.float64), 1 / rate)
    count = int(np.floor((times[-1] - times[0]) * rate + 1e-6)) + 1
    samples = np.minimum(times[0] + np.arange(count) / rate, times[-1])
    poses = np.concatenate((global_orient, body_pose), axis=1).astype(np.float64).reshape(len(times), -1, 3)
    out = np.empty((count, poses.shape[1], 3))
    for joint in range(poses.shape[1]):
        out[:, joint] = Slerp(times, Rotation.from_rotvec(poses[:, joint]))(samples).as_rotvec()
    moved = np.stack([np.interp(samples, times, transl[:, k].astype(np.float64)) for k in range(3)], axis=1)
    out = out.reshape(count, -1)
    return samples, out[:, :3], out[:, 3:], moved


def to_amass(global_orient: np.ndarray, body_pose: np.ndarray, betas: np.ndarray, transl: np.ndarray,
             rest_pelvis: np.ndarray, fps: float, frames: np.ndarray, times: np.ndarray | None = None,
             rate: float | None = None, to_zup: np.ndarray = CAMERA_TO_ZUP) -> dict[str, np.ndarray]:
    """SMPL in a frame -> AMASS layout (z up): poses (N, 72), trans (N, 3), betas (10,),
    mocap_framerate, gender. The whole body is rotated about the frame's origin by `to_zup`
    (CAMERA_TO_ZUP for the camera frame; `strcli.road.world.Y_UP_TO_Z_UP` for the video's
    world, whose floor then is z = 0): the root orientation becomes R @ R_root and, since SMPL
    rotates about the rest pelvis J0, the translation becomes R (J0 + t) - J0.

    AMASS files hold one frame rate. With `times` (N,) seconds and a `rate` (a variable
    frame rate), the motion is first resampled to `rate` fps (`resample_motion`): the file
    then has `resampled` True, `times` (M,) the sample times (seconds from the video's first
    frame) and `source_frames`/`source_times` the frames it was made from. Otherwise
    `resampled` is False and `frames` are the video frames of the rows."""
    from scipy.spatial.transform import Rotation

    resampled = times is not None and rate is not None and len(frames) > 1
    source = {"source_frames": frames.astype(np.int64)}
    if resampled:
        source["source_times"] = np.asarray(times, np.float64)
        sample_times, global_orient, body_pose, transl = resample_motion(times, global_orient, body_pose,
                                                                        transl, float(rate))
    rot = np.asarray(to_zup, np.float64)
    root = Rotation.from_matrix(rot @ Rotation.from_rotvec(global_orient.astype(np.float64)).as_matrix())
    pelvis = rest_pelvis.astype(np.float64)
    trans = (rot @ (pelvis[None] + transl.astype(np.float64)).T).T - pelvis
    out_rate = float(rate) if resampled else fps / (np.diff(frames).min() if len(frames) > 1 else 1)
    out = {
        "poses": np.concatenate((root.as_rotvec(), body_pose.astype(np.float64)), axis=1).astype(np.float32),
        "trans": trans.astype(np.float32),
        "betas": betas.mean(axis=0).astype(np.float32),
        "mocap_framerate": np.float64(out_rate),
        "mocap_frame_rate": np.float64(out_rate),
        "gender": np.array("neutral"),
        "surface_model_type": np.array("smpl"),
        "resampled": np.bool_(resampled),
    }
    if resampled:
        out["times"] = sample_times.astype(np.float64)
        out.update(source)
    else:
        out["frames"] = frames.astype(np.int64)
    return out
