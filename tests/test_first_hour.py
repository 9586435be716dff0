"""Issue 17: the first hour of a new user. Fast failures, progress that moves, a way
through offline, disk use said before writing, no work that was not asked for, messages
in words, side view framed."""

import json
import shutil
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import strcli.body.smpl
import strcli.road.batch
import strcli.road.features
import strcli.utils.progress
import strcli.road.tracking
import strcli.weights.registry
import strcli.road.outputs
import strcli.road.models
import strcli.road.reconstruct
import strcli.render.overlay
from strcli.body.smpl import Body
from strcli.cli.main import app
from strcli.utils.errors import DownloadError, OutputError, UsageError, VideoError
from strcli.road.reconstruct import ModelSources, ReconstructOptions, load_models, reconstruct_video
from strcli.render.overlay import (SIDE_BACKGROUND, SIDE_MARGIN, Person, TrackMotion, draw_people, frame_side_view,
                           joint_radius, side_view)

runner = CliRunner()


@pytest.fixture
def setup(tmp_path, assets, smpl_files):
    from test_reconstruct import mean_checkpoint

    checkpoint = mean_checkpoint(tmp_path / "mean.pt", assets)
    smpl = smpl_files["chumpy"].parent
    video = assets / "videos" / "running.mp4"
    detections = assets / "detections" / "running.det.txt"

    def run(*extra, out=tmp_path / "out"):
        args = ["reconstruct", str(video), "-o", str(out), "--detections", str(detections), "--smpl-dir", str(smpl),
                "--checkpoint", str(checkpoint), "--untrained", "--offline", "--device", "cpu",
                "--mesh-format", "none", *map(str, extra)]
        return runner.invoke(app, args)

    return {"run": run, "smpl": smpl, "checkpoint": checkpoint, "video": video, "detections": detections,
            "out": tmp_path / "out"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is: nothing listens there


# ---------------------------------------------------------------- 1. progress that moves


class Recorder:
    def __init__(self, events):
        self.events, self.total, self.done = events, None, 0

    def start(self, stage, total):
        self.events.append(("start", stage, total))
        self.total, self.done = total, 0

    def advance(self, count=1):
        self.done += count
        self.events.append(("advance", self.done, self.total))

    def finish(self):
        self.events.append(("finish",))

    def fail(self):
        self.events.append(("fail",))


def test_progress_advances_before_the_last_str_window_of_a_one_window_clip(setup, tmp_path):
    models = load_models(ModelSources(checkpoints=(setup["checkpoint"],), smpl_dir=setup["smpl"], untrained=True,
                                      download=False), "cpu", 16, need_detector=False)
    events = []
    model = models.temporal["str"]
    forward = model.forward
    model.forward = lambda *a, **k: (events.append(("str",)), forward(*a, **k))[1]
    options = ReconstructOptions(end="16", mesh_formats=())
    result = reconstruct_video(setup["video"], tmp_path / "o", options, models, setup["detections"],
                               progress=Recorder(events))
    assert result.status == "done" and result.frames == 16
    bodies = next(i for i, e in enumerate(events) if e[0] == "start" and e[1].startswith("bodies"))
    total = events[bodies][2]
    str_calls = [i for i, e in enumerate(events) if e == ("str",)]
    assert len(str_calls) == 1  # one 16-frame window: STR runs once, at the end
    before = [e[1] for e in events[bodies:str_calls[-1]] if e[0] == "advance"]
    assert any(0 < done < total for done in before), events
    assert [e[1] for e in events if e[0] == "advance"][-1] == total


def test_render_progress_knows_its_frame_count_before_the_first_frame(setup, tmp_path):
    assert setup["run"]("--end", 6, "-q").exit_code == 0
    calls = []
    body = Body.from_file(sorted(setup["smpl"].glob("*.pkl"))[0])
    strcli.render.overlay.render_video(setup["out"] / "running", body, strcli.render.overlay.RenderOptions(),
                               progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)


_LINE = re.compile(r"^running\.mp4: (tracking|bodies) (\d+)/(\d+) \((\d+)%\), "
                   r"(?:[\d.]+ (?:frames|bodies)/s, )?elapsed \d:\d\d:\d\d, (eta \d:\d\d:\d\d|done)$")


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(setup, monkeypatch):
    monkeypatch.setenv("STRCLI_PROGRESS_INTERVAL", "0")  # a line at every step (default: one per 10 s)
    result = setup["run"]("--end", 24)  # CliRunner's stderr is no terminal, as a file or a CI log is not
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    # --detections: ultralytics' detector is never loaded (its tracker comes with the first
    # video), so the line names torch alone.
    assert lines[:2] == ["loading torch...",  # --offline (setup): no "downloaded on first use"
                         "finding and checking the weights (--offline: nothing is downloaded)..."]
    stages = {}
    for line in lines[2:]:
        if line.startswith("warning:"):
            continue
        match = _LINE.match(line)
        assert match, line
        stages.setdefault(match.group(1), []).append((int(match.group(2)), int(match.group(3)), match.group(5)))
    tracking = stages["tracking"]
    assert [done for done, _, _ in tracking] == [*range(1, 25), 24]  # every frame, then the end
    assert all(total == 24 for _, total, _ in tracking)
    assert tracking[-1] == (24, 24, "done") and all(end != "done" for *_, end in tracking[:-1])
    bodies = stages["bodies"]
    assert len(bodies) >= 3 and 0 < bodies[0][0] < bodies[-1][0] == bodies[-1][1] and bodies[-1][2] == "done"


def test_plain_progress_lines_are_spaced_by_the_interval(monkeypatch):
    import io

    from strcli.utils.progress import LineProgress

    now = [100.0]
    monkeypatch.setattr(strcli.utils.progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    with LineProgress(out, every=10) as bar:
        task = bar.add_task("clip.mp4: tracking", total=795, unit="frames")
        for _ in range(795):
            now[0] += 0.25  # 4 frames/s
            bar.advance(task)
    lines = out.getvalue().splitlines()
    assert lines[0] == "clip.mp4: tracking 1/795 (0%), 4.0 frames/s, elapsed 0:00:00, eta 0:03:18"
    assert lines[1] == "clip.mp4: tracking 41/795 (5%), 4.0 frames/s, elapsed 0:00:10, eta 0:03:08"
    assert lines[-1] == "clip.mp4: tracking 795/795 (100%), 4.0 frames/s, elapsed 0:03:18, done"
    assert len(lines) == 1 + 795 // 40 + 1  # the first, one every 10 s (40 frames), and the end


def test_a_task_that_fails_prints_no_done_line(setup, tmp_path, monkeypatch):
    """Plain lines: a stage that ends because of an error ends without `done` (it said
    `done` after the error), for reconstruct, render and weights fetch alike."""
    import io
    import shutil

    from strcli.utils.errors import VideoError
    from strcli.utils.progress import LineProgress, end_task

    out = io.StringIO()
    with LineProgress(out, every=10) as bar:
        ok, broken = bar.add_task("a: render", unit="frames"), bar.add_task("b: render", unit="frames")
        end_task(bar, broken, failed=True)
        end_task(bar, broken, failed=True)  # ending it twice is harmless
        end_task(bar, ok)
    assert [line.rsplit(", ", 1)[1] for line in out.getvalue().splitlines()] == ["done"]
    assert out.getvalue().startswith("a: render 0, elapsed 0:00:00, done")

    monkeypatch.setenv("STRCLI_PROGRESS_INTERVAL", "0")

    def failing(video, out_root, options, models, dets, overwrite, progress):
        progress.start("tracking", 10)
        progress.advance()
        raise VideoError(f"{video.name} is damaged at frame 1.")

    with monkeypatch.context() as patch:
        patch.setattr(strcli.road.batch, "reconstruct_video", failing)
        failed = setup["run"]("--end", 10)
    assert failed.exit_code == VideoError.exit_code, failed.output
    lines = failed.stderr.splitlines()
    assert [line.split(", ")[0] for line in lines if line.startswith("running.mp4")] == [
        "running.mp4: tracking 1/10 (10%)"], failed.stderr  # and no `done` line after the error
    assert lines[-1] == "error: running.mp4: running.mp4 is damaged at frame 1."

    assert setup["run"]("--end", 4, "-q").exit_code == 0
    gone = setup["out"] / "gone"  # a second folder, whose video is no more
    shutil.copytree(setup["out"] / "running", gone)
    manifest = json.loads((gone / "manifest.json").read_text())
    manifest["input"]["path"] = str(tmp_path / "gone.mp4")
    (gone / "manifest.json").write_text(json.dumps(manifest))
    rendered = runner.invoke(app, ["render", str(setup["out"]), "--smpl-dir", str(setup["smpl"]), "--device", "cpu",
                                   "--preset", "ultrafast"])
    assert rendered.exit_code == VideoError.exit_code, rendered.output
    lines = rendered.stderr.splitlines()
    assert [line for line in lines if "gone" in line] == [
        f"error: gone: the source video {tmp_path / 'gone.mp4'} of gone is gone. Pass its new location with "
        "--video-file."]  # its render task ends without a line
    assert lines[-1].startswith("running: render 4/4 (100%), ") and lines[-1].endswith(", done")

    _unreachable_manifest(tmp_path, monkeypatch)
    fetched = runner.invoke(app, ["weights", "fetch", "detector"])
    assert fetched.exit_code == DownloadError.exit_code, fetched.output
    assert [line.split(":")[:2] for line in fetched.stderr.splitlines()] == [["error", " detector"]], fetched.stderr


@pytest.mark.parametrize("signal_number,code,name", [(2, 130, "Ctrl-C"), (15, 143, "SIGTERM")])
def test_an_interrupted_run_says_so_leaves_nothing_half_written_and_a_rerun_completes(setup, tmp_path, signal_number,
                                                                                    code, name):
    import os

    out = tmp_path / "out"
    args = [str(setup["video"]), "-o", str(out), "--detections", str(setup["detections"]), "--smpl-dir",
            str(setup["smpl"]), "--checkpoint", str(setup["checkpoint"]), "--untrained", "--offline", "--device",
            "cpu", "--mesh-format", "none"]
    env = {**os.environ, "STRCLI_PROGRESS_INTERVAL": "0.2"}
    # Ctrl-C as a terminal's: a shell that started the tests in the background (`.ci/run &`) ignores
    # SIGINT for its children, and a Python started so never raises KeyboardInterrupt
    import signal

    run = subprocess.Popen([sys.executable, "-m", "strcli", "reconstruct", *args, "--end", "400"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in run.stderr:  # interrupt once the bodies are being written (into the partial folder)
        seen.append(line)
        if line.startswith("running.mp4: bodies") and not line.startswith("running.mp4: bodies 0/"):
            break
    assert list(out.glob(".running.partial-*")), "".join(seen)
    run.send_signal(signal_number)
    rest = run.stderr.read()
    assert run.wait(timeout=120) == code, "".join(seen) + rest
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert errors == [f"error: interrupted ({name}); finished work is kept, the work in progress was removed and "
                      "nothing half-written has its final name; rerun the same command to go on (finished videos "
                      "are skipped, downloads resume)."]
    assert not (out / "running").exists() and not list(out.glob(".running.*"))  # no partial folder, no lock
    rerun = runner.invoke(app, ["reconstruct", *args, "--end", "16", "-q"])
    assert rerun.exit_code == 0, rerun.output
    assert (out / "running" / "manifest.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["running"]


# ---------------------------------------------------------------- 2. offline


def _unreachable_manifest(tmp_path, monkeypatch) -> int:
    """The shipped manifest with every URL on a closed port of 127.0.0.1 (connection refused)."""
    manifest = (Path(strcli.road.reconstruct.__file__).parents[2] / "weights" / "manifest.toml").read_text()
    port = _closed_port()
    manifest = re.sub(r'urls = \["[^"]*"\]', f'urls = ["http://127.0.0.1:{port}/file"]', manifest)
    (tmp_path / "manifest.toml").write_text(manifest)
    monkeypatch.setenv("STRCLI_MANIFEST", str(tmp_path / "manifest.toml"))
    return port


def test_a_failed_download_names_the_file_its_place_and_every_way_around(setup, tmp_path, monkeypatch):
    port = _unreachable_manifest(tmp_path, monkeypatch)
    # --untrained without --offline downloads SPIN (the untrained STR starts from its regressor)
    result = runner.invoke(app, ["reconstruct", str(setup["video"]), "-o", str(tmp_path / "o"), "--smpl-dir",
                                 str(setup["smpl"]), "--untrained", "--device", "cpu", "--end", "4"])
    assert result.exit_code == DownloadError.exit_code, result.output
    line = _error_line(result)
    assert line.startswith("error: 3 files this run needs are missing:\n  - detector (yolo11m.pt, to ")
    assert str(tmp_path / "weights" / "yolo11m.pt") in line
    assert "strcli weights import yolo11m.pt --name detector" in line and "--detections FILE" in line
    result = runner.invoke(app, ["reconstruct", str(setup["video"]), "-o", str(tmp_path / "o"), "--smpl-dir",
                                 str(setup["smpl"]), "--untrained", "--device", "cpu", "--end", "4",
                                 "--detections", str(setup["detections"])])
    assert result.exit_code == DownloadError.exit_code
    line = _error_line(result)
    assert "spin_checkpoint (spin_model_checkpoint.pt, to" in line and f":{port}/file" in line
    assert "yolo11m" not in line  # --detections: no detector needed
    assert "strcli weights import spin_model_checkpoint.pt --name spin_checkpoint" in line
    assert "--offline" in line and "--untrained" in line
    # ... and --offline is the way through, with a random backbone and a warning
    result = runner.invoke(app, ["reconstruct", str(setup["video"]), "-o", str(tmp_path / "o"), "--smpl-dir",
                                 str(setup["smpl"]), "--untrained", "--offline", "--device", "cpu", "--end", "4",
                                 "--detections", str(setup["detections"]), "--mesh-format", "none"])
    assert result.exit_code == 0, result.output
    assert "backbone is randomly initialised" in result.stderr  # not with -q: test_new_user_trial


def _error_line(result) -> str:
    """The error message: its `error:` line and the indented lines after it (a list of files)."""
    lines = result.stderr.splitlines()
    errors = [k for k, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1, result.stderr  # one message, not one per rerun
    block = [lines[errors[0]]]
    for line in lines[errors[0] + 1:]:
        if not line.startswith("  "):
            break
        block.append(line)
    return "\n".join(block)


def test_without_network_one_message_names_every_missing_file(setup, tmp_path, monkeypatch):
    port = _unreachable_manifest(tmp_path, monkeypatch)
    weights = tmp_path / "weights"
    base = ["reconstruct", "--example", "-o", str(tmp_path / "o"), "--untrained", "--device", "cpu"]
    # No SMPL file: the manual step comes first, nothing is downloaded, and every other missing file is named too.
    result = runner.invoke(app, base)
    assert result.exit_code == 3, result.output
    line = _error_line(result)
    assert line.startswith("error: 5 files this run needs are missing (nothing was downloaded: a manual step comes "
                           "first):\n  - the SMPL neutral body model file is missing: strcli looked for SMPL_NEUTRAL.pkl")
    for name, file in (("sample_video", "vtest.avi"), ("detector", "yolo11m.pt"),
                       ("spin_checkpoint", "spin_model_checkpoint.pt"), ("smpl_mean_params", "smpl_mean_params.npz")):
        assert f"{name} ({file}, to {weights}/" in line and f"--name {name}`" in line
    assert "`strcli weights import smpl_mean_params.npz --name smpl_mean_params`" in line
    assert "register at https://smplify.is.tue.mpg.de" in line and "--detections FILE" in line
    assert not list(weights.rglob("*.part")) and not (weights / ".downloads").exists()  # nothing was tried
    # With SMPL: each download is tried once, and the failures are one message, exit 5.
    result = runner.invoke(app, [*base, "--smpl-dir", str(setup["smpl"])])
    assert result.exit_code == DownloadError.exit_code, result.output
    line = _error_line(result)
    assert line.startswith("error: 4 files this run needs are missing:\n  - sample_video (vtest.avi, to ")
    assert line.count(f"download failed: http://127.0.0.1:{port}/file: cannot connect") == 4
    assert line.endswith("\n  Then check the network and rerun (downloads resume).")
    # --offline: no download is tried; the SPIN files have fallbacks with --untrained, the others are named.
    result = runner.invoke(app, [*base, "--smpl-dir", str(setup["smpl"]), "--offline"])
    assert result.exit_code == 3, result.output
    line = _error_line(result)
    assert line.startswith("error: 2 files this run needs are missing and --offline downloads nothing:\n"
                           f"  - sample_video (vtest.avi, to {weights / 'samples' / 'vtest.avi'}).\n")
    assert "\n  - detector (yolo11m.pt" in line
    assert "run `strcli weights fetch sample_video detector` there" in line
    assert "or pass a video of your own instead of --example" in line and "spin_checkpoint" not in line
    # Offline, the sample video can be imported from any copy (recognised by its checksum), and
    # nothing suggests adding the --offline the command already has.
    assert ("any copy of OpenCV's vtest.avi (Debian's opencv-doc package has one) is recognised by its checksum: "
            "`strcli weights import vtest.avi`") in line
    assert "add --offline" not in result.output and "downloaded on first use" not in result.output
    # Without --untrained, the missing STR checkpoint (a manual step) is named with the rest.
    result = runner.invoke(app, [*base[:-3], "--device", "cpu", "--smpl-dir", str(setup["smpl"]), "--offline"])
    assert result.exit_code == 3
    line = _error_line(result)
    assert line.startswith("error: 4 files this run needs are missing")
    for name in ("sample_video", "detector", "spin_checkpoint", "str_checkpoint (no trained STR weights"):
        assert name in line
    # The ways on for STR: real bodies (--model tcmr) first, then training, then --untrained.
    ways = [line.index(way) for way in ("--model tcmr", "`strcli train`", "--untrained (a randomly initialised STR")]
    assert ways == sorted(ways), line
    assert "add --offline" not in line


# ---------------------------------------------------------------- 3. errors about the input first


def _heavy_work_forbidden(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("heavy work before the inputs were checked")

    monkeypatch.setattr(strcli.road.models, "load_models", refuse)
    monkeypatch.setattr(strcli.road.features.Backbone, "__init__", refuse)
    monkeypatch.setattr(strcli.road.tracking, "import_ultralytics", refuse)
    monkeypatch.setattr(strcli.weights.registry, "fetch_asset", refuse)


@pytest.mark.parametrize("args,code,text", [
    (["MISSING"], VideoError.exit_code, "missing.mp4: video {tmp}/missing.mp4 does not exist"),
    (["EMPTY"], VideoError.exit_code, "is empty (0 bytes)"),
    (["VIDEO", "--detections", "{tmp}/nodets.txt"], UsageError.exit_code, "--detections {tmp}/nodets.txt does not exist"),
    (["VIDEO", "--backbone", "{tmp}/spin.pt"], 3, "--backbone {tmp}/spin.pt does not exist"),
    (["VIDEO", "--checkpoint", "{tmp}/best.pt"], 3, "checkpoint {tmp}/best.pt does not exist"),
    (["VIDEO", "-o", "{tmp}/file/out"], UsageError.exit_code, "-o {tmp}/file/out: {tmp}/file is a file, not a folder"),
    (["VIDEO", "-o", "{tmp}/file"], UsageError.exit_code, "-o {tmp}/file: {tmp}/file is a file, not a folder"),
    ([], UsageError.exit_code, "no input videos given"),
])
def test_a_bad_path_is_refused_before_any_model_or_detector(setup, tmp_path, monkeypatch, args, code, text):
    _heavy_work_forbidden(monkeypatch)
    (tmp_path / "empty.mp4").touch()
    (tmp_path / "file").write_text("x")
    names = {"MISSING": str(tmp_path / "missing.mp4"), "EMPTY": str(tmp_path / "empty.mp4"),
             "VIDEO": str(setup["video"])}
    argv = [names.get(a, a.format(tmp=tmp_path)) for a in args]  # no --detections: a detector would be needed
    result = runner.invoke(app, ["reconstruct", *argv, "--smpl-dir", str(setup["smpl"]), "--untrained"])
    assert result.exit_code == code, result.output
    assert text.format(tmp=tmp_path) in result.stderr
    assert "detector" not in result.stderr.replace("--detections", "")


def test_a_missing_video_is_refused_without_importing_torch(tmp_path):
    script = ("import sys\nfrom strcli.cli.main import app\n"
              "try:\n    app(['reconstruct', 'missing.mp4'])\nexcept SystemExit as e:\n    code = e.code\n"
              "print('CODE', code, 'TORCH', 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "CODE 7 TORCH False" in done.stdout, done.stdout + done.stderr
    assert done.stderr.strip() == "error: missing.mp4: video missing.mp4 does not exist. Check the path."


@pytest.mark.parametrize("flags,text", [
    (["--start", "10", "--end", "5"], "--start 10 --end 5: no frame in between (--end is exclusive"),
    (["--start", "10", "--end", "10"], "--start 10 --end 10: no frame in between"),
    (["--start", "2s", "--end", "1.5s"], "--start 2s --end 1.5s: no frame in between"),
    (["--end", "0"], "--end 0: no frame in between (--end is exclusive, so it must be after --start, 0 when not "
                     "given). Pass an --end of 1 or more, or leave --end out"),
    (["--start", "abc"], "bad --start 'abc': use a frame number (120) or seconds (4.5s)."),
    (["--end", "2.5"], "bad --end '2.5': frame numbers are whole"),
    (["--stride", "0"], "--stride 0: must be at least 1."),
    (["--batch-size", "0"], "--batch-size 0: must be at least 1."),
    (["--window-stride", "0"], "--window-stride 0: must be 1..16."),
    (["--detector-imgsz", "33"], "--detector-imgsz 33: a multiple of 32 from 32 to 4096."),
    (["--detect-every", "20"], "--detect-every 20: must be 1..9"),
    (["--model", "foo"], "--model foo: name each of str, tcmr, vibe, spin at most once"),
    (["--model", "str,str"], "--model str,str: name each of"),
    (["--device", "gpu7"], "bad --device 'gpu7': use auto, cpu, cuda or cuda:N."),
    (["--device", "cuda:x"], "bad --device 'cuda:x'"),
    (["--mesh-format", "stl"], "--mesh-format stl: use obj, ply, obj,ply or none."),
    (["--export", "stl"], "unknown export format 'stl': use glb, bvh"),
])
def test_a_bad_flag_value_is_refused_before_torch_or_any_model(setup, tmp_path, monkeypatch, flags, text):
    _heavy_work_forbidden(monkeypatch)
    result = runner.invoke(app, ["reconstruct", str(setup["video"]), "-o", str(tmp_path / "new" / "out"),
                                 "--smpl-dir", str(setup["smpl"]), "--untrained", *flags])
    assert result.exit_code == UsageError.exit_code, result.output
    assert result.stderr.startswith("error: " + text) and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "new").exists()


def _undecodable(kind: str, folder: Path, assets: Path) -> Path:
    """A file that is no video although it may be named like one."""
    if kind == "text":
        path = folder / "notes.mp4"
        path.write_text("not a video, only its name\n" * 20)
    elif kind == "truncated":  # running.mp4 keeps its index (moov) at the end: half the file has none
        data = (assets / "videos" / "running.mp4").read_bytes()
        assert data.rfind(b"moov") > len(data) // 2
        path = folder / "cut.mp4"
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        path = folder / "noise.mp4"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    else:  # a photo: as .png, or a JPEG renamed .mp4
        import cv2

        image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        path = folder / ("photo.png" if kind == "png" else "photo.mp4")
        path.write_bytes(cv2.imencode(".png" if kind == "png" else ".jpg", image)[1].tobytes())
    return path


UNDECODABLE = [("text", "is not a readable video (invalid data found when processing input)"),
               ("truncated", "is not a readable video (invalid data found when processing input)"),
               ("garbage", "is not a readable video"),
               ("png", "is a still image (png), not a video. Pass a video file"),
               ("jpeg", "is a still image (mjpeg), not a video.")]


@pytest.mark.parametrize("kind,text", UNDECODABLE)
def test_a_file_that_does_not_decode_is_refused_before_any_model(setup, tmp_path, monkeypatch, kind, text):
    _heavy_work_forbidden(monkeypatch)
    video = _undecodable(kind, tmp_path, setup["video"].parent.parent)
    result = runner.invoke(app, ["reconstruct", str(video), "-o", str(tmp_path / "out"), "--smpl-dir",
                                 str(setup["smpl"]), "--untrained", "--json"])
    assert result.exit_code == VideoError.exit_code == 7, result.output
    assert result.stderr.strip() == f"error: {video.name}: {video} {text}" + result.stderr.strip().split(text)[1]
    row = json.loads(result.stdout)[0]
    assert row["status"] == "failed" and row["exit_code"] == 7 and text in row["message"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind,text", [
    ("malformed", "--detections dets.txt, line 2: the score is nan."),
    ("another", "--detections dets.txt does not fit this video: 20 of its 20 boxes are (mostly) outside"),
    ("folder", "no detections for running.mp4 in {tmp}/dets (looked for running.det.txt"),
    ("two", "--detections {tmp}/dets.txt is one file for 2 videos."),
])
def test_detections_that_cannot_be_of_the_video_are_refused_before_any_model(setup, tmp_path, monkeypatch, kind,
                                                                            text):
    _heavy_work_forbidden(monkeypatch)
    own = setup["detections"].read_text().splitlines()
    inputs = [str(setup["video"])]
    if kind == "malformed":
        (tmp_path / "dets.txt").write_text(own[0] + "\n" + own[1].rsplit(",", 4)[0] + ",nan,-1,-1,-1\n")
    elif kind == "another":  # 20 boxes far right of the 640-pixel-wide frame
        (tmp_path / "dets.txt").write_text("".join(f"{f},-1,5000,100,50,120,0.9,-1,-1,-1\n" for f in range(1, 21)))
    elif kind == "two":
        (tmp_path / "dets.txt").write_text("\n".join(own) + "\n")
        shutil.copyfile(setup["video"], tmp_path / "other.mp4")
        inputs.append(str(tmp_path / "other.mp4"))
    dets = tmp_path / ("dets" if kind == "folder" else "dets.txt")
    dets.mkdir(exist_ok=True) if kind == "folder" else None
    result = runner.invoke(app, ["reconstruct", *inputs, "-o", str(tmp_path / "out"), "--detections", str(dets),
                                 "--smpl-dir", str(setup["smpl"]), "--untrained"])
    assert result.exit_code == UsageError.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text.format(tmp=tmp_path) in errors[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_a_real_one_frame_video_is_still_a_video(tmp_path):
    from test_video import write_video

    from strcli.road.video import probe

    assert probe(write_video(tmp_path / "one.mp4", frames=1)).frames_in_file == 1
    import cv2

    image = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    (tmp_path / "three.mjpeg").write_bytes(image * 3)  # a raw MJPEG stream: pictures one after another
    assert probe(tmp_path / "three.mjpeg").codec == "mjpeg"


def test_a_batch_goes_on_past_an_undecodable_video_and_loads_the_models_once(setup, tmp_path, monkeypatch):
    dets = tmp_path / "dets"
    dets.mkdir()
    (dets / "running.det.txt").write_bytes(setup["detections"].read_bytes())
    bad = _undecodable("truncated", tmp_path, setup["video"].parent.parent)
    loaded = []
    load = strcli.road.models.load_models
    monkeypatch.setattr(strcli.road.models, "load_models", lambda *a, **k: (loaded.append(1), load(*a, **k))[1])
    result = runner.invoke(app, ["reconstruct", str(bad), str(setup["video"]), "-o", str(setup["out"]),
                                 "--detections", str(dets), "--smpl-dir", str(setup["smpl"]), "--checkpoint",
                                 str(setup["checkpoint"]), "--untrained", "--offline", "--device", "cpu",
                                 "--mesh-format", "none", "--end", "8", "--json"])
    assert result.exit_code == VideoError.exit_code, result.output
    rows = {Path(r["video"]).name: r for r in json.loads(result.stdout)}
    assert rows["running.mp4"]["status"] == "done" and rows["running.mp4"]["frames"] == 8
    assert rows["cut.mp4"]["status"] == "failed" and "is not a readable video" in rows["cut.mp4"]["message"]
    assert loaded == [1]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cut.mp4: {bad} is not a readable video (invalid data found when processing input). "
                      "Is it corrupt or truncated? Try re-exporting it as H.264 MP4."]
    assert (setup["out"] / "running" / "manifest.json").is_file()


def test_the_checks_before_loading_import_no_torch(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video\n")
    script = ("import sys\nimport strcli.road.options, strcli.road.inputs, strcli.road.video\n"
              "assert 'torch' not in sys.modules, 'imported torch'\n"
              "from strcli.cli.main import app\n"
              "for argv in (['x.mp4', '--stride', '0'], ['notes.mp4', '-q']):\n"
              "    try:\n        app(['reconstruct', *argv])\n    except SystemExit as e:\n"
              "        print('CODE', e.code)\n"
              "print('TORCH', 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["CODE", "2", "CODE", "7", "TORCH", "False"], done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "error: --stride 0: must be at least 1.",
        f"error: notes.mp4: {(tmp_path / 'notes.mp4').resolve()} is not a readable video (invalid data found when "
        "processing input). Is it corrupt or truncated? Try re-exporting it as H.264 MP4."]


def test_a_video_another_process_is_writing_is_refused_before_any_model(setup, tmp_path, monkeypatch):
    from strcli.road.inputs import run_problem

    out = setup["out"]
    holder = subprocess.Popen([sys.executable, "-c", "import time; from pathlib import Path\n"
                               "from strcli.utils.locks import video_lock\n"
                               f"with video_lock(Path({str(out)!r}), 'running', 'reconstruct'):\n"
                               "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        _heavy_work_forbidden(monkeypatch)
        result = setup["run"]("--end", 8)
        assert result.exit_code == 9, result.output
        assert result.stderr.strip() == (f"error: running.mp4: {out / 'running'} is being written by strcli "
                                         f"reconstruct (pid {holder.pid}). Wait for it to finish, then run this again.")
        # a finished folder may be skipped without the lock: only --overwrite must wait for it
        (out / "running").mkdir()
        (out / "running" / "manifest.json").write_text('{"fingerprint": "of an earlier run"}')
        assert run_problem(setup["video"], out, overwrite=False) is None
        assert run_problem(setup["video"], out, overwrite=True).exit_code == 9
    finally:
        holder.kill()
        holder.wait()
    assert run_problem(setup["video"], out, overwrite=True) is None  # the kernel let go with the process


def test_a_failed_run_removes_the_output_folder_it_made_when_empty(setup, tmp_path):
    result = setup["run"]("--start", 1000, out=tmp_path / "new" / "out")  # the clip has 180 frames
    assert result.exit_code == UsageError.exit_code, result.output
    (line,) = result.stderr.strip().splitlines()  # refused before any model: the file says its length
    assert line.startswith("error: running.mp4: --start 1000: no frame in that range; the video has 180 frames "
                           "(0-179"), line
    assert line.count("running.mp4") == 1 and "None" not in line and "Pass a --start below 180" in line
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()  # a folder that was there before the run stays
    assert setup["run"]("--start", 1000, out=tmp_path / "mine").exit_code == UsageError.exit_code
    assert (tmp_path / "mine").is_dir()
    result = runner.invoke(app, ["reconstruct", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "new")])
    assert result.exit_code == VideoError.exit_code and not (tmp_path / "new").exists()


# ---------------------------------------------------------------- 4. train --data-dir


def test_train_names_every_missing_data_file_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(strcli.weights.registry, "fetch_asset", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == UsageError.exit_code
    for name in ("3dpw_train_db.pt", "mpii3d_train_scale12_db.pt", "h36m_train_25fps_db.pt", "insta_train_db.h5",
                 "3dpw_val_db.pt"):
        assert name in result.stderr
    assert "is empty" in result.stderr
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == UsageError.exit_code and "does not exist" in result.stderr
    (tmp_path / "empty" / "3dpw_train_db.pt").write_bytes(b"")
    (tmp_path / "empty" / "insta_train_db.h5").write_bytes(b"")
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path / "empty")])
    assert "lacks 3 of the 5 files recipe w3dpw needs: mpii3d_train_scale12_db.pt, h36m_train_25fps_db.pt, " \
           "3dpw_val_db.pt" in result.stderr
    for name in ("mpii3d_train_scale12_db.pt", "h36m_train_25fps_db.pt", "3dpw_val_db.pt"):
        (tmp_path / "empty" / name).write_bytes(b"x")
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == UsageError.exit_code
    assert "3dpw_train_db.pt, insta_train_db.h5 in" in result.stderr and "are empty (0 bytes)" in result.stderr


def test_an_empty_or_truncated_data_file_is_named_with_what_is_wrong(tmp_path):
    from strcli.utils.errors import DataFileError
    from strcli.train.data import load_db

    (tmp_path / "a_db.pt").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"a_db.pt is empty \(0 bytes\)"):
        load_db(tmp_path / "a_db.pt")
    import joblib

    joblib.dump({"x": np.arange(1000)}, tmp_path / "b_db.pt")
    data = (tmp_path / "b_db.pt").read_bytes()
    (tmp_path / "b_db.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFileError) as err:
        load_db(tmp_path / "b_db.pt")
    assert "b_db.pt" in str(err.value) and "()" not in str(err.value)


# ---------------------------------------------------------------- 5. disk use


def test_meshes_that_cannot_fit_stop_before_writing_with_exit_6(setup, monkeypatch):
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(strcli.road.outputs.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    result = setup["run"]("--end", 12, "--mesh-format", "obj")
    assert result.exit_code == OutputError.exit_code, result.output
    assert "not enough disk space for running.mp4" in result.stderr and "1.0 MB free" in result.stderr
    assert not (setup["out"] / "running").exists() and not list(setup["out"].glob(".running.partial-*"))


def test_the_estimate_matches_what_is_written_and_the_summary_gives_the_size(setup):
    result = setup["run"]("--end", 12, "--mesh-format", "obj,ply", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    folder = Path(row["output"])
    written = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert row["bytes"] == written
    manifest = json.loads((folder / "manifest.json").read_text())
    body = Body.from_file(sorted(setup["smpl"].glob("*.pkl"))[0])
    estimate = strcli.road.outputs.estimate_output_bytes(manifest["counts"]["person_frames"], np.asarray(body.faces),
                                                    int(np.asarray(body.faces).max()) + 1, ("obj", "ply"))
    assert 0.9 * written < estimate < 1.25 * written  # an upper bound, not far above
    table = setup["run"]("--end", 12, "--mesh-format", "obj,ply", "--overwrite")
    assert re.search(r"outputs take \d+\.\d MB", table.stdout)


def test_the_summary_keeps_the_output_path_whole(setup, tmp_path, monkeypatch):
    """Written to a file or a pipe, the table has no width limit; on an 80-column terminal
    the video name and the output path fold onto more lines instead of being cut."""
    import io

    from rich.console import Console

    import strcli.cli.common
    import strcli.cli.reconstruct
    from strcli.road.reconstruct import VideoResult

    monkeypatch.setenv("COLUMNS", "80")
    out = tmp_path / "a-folder-with-a-long-name-as-a-trial-would-make" / "and-deeper-still-for-the-outputs"
    result = setup["run"]("--end", 4, out=out)  # CliRunner's stdout is no terminal, like a file
    assert result.exit_code == 0, result.output
    assert f"│ {out / 'running'} │" in result.stdout and "…" not in result.stdout
    assert result.stdout.splitlines()[-1].startswith("1 of 1 video(s) ok; outputs take ")

    terminal = io.StringIO()
    monkeypatch.setattr(strcli.cli.common, "stdout", Console(file=terminal, width=80, force_terminal=True, no_color=True))
    long_name = Path("pedestrians-walking-past-the-station-at-noon.mp4")
    strcli.cli.reconstruct._print_results([VideoResult(long_name, "done", out / long_name.stem, 3, 100, 12.5, bytes=4096)],
                              as_json=False, quiet=False)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())  # the terminal's styles aside
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in shown
    rows = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    assert "".join(row[0].strip() for row in rows) == long_name.name  # folded, whole
    assert "".join(row[-1].strip() for row in rows) == str(out / long_name.stem)


# ---------------------------------------------------------------- 6. work that is not needed


def test_no_video_frames_decodes_only_up_to_the_last_frame_and_draws_only_those(setup, monkeypatch):
    assert setup["run"]("--end", 30, "-q").exit_code == 0
    decoded, drawn = [], []
    reader_iter = strcli.render.overlay.VideoReader.__iter__

    def counting_iter(self):
        for frame in reader_iter(self):
            decoded.append(frame.index)
            yield frame

    draw = strcli.render.overlay._draw_frame
    monkeypatch.setattr(strcli.render.overlay.VideoReader, "__iter__", counting_iter)
    monkeypatch.setattr(strcli.render.overlay, "_draw_frame", lambda *a, **k: (drawn.append(1), draw(*a, **k))[1])
    folder = setup["out"] / "running"
    first = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(setup["smpl"]), "--device", "cpu",
                                "--no-video", "--frames", "2,5", "-q"])
    assert first.exit_code == 0, first.output
    assert max(decoded) == 5 and len(decoded) == 6 and len(drawn) == 2
    assert first.stdout.strip() == f"running: 2 PNGs in {folder / 'frames'} (2 frames drawn in " + \
        first.stdout.strip().split(" drawn in ")[1]
    assert "  " not in first.stdout
    second = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(setup["smpl"]), "--device", "cpu",
                                 "--no-video", "--frames", "3", "--joints", "-q"])
    assert second.exit_code == 0
    assert sorted(p.name for p in (folder / "frames").iterdir()) == ["000003.png"]  # none of the earlier render
    assert not list(folder.glob(".frames*"))


def test_a_run_where_every_video_is_skipped_builds_no_model(setup, monkeypatch):
    assert setup["run"]("--end", 8, "-q", "--render").exit_code == 0
    manifest = json.loads((setup["out"] / "running" / "manifest.json").read_text())

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built for a skipped video")

    monkeypatch.setattr(strcli.road.features.Backbone, "__init__", refuse)
    monkeypatch.setattr(strcli.road.models, "build_model", refuse)
    monkeypatch.setattr(strcli.road.models, "load_model", refuse)
    monkeypatch.setattr(strcli.body.smpl.Body, "from_file", refuse)
    result = setup["run"]("--end", 8, "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    # 8. the JSON of a skipped video matches its manifest
    assert row["status"] == "skipped"
    assert row["warnings"] == manifest["warnings"] and row["warnings"]
    assert row["overlay"] == str(setup["out"] / "running" / "overlay.mp4")
    assert row["tracks"] == len(manifest["tracks"]) and row["frames"] == manifest["counts"]["frames_processed"]


# ---------------------------------------------------------------- 7. messages and help


def test_an_smpl_file_given_as_checkpoint_says_so_in_one_clean_line(smpl_files):
    result = runner.invoke(app, ["info", "--checkpoint", str(smpl_files["chumpy"])])
    assert result.exit_code == 4
    assert result.stderr.strip() == (f"error: {smpl_files['chumpy']} is an SMPL model file, not a checkpoint. "
                                     f"Pass its folder with --smpl-dir, or `strcli weights import "
                                     f"{smpl_files['chumpy']}`.")


def test_a_corrupt_video_is_described_without_errno_noise(tmp_path):
    from strcli.road.video import probe

    (tmp_path / "bad.mp4").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(VideoError) as err:
        probe(tmp_path / "bad.mp4")
    assert "Errno" not in str(err.value) and "invalid data found" in str(err.value)
    assert str(err.value).count("bad.mp4") == 1


@pytest.mark.parametrize("command", [[], ["reconstruct"], ["render"], ["train"], ["evaluate"], ["info"],
                                     ["weights"], ["weights", "list"], ["weights", "fetch"], ["weights", "import"]])
def test_help_shows_no_value_for_flags(command):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert "--help" in result.output


@pytest.mark.parametrize("command,usage", [(["render"], "[OPTIONS] OUTPUT..."), (["export"], "[OPTIONS] OUTPUT..."),
                                           (["view"], "[OPTIONS] FOLDER"), (["weights", "import"], "[OPTIONS] FILE"),
                                           (["weights", "fetch"], "[OPTIONS] [NAME]..."),
                                           (["reconstruct"], "[OPTIONS] [VIDEO]...")])
def test_help_names_the_arguments_in_capitals(command, usage):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80, prog_name="strcli")
    assert f"Usage: strcli {' '.join(command)} {usage}" in result.output
    assert "{" not in result.output.split("Usage:")[1].splitlines()[0]


def test_weights_list_keeps_every_name_and_file_whole_at_80_columns(tmp_path):
    import os

    from strcli.weights.registry import Manifest

    done = subprocess.run([sys.executable, "-m", "strcli", "weights", "list"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80"}, timeout=120)
    assert done.returncode == 0, done.stderr
    table = done.stdout.split("(which commands need each file")[0]
    rows = {line.split()[0]: line.split() for line in table.splitlines() if len(line.split()) == 3}
    for asset in Manifest.load().assets.values():
        assert rows[asset.name] == [asset.name, "missing", asset.file]
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "--json" in done.stdout  # where the columns left out are


def test_top_level_help_gives_each_command_one_line():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}, terminal_width=200)
    line = next(line for line in result.output.splitlines() if " evaluate " in line)
    assert line.rstrip(" │").endswith("(--ablation).")


def test_the_manifest_says_which_detection_interval_ran_and_that_it_was_auto(setup):
    assert setup["run"]("--end", 8, "-q").exit_code == 0
    options = json.loads((setup["out"] / "running" / "manifest.json").read_text())["options"]
    assert options["detect_every"] == 1 and options["detect_every_auto"] is True  # CPU default; a file: every frame
    assert setup["run"]("--end", 8, "-q", "--detect-every", 2, "--overwrite").exit_code == 0
    options = json.loads((setup["out"] / "running" / "manifest.json").read_text())["options"]
    assert options["detect_every_auto"] is False


# ---------------------------------------------------------------- 9. side view


def _walker(track_id, start, end, frames=20):
    """A standing body walking in a straight line from `start` to `end` (camera frame, metres)."""
    path = np.linspace(start, end, frames).astype(np.float32)
    zero = np.zeros((frames, 3), np.float32)
    return TrackMotion(track_id, np.arange(frames), zero, np.zeros((frames, 69), np.float32),
                       np.zeros((frames, 10), np.float32), path, np.zeros((frames, 24, 2), np.float32),
                       np.tile(np.float32([0, 0, 60, 180]), (frames, 1)))


def test_the_side_view_frames_every_body_of_the_video_with_a_margin(smpl_files):
    body = Body.from_file(smpl_files["chumpy"])
    # one near and high, one far, low and walking away: the panel must hold both, whole
    tracks = [_walker(0, (-0.8, -1.2, 3.0), (-0.6, -1.2, 3.5)), _walker(1, (1.5, 0.6, 8.0), (1.5, 0.6, 12.0))]
    width, height = 480, 360
    framing = frame_side_view(tracks, body, torch.device("cpu"), width, height)
    faces = torch.as_tensor(body.faces)
    union = np.zeros((height, width), bool)
    for frame in range(20):
        people = []
        for t in tracks:
            out = body.axis_angle(*(torch.from_numpy(x[frame : frame + 1]) for x in (t.global_orient, t.body_pose, t.betas,
                                                                          t.transl)))
            people.append(Person(t.track_id, out.vertices[0], t.joints2d[frame], 180.0))
        panel = draw_people(torch.full((height, width, 3), SIDE_BACKGROUND, dtype=torch.uint8),
                            side_view(people, framing), faces, framing.intrinsics, 1.0).numpy()
        union |= (panel != SIDE_BACKGROUND).any(axis=2)
    ys, xs = np.nonzero(union)
    edge = 0.5 * SIDE_MARGIN
    assert xs.min() > edge * width and xs.max() < (1 - edge) * width
    assert ys.min() > edge * height and ys.max() < (1 - edge) * height
    fill = max((xs.max() - xs.min()) / width, (ys.max() - ys.min()) / height)
    assert fill > 0.7  # the bodies fill the panel along one side, not a corner of it


def test_joint_markers_scale_with_the_person():
    assert joint_radius(180) == 3 and joint_radius(360) == 6 and joint_radius(30) == 1
    image = np.zeros((200, 200, 3), np.uint8)
    small = Person(0, torch.zeros(1, 3), np.tile(np.float32([[50, 50]]), (24, 1)), 40.0)
    strcli.render.overlay.draw_joints(image, [small])
    assert (image == 255).all(axis=2).sum() <= 9  # a 1-pixel marker, not a blot over a small person
