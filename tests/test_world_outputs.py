"""The world in what `strcli reconstruct` writes: camera.npz, the track files' world keys,
AMASS in its z-up world, --camera and --foot-lock (docs/world.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_reconstruct import reconstruct, workspace  # noqa: F401 (workspace: a fixture)

from strcli.body.smpl import Body


@pytest.fixture(scope="module")
def pedestrians(workspace, assets):  # noqa: F811
    out = workspace["root"] / "world"
    result = reconstruct(workspace, assets / "videos" / "pedestrians.avi", "-o", out, "--end", 16, "--max-people", 2,
                         "--detections", assets / "detections" / "pedestrians.det.txt", "--mesh-format", "none",
                         "--foot-lock", "--json")
    assert result.exit_code == 0, result.output
    return out / "pedestrians"


def test_camera_file_of_a_tripod_clip(pedestrians):
    manifest = json.loads((pedestrians / "manifest.json").read_text())
    assert manifest["world"]["camera_model"] == "static" and manifest["world"]["camera_requested"] == "auto"
    assert "camera" in manifest["timings"] and "world" in manifest["timings"]
    with np.load(pedestrians / "camera.npz") as camera:
        assert str(camera["model"]) == "static" and camera["rotation"].shape == (16, 3, 3)
        assert np.array_equal(camera["relative_rotation"], np.repeat(np.eye(3)[None], 16, 0))
        assert np.array_equal(camera["frames"], np.arange(16))
        # A static camera stays put in the world, and its rotation there is the world's axes.
        assert np.allclose(camera["position"], camera["position"][0]) and np.allclose(camera["rotation"], camera["rotation"][0])
        assert np.allclose(camera["rotation"][0], camera["world_axes"])
        assert camera["intrinsics"].shape == (3, 3)


def test_track_world_keys_agree_with_the_camera_keys(pedestrians, smpl_files):
    manifest = json.loads((pedestrians / "manifest.json").read_text())
    with np.load(pedestrians / "camera.npz") as camera:
        axes, origin = camera["world_axes"], camera["world_origin"]
    body = Body.from_file(smpl_files["chumpy"])
    for track in manifest["tracks"]:
        with np.load(pedestrians / track["npz"]) as data:
            n = len(data["frames"])
            assert data["world_transl"].shape == (n, 3) and data["foot_contacts"].shape == (n, 4)
            assert data["foot_contacts"].dtype == bool and data["world_joints3d"].shape == (n, 24, 3)
            # The world body is the camera body moved by the world's rigid motion (and, with
            # --foot-lock, a shift of its root and its legs bent): the joints relative to the
            # root agree, but for the legs' IK (knees, ankles, feet), whose pose is world_body_pose.
            moved = (data["joints3d"] - origin) @ axes.T
            relative = data["world_joints3d"] - data["world_joints3d"][:, :1]
            upper = [j for j in range(24) if j not in (4, 5, 7, 8, 10, 11)]
            assert np.allclose(relative[:, upper], (moved - moved[:, :1])[:, upper], atol=1e-4)
            assert data["world_body_pose"].shape == (n, 69) and data["world_body_pose"].dtype == np.float32
            legs = [0, 1, 3, 4, 6, 7]  # body_pose rows of the hips, knees, ankles: the only ones the IK turns
            others = data["body_pose"].reshape(n, 23, 3)[:, [r for r in range(23) if r not in legs]]
            assert np.array_equal(data["world_body_pose"].reshape(n, 23, 3)[:, [r for r in range(23) if r not in legs]],
                                  others)
            go, bp, betas, tr = (torch.from_numpy(data[k]) for k in ("world_global_orient", "world_body_pose", "betas",
                                                                      "world_transl"))
            rebuilt = body.axis_angle(go, bp, betas, tr).joints.numpy()
            assert np.allclose(rebuilt, data["world_joints3d"], atol=1e-4)
        with np.load(pedestrians / track["amass"]) as amass:
            assert str(amass["frame"]) == "world"
            go, bp = torch.from_numpy(amass["poses"][:, :3]), torch.from_numpy(amass["poses"][:, 3:])
            zup = body.axis_angle(go, bp, torch.from_numpy(np.tile(amass["betas"], (n, 1))),
                                  torch.from_numpy(amass["trans"])).joints.numpy()
            world = rebuilt  # y up -> z up: (x, y, z) -> (x, -z, y)
            assert np.allclose(zup, np.stack((world[..., 0], -world[..., 2], world[..., 1]), -1), atol=1e-4)
        assert track["foot_slide_before_cm"] is not None and track["foot_slide_cm"] <= track["foot_slide_before_cm"] + 1e-6
        with np.load(pedestrians / track["npz"]) as data:  # how its height was set, alike in both places
            assert str(data["world_grounding"]) == track["grounding"] in ("contacts", "ray", "network")
            assert float(data["world_depth_factor"]) == pytest.approx(track["depth_factor"], abs=1e-4)
            assert track["grounding"] == "ray" or track["depth_factor"] == 1.0


def test_world_origin_under_the_first_person(pedestrians):
    manifest = json.loads((pedestrians / "manifest.json").read_text())
    first = min(manifest["tracks"], key=lambda t: (t["first_frame"], t["track_id"]))
    with np.load(pedestrians / first["npz"]) as data:
        pelvis = data["world_joints3d"][0, 0]
    if manifest["world"]["floor"]["str"]["source"] != "camera":
        assert abs(pelvis[0]) < 1e-4 and abs(pelvis[2]) < 1e-4  # straight above the origin, any height


def test_bad_camera_model_is_refused(workspace, assets, tmp_path):  # noqa: F811
    result = reconstruct(workspace, assets / "videos" / "pedestrians.avi", "-o", tmp_path, "--camera", "dolly")
    assert result.exit_code == 2
    assert "--camera dolly: use auto, static, rotating, moving" in result.stderr
    assert "Traceback" not in result.output


def test_forced_static_camera(workspace, assets, tmp_path):  # noqa: F811
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path, "--end", 16, "--camera",
                         "static", "--detections", assets / "detections" / "running.det.txt", "--mesh-format", "none")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "running" / "camera.npz") as camera:
        assert str(camera["model"]) == "static" and str(camera["requested"]) == "static"
        assert np.array_equal(camera["relative_rotation"], np.repeat(np.eye(3)[None], 16, 0))
        # running.mp4's camera follows the runner (`auto`: moving); forced static, it neither turns nor
        # travels in the world either: every frame's pose is the first frame's, exactly
        assert np.array_equal(camera["rotation"], np.repeat(camera["rotation"][:1], 16, 0))
        assert np.array_equal(camera["position"], np.repeat(camera["position"][:1], 16, 0))


def test_a_forced_camera_model_that_cannot_be_had_is_warned_about(workspace, assets, tmp_path):  # noqa: F811
    # One processed frame gives no second keyframe: `--camera moving` ends static, and says so
    # (with no person tracked, the other warning: no world, the identity).
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path, "--end", 1, "--camera",
                         "moving", "--detections", assets / "detections" / "running.det.txt", "--mesh-format", "none")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "running" / "manifest.json").read_text())
    assert manifest["world"]["camera_model"] == "static" and manifest["world"]["camera_requested"] == "moving"
    assert any(w.startswith("--camera moving was asked") for w in manifest["warnings"]), manifest["warnings"]
    assert "--camera moving was asked" in result.output


def test_moving_camera_says_where_its_scale_came_from(workspace, assets, tmp_path):  # noqa: F811
    """running.mp4's camera follows the runner: `moving`. The untrained networks' depths are
    meaningless, so only the bookkeeping is checked: camera.npz and the manifest name the
    scale's source alike, and a found scale is a positive camera height."""
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path, "--end", 30,
                         "--detections", assets / "detections" / "running.det.txt", "--mesh-format", "none")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "running" / "manifest.json").read_text())
    assert manifest["world"]["camera_model"] == "moving"
    with np.load(tmp_path / "running" / "camera.npz") as camera:
        assert str(camera["model"]) == "moving"
        assert str(camera["scale_source"]) == manifest["world"]["camera_scale"]
        if str(camera["scale_source"]).startswith("camera height"):
            assert float(camera["camera_height"]) > 0 and np.abs(camera["relative_position"]).max() > 0
        else:
            assert np.isnan(camera["camera_height"]) and not np.abs(camera["relative_position"]).any()
            assert any("no metric scale" in w for w in manifest["warnings"])


def test_camera_stage_in_its_own_thread_gives_the_same_numbers(assets):
    """reconstruct feeds the camera-motion stage from a thread of its own (docs/performance.md):
    the same calls in the same order, so the same numbers, bit for bit; its errors reach the caller."""
    from strcli.body.camera import Intrinsics
    from strcli.road.camera_motion import CameraMotionEstimator
    from strcli.road.reconstruct import _CameraFeed
    from strcli.road.tracking import read_mot_detections
    from strcli.road.video import VideoReader

    detections = read_mot_detections(assets / "detections" / "running.det.txt", 0.0)
    frames = [(f.image, detections[f.index].xyxy if f.index in detections else np.zeros((0, 4)))
              for f in VideoReader(assets / "videos" / "running.mp4", 0, 30, 1)]
    results = []
    for threaded in (False, True):
        intrinsics = Intrinsics.default_for(frames[0][0].shape[1], frames[0][0].shape[0])
        feed = _CameraFeed(CameraMotionEstimator(intrinsics, 30.0, "auto"), threaded)
        assert (feed.behind is not None) == threaded
        for position, (image, boxes) in enumerate(frames):
            feed.add(position, image, boxes, np.arange(len(boxes)))
        results.append(feed.finish({}))
    inline, thread = results
    assert inline.model == thread.model and len(inline) == 30 and inline.warnings == thread.warnings
    for key in ("rotations", "centres", "keyframes", "step_degrees", "step_pixels", "parallax_pixels",
                "window_parallax"):
        assert np.array_equal(getattr(inline, key), getattr(thread, key)), key
    assert not np.allclose(inline.rotations[-1], np.eye(3))  # the camera turned: real numbers compared
    feed = _CameraFeed(CameraMotionEstimator(Intrinsics.default_for(64, 48), 30.0, "auto"), True)
    feed.add(1, np.zeros((48, 64, 3), np.uint8), np.zeros((0, 4)), np.zeros(0, np.int64))  # not frame 0
    with pytest.raises(ValueError, match="frame 1 given, 0 expected"):
        feed.finish({})
