"""Issue 16 items 4 and 9: two processes on one video's folder, and temporaries of killed runs.

Real processes (`python -m strcli`) hold the real lock: a `reconstruct --overwrite` while a
`render` of the same folder runs, and the mirror, each end in one line and exit 9 for the
second, never a traceback, and the first finishes whole. A render killed with SIGKILL leaves
its `.overlay.partial-<pid>.mp4`; the next run removes it, and never a live process's.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from strcli.cli.main import app
from strcli.utils.errors import BusyError
from strcli.utils.locks import lock_path, sweep_stale, video_lock

runner = CliRunner()
DEAD_PID = 999_999_999  # above any pid_max: never a running process


@pytest.fixture
def setup(tmp_path, assets, smpl_files):
    from test_reconstruct import mean_checkpoint

    checkpoint = mean_checkpoint(tmp_path / "mean.pt", assets)
    smpl = smpl_files["chumpy"].parent
    out = tmp_path / "out"
    video = assets / "videos" / "running.mp4"
    reconstruct = ["reconstruct", str(video), "-o", str(out), "--detections",
                   str(assets / "detections" / "running.det.txt"), "--smpl-dir", str(smpl), "--checkpoint",
                   str(checkpoint), "--untrained", "--offline", "--device", "cpu", "--quiet", "--mesh-format", "none"]
    render = ["render", str(out / "running"), "--smpl-dir", str(smpl), "--device", "cpu", "--quiet"]
    return {"out": out, "reconstruct": reconstruct, "render": render}


def spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "strcli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for(condition, seconds: float = 240.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def holder(out: Path) -> str:
    try:
        return lock_path(out, "running").read_text()
    except OSError:
        return ""


def refused(result, by: str) -> None:
    assert result.exit_code == BusyError.exit_code == 9, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "is being written by strcli " + by in lines[0], result.output


def frames_of(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_reconstruct_overwrite_while_a_render_runs(setup):
    """The reported interleaving: the reconstruct must not delete the render's files."""
    out = setup["out"]
    assert runner.invoke(app, [*setup["reconstruct"], "--end", "30"]).exit_code == 0
    render = spawn(setup["render"])
    try:
        wait_for(lambda: "render" in holder(out) or render.poll() is not None)
        assert render.poll() is None, render.communicate()
        refused(runner.invoke(app, [*setup["reconstruct"], "--end", "30", "--overwrite"]), "render")
        skipped = runner.invoke(app, [*setup["reconstruct"], "--end", "30", "--json"])  # done: no lock needed
        assert skipped.exit_code == 0 and json.loads(skipped.stdout)[0]["status"] == "skipped", skipped.output
    finally:
        stdout, stderr = render.communicate(timeout=600)
    assert render.returncode == 0 and "Traceback" not in stderr, stderr
    assert frames_of(out / "running" / "overlay.mp4") == 30  # the render finished whole
    assert not list((out / "running").glob(".overlay.partial-*"))
    # Once the render is done the lock is free: the overwrite goes through.
    assert runner.invoke(app, [*setup["reconstruct"], "--end", "30", "--overwrite"]).exit_code == 0


def test_render_while_reconstruct_overwrite_replaces_the_folder(setup):
    """The mirror: a render that starts while the reconstruct works and replaces the folder."""
    out = setup["out"]
    assert runner.invoke(app, [*setup["reconstruct"], "--end", "10"]).exit_code == 0
    old = json.loads((out / "running" / "manifest.json").read_text())["created"]
    reconstruct = spawn([*setup["reconstruct"], "--end", "30", "--overwrite"])
    try:
        wait_for(lambda: "reconstruct" in holder(out) or reconstruct.poll() is not None)
        assert reconstruct.poll() is None, reconstruct.communicate()
        refused(runner.invoke(app, setup["render"]), "reconstruct")
        assert not (out / "running" / "overlay.mp4").exists()
    finally:
        stdout, stderr = reconstruct.communicate(timeout=600)
    assert reconstruct.returncode == 0 and "Traceback" not in stderr, stderr
    manifest = json.loads((out / "running" / "manifest.json").read_text())
    assert manifest["counts"]["frames_processed"] == 30 and manifest["created"] >= old
    assert runner.invoke(app, setup["render"]).exit_code == 0
    assert frames_of(out / "running" / "overlay.mp4") == 30
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # the lock file too


def test_the_lock_is_one_holder_at_a_time_and_freed_when_its_process_dies(tmp_path):
    with video_lock(tmp_path, "clip", "render"):
        with video_lock(tmp_path, "clip", "render"):  # the same process may nest
            pass
        child = subprocess.run([sys.executable, "-c", "from pathlib import Path; from strcli.utils.locks import video_lock\n"
                                f"with video_lock(Path({str(tmp_path)!r}), 'clip', 'reconstruct'): pass"],
                               capture_output=True, text=True)
        assert child.returncode != 0 and "BusyError" in child.stderr and f"pid {os.getpid()}" in child.stderr
    holder_process = subprocess.Popen([sys.executable, "-c", "import time; from pathlib import Path\n"
                                       "from strcli.utils.locks import video_lock\n"
                                       f"with video_lock(Path({str(tmp_path)!r}), 'clip', 'reconstruct'):\n"
                                       "    print('held', flush=True); time.sleep(60)"],
                                      stdout=subprocess.PIPE, text=True)
    assert holder_process.stdout.readline().strip() == "held"
    with pytest.raises(BusyError, match=f"reconstruct \\(pid {holder_process.pid}\\)"):
        with video_lock(tmp_path, "clip", "render"):
            pass
    holder_process.send_signal(signal.SIGKILL)
    holder_process.wait()
    with video_lock(tmp_path, "clip", "render"):  # the kernel freed it
        pass


def test_a_killed_render_leaves_nothing_after_the_next_run(setup):
    out = setup["out"]
    assert runner.invoke(app, [*setup["reconstruct"], "--end", "60"]).exit_code == 0
    folder = out / "running"
    render = spawn(setup["render"])
    partial = folder / f".overlay.partial-{render.pid}.mp4"
    wait_for(lambda: partial.exists() or render.poll() is not None)
    render.send_signal(signal.SIGKILL)
    render.wait()
    assert partial.exists()  # what the issue reports
    live = subprocess.Popen(["sleep", "120"])
    try:
        kept = folder / f".overlay.partial-{live.pid}.mp4"
        kept.write_bytes(b"a live process's")
        stale = [folder / f".compare.partial-{DEAD_PID}.mp4", folder / "frames" / f".000003.partial-{DEAD_PID}.png",
                 out / f".running.partial-{DEAD_PID}-abcdef", out / f".running.old-{DEAD_PID}-abcdef"]
        stale[1].parent.mkdir()
        for path in stale:
            path.mkdir() if "." not in path.name.rsplit("-", 1)[-1] else path.write_bytes(b"x")
        (folder / "tracks" / f".0.npz.partial-{DEAD_PID}").write_bytes(b"x")  # inside a finished folder
        stale.append(folder / "tracks" / f".0.npz.partial-{DEAD_PID}")
        other_video = out / f".other.partial-{DEAD_PID}-abcdef"  # another video's, of a dead run: swept too
        other_video.mkdir()
        stale.append(other_video)
        other_live = out / f".other.partial-{live.pid}-abcdef"  # another video's, of a live run: kept
        other_live.mkdir()
        result = runner.invoke(app, setup["render"])
        assert result.exit_code == 0, result.output
        assert not partial.exists() and not any(p.exists() for p in stale)
        assert kept.exists() and other_live.exists()
        assert frames_of(folder / "overlay.mp4") == 60
    finally:
        live.kill()
        live.wait()


def test_every_writer_sweeps_its_own_stale_temporaries(tmp_path):
    from strcli.model.checkpoints import save_checkpoint
    from strcli.utils.locks import write_text_whole as _write_text
    from strcli.model import STR
    from test_reconstruct import SMALL_STR

    stale = [tmp_path / f".best.pt.partial-{DEAD_PID}", tmp_path / f".table1.json.partial-{DEAD_PID}"]
    for path in stale:
        path.write_bytes(b"half")
    mine = tmp_path / f".best.pt.partial-{os.getpid()}-other"  # this process's: never swept
    mine.write_bytes(b"x")
    save_checkpoint(tmp_path / "best.pt", STR(SMALL_STR))
    _write_text(tmp_path / "table1.json", "{}")
    assert not any(p.exists() for p in stale) and mine.exists()
    assert sweep_stale(tmp_path) == []


def test_export_takes_turns_with_render_and_reconstruct(setup):
    """`strcli export` holds the same lock: refused (exit 9) while another process writes."""
    out = setup["out"]
    assert runner.invoke(app, [*setup["reconstruct"], "--end", "8", "--min-track-length", "2"]).exit_code == 0
    export = ["export", str(out / "running"), "--smpl-dir", setup["render"][3]]
    holder_process = subprocess.Popen([sys.executable, "-c", "import time; from pathlib import Path\n"
                                       "from strcli.utils.locks import video_lock\n"
                                       f"with video_lock(Path({str(out)!r}), 'running', 'render'):\n"
                                       "    print('held', flush=True); time.sleep(60)"],
                                      stdout=subprocess.PIPE, text=True)
    try:
        assert holder_process.stdout.readline().strip() == "held"
        refused(runner.invoke(app, export), "render")
        assert not (out / "running" / "running.glb").exists()
    finally:
        holder_process.kill()
        holder_process.wait()
    stale = out / "running" / f".running.glb.partial-{DEAD_PID}"
    stale.write_bytes(b"half")
    result = runner.invoke(app, export)
    assert result.exit_code == 0, result.output
    assert (out / "running" / "running.glb").is_file() and not stale.exists()
