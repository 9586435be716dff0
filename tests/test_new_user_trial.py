"""A new user's trial: a named SMPL place that holds nothing is refused, a torch/torchvision
mismatch is one line, a test body to try the pipeline, evaluate's paths checked first,
render/export refusing bad values before torch, help texts as the README says, errors
with their fix, warnings only when a network is built, results on stdout."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import strcli.body.smpl
import strcli.road.models
import strcli.road.reconstruct
import strcli.road.tracking
import strcli.weights.registry
from strcli.cli.main import app
from strcli.utils.errors import MissingAssetError, StrcliError, UsageError

runner = CliRunner()


def _heavy_work_forbidden(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("heavy work before the inputs were checked")

    monkeypatch.setattr(strcli.road.models, "load_models", refuse)
    monkeypatch.setattr(strcli.road.tracking, "import_ultralytics", refuse)
    monkeypatch.setattr(strcli.weights.registry, "fetch_asset", refuse)
    monkeypatch.setattr(strcli.body.smpl.Body, "from_file", refuse)


def _fake_output(out: Path, stem: str = "clip", smpl: Path | None = None, video: Path | None = None) -> Path:
    """A reconstruct output folder as far as the cheap checks read it: its manifest, whose
    fields pass the manifest check (`check_manifest`), with no track."""
    folder = out / stem
    folder.mkdir(parents=True)
    weights = [{"name": "smpl", "path": str(smpl), "sha256": ""}] if smpl is not None else []
    (folder / "manifest.json").write_text(json.dumps({
        "input": {"path": str(video or out / f"{stem}.mp4")}, "video": {},
        "options": {"stride": 1, "start_frame": 0, "end_frame": None},
        "intrinsics": {"focal": 100.0, "width": 64, "height": 48}, "counts": {"frames_processed": 0},
        "weights": weights, "tracks": [], "fingerprint": "x"}))
    return folder


def _weights_smpl(tmp_path: Path) -> Path:
    """A file in strcli's weights/smpl/: what a named place must never fall back to."""
    folder = tmp_path / "weights" / "smpl"
    folder.mkdir(parents=True)
    (folder / "SMPL_NEUTRAL.pkl").write_bytes(b"the weights folder's file")
    return folder


# ---------------------------------------------------------------- 1. a named SMPL place


@pytest.mark.parametrize("command", ["reconstruct", "render", "export"])
@pytest.mark.parametrize("through", ["--smpl-dir", "$STRCLI_SMPL_DIR"])
@pytest.mark.parametrize("place", ["missing", "empty"])
def test_a_named_smpl_place_without_the_file_is_refused_by_every_command(tmp_path, assets, monkeypatch, command,
                                                                         through, place):
    _heavy_work_forbidden(monkeypatch)
    _weights_smpl(tmp_path)
    named = tmp_path / ("nonexistent" if place == "missing" else "empty")
    if place == "empty":
        named.mkdir()
    out = tmp_path / "out"
    recorded = tmp_path / "recorded" / "SMPL_NEUTRAL.pkl"  # render: the manifest's file is there, too
    recorded.parent.mkdir()
    recorded.write_bytes(b"recorded")
    _fake_output(out, smpl=recorded)
    args = {"reconstruct": ["reconstruct", str(assets / "videos" / "running.mp4"), "-o", str(tmp_path / "o"),
                            "--untrained", "--offline"],
            "render": ["render", str(out)], "export": ["export", str(out)]}[command]
    if through == "--smpl-dir":
        args += ["--smpl-dir", str(named)]
    else:
        monkeypatch.setenv("STRCLI_SMPL_DIR", str(named))
    result = runner.invoke(app, args)
    assert result.exit_code == MissingAssetError.exit_code == 3, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    expected = (f"error: {through} {named} does not exist: strcli looked there for the SMPL neutral body model file"
                if place == "missing" else
                f"error: no SMPL neutral body model file in {through} {named}: strcli looked for SMPL_NEUTRAL.pkl, ")
    assert lines[0].startswith(expected), lines[0]
    assert "uses no other SMPL file when you name a place" in lines[0]


def test_reconstruct_refuses_a_missing_smpl_dir_without_importing_torch(tmp_path, assets):
    script = ("import sys\nfrom strcli.cli.main import app\n"
              f"try:\n    app(['reconstruct', {str(assets / 'videos' / 'running.mp4')!r}, '--smpl-dir', "
              "'/nonexistent/dir', '--untrained', '--offline'])\nexcept SystemExit as e:\n    code = e.code\n"
              "print('CODE', code, 'TORCH', 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "CODE 3 TORCH False" in done.stdout, done.stdout + done.stderr
    assert done.stderr.startswith("error: --smpl-dir /nonexistent/dir does not exist")


def test_render_names_the_manifests_missing_smpl_file_and_where_it_looked_next(tmp_path, monkeypatch):
    _heavy_work_forbidden(monkeypatch)
    out = tmp_path / "out"
    gone = tmp_path / "moved" / "SMPL_NEUTRAL.pkl"
    _fake_output(out, smpl=gone)
    result = runner.invoke(app, ["render", str(out)])
    assert result.exit_code == 3, result.output
    line = result.stderr.strip()
    assert line.startswith(f"error: the SMPL file recorded in {out / 'clip' / 'manifest.json'}, {gone}, is missing "
                           "(moved or deleted?); looking next: the SMPL neutral body model file is missing: strcli "
                           "looked for SMPL_NEUTRAL.pkl"), line
    assert f"in {tmp_path / 'weights' / 'smpl'} (does not exist)." in line and "\n" not in line


def test_render_says_which_file_it_uses_when_the_manifests_is_gone(tmp_path):
    from strcli.body.files import smpl_file_for_outputs

    weights = _weights_smpl(tmp_path)
    out = tmp_path / "out"
    gone = tmp_path / "moved" / "SMPL_NEUTRAL.pkl"
    _fake_output(out, smpl=gone)
    found, note = smpl_file_for_outputs([out / "clip"])
    assert found == weights / "SMPL_NEUTRAL.pkl"
    assert note == (f"the SMPL file recorded in {out / 'clip' / 'manifest.json'}, {gone}, is missing; using "
                    f"{weights / 'SMPL_NEUTRAL.pkl'} instead.")


# ---------------------------------------------------------------- 2. torch and torchvision that do not match


@pytest.mark.parametrize("vision, build, said, force", [
    # Another torch's torchvision, built alike: the pair from torch's index.
    ("0.24.0+cpu", "cpu", "this torchvision was built for another torch", ""),
    # The versions pair up but the builds differ (a +cpu torch, PyPI's CUDA torchvision): a
    # plain `pip install` of the same versions is a no-op, so the command forces it.
    ("0.28.0", "cu126", "the builds differ", "--force-reinstall "),
])
def test_a_torchvision_built_for_another_torch_is_one_line_saying_how_to_install_a_pair(
        monkeypatch, tmp_path, assets, smpl_files, vision, build, said, force):
    import builtins

    import strcli.utils.errors

    real_import = builtins.__import__

    def mismatched_import(name, *args, **kwargs):
        if name == "strcli.road.batch":  # the first module of the run that imports torchvision
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    builds = {"torch": ("2.13.0+cpu", "cpu"), "torchvision": (vision, build)}
    monkeypatch.setattr(strcli.utils.errors, "installed_build", lambda name: builds[name])
    monkeypatch.setattr(builtins, "__import__", mismatched_import)
    video = assets / "videos" / "running.mp4"
    smpl = smpl_files["chumpy"].parent
    result = runner.invoke(app, ["reconstruct", str(video), "-o", str(tmp_path / "out"), "--smpl-dir", str(smpl),
                                 "--untrained", "--offline", "-q"])
    assert result.exit_code == 1, result.output
    label = "a CPU-only build" if build == "cpu" else "a CUDA 12.6 build"
    assert result.stderr.splitlines()[-1] == (
        f"error: torchvision {vision} ({label}) does not match torch 2.13.0+cpu (a CPU-only build) (operator "
        f"torchvision::nms does not exist: {said}). Install them as a pair built alike: pip install {force}"
        '"torch==2.13.0" "torchvision==0.28.*" --index-url https://download.pytorch.org/whl/cpu (docs/install.md: '
        "PyTorch builds).")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("source, expected", [
    ("__version__ = '2.5.1+cpu'\ncuda: Optional[str] = None\n", ("2.5.1+cpu", "cpu")),
    ("__version__ = '2.5.1'\ncuda: Optional[str] = '12.4'\n", ("2.5.1", "cu124")),
    ("__version__ = '0.20.1+cu121'\nfrom torchvision.extension import _check_cuda_version\n", ("0.20.1+cu121", "cu121")),
    ("__version__ = '0.20.1'\nif _check_cuda_version() > 0:\n    cuda = _check_cuda_version()\n",
     ("0.20.1", "unknown build")),
])
def test_the_build_is_read_from_version_py_without_importing_it(monkeypatch, tmp_path, source, expected):
    from importlib import metadata

    from strcli.utils.errors import build_label, installed_build

    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "version.py").write_text(source)

    class Dist:
        version = expected[0].split("+")[0]

        @staticmethod
        def locate_file(name):
            return tmp_path / name

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist)
    assert installed_build("torchvision") == expected
    assert build_label("cu124") == "a CUDA 12.4 build" and build_label("cpu") == "a CPU-only build"


def test_other_runtime_errors_are_not_taken_for_a_mismatch():
    from strcli.utils.errors import torch_mismatch

    assert torch_mismatch(RuntimeError("CUDA error: device-side assert triggered")) is None
    assert torch_mismatch(ValueError("operator torchvision::nms does not exist")) is None
    assert isinstance(torch_mismatch(RuntimeError("operator torchvision::roi_align does not exist")), StrcliError)


# ---------------------------------------------------------------- 3. a test body to try the pipeline


def test_make_test_smpl_writes_a_labelled_body_that_smpl_dir_accepts(tmp_path):
    from strcli.body.smpl import Body, load_smpl_arrays
    from strcli.body.generated import TEST_BODY_KEY, TEST_BODY_NOTE, make_smpl_arrays

    result = runner.invoke(app, ["weights", "make-test-smpl", str(tmp_path / "body")])
    assert result.exit_code == 0, result.output
    target = tmp_path / "body" / "SMPL_NEUTRAL.pkl"
    assert result.stdout.strip() == str(target)
    assert result.stderr.strip() == (f"warning: {target} is a generated test body, not SMPL: meaningless shapes "
                                     f"(strcli weights make-test-smpl): use it to try the pipeline only "
                                     f"(--smpl-dir {tmp_path / 'body'}).")
    assert TEST_BODY_KEY.encode() in target.read_bytes() and "not SMPL" in TEST_BODY_NOTE
    assert strcli.body.smpl.find_smpl_file("neutral", tmp_path / "body") == target
    arrays = load_smpl_arrays(target)
    assert np.allclose(arrays.v_template, make_smpl_arrays(0)["v_template"])
    body = Body.from_file(target)
    assert body.faces.shape == (13776, 3)
    # A rerun replaces its own test body; a real SMPL file is never replaced, nor weights/smpl/ written unasked.
    assert runner.invoke(app, ["weights", "make-test-smpl", str(tmp_path / "body")]).exit_code == 0
    real = tmp_path / "real"
    real.mkdir()
    (real / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl").write_bytes(b"the real one")
    refused = runner.invoke(app, ["weights", "make-test-smpl", str(real)])
    assert refused.exit_code == UsageError.exit_code
    assert refused.stderr.startswith(f"error: {real / 'basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl'} is there already "
                                     "and is not a generated test body")
    assert (real / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl").read_bytes() == b"the real one"
    into = runner.invoke(app, ["weights", "make-test-smpl", str(tmp_path / "weights" / "smpl")])
    assert into.exit_code == UsageError.exit_code and "--into-weights" in into.stderr
    assert not (tmp_path / "weights" / "smpl" / "SMPL_NEUTRAL.pkl").exists()


def test_the_tests_use_the_packaged_generator():
    import conftest

    assert conftest.make_smpl_arrays.__module__ == "strcli.body.generated"
    assert not (Path(__file__).parent / "generated_smpl.py").exists()


# ---------------------------------------------------------------- 4. evaluate checks the user's paths first


def test_evaluate_names_a_missing_data_folder_and_checkpoint_before_any_download(tmp_path, monkeypatch):
    monkeypatch.setattr(strcli.weights.registry, "fetch_asset", lambda *a, **k: (_ for _ in ()).throw(AssertionError("fetch")))
    result = runner.invoke(app, ["evaluate", "--data-dir", str(tmp_path / "missing"), "--checkpoint",
                                 str(tmp_path / "nope.pt")])
    assert result.exit_code == UsageError.exit_code, result.output
    assert result.stderr == (
        f"error: --data-dir {tmp_path / 'missing'} does not exist (evaluate reads 3dpw_test_db.pt or "
        f"mpii3d_val_scale12_db.pt or h36m_test_25fps_nosmpl_db.pt from it); and --checkpoint {tmp_path / 'nope.pt'} "
        "does not exist. Check both paths. See docs/reproducing.md for where to get the test files.\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("x")
    lacks = runner.invoke(app, ["evaluate", "--data-dir", str(data), "--checkpoint", str(tmp_path / "nope.pt"),
                                "--datasets", "3dpw,h36m"])
    assert lacks.exit_code == 2
    assert lacks.stderr.startswith(f"error: no test data in {data} (looked for 3dpw_test_db.pt, "
                                   "h36m_test_25fps_nosmpl_db.pt); and --checkpoint")
    (data / "3dpw_test_db.pt").write_bytes(b"data")
    checkpoint_only = runner.invoke(app, ["evaluate", "--data-dir", str(data), "--checkpoint", str(tmp_path / "nope.pt")])
    assert checkpoint_only.exit_code == MissingAssetError.exit_code
    assert checkpoint_only.stderr == (f"error: --checkpoint {tmp_path / 'nope.pt'} does not exist. Check the path "
                                      "(e.g. runs/w3dpw/best.pt).\n")


def test_a_failed_extra_regressor_download_has_no_doubled_stop(monkeypatch):
    from strcli.utils.errors import DownloadError
    from strcli.train import trainer

    def failing(name, download=True):
        raise DownloadError("download of J_regressor_extra.npy failed (HTTP 404).")

    monkeypatch.setattr(strcli.weights.registry, "ensure", failing)
    with pytest.raises(DownloadError) as info:
        trainer.extra_regressor_file(download=True)
    assert "could not be downloaded (download of J_regressor_extra.npy failed (HTTP 404))." in str(info.value)
    assert ").)." not in str(info.value)


# ---------------------------------------------------------------- 5. refused before torch


@pytest.mark.parametrize("args,text", [
    (["export", "OUT", "--format", "stl"], "unknown export format 'stl': use glb, bvh, fbx, blend or several (glb,bvh)."),
    (["render", "OUT", "--frames", "0:10:x"], "bad --frames '0:10:x': use 0,10,20 or start:stop[:step]."),
    (["render", "OUT", "--preset", "slowest"], "--preset slowest: x264 has ultrafast, superfast, veryfast, faster, "
                                               "fast, medium, slow, slower, veryslow."),
    (["render", "OUT", "--alpha", "0"], "--alpha 0.0: must be in (0, 1]."),
    (["render", "OUT", "--device", "gpu7"], "bad --device 'gpu7': use auto, cpu, cuda or cuda:N."),
    (["render", "EMPTY"], "no reconstruct outputs (folders with manifest.json) in {tmp}/empty."),
    (["export", "{tmp}/gone"], "no reconstruct outputs (folders with manifest.json) in {tmp}/gone ({tmp}/gone: "
                              "does not exist)."),
])
def test_render_and_export_refuse_bad_values_without_importing_torch(tmp_path, args, text):
    out = tmp_path / "out"
    _fake_output(out)
    (tmp_path / "empty").mkdir()
    argv = [{"OUT": str(out), "EMPTY": str(tmp_path / "empty")}.get(a, a.format(tmp=tmp_path)) for a in args]
    script = ("import sys\nfrom strcli.cli.main import app\n"
              f"try:\n    app({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
              "print('CODE', code, 'TORCH', 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "CODE 2 TORCH False" in done.stdout, done.stdout + done.stderr
    assert done.stderr.splitlines()[0].startswith("error: " + text.format(tmp=tmp_path))


def test_a_folder_of_another_video_is_refused_before_any_model(tmp_path, assets, monkeypatch):
    _heavy_work_forbidden(monkeypatch)
    other = tmp_path / "elsewhere" / "running.mp4"
    other.parent.mkdir()
    other.write_bytes(b"another video of the same stem")
    out = tmp_path / "out"
    _fake_output(out, "running", video=other)
    video = assets / "videos" / "running.mp4"
    result = runner.invoke(app, ["reconstruct", str(video), "-o", str(out), "--untrained", "--offline", "-q"])
    assert result.exit_code == UsageError.exit_code, result.output
    assert result.stderr == (f"error: running.mp4: {out / 'running'} holds the results of another video, {other}, "
                             "not of this one (same stem). Write this one elsewhere with -o ANOTHER_FOLDER, or pass "
                             "--overwrite to replace them.\n")


def test_the_other_video_rule_keeps_its_exceptions(tmp_path, assets):
    from strcli.road.inputs import another_video_problem

    video = assets / "videos" / "running.mp4"
    out = tmp_path / "out"
    _fake_output(out, "running", video=tmp_path / "moved-away.mp4")  # the recorded video is gone: redone
    assert another_video_problem(video, out) is None
    (out / "running" / "manifest.json").write_text(json.dumps({"input": {"path": str(video.resolve())}}))
    assert another_video_problem(video, out) is None  # its own folder


# ---------------------------------------------------------------- 6. help texts as the README says them


def _help(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "300", "NO_COLOR": "1"}, terminal_width=300)
    assert result.exit_code == 0
    return " ".join(result.stdout.split())


def test_help_texts_say_what_the_readme_says():
    reconstruct = _help("reconstruct")
    assert ("Trade accuracy for speed: the detector 7.5 times per second of video (every 4th frame at 30 fps) at "
            "320 px, STR windows every 16 frames") in reconstruct
    assert ("a folder of <video-stem>.det.txt, <video-stem>.txt or <video-stem>/det/det.txt files." in reconstruct)
    assert ("Redo videos that are already done, and replace a folder that holds another video of the same stem."
            in reconstruct)
    render = _help("render")
    assert "x264 speed: ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow" in render
    for text in (reconstruct, render, _help("export"), _help("weights", "fetch")):
        assert "list[" not in text and "<bool>" not in text
    assert "--checkpoint <path>" in reconstruct and "VIDEO Video files and/or folders of videos." in reconstruct


def test_help_names_the_way_to_real_bodies_first_and_writes_meshes_only_on_request():
    from strcli.road.options import ReconstructOptions

    reconstruct = " ".join(_help("reconstruct").replace("│", " ").split())  # a help cell wraps inside its box
    # The command's description and --model's help: --model tcmr, then training, then --untrained.
    for text in (reconstruct.split("Options")[0], reconstruct.split("--model <str>", 1)[1].split("--checkpoint <path>")[0]):
        ways = [text.index(w) for w in ("--model tcmr", "strcli train", "--untrained")]
        assert ways == sorted(ways), text
    mesh = reconstruct.split("--mesh-format", 1)[1].split("--window-stride")[0]
    assert "[default: none]" in mesh and "obj" in mesh
    assert ReconstructOptions().mesh_formats == ()
    assert "Default: the file the manifest records." in _help("export") and \
        "Default: the file the manifest records." in _help("view")


# ---------------------------------------------------------------- 7. errors that say how to fix them


def test_errors_say_how_to_fix_them(tmp_path, assets, monkeypatch):
    from strcli.road.inputs import detections_for

    with pytest.raises(UsageError) as info:
        detections_for(Path("vtest.avi"), tmp_path, single=False)
    assert str(info.value) == (f"no detections for vtest.avi in {tmp_path} (looked for vtest.det.txt, vtest.txt, "
                               "vtest/det/det.txt). Write vtest.det.txt there with your detector (MOT format: "
                               "frame,-1,x,y,w,h,score per line), or drop --detections to run strcli's detector.")
    result = runner.invoke(app, ["info", "--checkpoint", str(tmp_path / "nope.pt")])
    assert result.exit_code == 3
    assert result.stderr == f"error: checkpoint {tmp_path / 'nope.pt'} does not exist. Check the path.\n"


# ---------------------------------------------------------------- 9. warnings only when a network is built


def test_untrained_warnings_wait_for_a_network_and_stay_quiet_with_q(tmp_path, assets, smpl_files):
    from test_reconstruct import mean_checkpoint

    checkpoint = mean_checkpoint(tmp_path / "mean.pt", assets)
    args = ["reconstruct", str(assets / "videos" / "running.mp4"), "-o", str(tmp_path / "out"), "--detections",
            str(assets / "detections" / "running.det.txt"), "--smpl-dir", str(smpl_files["chumpy"].parent),
            "--checkpoint", str(checkpoint), "--untrained", "--offline", "--device", "cpu", "--mesh-format", "none",
            "--end", "8"]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    built = [line for line in first.stderr.splitlines() if line.startswith("warning: ") and ":" not in line[9:30]]
    assert ("warning: the ResNet-50 backbone is randomly initialised (no SPIN checkpoint: `strcli weights fetch "
            "spin_checkpoint`, or `strcli weights import` a copy).") in built
    skipped = runner.invoke(app, [*args, "--json"])  # every video skipped: no network built, no warning
    assert skipped.exit_code == 0 and json.loads(skipped.stdout)[0]["status"] == "skipped"
    assert "randomly initialised" not in skipped.stderr and "UNTRAINED" not in skipped.stderr
    quiet = runner.invoke(app, [*args, "--overwrite", "-q"])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr


# ---------------------------------------------------------------- 10. results on stdout, plain in a file


def test_weights_list_is_not_padded_and_fetch_says_present_on_stdout(tmp_path, monkeypatch):
    listed = runner.invoke(app, ["weights", "list"])
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert any(line.startswith(" detector ") for line in lines)
    assert all(line == line.rstrip() for line in lines), [line for line in lines if line != line.rstrip()]
    present = tmp_path / "weights" / "smpl_mean_params.npz"
    present.parent.mkdir(parents=True, exist_ok=True)
    np.savez(present, pose=np.zeros(72), shape=np.zeros(10), cam=np.zeros(3))
    monkeypatch.setattr(strcli.weights.registry, "check_asset",
                        lambda asset, *a, **k: strcli.weights.registry.AssetState(asset, present, strcli.weights.registry.Status.PRESENT))
    fetched = runner.invoke(app, ["weights", "fetch", "smpl_mean_params", "--quiet"])
    assert fetched.exit_code == 0, fetched.output
    assert fetched.stdout == f"smpl_mean_params: {present} (present)\n" and fetched.stderr == ""


def test_json_gets_an_error_object_when_the_command_is_refused(tmp_path):
    result = runner.invoke(app, ["reconstruct", str(tmp_path / "x.mp4"), "--stride", "0", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": "--stride 0: must be at least 1.", "exit_code": 2}
    assert result.stderr == "error: --stride 0: must be at least 1.\n"
    listed = runner.invoke(app, ["info", "--checkpoint", str(tmp_path / "nope.pt"), "--json"])
    assert json.loads(listed.stdout)["exit_code"] == 3
