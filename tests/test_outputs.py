import json
import os

import numpy as np
import pytest
import torch

from strcli.body.smpl import Body
from strcli.utils.errors import OutputError
from strcli.road.outputs import CAMERA_TO_ZUP, VideoFolder, output_error, read_manifest, to_amass


def test_amass_file_is_the_same_body_turned_z_up(smpl_files):
    body = Body.from_file(smpl_files["chumpy"])
    g = torch.Generator().manual_seed(0)
    n = 4
    go, bp = torch.randn(n, 3, generator=g) * 0.5, torch.randn(n, 69, generator=g) * 0.2
    betas = torch.randn(1, 10, generator=g).expand(n, -1)
    transl = torch.tensor([[0.1, -0.2, 5.0]]) + torch.randn(n, 3, generator=g) * 0.1
    camera = body.axis_angle(go, bp, betas, transl).vertices
    pelvis = body.axis_angle(torch.zeros(1, 3), torch.zeros(1, 69), betas[:1]).joints[0, 0].numpy()
    amass = to_amass(go.numpy(), bp.numpy(), betas.numpy(), transl.numpy(), pelvis, 30.0, np.arange(0, 8, 2))
    assert amass["poses"].shape == (n, 72) and amass["betas"].shape == (10,)
    assert float(amass["mocap_framerate"]) == 15.0  # every other frame of a 30 fps video
    poses = torch.from_numpy(amass["poses"])
    world = body.axis_angle(poses[:, :3], poses[:, 3:], betas, torch.from_numpy(amass["trans"])).vertices
    expected = camera @ torch.from_numpy(CAMERA_TO_ZUP).float().T
    assert torch.allclose(world, expected, atol=1e-4)
    assert np.allclose(amass["poses"][:, 3:], bp.numpy())
    # A body standing upright in the image (rotated 180 degrees about x, as SPIN's mean pose
    # is) stands upright in AMASS's z-up world: head (joint 15) above the ankles (7, 8).
    upright = to_amass(np.array([[np.pi, 0, 0]]), np.zeros((1, 69)), np.zeros((1, 10)), np.zeros((1, 3)),
                       pelvis, 30.0, np.arange(1))
    poses = torch.from_numpy(upright["poses"])
    joints = body.axis_angle(poses[:, :3], poses[:, 3:], torch.zeros(1, 10)).joints[0]
    assert joints[15, 2] > joints[7, 2] + 0.5 and joints[15, 2] > joints[8, 2] + 0.5


def test_video_folder_appears_only_when_complete(tmp_path):
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "old.txt").write_text("previous run")
    (tmp_path / "clip" / "manifest.json").write_text(json.dumps({"fingerprint": "old"}))  # strcli's own
    with VideoFolder(tmp_path, "clip") as folder:
        (folder.tmp / "a.npz").write_bytes(b"x")
        assert folder.tmp.name.startswith(".clip.partial-")
        assert (tmp_path / "clip" / "old.txt").exists()  # the old result stays until the new one is done
        folder.commit()
    assert sorted(p.name for p in (tmp_path / "clip").iterdir()) == ["a.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]


def test_a_failure_leaves_no_partial_folder_and_keeps_the_old_result(tmp_path):
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "manifest.json").write_text(json.dumps({"fingerprint": "old"}))
    with pytest.raises(RuntimeError):
        with VideoFolder(tmp_path, "clip") as folder:
            (folder.tmp / "half.npz").write_bytes(b"x")
            raise RuntimeError("disk trouble")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]
    assert read_manifest(tmp_path / "clip") == {"fingerprint": "old"}


def test_stale_partial_folders_of_dead_processes_are_removed(tmp_path):
    stale = tmp_path / ".clip.partial-999999999-abcdef"  # no such pid
    stale.mkdir()
    mine = tmp_path / f".clip.partial-{os.getpid()}-000000"
    mine.mkdir()
    with VideoFolder(tmp_path, "clip") as folder:
        folder.commit()
    assert not stale.exists() and mine.exists()


def test_a_scan_of_out_skips_temporaries_and_hidden_folders(tmp_path):
    """render, export and view given OUT: a dead run's `.r5.partial-*/` (or `.r5.old-*/`)
    holds a manifest too, and is no output."""
    from strcli.road.outputs import output_folders

    for name in ("r5", ".r5.partial-99999-abcdef", ".r5.old-99999-abcdef", ".hidden"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
    assert output_folders([tmp_path]) == [tmp_path / "r5"]


def test_disk_errors_say_what_to_do(tmp_path):
    full = output_error(OSError(28, "No space left on device"), tmp_path / "x")
    assert isinstance(full, OutputError) and "disk is full" in str(full) and "-o" in str(full)
    denied = output_error(PermissionError(13, "Permission denied"), tmp_path / "x")
    assert "no permission" in str(denied)


@pytest.mark.parametrize("scale", [1.0, 9.999, 75.0, 640.0, 5000.0])
def test_obj_meshes_read_back_exactly(tmp_path, scale):
    # the vertex lines are built digit by digit: every magnitude, sign and rounding edge
    import trimesh

    from strcli.road.outputs import obj_face_lines, write_obj

    rng = np.random.default_rng(0)
    vertices = rng.uniform(-1, 1, (50, 3)) * scale
    vertices[:6] = [[-0.0000004, 0.0000005, -0.9999996], [9.9999996, -99.9999996, 0.5],
                    [-1e-9, 0.0, 1.0], [-10.0, 100.0, -0.000001], [0.1234565, -0.1234565, 3.0], [2, 2, 2]]
    faces = np.array([[0, 1, 2], [2, 3, 4], [10, 49, 7]] + [[i, i + 1, i + 2] for i in range(47)])
    write_obj(tmp_path / "m.obj", vertices, obj_face_lines(faces))
    mesh = trimesh.load(tmp_path / "m.obj", process=False)
    assert np.abs(mesh.vertices - vertices).max() <= 5.01e-7 and (mesh.faces == faces).all()
    lines = (tmp_path / "m.obj").read_text().splitlines()[1:51]
    assert [[float(x) for x in line.split()[1:]] for line in lines] == \
        [[float(f"{x:.6f}") for x in row] for row in vertices]  # the numbers "%.6f" writes
    with np.errstate(invalid="ignore"):
        vertices[7] = [np.nan, np.inf, 1.0]
    write_obj(tmp_path / "bad.obj", vertices, obj_face_lines(faces))
    assert (tmp_path / "bad.obj").read_text().splitlines()[8] == "v nan inf 1.000000"


def test_a_variable_rate_motion_is_resampled_with_slerp_and_linear_translation():
    """A body turning at a constant 2 rad/s about z and moving at 1 m/s, sampled at 30,
    then 10, then 30 fps: the AMASS file holds it at a constant 30 fps, each sample the
    pose and position of its own time (slerp of a constant-speed turn is exact)."""
    from scipy.spatial.transform import Rotation

    from strcli.road.outputs import resample_motion

    times = np.concatenate([np.arange(15) / 30, 14 / 30 + np.arange(1, 16) / 10, 14 / 30 + 1.5 + np.arange(1, 16) / 30])
    turn = Rotation.from_rotvec(np.outer(2.0 * times, [0, 0, 1]))
    elbow = Rotation.from_rotvec(np.outer(1.0 + 0.5 * times, [1, 0, 0]))
    body_pose = np.zeros((len(times), 69))
    body_pose[:, 51:54] = elbow.as_rotvec()  # joint 18
    transl = np.stack([times, 0.5 * times, np.full_like(times, 4.0)], axis=1)
    samples, go, bp, tr = resample_motion(times, turn.as_rotvec(), body_pose, transl, 30.0)
    assert np.allclose(np.diff(samples), 1 / 30) and samples[0] == 0 and samples[-1] <= times[-1]
    assert len(samples) == int(round(times[-1] * 30)) + 1
    expected = Rotation.from_rotvec(np.outer(2.0 * samples, [0, 0, 1]))
    assert np.allclose((Rotation.from_rotvec(go) * expected.inv()).magnitude(), 0, atol=1e-6)
    assert np.allclose(Rotation.from_rotvec(bp[:, 51:54]).magnitude(), 1.0 + 0.5 * samples, atol=1e-6)
    assert np.allclose(bp[:, :51], 0) and np.allclose(tr, np.stack([samples, 0.5 * samples,
                                                                     np.full_like(samples, 4.0)], axis=1))
    amass = to_amass(turn.as_rotvec(), body_pose, np.zeros((len(times), 10)), transl, np.zeros(3), 17.8,
                     np.arange(len(times)), times, 30.0)
    assert bool(amass["resampled"]) and float(amass["mocap_framerate"]) == 30.0
    assert np.allclose(amass["times"], samples) and amass["poses"].shape == (len(samples), 72)
    assert np.array_equal(amass["source_frames"], np.arange(len(times)))
    constant = to_amass(turn.as_rotvec(), body_pose, np.zeros((len(times), 10)), transl, np.zeros(3), 30.0,
                        np.arange(len(times)))
    assert not bool(constant["resampled"]) and constant["poses"].shape == (len(times), 72)


def _damaged_folders(root):
    """Output folders damaged in the ways users hit: a track file gone, a manifest of the
    wrong types or shape, a track file that is not an npz."""
    import json as _json

    good = {"input": {"path": str(root / "video.mp4")}, "video": {"fps": 30.0, "rotation": 0},
            "options": {"stride": 1, "start_frame": 0, "end_frame": None},
            "intrinsics": {"focal": 1000.0, "width": 64, "height": 48},
            "tracks": [{"id": 0, "npz": "tracks/0.npz"}], "counts": {"frames_processed": 1}}
    cases = {"no_track_file": good, "wrong_types": {"tracks": "banana", "video": 5, "input": None},
             "a_list": [], "garbage_npz": good}
    for name, manifest in cases.items():
        folder = root / name
        (folder / "tracks").mkdir(parents=True)
        (folder / "manifest.json").write_text(_json.dumps(manifest))
        if name == "garbage_npz":
            (folder / "tracks" / "0.npz").write_text("garbage")
        yield folder


def test_a_damaged_output_folder_is_one_usage_error_in_render_export_and_view(tmp_path):
    import pytest

    from strcli.utils.errors import UsageError
    from strcli.export.writer import load_tracks
    from strcli.render.overlay import RenderOptions, _load
    from strcli.view.viewer import Scene

    (tmp_path / "video.mp4").write_bytes(b"")  # exists: the damage, not the video, must be reported
    for folder in _damaged_folders(tmp_path):
        for read in (lambda f: _load(f, RenderOptions(), None), lambda f: load_tracks(f, None),
                     lambda f: Scene(f, None)):
            with pytest.raises(UsageError) as err:
                read(folder)
            assert "is a damaged strcli output" in str(err.value) and str(folder) in str(err.value)
