"""Files that lie (issue 23, second half): checkpoints, SMPL files, output folders, the
weights registry and data files that hold the wrong thing are refused with one line and
their exit code, at load and at `weights import`; files in the way of an output are
refused before any work; a killed run's partial folder goes on the next run, skipped or not.

Every bad file is made the way the reports describe (torch.save of a NaN state dict, an SMPL
pickle with a face index past the vertices, numpy rewriting a track file, ...); the
networks are small and randomly initialised (never presented as trained).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from strcli.body.generated import write_chumpy_pickle
from strcli.body.smpl import load_smpl_arrays
from strcli.cli.main import app
from strcli.model import STR, STRConfig
from strcli.model.checkpoints import load_model, save_checkpoint
from strcli.model.published import load_published
from strcli.road.output_check import DamagedOutput, check_output
from strcli.train.data import load_db
from strcli.utils.errors import CorruptAssetError, DataFileError

runner = CliRunner()
TINY = STRConfig(feature_dim=16, gru_hidden=8, integration_dim=4, integration_hidden=4, regressor_hidden=16)


def one_error_line(result) -> str:
    """The stderr of a refused command: exactly one line `error: ...`, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


# ----------------------------------------------------------------------------- checkpoints


def tiny_checkpoint(path: Path) -> tuple[Path, dict]:
    torch.manual_seed(0)
    save_checkpoint(path, STR(TINY))
    return path, torch.load(path, weights_only=True)


@pytest.mark.parametrize("change, words", [
    (lambda raw: raw["state_dict"].__setitem__("regressor.fc1.weight",
                                               raw["state_dict"]["regressor.fc1.weight"] * float("nan")),
     "NaN or infinite weights in 1 tensor(s): regressor.fc1.weight"),
    (lambda raw: raw["state_dict"]["ttr.grus.0.gru.bias_hh_l0"].__setitem__(0, float("inf")),
     "NaN or infinite weights in 1 tensor(s): ttr.grus.0.gru.bias_hh_l0"),
    (lambda raw: raw.__setitem__("config", "full"), "invalid model config: a str, not a mapping"),
    (lambda raw: raw.__setitem__("config", [1, 2, 3]), "invalid model config: a list, not a mapping"),
    (lambda raw: raw["config"].__setitem__("gru_hidden", 8.5), "gru_hidden must be a finite int, got 8.5"),
    (lambda raw: raw["config"].__setitem__("use_ttr", "yes"), "use_ttr must be a finite bool"),
    (lambda raw: raw.__setitem__("state_dict", [1, 2]), "its state dict is a list"),
    (lambda raw: raw["state_dict"].__setitem__("regressor.fc1.weight", [[0.0]]),
     "not named tensors: 'regressor.fc1.weight' (list)"),
    (lambda raw: raw.__setitem__("meta", [1, 2]), "invalid meta entry: a list"),
    # A config that asks for a 94-billion-weight network: refused by shape, nothing allocated.
    (lambda raw: raw["config"].__setitem__("gru_hidden", 65536), "does not fit the model: shape mismatch"),
    (lambda raw: raw["config"].__setitem__("seq_len", 10**12), "does not fit the model: shape mismatch"),
    (lambda raw: raw.__setitem__("version", "2"), "checkpoint version that is not a whole number ('2')"),
])
def test_a_lying_strcli_checkpoint_is_refused_at_load(tmp_path, change, words):
    path, raw = tiny_checkpoint(tmp_path / "str.pt")
    change(raw)
    torch.save(raw, path)
    with pytest.raises(CorruptAssetError) as info:
        load_model(path)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_info_checks_the_shapes_a_config_asks_for_without_building_them(tmp_path):
    path, raw = tiny_checkpoint(tmp_path / "str.pt")
    raw["config"]["seq_len"] = 10**12  # info read the config alone and printed it (a 2e12-wide layer)
    torch.save(raw, path)
    result = runner.invoke(app, ["info", "--checkpoint", str(path)])
    assert result.exit_code == 4 and "does not fit the model" in one_error_line(result)


def test_a_lying_checkpoint_is_refused_by_weights_import_and_reconstruct(tmp_path, assets, smpl_files):
    path, raw = tiny_checkpoint(tmp_path / "str.pt")
    raw["state_dict"]["regressor.decpose.weight"].fill_(float("nan"))
    torch.save(raw, path)
    imported = runner.invoke(app, ["weights", "import", str(path), "--name", "str_checkpoint"])
    assert imported.exit_code == 4
    assert "NaN or infinite weights" in one_error_line(imported)
    assert not (tmp_path / "weights" / "str_checkpoint.pt").exists()
    assert not list((tmp_path / "weights").rglob("*.pt"))  # nothing copied
    raw["state_dict"]["regressor.decpose.weight"].fill_(0.0)
    raw["config"] = "full"
    torch.save(raw, path)
    imported = runner.invoke(app, ["weights", "import", str(path), "--name", "str_checkpoint"])
    assert imported.exit_code == 4 and "invalid model config" in one_error_line(imported)
    ran = runner.invoke(app, ["reconstruct", str(assets / "videos" / "pedestrians.avi"), "-o", str(tmp_path / "o"),
                              "--detections", str(assets / "detections" / "pedestrians.det.txt"), "--smpl-dir",
                              str(smpl_files["chumpy"].parent), "--checkpoint", str(path), "--untrained",
                              "--offline", "--device", "cpu", "--end", "4", "--quiet"])
    assert ran.exit_code == 4 and "invalid model config" in one_error_line(ran)
    assert not (tmp_path / "o" / "pedestrians").exists()


@pytest.mark.parametrize("kind", ["tcmr", "vibe"])
def test_a_published_file_with_nan_weights_is_refused_at_load_and_import(tmp_path, kind):
    from published_checkpoints import gen_state_dict, write_released

    state = gen_state_dict(kind)
    key = next(k for k in state if k.startswith("encoder.") and state[k].is_floating_point())
    state[key][0] = float("nan")
    released = {"tcmr": "tcmr_demo_model.pth.tar", "vibe": "vibe_model_wo_3dpw.pth.tar"}[kind]
    path = write_released(tmp_path / released, kind, state=state)
    with pytest.raises(CorruptAssetError, match=f"NaN or infinite weights in 1 tensor\\(s\\): {key}"):
        load_published(path, kind)
    imported = runner.invoke(app, ["weights", "import", str(path)])
    assert imported.exit_code == 4 and key in one_error_line(imported)
    state[key][0] = 0.0
    state[7] = torch.zeros(1)  # a name that is no string
    path = write_released(path, kind, state=state)
    with pytest.raises(CorruptAssetError, match="not named tensors: 7"):
        load_published(path, kind)


# ----------------------------------------------------------------------------- SMPL files


def lying_smpl(arrays: dict, change) -> dict:
    arrays = {k: np.array(v, copy=True) for k, v in arrays.items()}
    change(arrays)
    return arrays


SMPL_LIES = {
    "a face index past the vertices": (lambda a: a["f"].__setitem__((5, 1), 6890),
                                       "faces f index vertices 0..6890, outside 0..6889"),
    "NaN vertices": (lambda a: a["v_template"].__setitem__((10, 0), np.nan),
                     "v_template holds 1 NaN or infinite value(s)"),
    "NaN skinning weights": (lambda a: a["weights"].__setitem__((3, 0), np.nan),
                             "weights holds 1 NaN or infinite value(s)"),
    "weights not summing to one": (lambda a: a["weights"].__setitem__(slice(0, 4), a["weights"][:4] * 2),
                                   "the skinning weights of 4 vertices do not sum to one (vertex 0: 2"),
    "negative weights": (lambda a: a["weights"].__setitem__((0, slice(None)), a["weights"][0] * -1),
                         "skinning weights are negative"),
    "an infinite shape basis": (lambda a: a["shapedirs"].__setitem__((0, 0, 0), np.inf),
                                "shapedirs holds 1 NaN or infinite value(s)"),
    "a parent after its child": (lambda a: a["kintree_table"].__setitem__((0, 5), 20),
                                 "kintree_table's parents"),
    "a short pose basis": (lambda a: a.__setitem__("posedirs", a["posedirs"][:, :, :100]),
                           "posedirs has shape (6890, 3, 100)"),
}


@pytest.mark.parametrize("lie", sorted(SMPL_LIES))
def test_an_smpl_file_that_lies_is_refused_when_read(tmp_path, smpl_arrays, lie):
    change, words = SMPL_LIES[lie]
    path = write_chumpy_pickle(lying_smpl(smpl_arrays, change), tmp_path / "SMPL_NEUTRAL.pkl")
    with pytest.raises(CorruptAssetError) as info:
        load_smpl_arrays(path, tmp_path / "cache")
    assert words in str(info.value)
    assert not list((tmp_path / "cache").glob("*.npz"))  # never cached as good


def test_an_smpl_file_that_lies_is_refused_by_import_and_commands(tmp_path, smpl_arrays, assets):
    change, words = SMPL_LIES["a face index past the vertices"]
    folder = tmp_path / "smpl"
    folder.mkdir()
    path = write_chumpy_pickle(lying_smpl(smpl_arrays, change), folder / "SMPL_NEUTRAL.pkl")
    imported = runner.invoke(app, ["weights", "import", str(path)])
    assert imported.exit_code == 4 and words in one_error_line(imported)
    assert not (tmp_path / "weights" / "smpl" / "SMPL_NEUTRAL.pkl").exists()
    ran = runner.invoke(app, ["reconstruct", str(assets / "videos" / "pedestrians.avi"), "-o", str(tmp_path / "o"),
                              "--detections", str(assets / "detections" / "pedestrians.det.txt"), "--smpl-dir",
                              str(folder), "--untrained", "--offline", "--device", "cpu", "--end", "4", "--quiet"])
    assert ran.exit_code == 4 and words in one_error_line(ran)


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize("text, words", [
    ("[1, 2]", "is not a JSON object of recorded checksums (it holds list)"),
    ('"weights"', "it holds str"),
    ('{"smpl_mean_params": 3}', "an object with entries that are not objects"),
    ("{not json", "is not JSON"),
])
def test_a_registry_that_is_not_an_object_is_one_line(tmp_path, assets, text, words):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "registry.json").write_text(text)
    for args in (["weights", "list"], ["weights", "import", str(assets / "smpl_helpers" / "smpl_mean_params.npz")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 4, result.output
        assert words in one_error_line(result)


def test_a_weights_dir_that_is_a_file_is_one_line(tmp_path, monkeypatch, assets):
    (tmp_path / "afile").write_text("x")
    for value in (tmp_path / "afile", tmp_path / "afile" / "below"):
        monkeypatch.setenv("STRCLI_WEIGHTS_DIR", str(value))
        for args in (["weights", "list"], ["weights", "import", str(assets / "smpl_helpers" / "smpl_mean_params.npz")],
                     ["weights", "fetch", "smpl_mean_params", "--quiet"]):
            result = runner.invoke(app, args)
            assert result.exit_code == 2, (args, result.output)
            assert f"{tmp_path / 'afile'} is a file, not a folder" in one_error_line(result)


# ----------------------------------------------------------------------------- output folders


@pytest.fixture(scope="module")
def done(tmp_path_factory, assets, smpl_files):
    """pedestrians.avi frames 0..19 through the mean-predicting small STR: the folder and the
    command that made it (rerunning it skips the video)."""
    from test_reconstruct import mean_checkpoint

    root = tmp_path_factory.mktemp("lying")
    checkpoint = mean_checkpoint(root / "mean.pt", assets)
    args = ["reconstruct", str(assets / "videos" / "pedestrians.avi"), "-o", str(root / "out"), "--detections",
            str(assets / "detections" / "pedestrians.det.txt"), "--smpl-dir", str(smpl_files["chumpy"].parent),
            "--checkpoint", str(checkpoint), "--untrained", "--offline", "--device", "cpu", "--mesh-format", "none",
            "--end", "20", "--quiet", "--json"]
    env = {"STRCLI_WEIGHTS_DIR": str(root / "weights"), "STRCLI_CACHE_DIR": str(root / "cache")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = root / "out" / "pedestrians"
    assert check_output(folder).track_files  # a fresh folder passes
    return {"folder": folder, "args": args, "env": env, "smpl": smpl_files["chumpy"].parent}


def damaged_copy(done, tmp_path, change) -> Path:
    folder = tmp_path / "out" / "pedestrians"
    shutil.copytree(done["folder"], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    change(folder, manifest)
    return folder


def set_track(key, value_of):
    """A change that rewrites the first track file's `key` with numpy, as a script would."""
    return add_track(key, lambda arrays: value_of(arrays[key]))


def add_track(key, value_from):
    """A change that sets `key` in the first track file (adding it when absent), computed from its arrays."""
    def change(folder, manifest):
        path = folder / manifest["tracks"][0]["npz"]
        with np.load(path) as data:
            arrays = dict(data)
        arrays[key] = value_from(arrays)
        np.savez(path, **arrays)
    return change


def set_manifest(edit):
    def change(folder, manifest):
        edit(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return change


def _nan_at(a, index):
    a = a.copy()
    a[index] = np.nan
    return a


FOLDER_DAMAGE = {
    "a NaN pose": (set_track("body_pose", lambda a: _nan_at(a, (2, 5))), "body_pose holds 1 NaN or infinite value"),
    "a NaN focal in the manifest": (set_manifest(lambda m: m["intrinsics"].__setitem__("focal", float("nan"))),
                                    "the focal length is nan"),
    "focal 0": (set_manifest(lambda m: m["intrinsics"].__setitem__("focal", 0)), "the focal length is 0"),
    "focal 0 in the track": (set_track("intrinsics", lambda a: a * 0), "the focal length is 0"),
    "a short body_pose": (set_track("body_pose", lambda a: a[:, :60]), "body_pose has shape"),
    "a track shorter than its manifest": (set_track("frames", lambda a: a[:-1]), "has shape ("),
    "frame counts that disagree": (set_manifest(lambda m: m["tracks"][0].__setitem__("frames", 999)),
                                   "says 999"),
    "betas of 1e30": (set_track("betas", lambda a: a + 1e30), "betas reaches 1e+30, past any real value"),
    "a rotation of 1000 rad": (set_track("global_orient", lambda a: a + 1000), "global_orient reaches"),
    "a track file that is text": (lambda f, m: (f / m["tracks"][0]["npz"]).write_text("hello"),
                                  "is not a readable .npz"),
    "a track file that is gone": (lambda f, m: (f / m["tracks"][0]["npz"]).unlink(), "is missing"),
    "tracks that are a string": (set_manifest(lambda m: m.__setitem__("tracks", "all")), "tracks is \"all\""),
    "a track path out of the folder": (set_manifest(lambda m: m["tracks"][0].__setitem__("npz", "../../x.npz")),
                                       "outside the folder"),
    "decreasing frames": (set_track("frames", lambda a: a[::-1].copy()), "not increasing"),
    "a NaN world_body_pose": (add_track("world_body_pose", lambda d: _nan_at(d["body_pose"].copy(), (1, 4))),
                              "world_body_pose holds 1 NaN or infinite value"),
    "a short world_body_pose": (add_track("world_body_pose", lambda d: d["body_pose"][:, :60]),
                                "world_body_pose has shape"),
}


def set_camera(key, value_of):
    """A change that rewrites camera.npz's `key` (None: deletes it) with numpy."""
    def change(folder, manifest):
        with np.load(folder / "camera.npz") as data:
            arrays = dict(data)
        if value_of is None:
            del arrays[key]
        else:
            arrays[key] = value_of(arrays[key])
        np.savez(folder / "camera.npz", **arrays)
    return change


def drop_track_keys(*keys, every=False):
    """A change that deletes `keys` from the first track file (`every`: from each)."""
    def change(folder, manifest):
        for entry in manifest["tracks"] if every else manifest["tracks"][:1]:
            with np.load(folder / entry["npz"]) as data:
                arrays = {k: data[k] for k in data.files if k not in keys}
            np.savez(folder / entry["npz"], **arrays)
    return change


def replace_camera(make):
    def change(folder, manifest):
        (folder / "camera.npz").unlink()
        make(folder / "camera.npz")
    return change


def _reflect(rotations):
    rotations = rotations.copy()
    rotations[3] = rotations[3] @ np.diag([1.0, 1.0, -1.0])
    return rotations


def _both(*items):
    """A change that sets several keys of the first track file at once: (key, value) pairs."""
    def change(folder, manifest):
        for key, value in items:
            add_track(key, lambda arrays, value=value: value)(folder, manifest)
    return change


# The world's damage (issue 21; the tester's cases A-D): each kind and the words of its line.
WORLD_DAMAGE = {
    "a zero camera rotation": (set_camera("rotation", lambda a: a * 0), "rotation 0 is not a rotation (determinant 0.00"),
    "a reflected camera rotation": (set_camera("rotation", _reflect),
                                    "camera.npz: rotation 3 is not a rotation (determinant -1.00)"),
    "a scaled camera rotation": (set_camera("rotation", lambda a: a * 2), "is not a rotation (determinant 8.00"),
    "a NaN camera rotation": (set_camera("rotation", lambda a: _nan_at(a, (2, 0, 0))),
                              "camera.npz: rotation holds 1 NaN or infinite value"),
    "another video's frames": (set_camera("frames", lambda a: a + 1000), "camera.npz has no row for frame 0"),
    "another video's frame count": (set_camera("frames", lambda a: a[:-2]), "frames has shape"),
    "another video's image size": (set_camera("image_size", lambda a: np.array([640, 480])),
                                   "camera.npz: image size (640, 480), manifest.json says"),
    "another video's intrinsics": (set_camera("intrinsics", lambda a: a * [[0.4], [0.4], [1]]),
                                   "camera.npz: its intrinsics (focal"),
    "a camera 1e30 m away": (set_camera("position", lambda a: a * 0 + 1e30), "position reaches 1e+30"),
    "a camera position in text": (set_camera("position", lambda a: a.astype(str)),
                                  "position holds <U32 values, not floating-point numbers"),
    "a camera without frames": (set_camera("frames", None), "camera.npz lacks frames"),
    "a camera.npz that is a folder": (replace_camera(lambda p: p.mkdir()), "camera.npz is not a file, though"),
    "a camera.npz linked to /dev/zero": (replace_camera(lambda p: p.symlink_to("/dev/zero")), "camera.npz is not a file"),
    "a camera.npz linked to itself": (replace_camera(lambda p: p.symlink_to(p)), "camera.npz is not a file"),
    "an empty camera.npz": (replace_camera(lambda p: p.write_bytes(b"")),
                            "camera.npz is not a readable .npz: No data left in file"),
    "a world_transl 1e30 m away": (set_track("world_transl", lambda a: a * 0 + 1e30), "world_transl reaches 1e+30"),
    "a world_transl in text": (set_track("world_transl", lambda a: a.astype(str)), "world_transl holds <U32 values"),
    "a world_transl of int8": (set_track("world_transl", lambda a: a.astype(np.int8)),
                               "world_transl holds int8 values, not floating-point numbers"),
    "foot contacts in text": (set_track("foot_contacts", lambda a: a.astype(str)), "foot_contacts holds <U5 values"),
    "all-NaN world joints": (set_track("world_joints3d", lambda a: a * np.nan),
                             "world_joints3d holds "),
    "a track without world_transl": (drop_track_keys("world_transl"),
                                     "tracks/0.npz lacks world_transl, though manifest.json records a world"),
    "world keys without a world section": (set_manifest(lambda m: m.pop("world")),
                                           "holds world keys, though manifest.json records no world"),
    "an unknown grounding": (set_track("world_grounding", lambda a: np.array("floating")),
                             "world_grounding is \"floating\", not one of contacts, ray, network"),
    "a grounding in numbers": (set_track("world_grounding", lambda a: np.array(2)),
                               "world_grounding holds int64 values, not text"),
    "a depth factor of 5": (_both(("world_grounding", np.array("ray")), ("world_depth_factor", np.float64(5.0))),
                            "world_depth_factor is 5 for world_grounding \"ray\" (1 unless \"ray\", then within 0.5-2)"),
    "a depth factor without a move": (_both(("world_grounding", np.array("contacts")),
                                            ("world_depth_factor", np.float64(1.3))),
                                      "world_depth_factor is 1.3 for world_grounding \"contacts\""),
    "a grounding without its factor": (drop_track_keys("world_depth_factor"),
                                       "holds world_grounding without world_depth_factor"),
}


def _other_grounding(entry):
    """The first grounding method that is not `entry`'s."""
    from strcli.road.grounding import GROUNDINGS

    return next(g for g in GROUNDINGS if g != entry["grounding"])


def _drop_option(key):
    return set_manifest(lambda m: m["options"].pop(key))


# The checker's own attack: numbers of the wrong kind (complex, whole, true/false) where
# floating-point ones are expected, JSON numbers past any float, manifest fields only a
# reader used, the manifest's grounding, camera.npz's values, a track listed twice.
TYPE_DAMAGE = {
    "a complex depth factor": (set_track("world_depth_factor", lambda a: np.array(1 + 1j)),
                               "world_depth_factor holds complex128 values, not floating-point numbers"),
    "a complex fps": (set_track("fps", lambda a: a + 1j), "fps holds complex128 values, not floating-point numbers"),
    "a complex track id": (set_track("track_id", lambda a: a + 1j), "track_id holds complex128 values, not whole numbers"),
    "complex intrinsics": (set_track("intrinsics", lambda a: a.astype(np.complex64)),
                           "intrinsics holds complex64 values, not floating-point numbers"),
    "a whole-number depth factor": (set_track("world_depth_factor", lambda a: np.array(1)),
                                    "world_depth_factor holds int64 values, not floating-point numbers"),
    "a true/false depth factor": (set_track("world_depth_factor", lambda a: np.array(True)),
                                  "world_depth_factor holds bool values, not floating-point numbers"),
    "a body_pose of whole numbers": (set_track("body_pose", lambda a: a.astype(np.int32)),
                                     "body_pose holds int32 values, not floating-point numbers"),
    "times of whole numbers": (set_track("times", lambda a: a.astype(np.int64)),
                               "times holds int64 values, not floating-point numbers"),
    "a video fps of 10**400": (set_manifest(lambda m: m["video"].__setitem__("fps", 10**400)),
                               "video.fps is 1000000000"),
    "a focal of 10**400": (set_manifest(lambda m: m["intrinsics"].__setitem__("focal", 10**400)),
                           "not a positive number of pixels"),
    "a focal of true": (set_manifest(lambda m: m["intrinsics"].__setitem__("focal", True)),
                        "the focal length is true, not a positive number of pixels"),
    "a video fps of true": (set_manifest(lambda m: m["video"].__setitem__("fps", True)),
                            "video.fps is true, not a positive number"),
    "a huge matrix entry": (set_manifest(lambda m: m["intrinsics"]["matrix"][0].__setitem__(2, 10**400)),
                            "intrinsics.matrix[0][2] is 1000"),
    "no start_frame": (_drop_option("start_frame"), "options.start_frame is null, not a whole number >= 0"),
    "an end_frame in text": (set_manifest(lambda m: m["options"].__setitem__("end_frame", "abc")),
                             "options.end_frame is \"abc\", not a whole number"),
    "a stride of 10**400": (set_manifest(lambda m: m["options"].__setitem__("stride", 10**400)),
                            "options.stride is 1000"),
    "mirrored in text": (set_manifest(lambda m: m["video"].__setitem__("mirrored", "no")),
                         "video.mirrored is \"no\", not true or false"),
    "frames_in_file in text": (set_manifest(lambda m: m["video"].__setitem__("frames_in_file", "20")),
                               "video.frames_in_file is \"20\", not a whole number >= 0"),
    "a grounding of 5": (set_manifest(lambda m: m["tracks"][0].__setitem__("grounding", 5)),
                         "tracks[0].grounding is 5, not one of contacts, ray, network"),
    "a depth_factor in text": (set_manifest(lambda m: m["tracks"][0].__setitem__("depth_factor", "x")),
                               "tracks[0].depth_factor is \"x\", not a positive number"),
    "a grounding the track file does not hold": (
        set_manifest(lambda m: m["tracks"][0].__setitem__("grounding", _other_grounding(m["tracks"][0]))),
        "the grounding of tracks/0.npz is \""),
    "a depth_factor the track file does not hold": (
        set_manifest(lambda m: m["tracks"][0].__setitem__("depth_factor", 1.7)),
        "the depth_factor of tracks/0.npz is 1.7, but the file's world_depth_factor is"),
    "an infinite camera height": (set_camera("camera_height", lambda a: np.array(np.inf)),
                                  "camera.npz: camera_height holds 1 infinite value(s)"),
    "a camera model of warp": (set_camera("model", lambda a: np.array("warp")),
                               "camera.npz: model is \"warp\", not one of auto, static, rotating, moving"),
    "decreasing camera times": (set_camera("times", lambda a: a[::-1].copy()), "camera.npz: its times decrease"),
    "a track listed twice": (set_manifest(lambda m: m["tracks"].append(dict(m["tracks"][0]))),
                             "tracks lists npz \"tracks/0.npz\" twice"),
    "a track listed twice by another path": (
        set_manifest(lambda m: m["tracks"].append({**m["tracks"][0], "npz": "./tracks/0.npz"})),
        "tracks lists npz \"tracks/0.npz\" twice"),
    "a track id listed twice": (set_manifest(lambda m: m["tracks"].append({**m["tracks"][0], "npz": "tracks/x.npz"})),
                                "lists track_id"),
}


@pytest.fixture(scope="module")
def body(smpl_files, tmp_path_factory):
    from strcli.body.smpl import Body

    return Body(load_smpl_arrays(smpl_files["chumpy"], tmp_path_factory.mktemp("body-cache")))


@pytest.mark.parametrize("damage", sorted(WORLD_DAMAGE))
def test_export_and_view_refuse_each_kind_of_damaged_world_with_one_line(done, tmp_path, body, damage):
    """One check (`check_output`) for the world too: export (in-process CLI) and the viewer's
    Scene refuse the folder, exit 2, with the same one line; nothing is written."""
    refused_by_check_export_and_view(done, tmp_path, body, *WORLD_DAMAGE[damage])


@pytest.mark.parametrize("damage", sorted(TYPE_DAMAGE))
def test_export_and_view_refuse_numbers_of_the_wrong_kind_and_unchecked_fields(done, tmp_path, body, damage):
    """Every number the check reads is of its kind before it is converted (a complex value was
    a TypeError traceback, 10**400 in the manifest an OverflowError), every manifest field a
    reader uses is checked (a missing start_frame was render's KeyError), the manifest's
    grounding agrees with the track file's: one line, exit 2, naming the problem."""
    refused_by_check_export_and_view(done, tmp_path, body, *TYPE_DAMAGE[damage])


def refused_by_check_export_and_view(done, tmp_path, body, change, words):
    from strcli.view.viewer import Scene

    folder = damaged_copy(done, tmp_path, change)
    with pytest.raises(DamagedOutput) as info:
        check_output(folder)
    line = str(info.value)
    assert line.startswith(f"{folder} is a damaged strcli output (") and words in line, line
    assert "Error" not in line  # in words, not Python's exception names
    result = runner.invoke(app, ["export", str(folder), "--smpl-dir", str(done["smpl"])])
    assert result.exit_code == 2 and line in one_error_line(result)
    assert not (folder / f"{folder.name}.glb").exists() and not (folder / "bvh").exists()
    with pytest.raises(DamagedOutput) as viewed:
        Scene(folder, body)
    assert str(viewed.value) == line


def test_an_older_folder_without_a_world_still_passes(done, tmp_path):
    """A folder of a strcli older than the world stage (no `world` section, no world keys,
    no camera.npz) is valid: the readers fall back to the camera frame."""
    def older(folder, manifest):
        drop_track_keys("world_global_orient", "world_transl", "world_joints3d", "foot_contacts",
                        "world_body_pose", "world_grounding", "world_depth_factor", every=True)(folder, manifest)
        (folder / "camera.npz").unlink()
        set_manifest(lambda m: m.pop("world"))(folder, manifest)
    assert check_output(damaged_copy(done, tmp_path, older)).track_files


def test_a_world_folder_from_before_the_grounding_keys_still_passes(done, tmp_path):
    """A folder with a world written before each track said how its height was set (no
    world_grounding, no world_depth_factor, nor the manifest's grounding fields) is valid."""
    def before(folder, manifest):
        for entry in manifest["tracks"]:
            entry.pop("grounding", None)
            entry.pop("depth_factor", None)
        set_manifest(lambda m: None)(folder, manifest)
        drop_track_keys("world_grounding", "world_depth_factor", every=True)(folder, manifest)
    checked = check_output(damaged_copy(done, tmp_path, before))
    assert checked.track_files and "world" in checked.manifest
    with np.load(checked.track_files[0]) as data:
        assert "world_grounding" not in data.files and "world_transl" in data.files


@pytest.mark.parametrize("damage", sorted(FOLDER_DAMAGE))
def test_one_check_refuses_each_kind_of_damaged_folder(done, tmp_path, damage):
    change, words = FOLDER_DAMAGE[damage]
    folder = damaged_copy(done, tmp_path, change)
    with pytest.raises(DamagedOutput) as info:
        check_output(folder)
    assert str(info.value).startswith(f"{folder} is a damaged strcli output (")
    assert words in str(info.value) and DamagedOutput.exit_code == 2


def test_render_export_and_view_refuse_a_damaged_folder_with_one_line(done, tmp_path):
    folder = damaged_copy(done, tmp_path, FOLDER_DAMAGE["a NaN pose"][0])
    smpl = ["--smpl-dir", str(done["smpl"])]
    for args in (["render", str(folder), *smpl, "--device", "cpu", "--quiet"], ["export", str(folder), *smpl]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "is a damaged strcli output" in result.stderr and "body_pose holds 1 NaN" in result.stderr
        assert "Traceback" not in result.output
    assert not (folder / "overlay.mp4").exists() and not (folder / f"{folder.name}.glb").exists()
    view = subprocess.run([sys.executable, "-m", "strcli", "view", str(folder), *smpl, "--port", "0"],
                          check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "STRCLI_CACHE_DIR": str(tmp_path / "cache")})
    assert view.returncode == 2, view.stderr
    assert "body_pose holds 1 NaN" in view.stderr and "Traceback" not in view.stderr


@pytest.mark.parametrize("text", ["", '{"tracks": [{"npz": "tracks/0.n'])
def test_a_cut_manifest_is_damage_not_a_missing_smpl_file(done, tmp_path, text):
    """A copy onto a full disk leaves manifest.json empty or cut. render, export and view find
    the SMPL file through the manifest: without --smpl-dir they blamed the SMPL file (exit 3)."""
    folder = damaged_copy(done, tmp_path, lambda folder, manifest: (folder / "manifest.json").write_text(text))
    for args in (["render", str(folder), "--device", "cpu", "--quiet"], ["export", str(folder)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "manifest.json is not readable JSON" in one_error_line(result) and "SMPL" not in result.stderr
    view = subprocess.run([sys.executable, "-m", "strcli", "view", str(folder), "--port", "0"],
                          check=False, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert view.returncode == 2 and "manifest.json is not readable JSON" in view.stderr, view.stderr
    # Among good folders, the damaged one is said and the others are exported all the same.
    good = tmp_path / "out" / "good"
    shutil.copytree(done["folder"], good)
    result = runner.invoke(app, ["export", str(tmp_path / "out"), "--format", "bvh"])
    assert result.exit_code == 2, result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        line for line in result.stderr.splitlines() if "manifest.json is not readable JSON" in line]
    assert (good / "bvh").is_dir() and not (folder / "bvh").exists()


@pytest.mark.parametrize("damage", ["a complex depth factor", "a complex fps", "no start_frame", "a video fps of 10**400"])
def test_render_refuses_damage_it_used_to_crash_on_with_one_line(done, tmp_path, damage):
    """render read fields the check did not (start_frame, end_frame) and converted complex
    values to float: a KeyError or TypeError traceback, exit 1, or Python's words."""
    folder = damaged_copy(done, tmp_path, TYPE_DAMAGE[damage][0])
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(done["smpl"]), "--device", "cpu",
                                 "--quiet"])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert TYPE_DAMAGE[damage][1] in line and "Error" not in line, line


def test_a_folder_without_the_optional_fields_passes_with_the_readers_defaults(done, tmp_path):
    """A manifest without stride (or the video's fps, rotation, mirrored; an older strcli's)
    passes, and the readers get the defaults of MANIFEST_DEFAULTS: render drew without
    stride a KeyError."""
    from strcli.road.output_check import MANIFEST_DEFAULTS

    def older(folder, manifest):
        for section, defaults in MANIFEST_DEFAULTS.items():
            for key in defaults:
                manifest[section].pop(key, None)
        for entry in manifest["tracks"]:
            entry["grounding"] = entry["depth_factor"] = None
        set_manifest(lambda m: None)(folder, manifest)
    folder = damaged_copy(done, tmp_path, older)
    checked = check_output(folder).manifest
    assert checked["options"]["stride"] == 1 and checked["video"]["mirrored"] is False
    assert checked["options"]["start_frame"] == 0
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(done["smpl"]), "--device", "cpu",
                                 "--no-video", "--frames", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (folder / "frames" / "000000.png").is_file()


@pytest.mark.parametrize("damage", ["a complex fps", "no start_frame"])
def test_a_rerun_redoes_a_folder_damaged_past_the_old_check(done, tmp_path, monkeypatch, damage):
    """A rerun of the same video checked the folder with float() of a complex fps (a
    TypeError traceback) or skipped a folder without start_frame (then render's KeyError):
    now it is redone."""
    root = tmp_path / "out"
    folder = damaged_copy(done, tmp_path, TYPE_DAMAGE[damage][0])
    args = [*done["args"]]
    args[args.index("-o") + 1] = str(root)
    for key, value in done["env"].items():
        monkeypatch.setenv(key, value)
    redone = runner.invoke(app, args)
    assert redone.exit_code == 0, redone.output
    assert json.loads(redone.stdout)[0]["status"] == "done"
    checked = check_output(folder)
    assert checked.manifest["options"]["start_frame"] == 0
    with np.load(checked.track_files[0]) as data:
        assert data["fps"].dtype == np.float64


def test_a_skipped_rerun_redoes_a_damaged_folder_and_sweeps_dead_partials(done, tmp_path, monkeypatch):
    """A rerun that would skip the video checks its folder first (`check_output`, the world
    included): a NaN camera rotation (and a focal of 0) is redone, not skipped."""
    root = tmp_path / "out"
    folder = damaged_copy(done, tmp_path, FOLDER_DAMAGE["focal 0"][0])
    WORLD_DAMAGE["a NaN camera rotation"][0](folder, {})
    args = [*done["args"]]
    args[args.index("-o") + 1] = str(root)
    for key, value in done["env"].items():
        monkeypatch.setenv(key, value)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: a killed --overwrite run's
    partial = root / f".pedestrians.partial-{dead.pid}-abc123"
    (partial / "tracks").mkdir(parents=True)
    (partial / "tracks" / "0.npz").write_bytes(b"\0" * 4096)
    redone = runner.invoke(app, args)
    assert redone.exit_code == 0, redone.output
    assert json.loads(redone.stdout)[0]["status"] == "done"  # damaged: redone, not skipped
    assert check_output(folder).manifest["intrinsics"]["focal"] > 0
    with np.load(folder / "camera.npz") as camera:
        assert np.isfinite(camera["rotation"]).all()
    assert not partial.exists()
    partial.mkdir()
    skipped = runner.invoke(app, args)
    assert skipped.exit_code == 0 and json.loads(skipped.stdout)[0]["status"] == "skipped"
    assert not partial.exists()  # swept by a skipped run too


# ----------------------------------------------------------------------------- in the way


def test_render_and_export_refuse_targets_in_the_way_before_any_work(done, tmp_path):
    folder = damaged_copy(done, tmp_path, lambda f, m: None)
    smpl = ["--smpl-dir", str(done["smpl"])]
    (folder / "overlay.mp4").mkdir()
    (folder / "overlay.mp4" / "mine.txt").write_text("the user's")
    result = runner.invoke(app, ["render", str(folder), *smpl, "--device", "cpu", "--quiet"])
    assert result.exit_code == 2
    assert f"{folder / 'overlay.mp4'} is in the way: it is a folder" in one_error_line(result)
    assert (folder / "overlay.mp4" / "mine.txt").read_text() == "the user's"
    (folder / "frames").write_text("the user's")
    result = runner.invoke(app, ["render", str(folder), *smpl, "--no-video", "--frames", "0", "--quiet"])
    assert result.exit_code == 2 and "frames is in the way: it is a file" in one_error_line(result)
    assert (folder / "frames").read_text() == "the user's"
    (folder / "bvh").write_text("the user's")
    result = runner.invoke(app, ["export", str(folder), *smpl])
    assert result.exit_code == 2 and "bvh is in the way: it is a file" in one_error_line(result)
    assert not (folder / f"{folder.name}.glb").exists()  # nothing written before the refusal
    (folder / "bvh").unlink()
    (folder / f"{folder.name}.glb").mkdir()
    result = runner.invoke(app, ["export", str(folder), *smpl, "--format", "glb"])
    assert result.exit_code == 2 and f"{folder.name}.glb is in the way: it is a folder" in one_error_line(result)
    (folder / f"{folder.name}.glb").rmdir()
    (folder / "bvh" / "0.bvh").mkdir(parents=True)
    result = runner.invoke(app, ["export", str(folder), *smpl, "--format", "bvh"])
    track = json.loads((folder / "manifest.json").read_text())["tracks"][0]["track_id"]
    if track == 0:
        assert result.exit_code == 2 and "0.bvh is in the way" in one_error_line(result)


# ----------------------------------------------------------------------------- train, evaluate


@pytest.mark.parametrize("flags, words", [
    (["--lr", "nan"], "--lr nan: the learning rate must be a finite number above 0"),
    (["--lr", "-1"], "--lr -1.0: the learning rate"),
    (["--lr", "inf"], "--lr inf"),
    (["--batch-size", "0"], "--batch-size 0: must be 1 or more"),
    (["--workers", "-1"], "--workers -1: must be in 0..256"),
    (["--iterations", "0"], "--iterations 0: must be 1 or more"),
    (["--epochs", "0"], "--epochs 0: must be 1 or more"),
    (["--seed", "-5"], "--seed -5: must be in 0..4294967295"),
    (["--seed", str(2**40)], "--seed 1099511627776"),
    (["--device", "gpu7"], "gpu7"),
])
def test_train_checks_every_flag_before_any_data(tmp_path, flags, words):
    # --data-dir does not exist: a flag refused first proves no data was looked at.
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path / "nowhere"), *flags])
    assert result.exit_code == 2, result.output
    assert words in one_error_line(result)


def test_train_and_evaluate_refuse_an_out_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "afile")])
    assert result.exit_code == 2 and "--out" in one_error_line(result) and "is a file" in result.stderr
    result = runner.invoke(app, ["evaluate", "--data-dir", str(tmp_path / "nowhere"), "--ablation", "no_ttr",
                                 "--runs-dir", str(tmp_path / "afile" / "runs")])
    assert result.exit_code == 2 and "lies under" in one_error_line(result)
    result = runner.invoke(app, ["evaluate", "--data-dir", str(tmp_path / "nowhere"), "--checkpoint", "x.pt",
                                 "--json-out", str(tmp_path)])
    assert result.exit_code == 2 and "--json-out" in one_error_line(result)
    result = runner.invoke(app, ["evaluate", "--data-dir", str(tmp_path / "nowhere"), "--checkpoint", "x.pt",
                                 "--batch-size", "0"])
    assert result.exit_code == 2 and "--batch-size 0" in one_error_line(result)


def test_a_data_file_that_does_not_parse_is_named_with_what_is_wrong(tmp_path):
    garbage = tmp_path / "3dpw_test_db.pt"
    garbage.write_bytes(b"\x80\x02h_.")  # a pickle reading memo slot 95, never stored: KeyError: 95
    with pytest.raises(DataFileError, match=r"3dpw_test_db.pt is not a readable data file \(.*95"):
        load_db(garbage)
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataFileError, match="3dpw_test_db.pt is not a readable data file"):
        load_db(garbage)
    import joblib

    joblib.dump({"vid_name": np.array(["a"] * 4), "features": [[1.0], [2.0, 3.0]]}, garbage)
    with pytest.raises(DataFileError, match="column 'features'"):
        load_db(garbage)
    from strcli.train.data import eval_videos

    joblib.dump({"vid_name": np.array(["a"] * 4), "features": np.zeros((3, 2048)),
                 "joints3D": np.zeros((4, 14, 3))}, garbage)
    with pytest.raises(DataFileError, match="features has 3 rows, vid_name 4"):
        eval_videos("3dpw", garbage)
    assert DataFileError.exit_code == 2
    with open(garbage, "wb") as handle:
        pickle.dump({"vid_name": np.array(["a"] * 4)}, handle)
    with pytest.raises(DataFileError, match="lacks features, joints3D"):
        eval_videos("3dpw", garbage)


# ----------------------------------------------------------------------------- found by trying to break it


@pytest.mark.parametrize("flags, words", [
    (["--fps", "inf"], "--fps inf: must be a positive number"),
    (["--frames", "-3"], "frame numbers start at 0"),
    (["--frames", "5:2"], "no frame in that range"),
    (["--frames", "0:10000000000"], "asks for 10000000000 PNGs, more than 100000"),  # answered at once, no list built
])
def test_render_refuses_odd_values_at_once(tmp_path, flags, words):
    result = runner.invoke(app, ["render", str(tmp_path), *flags])
    assert result.exit_code == 2 and words in one_error_line(result)


def test_a_folder_or_device_given_as_a_weights_file_is_named_as_such(tmp_path):
    result = runner.invoke(app, ["weights", "import", str(tmp_path)])
    assert result.exit_code == 3 and f"{tmp_path} is a folder, not a file" in one_error_line(result)
    result = runner.invoke(app, ["weights", "import", "/dev/null"])
    assert result.exit_code == 3 and "/dev/null is not a regular file" in one_error_line(result)
    result = runner.invoke(app, ["info", "--checkpoint", str(tmp_path)])
    assert result.exit_code == 3 and f"checkpoint {tmp_path} is a folder" in one_error_line(result)


def test_mean_parameters_and_joint_regressors_that_lie_are_refused(tmp_path, assets):
    from strcli.body.smpl import Body, check_joint_regressor
    from strcli.model.regressor import MeanParams

    with np.load(assets / "smpl_helpers" / "smpl_mean_params.npz") as data:
        arrays = dict(data)
    arrays["shape"] = arrays["shape"] * np.nan
    np.savez(tmp_path / "smpl_mean_params.npz", **arrays)
    with pytest.raises(CorruptAssetError, match="NaN or infinite mean parameters"):
        MeanParams.from_npz(tmp_path / "smpl_mean_params.npz")
    regressor = np.load(assets / "smpl_helpers" / "J_regressor_h36m.npy")
    check_joint_regressor(regressor, "J_regressor_h36m.npy", 17)  # the real one passes
    with pytest.raises(CorruptAssetError, match=r"has shape \(17, 6000\)"):
        check_joint_regressor(regressor[:, :6000], "J_regressor_h36m.npy", 17)
    regressor = regressor.copy()
    regressor[3, 7] = np.inf
    np.save(tmp_path / "J_regressor_h36m.npy", regressor)
    with pytest.raises(CorruptAssetError, match="J_regressor_h36m.npy holds NaN, infinite"):
        Body.from_file(tmp_path / "nowhere.pkl", tmp_path / "J_regressor_h36m.npy")


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999999"])  # the second was a traceback (torch overflow)
def test_reconstruct_refuses_a_seed_out_of_range_at_once(tmp_path, assets, seed):
    result = runner.invoke(app, ["reconstruct", str(assets / "videos" / "pedestrians.avi"), "-o", str(tmp_path / "o"),
                                 "--untrained", "--offline", "--seed", seed])
    assert result.exit_code == 2 and f"--seed {seed}: must be in 0..4294967295" in one_error_line(result)


def test_a_detection_frame_number_past_any_video_is_one_line(tmp_path):
    from strcli.road.tracking import read_mot_detections
    from strcli.utils.errors import UsageError

    path = tmp_path / "clip.det.txt"
    path.write_text("99999999999999999999,-1,10,10,20,40,0.9,-1,-1,-1\n")  # overflowed int64 with a numpy warning
    with pytest.raises(UsageError, match="the frame number 1e\\+20 is beyond any"):
        read_mot_detections(path)


@pytest.mark.parametrize("text, words", [
    ("assets = [1, 2]\n", "`assets` is a list, not a table"),  # was AttributeError
    ("[assets]\nx = 3\n", "asset 'x' is 3, not a table"),  # was TypeError
    ('[assets.x]\nfile = "a"\nneeded_by = "reconstruct"\ndescription = "d"\nlicence = "l"\n',
     "asset 'x' has needed_by = 'reconstruct', not a list of strings"),  # was split into letters
    ('[assets.x]\nfile = 5\n', "asset 'x' has file = 5, not a string"),
])
def test_a_manifest_that_lies_is_one_line(tmp_path, monkeypatch, text, words):
    (tmp_path / "manifest.toml").write_text(text)
    monkeypatch.setenv("STRCLI_MANIFEST", str(tmp_path / "manifest.toml"))
    result = runner.invoke(app, ["weights", "list"])
    assert result.exit_code == 4 and words in one_error_line(result)
