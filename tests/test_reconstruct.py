"""End to end on the real videos of ../shared/assets, through the command line."""

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import trimesh
from typer.testing import CliRunner

from strcli.body.smpl import Body
from strcli.body.camera import Intrinsics, project
from strcli.model.checkpoints import save_checkpoint
from strcli.cli.main import app
from strcli.utils.errors import MissingAssetError, UsageError, VideoError
from strcli.model import STR, MeanParams, STRConfig
from strcli.road.reconstruct import ReconstructOptions, track_video
from strcli.road.tracking import TrackingConfig
from strcli.road.video import VideoReader, probe

runner = CliRunner()
SMALL_STR = STRConfig(gru_hidden=16, integration_dim=8, integration_hidden=8, regressor_hidden=32)
NPZ_SHAPES = {"frames": (None,), "times": (None,), "boxes": (None, 4), "box_scores": (None,),
              "box_interpolated": (None,), "global_orient": (None, 3), "body_pose": (None, 69),
              "betas": (None, 10), "transl": (None, 3), "cam_crop": (None, 3), "joints3d": (None, 24, 3),
              "joints2d": (None, 24, 2), "intrinsics": (3, 3), "fps": (), "image_size": (2,), "track_id": ()}


def mean_checkpoint(path: Path, assets: Path) -> Path:
    """A small STR whose regressor heads are zero, so it predicts SPIN's mean parameters
    exactly: an upright body centred in each crop, which must land on the person."""
    torch.manual_seed(0)
    model = STR(SMALL_STR, MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz"))
    for head in (model.regressor.decpose, model.regressor.decshape, model.regressor.deccam):
        torch.nn.init.zeros_(head.weight)
    return save_checkpoint(path, model, {"note": "test: predicts the mean parameters"})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, assets, smpl_files):
    """Environment of the module's runs: SMPL, the mean-predicting checkpoint, weights dirs."""
    root = tmp_path_factory.mktemp("reconstruct")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STRCLI_WEIGHTS_DIR", str(root / "weights"))
        mp.setenv("STRCLI_CACHE_DIR", str(root / "cache"))
        yield {"root": root, "smpl_dir": smpl_files["chumpy"].parent,
               "checkpoint": mean_checkpoint(root / "mean.pt", assets)}


def reconstruct(workspace, *args):
    base = ["reconstruct", "--smpl-dir", str(workspace["smpl_dir"]), "--checkpoint",
            str(workspace["checkpoint"]), "--untrained", "--offline", "--device", "cpu", "--batch-size", "16"]
    return runner.invoke(app, [*base, *map(str, args)])


@pytest.fixture(scope="module")
def running(workspace, assets):
    """running.mp4, frames 0..47, meshes as OBJ and PLY."""
    out = workspace["root"] / "out"
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", out, "--end", 48,
                         "--detections", assets / "detections" / "running.det.txt",
                         "--mesh-format", "obj,ply", "--json")
    assert result.exit_code == 0, result.output
    return out / "running", json.loads(result.stdout)


def test_running_video_manifest(running, assets):
    folder, summary = running
    assert summary[0]["status"] == "done" and summary[0]["tracks"] == 1
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"] == {"frames_in_file": 180, "frames_expected": 180, "truncated": None,
                                  "frames_decoded": manifest["counts"]["frames_decoded"],
                                  "frames_processed": 48, "damaged_packets": 0, "detections": 48,
                                  "tracks": 1, "person_frames": 48, "meshes": 96, "timestamps_mended": 0,
                                  "frames_resized": 0}
    assert manifest["input"]["size_bytes"] == (assets / "videos" / "running.mp4").stat().st_size
    assert manifest["options"]["end_frame"] == 48 and manifest["options"]["mesh_formats"] == ["obj", "ply"]
    names = {w["name"]: w for w in manifest["weights"]}
    assert names["backbone"]["note"].startswith("random init")  # nothing pretends to be trained
    assert len(names["str"]["sha256"]) == 64 and len(names["smpl"]["sha256"]) == 64
    assert {"decode", "crop", "features", "temporal", "smpl", "write", "total"} <= set(manifest["timings"])
    assert manifest["intrinsics"]["focal"] == pytest.approx(math.hypot(1920, 1088))
    assert any("backbone is randomly initialised" in w for w in manifest["warnings"])
    assert not list(folder.parent.glob(".running.partial-*"))


def test_running_video_track_file(running):
    folder, _ = running
    with np.load(folder / "tracks" / "0.npz") as data:
        for key, shape in NPZ_SHAPES.items():
            assert key in data, key
            assert data[key].shape == tuple(48 if s is None else s for s in shape), key
        assert data["frames"].tolist() == list(range(48))
        assert np.allclose(data["times"], np.arange(48) / 30, atol=1e-3)
        assert data["image_size"].tolist() == [1920, 1088] and float(data["fps"]) == 30.0
        intrinsics = Intrinsics(float(data["intrinsics"][0, 0]), 1920, 1088)
        # 2D joints are the 3D joints seen through the written camera.
        reprojected = project(torch.from_numpy(data["joints3d"]), torch.zeros(48, 3), intrinsics)
        assert np.allclose(reprojected.numpy(), data["joints2d"], atol=0.05)
        # The mean body, centred in each crop, lands on the tracked runner: its trunk and
        # legs inside the box, its outstretched arms (mean pose) inside the crop square.
        boxes, joints2d = data["boxes"], data["joints2d"]
        size = (boxes[:, 2:] - boxes[:, :2])[:, None]
        trunk = joints2d[:, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15]]
        assert ((trunk >= boxes[:, None, :2] - 0.05 * size) & (trunk <= boxes[:, None, 2:] + 0.05 * size)).all()
        centre, half = (boxes[:, :2] + boxes[:, 2:])[:, None] / 2, 0.6 * size.max(-1, keepdims=True)
        assert (np.abs(joints2d - centre) <= half).all()
        assert joints2d[:, 15, 1].max() < joints2d[:, 7, 1].min()  # upright: head above the ankles
        assert np.allclose(data["cam_crop"], data["cam_crop"][0], atol=1e-5)  # the mean camera
        assert (data["transl"][:, 2] > 1).all()  # in front of the camera


def test_running_video_meshes(running, smpl_files):
    folder, _ = running
    body = Body.from_file(smpl_files["chumpy"])
    objs = sorted((folder / "meshes" / "0").glob("*.obj"))
    plys = sorted((folder / "meshes" / "0").glob("*.ply"))
    assert [p.stem for p in objs] == [f"{i:06d}" for i in range(48)] == [p.stem for p in plys]
    with np.load(folder / "tracks" / "0.npz") as data:
        go, bp, betas, transl = (torch.from_numpy(data[k][[7]]) for k in ("global_orient", "body_pose",
                                                                          "betas", "transl"))
    expected = body.axis_angle(go, bp, betas, transl).vertices[0].numpy()
    for path in (objs[7], plys[7]):
        mesh = trimesh.load(path, process=False)
        assert mesh.vertices.shape == (6890, 3) and np.array_equal(mesh.faces, body.faces)
        assert np.allclose(mesh.vertices, expected, atol=1e-4)  # the parameters rebuild the mesh


def test_running_video_amass_file(running, smpl_files):
    folder, _ = running
    with np.load(folder / "amass" / "0.npz") as amass:
        assert amass["poses"].shape == (48, 72) and amass["trans"].shape == (48, 3)
        assert amass["betas"].shape == (10,) and float(amass["mocap_framerate"]) == 30.0
        assert str(amass["gender"]) == "neutral"


def test_rerun_skips_and_overwrite_redoes(workspace, running, assets):
    folder, _ = running
    before = (folder / "manifest.json").stat().st_mtime_ns
    args = (assets / "videos" / "running.mp4", "-o", folder.parent, "--end", 48, "--detections",
            assets / "detections" / "running.det.txt", "--mesh-format", "obj,ply", "--json")
    again = reconstruct(workspace, *args)
    assert again.exit_code == 0 and json.loads(again.stdout)[0]["status"] == "skipped"
    assert (folder / "manifest.json").stat().st_mtime_ns == before
    changed = reconstruct(workspace, *args[:-1], "--focal", 1500, "--mesh-format", "none", "--json",
                          "-o", workspace["root"] / "other")
    assert json.loads(changed.stdout)[0]["status"] == "done"
    assert not (workspace["root"] / "other" / "running" / "meshes").exists()


def test_pedestrians_are_counted_and_keep_their_ids(assets):
    """Frames 0-99 of pedestrians.avi, checked by eye: nine people. One (top left) stands
    the whole time, one walks in from the left the whole time, others enter from the right
    and are tracked from their first detection, at frames 10, 17, 39, 61 and 77 (one far
    away at the top; ByteTrack's unconfirmed first box is kept), and two walk down towards
    the lamp post, where one is lost behind the sign and another person at frame 17 and
    the other leaves the detector at frame 51. Tracks shorter than 1.6 s are the re-found
    fragments of the occluded one."""
    info = probe(assets / "videos" / "pedestrians.avi")
    options = ReconstructOptions(tracking=TrackingConfig(min_length=16))
    tracked = track_video(info, 0, 100, options, detections=assets / "detections" / "pedestrians.det.txt")
    spans = [(int(t.frames[0]), int(t.frames[-1])) for t in tracked.tracks]
    assert spans == [(0, 51), (0, 99), (0, 17), (0, 99), (10, 99), (17, 99), (39, 99), (61, 99), (77, 99)]
    assert [t.track_id for t in tracked.tracks] == list(range(9))
    assert all(len(t) == t.frames[-1] - t.frames[0] + 1 for t in tracked.tracks)  # no id switches, no holes
    assert tracked.frame_of.tolist() == list(range(100)) and tracked.decoded >= 100
    longest = track_video(info, 0, 100, ReconstructOptions(tracking=TrackingConfig(max_people=2)),
                          detections=assets / "detections" / "pedestrians.det.txt")
    assert [(int(t.frames[0]), int(t.frames[-1])) for t in longest.tracks] == [(0, 99), (0, 99)]


def test_folder_batch_where_one_corrupt_file_fails_alone(workspace, assets, tmp_path):
    videos, dets = tmp_path / "videos", tmp_path / "dets"
    videos.mkdir()
    dets.mkdir()
    (videos / "pedestrians.avi").symlink_to(assets / "videos" / "pedestrians.avi")
    (videos / "broken.mp4").write_bytes((assets / "videos" / "running.mp4").read_bytes()[:50_000])
    (videos / "notes.txt").write_text("not a video, not picked up")
    for name in ("pedestrians", "broken"):
        shutil.copy(assets / "detections" / "pedestrians.det.txt", dets / f"{name}.det.txt")
    out = tmp_path / "out"
    result = reconstruct(workspace, videos, "-o", out, "--detections", dets, "--end", 30,
                         "--mesh-format", "none", "--json")
    assert result.exit_code == VideoError.exit_code
    summary = {Path(r["video"]).name: r for r in json.loads(result.stdout)}
    assert set(summary) == {"broken.mp4", "pedestrians.avi"}
    assert summary["broken.mp4"]["status"] == "failed" and summary["broken.mp4"]["exit_code"] == 7
    assert "error: broken.mp4:" in result.stderr
    assert summary["pedestrians.avi"]["status"] == "done" and summary["pedestrians.avi"]["tracks"] == 6
    manifest = json.loads((out / "pedestrians" / "manifest.json").read_text())
    assert len(list((out / "pedestrians" / "tracks").glob("*.npz"))) == 6 == manifest["counts"]["tracks"]
    assert sorted(p.name for p in out.iterdir()) == ["pedestrians"]  # nothing half-written
    # Each track file holds its own person: boxes of different tracks differ.
    with np.load(out / "pedestrians" / "tracks" / "0.npz") as a, np.load(out / "pedestrians" / "tracks" / "1.npz") as b:
        common = np.intersect1d(a["frames"], b["frames"])
        assert len(common) and not np.allclose(a["boxes"][np.isin(a["frames"], common)],
                                               b["boxes"][np.isin(b["frames"], common)])


def test_no_person_found_is_an_empty_result_with_a_warning(workspace, assets, tmp_path):
    empty = tmp_path / "none.txt"
    empty.write_text("")
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path / "out", "--end", 10,
                         "--detections", empty)
    assert result.exit_code == 0, result.output
    assert "no person found: the result is empty." in result.stderr
    manifest = json.loads((tmp_path / "out" / "running" / "manifest.json").read_text())
    assert manifest["tracks"] == [] and manifest["counts"]["frames_processed"] == 10
    # People detected, but too briefly for a track: said so, not "no person found".
    short = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path / "short", "--end", 5,
                        "--detections", assets / "detections" / "running.det.txt")
    assert short.exit_code == 0, short.output
    assert "no person found" not in short.stderr and "no track was kept: the result is empty." in short.stderr
    assert "Lower --min-track-length" in short.stderr
    from strcli.road.output_check import check_output

    assert "world" in manifest and check_output(tmp_path / "out" / "running")  # its camera (no world) passes


def test_ultralytics_path_with_an_untrained_yolo(workspace, assets, tmp_path):
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path / "out", "--end", 3,
                         "--detector", "yolo11n.yaml", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "running" / "manifest.json").read_text())
    assert manifest["counts"]["frames_processed"] == 3
    detector = next(w for w in manifest["weights"] if w["name"] == "detector")
    assert detector["note"] == "untrained (built from yaml)"
    assert manifest["counts"]["tracks"] == len(manifest["tracks"])


@pytest.mark.parametrize("args, code, text", [
    (["missing.mp4"], VideoError.exit_code, "does not exist"),
    (["VIDEO", "--shard", "3/3"], UsageError.exit_code, "bad --shard"),
    (["VIDEO", "--mesh-format", "stl"], UsageError.exit_code, "--mesh-format"),
    (["VIDEO", "--end", "2.5"], UsageError.exit_code, "frame numbers are whole"),
    (["VIDEO", "-o", "FILE"], UsageError.exit_code, "is a file, not a folder"),  # a bad argument, not a full disk
])
def test_bad_input_gets_one_line_and_its_exit_code(workspace, assets, tmp_path, args, code, text):
    (tmp_path / "file").write_text("in the way")
    args = [str(assets / "videos" / "running.mp4") if a == "VIDEO" else str(tmp_path / "file") if a == "FILE"
            else str(tmp_path / a) if a.endswith(".mp4") else a for a in args]
    result = reconstruct(workspace, *args, "--detections", assets / "detections" / "running.det.txt",
                         "--end", 4) if "--end" not in args else reconstruct(
        workspace, *args, "--detections", assets / "detections" / "running.det.txt")
    assert result.exit_code == code, result.output
    assert text in result.stderr
    assert all(line.startswith("error:") for line in result.stderr.strip().splitlines()
               if not line.startswith("warning:"))


def test_missing_smpl_spin_and_str_are_refused_with_how_to_get_them(workspace, assets, tmp_path):
    from test_features import write_spin_checkpoint

    base = ["reconstruct", str(assets / "videos" / "running.mp4"), "--detections",
            str(assets / "detections" / "running.det.txt"), "--offline", "-o", str(tmp_path / "out")]
    no_smpl = runner.invoke(app, [*base, "--untrained"])
    assert no_smpl.exit_code == MissingAssetError.exit_code
    assert "the SMPL neutral body model file is missing" in no_smpl.stderr and "strcli weights import" in no_smpl.stderr
    smpl = ["--smpl-dir", str(workspace["smpl_dir"])]
    no_spin = runner.invoke(app, [*base, *smpl])
    assert no_spin.exit_code == MissingAssetError.exit_code
    assert "strcli weights fetch spin_checkpoint" in no_spin.stderr
    write_spin_checkpoint(tmp_path / "spin.pt", assets)
    no_str = runner.invoke(app, [*base, *smpl, "--backbone", str(tmp_path / "spin.pt")])
    assert no_str.exit_code == MissingAssetError.exit_code
    assert "no trained STR weights" in no_str.stderr and "--untrained" in no_str.stderr
    # Real bodies first: the published TCMR weights, then training STR, then the random STR.
    ways = [no_str.stderr.index(w) for w in ("--model tcmr", "strcli train", "--untrained")]
    assert ways == sorted(ways), no_str.stderr
    assert not (tmp_path / "out").exists()


def test_rotated_variable_rate_video_with_stride(workspace, tmp_path):
    """A phone clip: stored landscape with a 90 degree display rotation, irregular frame
    times. Outputs are in the upright frame and keep each frame's own time."""
    from test_video import write_video

    pts = np.cumsum([0] + [33 if i % 3 else 100 for i in range(39)]).tolist()  # ms, with pauses
    video = write_video(tmp_path / "phone.mp4", frames=40, size=(64, 48), rotation=90, pts_ms=pts)
    dets = tmp_path / "phone.txt"
    dets.write_text("".join(f"{f + 1},-1,12,6,24,52,0.9,-1,-1,-1\n" for f in range(40)))  # upright 48x64
    out = tmp_path / "out"
    result = reconstruct(workspace, video, "-o", out, "--detections", dets, "--start", 4, "--stride", 2,
                         "--mesh-format", "none")
    assert result.exit_code == 0, result.output
    with np.load(out / "phone" / "tracks" / "0.npz") as data:
        assert data["image_size"].tolist() == [48, 64]  # width, height of the upright frame
        assert data["frames"].tolist() == list(range(4, 40, 2))
        # The encoder rounds times to its 1/30 s clock; the pauses are kept, not spread evenly.
        assert np.allclose(data["times"], np.array(pts[4:40:2]) / 1000, atol=0.01)
        assert np.diff(data["times"]).max() > 1.8 * np.diff(data["times"]).min()
        assert np.allclose(data["boxes"], [12, 6, 36, 58], atol=1e-4)
    manifest = json.loads((out / "phone" / "manifest.json").read_text())
    assert manifest["video"]["rotation"] in (90, 270) and manifest["counts"]["frames_processed"] == 18


def test_example_fetches_the_sample_video_and_spin_with_checksums(workspace, assets, tmp_path, monkeypatch):
    """The README's main command, with the manifest's URLs pointed at a local server: the
    sample video and SPIN's checkpoint are downloaded on first use, verified and used."""
    import tomllib

    from test_features import write_spin_checkpoint
    from test_weights import FileServer

    from strcli.weights.registry import manifest_path

    real = tomllib.loads(manifest_path().read_text())
    video_bytes = (assets / "videos" / "pedestrians.avi").read_bytes()
    assert real["assets"]["sample_video"]["sha256"] == __import__("hashlib").sha256(video_bytes).hexdigest()
    write_spin_checkpoint(tmp_path / "spin.pt", assets)
    server = FileServer()
    server.files["/vtest.avi"] = video_bytes
    server.files["/model_checkpoint.pt"] = (tmp_path / "spin.pt").read_bytes()
    try:
        text = manifest_path().read_text()
        text = text.replace(real["assets"]["sample_video"]["urls"][0], f"{server.url}/vtest.avi")
        text = text.replace(real["assets"]["spin_checkpoint"]["urls"][0], f"{server.url}/model_checkpoint.pt")
        (tmp_path / "manifest.toml").write_text(text)
        monkeypatch.setenv("STRCLI_MANIFEST", str(tmp_path / "manifest.toml"))
        weights = tmp_path / "weights"
        monkeypatch.setenv("STRCLI_WEIGHTS_DIR", str(weights))
        args = ["reconstruct", "--example", "-o", str(tmp_path / "out"), "--smpl-dir", str(workspace["smpl_dir"]),
                "--checkpoint", str(workspace["checkpoint"]), "--detections",
                str(assets / "detections" / "pedestrians.det.txt"), "--end", "12", "--mesh-format", "none",
                "--device", "cpu", "--quiet", "--render"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert (weights / "samples" / "vtest.avi").read_bytes() == video_bytes
        with av.open(str(tmp_path / "out" / "vtest" / "overlay.mp4")) as overlay:
            stream = overlay.streams.video[0]
            assert (stream.width, stream.height) == (768, 576)
            assert sum(1 for _ in overlay.decode(stream)) == 12
        manifest = json.loads((tmp_path / "out" / "vtest" / "manifest.json").read_text())
        backbone = next(w for w in manifest["weights"] if w["name"] == "backbone")
        assert backbone["path"] == str((weights / "spin_model_checkpoint.pt").resolve())
        assert backbone["sha256"] == __import__("hashlib").sha256(server.files["/model_checkpoint.pt"]).hexdigest()
        assert not any("randomly initialised" in w for w in manifest["warnings"])
        fetched = len(server.requests)
        assert runner.invoke(app, args).exit_code == 0 and len(server.requests) == fetched  # first use only
    finally:
        server.close()


def test_example_batch_script_reports_the_failure(workspace, assets, tmp_path):
    import subprocess

    videos, dets = tmp_path / "videos", tmp_path / "dets"
    videos.mkdir()
    dets.mkdir()
    (videos / "running.mp4").symlink_to(assets / "videos" / "running.mp4")
    (videos / "broken.mp4").write_bytes(b"\x00" * 1000)
    for name in ("running", "broken"):
        shutil.copy(assets / "detections" / "running.det.txt", dets / f"{name}.det.txt")
    script = Path(__file__).resolve().parent.parent / "examples" / "batch_reconstruct.sh"
    flags = ["--detections", str(dets), "--end", "8", "--smpl-dir", str(workspace["smpl_dir"]), "--checkpoint",
             str(workspace["checkpoint"]), "--untrained", "--offline", "--mesh-format", "none", "--device", "cpu"]
    run = subprocess.run(["bash", str(script), str(videos), str(tmp_path / "out"), *flags],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED  " in run.stderr and "broken.mp4 (exit 7)" in run.stderr
    assert "ok      " in run.stdout and "1 of 2 video(s) ok, 1 failed" in run.stdout
    assert (tmp_path / "out" / "running" / "manifest.json").is_file()


def test_a_truncated_file_is_reported_not_silently_cut(workspace, assets, tmp_path):
    cut = tmp_path / "cut.avi"
    cut.write_bytes((assets / "videos" / "pedestrians.avi").read_bytes()[:2_000_000])
    result = reconstruct(workspace, cut, "-o", tmp_path / "out", "--detections",
                         assets / "detections" / "pedestrians.det.txt", "--min-track-length", 100000)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "cut" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["frames_in_file"] == 795 and 0 < counts["frames_decoded"] < 795
    assert counts["frames_expected"] == 795 and counts["truncated"] is True
    assert counts["frames_processed"] == counts["frames_decoded"]
    assert any("may be truncated" in w for w in manifest["warnings"])
    assert any("no track lasted 100000 frames" in w for w in manifest["warnings"])
    assert "may be truncated" in result.stderr


def test_detect_every_runs_the_detector_on_every_nth_frame_and_fills_the_rest(assets, monkeypatch):
    """--detect-every 3: the detector (here a stand-in that finds one person moving one pixel
    a frame) sees frames 0, 3, 6, ...; the tracks still have every frame, the boxes between
    interpolated, and ByteTrack is told the detections' rate."""
    from strcli.road.tracking import DetectionTracker, Detections

    calls: list = []
    seen: list = []

    class MovingPerson:
        def __init__(self, weights, device, imgsz, conf, half, hint="", cpu_bf16=False):
            calls.append(("init", imgsz, half))

        def __call__(self, images):
            calls.append(len(images))
            out = []
            for image in images:  # the frame's index is written in its pixels below
                frame = int(image[0, 0, 0])
                seen.append(frame)
                out.append(Detections(np.array([[100 + frame, 50, 300 + frame, 450]], np.float32),
                                      np.array([0.9], np.float32)))
            return out

    class Tracker(DetectionTracker):
        def __init__(self, fps, lost):
            calls.append(("tracker", fps))
            super().__init__(fps, lost)

    class Numbered(VideoReader):  # frame k's top-left pixel reads k
        def __iter__(self):
            for frame in super().__iter__():
                frame.image[0, 0, 0] = frame.index
                yield frame

    monkeypatch.setattr("strcli.road.reconstruct.YoloPersonDetector", MovingPerson)
    monkeypatch.setattr("strcli.road.reconstruct.DetectionTracker", Tracker)
    monkeypatch.setattr("strcli.road.reconstruct.VideoReader", Numbered)
    info = probe(assets / "videos" / "running.mp4")
    options = ReconstructOptions(detect_every=3, detector_imgsz=320, tracking=TrackingConfig(smooth_window=1))
    tracked = track_video(info, 0, 30, options, detector=Path("stand-in.pt"))
    assert calls == [("init", 320, False), ("tracker", pytest.approx(info.fps / 3))] + [1] * 10  # fp32 on a CPU
    assert seen == list(range(0, 30, 3))
    calls.clear()
    batched = track_video(info, 0, 30, replace(options, detector_batch=4), detector=Path("stand-in.pt"))
    assert calls[2:] == [4, 4, 2]  # a GPU's batches: frames 0-9, 12-21, 24-27
    assert len(batched.tracks) == 1 and np.array_equal(batched.tracks[0].boxes, tracked.tracks[0].boxes)
    assert batched.detections == tracked.detections == 10
    (track,) = tracked.tracks
    assert track.frames.tolist() == list(range(28))  # up to the last detection (frame 27)
    assert track.interpolated.tolist() == [f % 3 != 0 for f in range(28)]
    assert np.allclose(track.boxes[:, 0], 100 + np.arange(28))  # the motion between, interpolated
    with pytest.raises(UsageError, match="--detect-every 10"):
        ReconstructOptions(detect_every=10)  # more than --max-gap + 1: gaps could not be filled
    auto = ReconstructOptions(detect_every=0)  # the CPU default: 10 detections per second of video
    assert [auto.detection_interval(fps) for fps in (10, 25, 30, 60, 240)] == [1, 2, 3, 6, 9]  # at most max_gap + 1
    assert ReconstructOptions(detect_every=0, detect_hz=7.5).detection_interval(30) == 4  # --fast


def test_fast_sets_the_speed_options_and_they_reach_the_manifest(workspace, assets, tmp_path):
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path, "--end", 16, "--fast",
                         "--detections", assets / "detections" / "running.det.txt", "--mesh-format", "none", "-q")
    assert result.exit_code == 0, result.output
    options = json.loads((tmp_path / "running" / "manifest.json").read_text())["options"]
    assert (options["detect_every"], options["detect_every_auto"], options["detect_hz"], options["detector_imgsz"],
            options["window_stride"]) == (1, True, 7.5, 320, 16)  # auto; a detection file has every frame's boxes
    slow = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path / "b", "--end", 16,
                       "--detections", assets / "detections" / "running.det.txt", "--mesh-format", "none",
                       "--detect-every", "1", "-q")
    options = json.loads((tmp_path / "b" / "running" / "manifest.json").read_text())["options"]
    assert slow.exit_code == 0 and (options["detect_every"], options["window_stride"]) == (1, 8)


def test_importing_other_mean_params_redoes_an_untrained_run(workspace, assets, tmp_path):
    """The mean parameters change an untrained run's numbers: the built-in fallback, then
    an imported file, are named in the manifest and the rerun is not skipped."""
    from strcli.weights.registry import sha256_file

    args = ["reconstruct", str(assets / "videos" / "running.mp4"), "-o", str(tmp_path / "out"), "--end", "8",
            "--detections", str(assets / "detections" / "running.det.txt"), "--smpl-dir",
            str(workspace["smpl_dir"]), "--untrained", "--offline", "--device", "cpu", "--mesh-format", "none",
            "--min-track-length", "2", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    manifest = json.loads((tmp_path / "out" / "running" / "manifest.json").read_text())
    (mean,) = [w for w in manifest["weights"] if w["name"] == "mean_params"]
    assert mean["path"] is None and "built-in fallback" in mean["note"]
    with np.load(tmp_path / "out" / "running" / "tracks" / "0.npz") as data:
        before = data["betas"].copy()
    assert json.loads(runner.invoke(app, args).stdout)[0]["status"] == "skipped"
    imported = runner.invoke(app, ["weights", "import", str(assets / "smpl_helpers" / "smpl_mean_params.npz"),
                                   "--name", "smpl_mean_params"])
    assert imported.exit_code == 0, imported.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and json.loads(second.stdout)[0]["status"] == "done"
    manifest = json.loads((tmp_path / "out" / "running" / "manifest.json").read_text())
    (mean,) = [w for w in manifest["weights"] if w["name"] == "mean_params"]
    assert mean["sha256"] == sha256_file(assets / "smpl_helpers" / "smpl_mean_params.npz")
    assert mean["path"].endswith("smpl_mean_params.npz")
    with np.load(tmp_path / "out" / "running" / "tracks" / "0.npz") as data:
        assert not np.allclose(data["betas"], before)  # the numbers did change
    assert json.loads(runner.invoke(app, args).stdout)[0]["status"] == "skipped"


def test_a_changed_detections_file_of_the_same_size_and_time_redoes_the_run(workspace, assets, tmp_path):
    import os

    dets = tmp_path / "d.txt"
    original = (assets / "detections" / "running.det.txt").read_text()
    dets.write_text(original)
    args = (assets / "videos" / "running.mp4", "-o", tmp_path / "out", "--end", 8, "--detections", dets,
            "--mesh-format", "none", "--json")
    assert json.loads(reconstruct(workspace, *args).stdout)[0]["status"] == "done"
    stat = dets.stat()
    dets.write_text(original.replace("0.844", "0.845", 1))  # another score, the same size and time
    os.utime(dets, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert dets.stat().st_size == stat.st_size
    assert json.loads(reconstruct(workspace, *args).stdout)[0]["status"] == "done"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_or_file_strcli_did_not_write_is_never_replaced(workspace, assets, tmp_path, overwrite):
    """-o . with the video in ./base/base.mp4: OUT/base/ is the user's folder (the video
    itself inside), which a finished run used to replace and delete (found by the bad-input
    trial). It is refused with one line and exit 2, and left as it was; so is a file."""
    own = tmp_path / "work" / "base"
    own.mkdir(parents=True)
    video = own / "base.mp4"
    shutil.copyfile(assets / "videos" / "running.mp4", video)
    (own / "notes.txt").write_text("mine")
    extra = ("--overwrite",) if overwrite else ()
    result = reconstruct(workspace, video, "-o", tmp_path / "work", "--end", 8, "--detections",
                         assets / "detections" / "running.det.txt", "--mesh-format", "none", *extra)
    assert result.exit_code == UsageError.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: base.mp4: {own} exists and is a folder strcli did not write (no strcli "
                      "manifest.json): strcli will not replace it. Write the outputs elsewhere with "
                      "-o ANOTHER_FOLDER, or move it away."], result.stderr
    assert sorted(p.name for p in own.iterdir()) == ["base.mp4", "notes.txt"]
    assert video.read_bytes() == (assets / "videos" / "running.mp4").read_bytes()
    assert not [p for p in (tmp_path / "work").iterdir() if p.name.startswith(".")]  # no temporaries left
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "running").write_text("a file of mine")
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path / "out", "--end", 8,
                         "--detections", assets / "detections" / "running.det.txt", "--mesh-format", "none", *extra)
    assert result.exit_code == 2 and "exists and is a file (no strcli manifest.json)" in result.stderr
    assert (tmp_path / "out" / "running").read_text() == "a file of mine"


def test_the_last_step_never_replaces_a_folder_strcli_did_not_write(tmp_path):
    """The same rule where the finished folder takes its name (a folder made meanwhile)."""
    from strcli.road.outputs import VideoFolder

    with pytest.raises(UsageError, match="a folder strcli did not write"):
        with VideoFolder(tmp_path, "clip") as folder:
            (folder.tmp / "manifest.json").write_text('{"fingerprint": "x"}')
            (tmp_path / "clip").mkdir()
            (tmp_path / "clip" / "mine.txt").write_text("mine")
            folder.commit()
    assert (tmp_path / "clip" / "mine.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["clip"]  # the partial folder was removed


def test_another_video_of_the_same_stem_does_not_replace_a_folders_results(workspace, assets, tmp_path):
    """a/clip.mp4 then, in a separate run, b/clip.mp4 into the same -o: the second was
    silently redone over the first (another fingerprint); it is now refused (exit 2)."""
    import os

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"
    shutil.copyfile(assets / "videos" / "running.mp4", first)
    shutil.copyfile(assets / "videos" / "running.mp4", second)
    out = tmp_path / "out"
    common = ("-o", out, "--end", 8, "--detections", assets / "detections" / "running.det.txt",
              "--mesh-format", "none", "--json")
    assert json.loads(reconstruct(workspace, first, *common).stdout)[0]["status"] == "done"
    manifest = (out / "clip" / "manifest.json").read_text()
    refused = reconstruct(workspace, second, *common)
    assert refused.exit_code == UsageError.exit_code == 2, refused.output
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"holds the results of another video, {first.resolve()}" in errors[0]
    assert "-o ANOTHER_FOLDER" in errors[0] and "--overwrite" in errors[0]
    assert (out / "clip" / "manifest.json").read_text() == manifest  # untouched
    # The same path with new contents is redone; --overwrite replaces the other video's results.
    os.utime(first, (1_000_000_000, 1_000_000_000))
    assert json.loads(reconstruct(workspace, first, *common).stdout)[0]["status"] == "done"
    replaced = reconstruct(workspace, second, *common, "--overwrite")
    assert json.loads(replaced.stdout)[0]["status"] == "done"
    recorded = json.loads((out / "clip" / "manifest.json").read_text())["input"]["path"]
    assert recorded == str(second.resolve())
    # A video that was moved (its recorded path is gone) is redone in place, not refused.
    moved = tmp_path / "c" / "clip.mp4"
    moved.parent.mkdir()
    second.rename(moved)
    assert json.loads(reconstruct(workspace, moved, *common).stdout)[0]["status"] == "done"
    assert json.loads((out / "clip" / "manifest.json").read_text())["input"]["path"] == str(moved.resolve())


def test_detections_that_do_not_fit_are_warned_in_the_manifest_or_refused(workspace, assets, tmp_path):
    own = (assets / "detections" / "running.det.txt").read_text()
    doctored = tmp_path / "doctored.txt"
    doctored.write_text(own + "".join(f"{f},-1,3000,300,80,200,0.9,-1,-1,-1\n" for f in range(1, 11))
                        + "".join(f"{f},-1,900,300,80,200,0.9,-1,-1,-1\n" for f in range(181, 186)))
    result = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path / "out", "--end", 8,
                         "--detections", doctored, "--mesh-format", "none")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "running" / "manifest.json").read_text())
    (warning,) = [w for w in manifest["warnings"] if "--detections" in w]
    assert "10 box(es) wholly outside" in warning and "5 box(es) on frames after" in warning
    assert "is this the right file?" in result.stderr
    other = reconstruct(workspace, assets / "videos" / "running.mp4", "-o", tmp_path / "out2", "--detections",
                        assets / "detections" / "pedestrians.det.txt", "--mesh-format", "none")
    assert other.exit_code == UsageError.exit_code == 2, other.output
    errors = [line for line in other.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not fit this video" in errors[0]
    assert not (tmp_path / "out2" / "running").exists()


def test_a_cut_mkv_without_a_frame_count_is_reported(workspace, tmp_path):
    """MKV records a duration but no frame count: the cut is found from duration x rate."""
    from generated_video import write_clip

    whole = write_clip(tmp_path / "whole.mkv", frames=60, rate=30)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    dets = tmp_path / "d.txt"
    dets.write_text("".join(f"{f + 1},-1,10,5,30,40,0.9,-1,-1,-1\n" for f in range(60)))
    result = reconstruct(workspace, cut, "-o", tmp_path / "out", "--detections", dets, "--mesh-format", "none")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "cut" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["frames_in_file"] is None and counts["frames_expected"] == 60 and counts["truncated"] is True
    assert 10 < counts["frames_decoded"] < 50
    assert any("may be truncated" in w and f"decoded {counts['frames_decoded']} frames" in w
               for w in manifest["warnings"])


def test_precision_is_recorded_and_a_change_redoes_the_video(workspace, assets, monkeypatch):
    """--precision auto on a CPU reported without native bf16 runs fp32; on one with it,
    bf16, which changes the numbers, so a rerun redoes the video. The manifest says which."""
    import strcli.utils.devices as devices

    out = workspace["root"] / "precision"
    args = [assets / "videos" / "running.mp4", "-o", out, "--end", 8, "--mesh-format", "none", "--json",
            "--detections", assets / "detections" / "running.det.txt"]
    manifest = out / "running" / "manifest.json"
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: False)
    first = reconstruct(workspace, *args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)[0]["status"] == "done"
    assert json.loads(manifest.read_text())["options"]["precision_used"] == "fp32"
    assert json.loads(reconstruct(workspace, *args).stdout)[0]["status"] == "skipped"
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: True)
    second = reconstruct(workspace, *args)
    assert json.loads(second.stdout)[0]["status"] == "done", second.output
    recorded = json.loads(manifest.read_text())["options"]
    assert recorded["precision_used"] == "bf16" and recorded["precision"] == "auto"
    forced = reconstruct(workspace, *args, "--precision", "fp32")
    assert json.loads(forced.stdout)[0]["status"] == "done"
    assert json.loads(manifest.read_text())["options"]["precision_used"] == "fp32"
