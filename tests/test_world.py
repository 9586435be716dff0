"""The world stage (strcli/road/grounding.py, strcli/road/world.py) on generated bodies
walking and standing on a floor, seen by a camera tilted 10-30 degrees that pans."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from strcli.body.generated import make_smpl_arrays
from strcli.body.smpl import Body, SMPLArrays
from strcli.road.camera_motion import CameraMotion
from strcli.road.grounding import (
    DEPTH_FACTOR_RANGE,
    FOOT_JOINTS,
    MIN_RAY_FRAMES,
    Floor,
    ground_along_rays,
)
from strcli.road.world import (
    LEGS,
    MAX_REACH,
    TrackInCamera,
    build_world,
    foot_slide,
    ground_track,
    lock_feet,
    pin_offsets,
    place_in_world,
    world_frame,
)

FPS = 30.0
FRAMES = 90
HALF_STEP = 15  # frames per step


@pytest.fixture(scope="module")
def body() -> Body:
    return Body(SMPLArrays.from_mapping(make_smpl_arrays(seed=0), "generated"))


def _rest(body: Body) -> tuple[np.ndarray, np.ndarray, float]:
    """(24, 3) rest joints, (4,) foot joints above the sole, the sole's y."""
    with torch.no_grad():
        out = body.axis_angle(torch.zeros(1, 3), torch.zeros(1, 69), torch.zeros(1, 10))
    joints, sole = out.joints[0].numpy().astype(np.float64), float(out.vertices[0, :, 1].min())
    return joints, joints[list(FOOT_JOINTS), 1] - sole, sole


def _person(body: Body, heading: float, start: tuple[float, float], walking: bool
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A person in the true world (y up, floor y = 0): (N, 3) root axis-angle, (N, 69) body
    pose, (N, 3) translation, (N, 24, 3) joints. Walking: the stance foot stays put, flat on
    the floor, while the other swings."""
    a, b = 0.35, 0.6
    pose = np.zeros((FRAMES, 69))
    stance_of = np.zeros(FRAMES, int)
    if walking:
        for t in range(FRAMES):
            s = (t % HALF_STEP) / HALF_STEP
            left = (t // HALF_STEP) % 2 == 0
            stance, swing = (0, 1) if left else (1, 0)  # hips are joints 1, 2 (body_pose rows 0, 1)
            stance_hip, swing_hip, knee = -a + 2 * a * s, a - 2 * a * s, b * np.sin(np.pi * s)
            rows = pose[t].reshape(23, 3)
            rows[stance, 0], rows[stance + 6, 0] = stance_hip, -stance_hip  # hip, ankle (7, 8 -> rows 6, 7)
            rows[swing, 0], rows[swing + 3, 0], rows[swing + 6, 0] = swing_hip, knee, -(swing_hip + knee)
            stance_of[t] = 7 if left else 8
    orient = np.tile(Rotation.from_euler("y", heading).as_rotvec(), (FRAMES, 1))
    with torch.no_grad():
        joints = body.axis_angle(torch.from_numpy(orient).float(), torch.from_numpy(pose).float(),
                                 torch.zeros(FRAMES, 10)).joints.numpy().astype(np.float64)
    rest, _, sole = _rest(body)
    anchor = np.array([start[0], -sole + rest[7, 1], start[1]])  # the left ankle, on the floor
    transl = np.zeros((FRAMES, 3))
    for t in range(FRAMES):
        if t and stance_of[t] != stance_of[t - 1]:
            anchor = joints[t, stance_of[t]] + (anchor - joints[t, stance_of[t - 1]])  # the other foot lands ...
            anchor[1] = -sole + rest[7, 1]  # ... on the floor (the generated legs are not quite symmetric)
        transl[t] = anchor - joints[t, stance_of[t] if walking else 7]
    return orient, pose, transl, joints + transl[:, None]


def _camera(tilt: float, pan: float) -> np.ndarray:
    """(FRAMES, 3, 3) camera -> true world: looking down -z tilted down by `tilt` degrees,
    panning by `pan` degrees and rolling 3 degrees over the clip."""
    base = np.diag([1.0, -1.0, -1.0])  # camera x right, y down, z forward in a y-up world
    s = np.linspace(0, 1, FRAMES)
    turn = Rotation.from_euler("YXZ", np.stack((pan * s, -tilt + 0 * s, 3 * s), 1), degrees=True)
    return turn.as_matrix() @ base


def _joints(body: Body, orient: np.ndarray, pose: np.ndarray, transl: np.ndarray) -> np.ndarray:
    """(N, 24, 3) SMPL joints of the generated body (mean shape), metres."""
    with torch.no_grad():
        out = body.axis_angle(*(torch.from_numpy(np.asarray(v, np.float32)) for v in (orient, pose)),
                              torch.zeros(len(orient), 10), torch.from_numpy(np.asarray(transl, np.float32)))
    return out.joints.numpy().astype(np.float64)


def _scene(body: Body, tilt: float, pan: float, drift: float = 0.0, noise: float = 0.002, pose_noise: float = 0.0,
           depth_errors: dict[int, float] | None = None, travel: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    """Four people seen by a panning camera. drift (m a frame) and noise (m) move each whole
    body; pose_noise (degrees, per axis of every joint's local rotation) is a network's
    per-joint noise: the joints are then SMPL's for the noisy pose, as a network gives them.
    depth_errors: {person: e}, that person's pelvis e times as far from the camera as it is
    (a body network's depth error: the body moved along the rays); travel: the camera's
    move over the clip (true world metres, linear), a moving camera's."""
    rng = np.random.default_rng(1)
    centre = np.array([0.3, 1.6, 6.0])  # the camera at the first frame
    centres = centre + np.linspace(0, 1, FRAMES)[:, None] * np.asarray(travel)  # (FRAMES, 3)
    cameras = _camera(tilt, pan)
    people = [(0.4, (-0.8, -0.5), True), (np.pi - 0.3, (1.0, 1.5), True), (1.9, (-1.5, 1.0), True),
              (0.0, (0.5, -1.5), False)]
    rest, heights, _ = _rest(body)
    truth, tracks = [], []
    for k, (heading, start, walking) in enumerate(people):
        orient, pose, transl, joints = _person(body, heading, start, walking)
        truth.append(joints)
        if pose_noise:
            pose = pose + rng.normal(0, np.radians(pose_noise), pose.shape)
            joints = _joints(body, orient, pose, transl)
        error = rng.normal(0, noise, (FRAMES, 3)) + drift * np.arange(FRAMES)[:, None] * np.array([1.0, 0, 0.5])
        in_camera = np.einsum("nji,nkj->nki", cameras, joints + error[:, None] - centres[:, None])  # M^T (X - C)
        in_camera += ((depth_errors or {}).get(k, 1.0) - 1.0) * in_camera[:, :1]  # along the pelvis's ray
        root = Rotation.from_matrix(np.transpose(cameras, (0, 2, 1)) @ Rotation.from_rotvec(orient).as_matrix())
        tracks.append(TrackInCamera(k, np.arange(FRAMES), np.arange(FRAMES) / FPS, root.as_rotvec(), in_camera,
                                    rest[0], heights, pose))
    relative = np.einsum("ji,njk->nik", cameras[0], cameras)  # camera p -> camera 0: M_0^T M_p
    motion = CameraMotion("rotating" if not any(travel) else "moving", "auto", relative,
                          (centres - centres[0]) @ cameras[0], np.arange(FRAMES, dtype=np.int64),
                          np.zeros(0), np.zeros(0), np.zeros(0))
    up = cameras[0].T @ np.array([0.0, 1.0, 0.0])
    expected = world_frame(Floor(up, float(up @ (cameras[0].T @ -centre)), "truth", 0),
                           cameras[0].T @ (truth[0][0, 0] - centre))
    to_first = lambda points: (points - centre) @ cameras[0]  # true world -> camera 0
    return tracks, motion, truth, expected, to_first, cameras, centre


@pytest.mark.parametrize("tilt, pan", [(10.0, 25.0), (30.0, -20.0)])
def test_world_of_several_people_on_the_floor(body: Body, tilt: float, pan: float) -> None:
    tracks, motion, truth, expected, to_first, *_ = _scene(body, tilt, pan)
    world = build_world(tracks, motion)
    assert world.frame.floor.source == "contacts" and not world.warnings
    normal_error = np.degrees(np.arccos(np.clip(world.frame.floor.normal @ expected.axes[1], -1, 1)))
    assert normal_error < 1.0
    floor_points = np.array([[x, 0.0, z] for x in (-2.0, 0.0, 2.0) for z in (-2.0, 0.0, 2.0)])
    assert np.abs(world.frame.points(to_first(floor_points))[:, 1]).max() < 0.02  # the floor is y = 0
    for track, joints in zip(world.tracks, truth):  # one world: every person against the same truth
        root_error = np.linalg.norm(track.joints3d[:, 0] - expected.points(to_first(joints[:, 0])), axis=1)
        assert root_error.max() < 0.05, (track.track_id, root_error.max())
        assert np.allclose(track.transl, track.joints3d[:, 0] - tracks[0].rest_pelvis)
    # The standing person's feet touch all along; the walkers' stance feet do, the swinging ones not.
    assert world.tracks[3].contacts[:, :2].all()
    assert 0.3 < world.tracks[0].contacts[:, :2].mean() < 0.8
    # The camera sits 1.6 m above the floor, where it is in the truth.
    assert abs(world.camera_positions[0, 1] - 1.6) < 0.02


def test_foot_lock_stops_sliding(body: Body) -> None:
    tracks, motion, *_ = _scene(body, 20.0, 15.0, drift=0.008)
    world = build_world(tracks, motion)
    for track, person in zip(world.tracks, tracks):
        assert track.contacts.any()
        locked, before, after = lock_feet(track, person.sole_heights)
        assert before > 0.6, before  # the drift makes the feet slide
        assert after < 1.0 and after < before / 3, (before, after)
        assert after == pytest.approx(foot_slide(locked.joints3d, track.contacts))
        assert np.allclose(locked.joints3d[:, 0] - locked.transl, track.joints3d[:, 0] - track.transl)


def test_foot_lock_leg_ik_with_per_joint_noise(body: Body) -> None:
    """A network's per-joint noise (1.5 degrees on every local rotation: 2.0 cm per joint,
    2.2 cm at the feet, 3.1 cm frame to frame) leaves slide that moving the root cannot take
    out (the standing person's four foot joints jitter apart); the legs' IK pins the ankles,
    with real SMPL parameters: the generated body posed with them gives the locked joints."""
    tracks, motion, *_ = _scene(body, 20.0, 15.0, drift=0.008, pose_noise=1.5)
    world = build_world(tracks, motion)
    for track, person in zip(world.tracks, tracks):
        _, before, root_only = lock_feet(track, person.sole_heights)
        locked, _, after = lock_feet(track, person.sole_heights, person.body_pose)
        assert before > 2.0 and after < 1.0 and after < root_only + 0.01, (before, root_only, after)
        if track.track_id == 3:  # the standing person (_scene): both feet down all along
            assert root_only > 1.0 and after < root_only / 4, (root_only, after)
        # Real SMPL parameters: the body posed with the corrected pose gives the locked joints.
        rebuilt = _joints(body, locked.global_orient, locked.body_pose, locked.transl)
        assert np.abs(rebuilt - locked.joints3d).max() < 1e-4
        # Only the legs' hips, knees and ankles turned (body_pose rows 0, 1, 3, 4, 6, 7), and
        # the knees by a few degrees.
        turned = np.degrees((Rotation.from_rotvec(person.body_pose.reshape(-1, 3)).inv()
                             * Rotation.from_rotvec(locked.body_pose.reshape(-1, 3))).magnitude()).reshape(-1, 23)
        assert np.array_equal(turned[:, [2, 5, 8]], np.zeros((FRAMES, 3)))
        assert turned[:, [r for r in range(23) if r not in (0, 1, 3, 4, 6, 7)]].max() < 1e-4
        assert turned[:, [3, 4]].max() < 12.0, turned[:, [3, 4]].max()
        for side, (hip, knee, ankle, _) in enumerate(LEGS):
            j, o = locked.joints3d, track.joints3d
            # No leg over-extended: the hip-ankle distance within MAX_REACH of the leg, or the network's.
            legs = np.linalg.norm(j[:, knee] - j[:, hip], axis=1) + np.linalg.norm(j[:, ankle] - j[:, knee], axis=1)
            reach = np.linalg.norm(j[:, ankle] - j[:, hip], axis=1)
            assert (reach <= np.maximum(MAX_REACH * legs, np.linalg.norm(o[:, ankle] - o[:, hip], axis=1)) + 1e-6).all()
            # A touching ankle does not move while it touches, on the floor at its sole height
            # (but where the reach is clamped: a few frames stop a few millimetres short);
            # where the pin fades, no step is longer than the network's longest.
            held = track.contacts[1:, side] & track.contacts[:-1, side]
            moves = np.linalg.norm(np.diff(j[:, ankle], axis=0), axis=1)[held]
            assert np.median(moves) < 1e-4 and moves.max() < 0.005, moves
            assert np.abs(j[track.contacts[:, side], ankle, 1] - person.sole_heights[side]).max() < 0.005
            steps = np.linalg.norm(np.diff(j[:, ankle], axis=0), axis=1)
            assert steps.max() < 1.5 * np.linalg.norm(np.diff(o[:, ankle], axis=0), axis=1).max()


def test_foot_lock_pose_reaches_the_track_file_keys(body: Body) -> None:
    """What reconstruct writes (`place_in_world`, then `world_keys`): world_body_pose only
    with --foot-lock, float32, and with it SMPL gives world_joints3d."""
    from strcli.road.outputs import world_keys

    tracks, motion, *_ = _scene(body, 20.0, 15.0, drift=0.008, pose_noise=1.5)
    world, slides = place_in_world(tracks, motion, True)
    assert all(before > 2.0 and after < 1.0 for after, before in slides), slides
    assert not any("nothing was locked" in w for w in world.warnings)
    for track, person in zip(world.tracks, tracks):
        keys = world_keys(track)
        assert keys["world_body_pose"].shape == (FRAMES, 69) and keys["world_body_pose"].dtype == np.float32
        assert not np.allclose(keys["world_body_pose"], person.body_pose, atol=1e-3)  # the legs were bent
        rebuilt = _joints(body, keys["world_global_orient"], keys["world_body_pose"], keys["world_transl"])
        assert np.abs(rebuilt - keys["world_joints3d"]).max() < 1e-4
    unlocked, _ = place_in_world(tracks, motion, False)
    assert "world_body_pose" not in world_keys(unlocked.tracks[0])


def test_pin_offsets_fade_in_and_out() -> None:
    ankle = np.zeros((20, 3))
    ankle[:, 0] = np.arange(20) * 0.01  # sliding 1 cm a frame
    ankle[:, 1] = 0.1
    contact = np.zeros(20, bool)
    contact[8:12] = True
    offset = pin_offsets(ankle, contact, 0.08, fade=3)
    assert np.allclose((ankle + offset)[8:12], [0.08, 0.08, 0.0])  # held where it began, at its sole height
    assert np.allclose(offset[:5], 0) and np.allclose(offset[15:], 0)  # beyond the fade, the network's
    assert np.allclose(offset[5:8, 1], [-0.005, -0.01, -0.015])  # fading in over 3 frames
    assert np.allclose(offset[12:15, 0], [-0.0225, -0.015, -0.0075])  # and out from the 3 cm it slid


def test_no_contact_falls_back_to_the_camera_up_with_a_warning(body: Body) -> None:
    tracks, motion, *_ = _scene(body, 20.0, 0.0)
    jumping = []
    for track in tracks:  # every foot always moving: no contact at all
        hop = 0.3 * np.abs(np.sin(np.arange(FRAMES) / 3.0))[:, None, None] * np.array([0.0, -1.0, 0.0])
        jumping.append(TrackInCamera(track.track_id, track.positions, track.times, track.global_orient,
                                     track.joints3d + hop + np.arange(FRAMES)[:, None, None] * 0.05,
                                     track.rest_pelvis, track.sole_heights))
    world = build_world(jumping, motion)
    assert world.frame.floor.source == "camera"
    assert any("no usable foot contact" in w for w in world.warnings)
    assert np.allclose(world.frame.axes[1], [0.0, -1.0, 0.0])
    # On the fallback floor, feet that rest on it are contacts (--foot-lock pins them), but
    # they did not find it: the track's height is still the network's, and says so.
    resting = np.zeros((FRAMES, 4), bool)
    resting[5:7] = True
    track = jumping[0]
    _, kept, grounding = ground_track(track, _first_camera(track, motion), resting, world.frame.floor, motion)
    assert kept[5:7].all() and grounding.method == "network" and "no floor" in grounding.note
    # --foot-lock with no contact anywhere locks nothing, and says so
    locked, slides = place_in_world(jumping, motion, True)
    assert [w for w in locked.warnings if "nothing was locked" in w] == [
        "--foot-lock: no foot contact was found in any track, so nothing was locked."]
    assert all(after == 0.0 for after, _ in slides)
    assert not any("nothing was locked" in w for w in place_in_world(jumping, motion, False)[0].warnings)


def _first_camera(track: TrackInCamera, motion: CameraMotion) -> np.ndarray:
    """(N, 24, 3) a track's joints in the first frame's camera, as `build_world` puts them."""
    return (np.einsum("nij,nkj->nki", motion.rotations[track.positions], track.joints3d)
            + motion.centres[track.positions][:, None])


@pytest.mark.parametrize("error, travel", [(1.2, (0.0, 0.0, 0.0)), (0.8, (0.0, 0.0, 0.0)), (1.2, (1.0, 0.0, -1.0))])
def test_a_person_without_contacts_is_put_on_the_floor_along_the_rays(body: Body, error: float, travel) -> None:
    """One walker of four with the network's depth 20% too far (their soles 0.2 m under the
    floor) or too near (above it): no contact, so the floor is the others'; one depth factor
    along the camera's rays (a panning camera, or one also moving 1.4 m) puts them back on it,
    their root within 5 cm of the truth all along (it was a metre off)."""
    tracks, motion, truth, expected, to_first, *_ = _scene(body, 20.0, 15.0, depth_errors={2: error}, travel=travel)
    world = build_world(tracks, motion)
    assert world.frame.floor.source == "contacts"
    true_root = expected.points(to_first(truth[2][:, 0]))
    before = np.linalg.norm(world.frame.points(_first_camera(tracks[2], motion))[:, 0] - true_root, axis=1)
    after = np.linalg.norm(world.tracks[2].joints3d[:, 0] - true_root, axis=1)
    grounding = world.tracks[2].grounding
    assert grounding.method == "ray" and grounding.factor == pytest.approx(1 / error, rel=0.01), grounding
    assert before.min() > 0.9 and after.max() < 0.05, (before.min(), after.max())
    assert [t.grounding.method for t in world.tracks] == ["contacts", "contacts", "ray", "contacts"]
    # On the floor, the moved walker's stance feet are found as contacts (for --foot-lock).
    assert 0.3 < world.tracks[2].contacts[:, :2].mean() < 0.8
    assert np.allclose(world.tracks[2].transl, world.tracks[2].joints3d[:, 0] - tracks[2].rest_pelvis)
    moved = [w for w in world.warnings if w.startswith("track 2 (depth x")]
    assert len(moved) == 1 and ("nearer" if error > 1 else "farther") in moved[0], world.warnings


@pytest.mark.parametrize("person", [1, 3])
def test_a_person_too_near_does_not_tilt_the_floor(body: Body, person: int) -> None:
    """Walker 1, or the standing person (four still feet in every frame: the most soles),
    20% too near: the plane through their soles and parts of the others' held more soles
    than the floor (3.3 and 7.4 degrees off, before the floor's score counted people); the
    floor is the one most people stand on, and the person is put on it along the rays."""
    tracks, motion, truth, expected, to_first, *_ = _scene(body, 20.0, 15.0, depth_errors={person: 0.8})
    world = build_world(tracks, motion)
    assert np.degrees(np.arccos(np.clip(world.frame.floor.normal @ expected.axes[1], -1, 1))) < 0.1
    assert world.tracks[person].grounding.method == "ray"
    true_root = expected.points(to_first(truth[person][:, 0]))
    assert np.linalg.norm(world.tracks[person].joints3d[:, 0] - true_root, axis=1).max() < 0.05


def test_the_percentile_is_robust_to_a_person_off_the_floor_most_of_the_time(body: Body) -> None:
    """A person hopping 20 cm, off the floor in 75% of the frames, 20% too far: the factor
    from the frames their feet are down (RAY_PERCENTILE, then the median of the frames
    resting on the floor); the root within 5 cm. The median alone would sink them a metre."""
    tracks, motion, *_ = _scene(body, 20.0, 15.0)
    floor = build_world(tracks, motion).frame.floor
    phase = (np.arange(FRAMES) % 20) / 20
    lift = np.where(phase < 0.75, 0.2 * np.sin(np.pi * phase / 0.75), 0.0)  # (N,) metres
    joints = _first_camera(tracks[1], motion) + lift[:, None, None] * floor.normal
    wrong = joints + 0.2 * (joints[:, :1] - motion.centres[:, None])  # the depth 20% too far
    ray = ground_along_rays(wrong, motion.centres, floor, tracks[1].sole_heights)
    assert not ray.refused and np.linalg.norm(wrong[:, 0] + ray.shift - joints[:, 0], axis=1).max() < 0.05
    median = ground_along_rays(wrong, motion.centres, floor, tracks[1].sole_heights, percentile=50.0)
    assert np.linalg.norm(wrong[:, 0] + median.shift - joints[:, 0], axis=1).max() > 0.5


def test_grounding_along_the_rays_from_a_camera_below_the_pelvis(body: Body) -> None:
    """A camera 0.3 m above the floor (below the pelvis: moving away along a ray lifts the
    body): the walker hopping (off the floor in 60% of the frames), 20% too far, floating, is
    put back within 5 cm (the percentile's other end, 100 - RAY_PERCENTILE)."""
    tracks, motion, *_ = _scene(body, 20.0, 15.0)
    floor = build_world(tracks, motion).frame.floor
    phase = (np.arange(FRAMES) % 20) / 20
    lift = np.where(phase < 0.6, 0.2 * np.sin(np.pi * phase / 0.6), 0.0)  # (N,) metres
    joints = _first_camera(tracks[1], motion) + lift[:, None, None] * floor.normal
    low = motion.centres - 1.3 * floor.normal  # (N, 3) the camera 1.6 -> 0.3 m above the floor
    wrong = joints + 0.2 * (joints[:, :1] - low[:, None])
    assert floor.height(wrong[:, list(FOOT_JOINTS)]).min() > 0.05  # afloat: no contact
    ray = ground_along_rays(wrong, low, floor, tracks[1].sole_heights)
    assert not ray.refused and ray.factor == pytest.approx(1 / 1.2, rel=0.01)
    assert np.linalg.norm(wrong[:, 0] + ray.shift - joints[:, 0], axis=1).max() < 0.05


def test_feet_in_view_needs_the_foot_joints_inside_the_image_and_the_box_above_its_edge() -> None:
    from strcli.road.grounding import feet_in_view

    feet = np.tile([[[100.0, 400.0]]], (4, 4, 1))  # (N, 4, 2) pixels in a 640 x 480 image
    feet[1, 2] = [100.0, 481.0]  # a toe below the image
    feet[2, 0] = [-1.0, 400.0]  # an ankle left of it
    boxes = np.tile([50.0, 100.0, 150.0, 420.0], (4, 1))
    boxes[3, 3] = 479.0  # the box reaches the bottom edge: the feet are cut off
    assert feet_in_view(feet, boxes, 640, 480).tolist() == [True, False, False, False]


def _refused(joints: np.ndarray, centres: np.ndarray, floor: Floor, heights: np.ndarray, in_view=None) -> str:
    ray = ground_along_rays(joints, centres, floor, heights, in_view)
    assert ray.factor == 1.0 and not ray.shift.any()
    return ray.refused


def test_grounding_along_the_rays_refuses_what_a_depth_error_does_not_explain(body: Body) -> None:
    """The network's depth is kept, and the reason given, for a short track, feet out of
    view, a lying body, a camera level with the pelvis, and a factor outside 0.5-2."""
    tracks, motion, *_ = _scene(body, 20.0, 15.0)
    floor = build_world(tracks, motion).frame.floor
    joints, centres, heights = _first_camera(tracks[1], motion), motion.centres, tracks[1].sole_heights
    wrong = joints + 0.2 * (joints[:, :1] - centres[:, None])
    assert not ground_along_rays(wrong, centres, floor, heights).refused
    assert "under 15" in _refused(wrong[:MIN_RAY_FRAMES - 1], centres[:MIN_RAY_FRAMES - 1], floor, heights)
    in_view = np.arange(FRAMES) < MIN_RAY_FRAMES - 1
    assert "feet out of view in 76 of 90 frames" in _refused(wrong, centres, floor, heights, in_view)
    # Lying (on a bed, say): the body turned 90 degrees about its pelvis, which stays 0.9 m up.
    turn = Rotation.from_rotvec(np.radians(90) * np.cross(floor.normal, [1.0, 0.0, 0.0])).as_matrix()
    pelvis = joints[:, :1]
    lying = (joints - pelvis) @ turn.T + pelvis
    assert "lying (torso 94 deg from upright)" in _refused(lying, centres, floor, heights)
    # A camera at the pelvis's height: moving along the rays barely moves the body up or down.
    low = centres + (floor.height(joints[:, 0]) - floor.height(centres))[:, None] * floor.normal
    assert "barely moves it up or down" in _refused(wrong, low, floor, heights)
    # Feet 3 m below the floor (another floor, a screen): a factor past DEPTH_FACTOR_RANGE.
    far = joints + (DEPTH_FACTOR_RANGE[1] + 0.5 - 1) * (joints[:, :1] - centres[:, None])
    assert "outside 0.5-2" in _refused(far, centres, floor, heights)


def test_a_refused_track_keeps_the_network_depth_and_the_manifest_says_why(body: Body) -> None:
    """In the world: the walker with its feet out of view is not moved (its joints those of
    the network's depth), its grounding "network", a warning names it and the reason; on the
    camera's fallback floor (no contact for anyone) nobody is moved and the one warning says so."""
    tracks, motion, *_ = _scene(body, 20.0, 15.0, depth_errors={2: 1.2})
    hidden = np.zeros(FRAMES, bool)
    tracks[2] = replace(tracks[2], feet_in_view=hidden)
    world = build_world(tracks, motion)
    assert world.tracks[2].grounding.method == "network" and not world.tracks[2].contacts.any()
    assert np.allclose(world.tracks[2].joints3d, world.frame.points(_first_camera(tracks[2], motion)))
    assert any(w.startswith("track 2 had no foot contact and keeps the body network's depth") and
               "feet out of view in 90 of 90 frames" in w for w in world.warnings), world.warnings
    hopping = [replace(t, joints3d=t.joints3d + np.arange(FRAMES)[:, None, None] * 0.05) for t in tracks]
    fallback = build_world(hopping, motion)
    assert fallback.frame.floor.source == "camera"
    assert all(t.grounding.method == "network" for t in fallback.tracks)
    assert len(fallback.warnings) == 1 and "every person keeps the body network's depth" in fallback.warnings[0]


def test_amass_world_is_z_up_on_the_floor() -> None:
    from strcli.road.outputs import to_amass
    from strcli.road.world import Y_UP_TO_Z_UP

    orient = Rotation.from_euler("y", [[0.3], [1.0]]).as_rotvec()
    transl = np.array([[0.5, 0.9, -1.0], [0.0, 1.0, 2.0]])
    pelvis = np.array([0.0, -0.2, 0.01])
    amass = to_amass(orient, np.zeros((2, 69)), np.zeros((2, 10)), transl, pelvis, 30.0, np.arange(2),
                     to_zup=Y_UP_TO_Z_UP)
    root, trans = amass["poses"][:, :3].astype(np.float64), amass["trans"].astype(np.float64)
    assert np.allclose(trans + pelvis, (transl + pelvis) @ np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]]), atol=1e-6)
    assert np.allclose(trans[:, 2] + pelvis[2], transl[:, 1] + pelvis[1], atol=1e-6)  # height: y up -> z up
    up = Rotation.from_rotvec(root).apply([0.0, 1.0, 0.0])  # the body's own up ends on +z
    assert np.allclose(up, [[0, 0, 1]] * 2, atol=1e-6)
