"""Training and evaluation on a miniature data set in the TCMR layout (no real data needed)."""

import json
import os
import pickle

import h5py
import joblib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from generated_dataset import make_extra_regressor, write_miniature, write_set
from strcli.body.smpl import Body
from strcli.model.checkpoints import load_model
from strcli.cli.main import app
from strcli.utils.errors import CorruptAssetError, DataFileError
from strcli.model.config import STRConfig
from strcli.model.regressor import MeanParams, SMPLPrediction
from strcli.body.rotations import axis_angle_to_rotmat
from strcli.train.data import (Clip, ClipDataset, FILES, OCC_FILES, H5Column, clip_starts, load_db,
                               normalise_keypoints, train_clip_starts)
from strcli.train.joints import attach_extra_regressor
from strcli.train.evaluate import score_dataset
from strcli.train.data import eval_videos
from strcli.train.loss import STRLoss
from strcli.train.trainer import RECIPES, Trainer

runner = CliRunner()
SMALL = STRConfig(gru_hidden=32, integration_dim=16, integration_hidden=16, regressor_hidden=128)
RECIPE = RECIPES["w3dpw"].replace(iterations=12, batch_size=10, lr=1e-3)


@pytest.fixture(scope="module")
def mini(tmp_path_factory, assets, smpl_files):
    root = tmp_path_factory.mktemp("train")
    body = Body.from_file(smpl_files["chumpy"], assets / "smpl_helpers" / "J_regressor_h36m.npy")
    extra = make_extra_regressor()
    attach_extra_regressor(body, extra)
    np.save(root / "J_regressor_extra.npy", extra)
    data = write_miniature(body, root / "data", videos=6, frames=32)
    mean = MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz")
    return {"root": root, "body": body, "data": data, "mean": mean, "extra": root / "J_regressor_extra.npy"}


def import_helpers(assets, mini):
    """The evaluation helpers into the (isolated) weights folder: what `evaluate` needs."""
    for path in (assets / "smpl_helpers" / "smpl_mean_params.npz", assets / "smpl_helpers" / "J_regressor_h36m.npy",
                 mini["extra"]):
        result = runner.invoke(app, ["weights", "import", str(path)])
        assert result.exit_code == 0, result.output


def trainer(mini, out, **changes):
    return Trainer(RECIPE.replace(**changes), mini["data"], out, mini["body"], torch.device("cpu"),
                   config=SMALL, mean_params=mini["mean"], seed=3)


def test_data_files_load_without_running_code(tmp_path):
    rows = {"vid_name": np.array(["a"] * 5), "features": np.arange(10.0).reshape(5, 2)}
    joblib.dump(rows, tmp_path / "plain.pt")
    joblib.dump(rows, tmp_path / "zipped.pt", compress=3)
    for name in ("plain.pt", "zipped.pt"):
        assert (load_db(tmp_path / name)["features"] == rows["features"]).all()

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    joblib.dump({"features": Payload()}, tmp_path / "evil.pt")
    # refused as every loader refuses a file that would run code: exit 4, not a data file's exit 2
    with pytest.raises(CorruptAssetError, match="refusing posix.system") as refused:
        load_db(tmp_path / "evil.pt")
    assert refused.value.exit_code == 4
    (tmp_path / "evil2.pt").write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(CorruptAssetError, match="refusing"):
        load_db(tmp_path / "evil2.pt")
    assert not (tmp_path / "pwned").exists()


def test_clips_stay_within_one_video_and_keypoints_are_crop_normalised(mini):
    names = np.array(["a"] * 20 + ["b"] * 10 + ["c"] * 17)
    assert clip_starts(names, 16, 1).tolist() == [0, 1, 2, 3, 4, 30, 31]
    assert clip_starts(names, 16, 16).tolist() == [0, 30]
    kp = np.array([[[100.0, 50.0, 1.0], [130.0, 50.0, 0.5], [100.0, 20.0, 1.0]]])
    out = normalise_keypoints(kp, np.array([[100.0, 50.0, 50.0, 50.0]]))
    # centre -> 0; the edge of the box enlarged by 1.2 -> 1
    assert np.allclose(out[0, :, :2], [[0, 0], [1, 0], [0, -1]]) and np.allclose(out[0, :, 2], [1, 0.5, 1])
    insta = ClipDataset("insta", mini["data"] / FILES[("insta", "train")])
    pw3d = ClipDataset("3dpw", mini["data"] / FILES[("3dpw", "train")])
    clip2d, clip3d = insta[0], pw3d[0]
    assert clip2d.features.shape == (16, 2048) and clip2d.kp2d.shape == (16, 49, 3)
    assert clip2d.w_3d.sum() == 0 and clip2d.w_smpl.sum() == 0 and clip3d.w_3d.all() and clip3d.w_smpl.all()
    assert (clip3d.kp2d[:, :25, 2] == 0).all() and (clip3d.kp2d[:, 25:39, 2] == 1).all()  # 3DPW: 14 joints
    with h5py.File(mini["data"] / FILES[("insta", "train")]) as f:
        assert f["vid_name"].dtype.kind == "S"


def test_each_data_sets_keypoint_layout_lands_on_the_same_spin_joints(mini, tmp_path):
    # The same generated videos written as PoseTrack (SPIN's 49, frame pixels), InstaVariety
    # (its 25, pixels of the 224 crop, no boxes) and PennAction (14 'common', no neck).
    paths = {name: write_set(mini["body"], tmp_path / f"{name}.{'h5' if name == 'insta' else 'pt'}", name, "train",
                             2, 20, seed=7) for name in ("posetrack", "insta", "pennaction")}
    clips = {name: ClipDataset(name, path)[1] for name, path in paths.items()}
    reference = clips["posetrack"].kp2d  # (16, 49, 3)
    for name in ("insta", "pennaction"):
        kp = clips[name].kp2d
        labelled = kp[0, :, 2] > 0
        assert int(labelled.sum()) == {"insta": 25, "pennaction": 13}[name]
        assert torch.allclose(kp[..., :2][:, labelled], reference[..., :2][:, labelled], atol=1e-4), name
        assert (kp[:, ~labelled, 2] == 0).all()  # unlabelled joints carry no weight
    assert float(reference[..., :2].abs().max()) == pytest.approx(1 / (1.1 * 1.2), rel=1e-4)  # box 1.1x, crop 1.2x
    # InstaVariety's big columns are read lazily, a slice at a time, and survive pickling (workers)
    db = load_db(paths["insta"])
    assert isinstance(db["features"], H5Column) and isinstance(db["vid_name"], np.ndarray)
    column = pickle.loads(pickle.dumps(db["features"]))
    assert column.shape == (40, 2048) and np.array_equal(column[3:5], db["features"][3:5])
    with pytest.raises(DataFileError, match="joints2D has 49 joints; insta files have 25"):
        ClipDataset("insta", paths["posetrack"])


def test_loss_is_zero_for_the_labels_and_masks_missing_ones(mini):
    clip = Clip.collate([ClipDataset("3dpw", mini["data"] / FILES[("3dpw", "train")])[k] for k in (0, 5)])
    rotmat = axis_angle_to_rotmat(clip.pose.reshape(2, 16, 24, 3))
    pred = SMPLPrediction(pose6d=torch.zeros(2, 16, 144), rotmat=rotmat, betas=clip.shape.clone(),
                          cam=torch.tensor([1.0, 0.0, 0.0]).expand(2, 16, 3))
    terms = STRLoss(mini["body"])(pred, clip)
    assert float(terms.kp3d) < 1e-8 and float(terms.pose) < 1e-10 and float(terms.shape) < 1e-10
    assert float(terms.kp2d) > 0
    wrong = SMPLPrediction(pose6d=pred.pose6d, rotmat=rotmat.flip(2), betas=pred.betas + 1, cam=pred.cam)
    masked = Clip(clip.features, clip.kp2d, clip.kp3d + 5, clip.pose, clip.shape, clip.w_3d * 0, clip.w_smpl * 0)
    terms = STRLoss(mini["body"])(wrong, masked)
    assert float(terms.kp3d) == 0 and float(terms.pose) == 0 and float(terms.shape) == 0
    assert float(STRLoss(mini["body"])(wrong, clip).shape) == pytest.approx(0.06, rel=1e-4)  # weight x 1^2


def test_training_lowers_the_loss_and_the_validation_error_and_resumes_identically(mini):
    run = trainer(mini, mini["root"] / "run")
    before = run.validate()
    records = run.fit(epochs=4)
    assert records[-1].loss["total"] < 0.6 * records[0].loss["total"]
    after = records[-1].val
    assert after.mpjpe < 0.75 * before.mpjpe and after.pa_mpjpe < before.pa_mpjpe
    best = min(records, key=lambda r: r.val.pa_mpjpe)
    model, checkpoint = load_model(mini["root"] / "run" / "best.pt")
    assert checkpoint.meta["epoch"] == best.epoch and checkpoint.meta["val_pa_mpjpe"] == pytest.approx(best.val.pa_mpjpe)
    log = (mini["root"] / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 5 and log[0].startswith("epoch,lr,loss")
    # resume: 2 epochs, stop, 2 more from last.pt == 4 straight
    half = trainer(mini, mini["root"] / "half")
    half.fit(epochs=2)
    resumed = trainer(mini, mini["root"] / "half")
    resumed.resume(mini["root"] / "half" / "last.pt")
    assert resumed.epoch == 2
    resumed.fit(epochs=4)
    for key, value in run.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_evaluate_prints_table_1_and_writes_json(mini, tmp_path, monkeypatch, assets, smpl_files):
    run = trainer(mini, tmp_path / "run")
    run.fit(epochs=1)
    monkeypatch.setenv("STRCLI_WEIGHTS_DIR", str(tmp_path / "weights"))
    import_helpers(assets, mini)
    result = runner.invoke(app, ["evaluate", "--data-dir", str(mini["data"]), "--checkpoint",
                                 str(tmp_path / "run" / "best.pt"), "--smpl-dir", str(smpl_files["chumpy"].parent),
                                 "--device", "cpu", "--offline", "-q"])
    assert result.exit_code == 0, result.output
    for title in ("3DPW", "MPI-INF-3DHP", "Human3.6M", "PA-MPJPE", "MPVPE"):
        assert title in result.stdout
    scores = json.loads((tmp_path / "run" / "best.eval.json").read_text())["datasets"]
    assert [s["dataset"] for s in scores] == ["3dpw", "mpii3d", "h36m"]
    expected = score_dataset(run.model, mini["body"], "3dpw", eval_videos("3dpw", mini["data"] / FILES[("3dpw", "test")]),
                             torch.device("cpu"))
    assert scores[0]["mpjpe"] == pytest.approx(expected.mpjpe, rel=1e-4) and scores[0]["mpvpe"] is not None
    assert scores[1]["mpvpe"] is None and scores[1]["frames"] > 0
    bad = runner.invoke(app, ["evaluate", "--data-dir", str(tmp_path), "--checkpoint", str(tmp_path / "run" / "best.pt"),
                              "--smpl-dir", str(smpl_files["chumpy"].parent), "--device", "cpu", "--offline"])
    assert bad.exit_code == 2 and "no test data" in bad.output


def test_evaluate_ablation_trains_each_variant_and_prints_table_2(mini, tmp_path, monkeypatch, assets, smpl_files):
    monkeypatch.setenv("STRCLI_WEIGHTS_DIR", str(tmp_path / "weights"))
    import_helpers(assets, mini)
    config = tmp_path / "small.json"
    config.write_text(json.dumps({"gru_hidden": 32, "integration_dim": 16, "integration_hidden": 16,
                                  "regressor_hidden": 128}))
    args = ["evaluate", "--data-dir", str(mini["data"]), "--ablation", "no_ttr,full,self_integration_only", "--runs-dir",
            str(tmp_path / "runs"), "--epochs", "1", "--iterations", "2", "--batch-size", "6", "--model-config",
            str(config), "--no-spin", "--workers", "0", "--smpl-dir", str(smpl_files["chumpy"].parent),
            "--device", "cpu", "--offline", "-q"]
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "Table 2" in result.stdout and "no_ttr" in result.stdout and "61.9" in result.stdout  # paper's value
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in ("no_ttr", "full", "self_integration_only"):  # whole, on one line, at 80 columns
        assert any(line.startswith(f"│ {name} ") for line in lines), name
    table = json.loads((tmp_path / "runs" / "table2.json").read_text())
    assert [v["variant"] for v in table["variants"]] == ["full", "no_ttr", "self_integration_only"]  # Table 2's order
    for row in table["variants"]:
        model, checkpoint = load_model(row["checkpoint"])
        assert checkpoint.config.ablation == row["variant"].replace("self_integration_only", "no_cross_integration")
        assert checkpoint.meta["recipe"] == "wo3dpw" and checkpoint.meta["precision"] == "fp32"
        assert model.config.use_ttr == (row["variant"] != "no_ttr")
        assert model.config.use_cross_integration == (row["variant"] != "self_integration_only")
        expected = score_dataset(model, mini["body"], "mpii3d",
                                 eval_videos("mpii3d", mini["data"] / FILES[("mpii3d", "val")]), torch.device("cpu"))
        assert row["pa_mpjpe"] == pytest.approx(expected.pa_mpjpe, rel=1e-4) and row["frames"] > 0
    # a rerun reuses the finished runs: nothing is trained again
    stamp = (tmp_path / "runs" / "wo3dpw-full" / "last.pt").stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and (tmp_path / "runs" / "wo3dpw-full" / "last.pt").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "runs" / "table2.json").read_text()) == table
    bad = runner.invoke(app, ["evaluate", "--data-dir", str(mini["data"]), "--ablation", "no_gru", "--offline"])
    assert bad.exit_code == 2 and "unknown variant no_gru" in bad.output
    bad = runner.invoke(app, ["train", "--data-dir", str(mini["data"]), "--datasets-2d", "coco", "--offline"])
    assert bad.exit_code == 2 and "unknown 2D data set coco" in bad.output


DDP_SCRIPT = """
import sys, torch
from pathlib import Path
from strcli.body.smpl import Body
from strcli.model.config import STRConfig
from strcli.model.regressor import MeanParams
from strcli.train.trainer import RECIPES, Trainer
smpl, regressor, mean, data, out = sys.argv[1:6]
body = Body.from_file(smpl, regressor)
config = STRConfig(gru_hidden=32, integration_dim=16, integration_hidden=16, regressor_hidden=128)
run = Trainer(RECIPES["w3dpw"].replace(iterations=3, batch_size=8, lr=1e-3), Path(data), Path(out), body,
              torch.device("cpu"), config=config, mean_params=MeanParams.from_npz(mean))
run.fit(epochs=1)
Path(out).mkdir(parents=True, exist_ok=True)  # process 1 may get here before process 0 made it
torch.save({k: v for k, v in run.model.state_dict().items()}, Path(out) / f"rank{run.rank}.pt")
run.close()
"""


def test_torchrun_trains_with_distributed_data_parallel(mini, tmp_path, assets, smpl_files):
    import subprocess
    import sys

    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "ddp"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
                             str(smpl_files["chumpy"]), str(assets / "smpl_helpers" / "J_regressor_h36m.npy"),
                             str(assets / "smpl_helpers" / "smpl_mean_params.npz"), str(mini["data"]), str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    start = Trainer(RECIPES["w3dpw"], mini["data"], tmp_path / "x", mini["body"], torch.device("cpu"),
                    config=SMALL, mean_params=mini["mean"]).model.state_dict()
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])  # the processes stay in step
    assert any(not torch.equal(ranks[0][k], start[k]) for k in ranks[0])  # and they did learn
    assert (out / "best.pt").is_file() and len((out / "log.csv").read_text().splitlines()) == 2


def test_tcmr_training_windows_are_cut_to_full_blocks_with_edge_copies(mini):
    """TCMR's split_into_chunks(is_train=True): stride-1 windows up to the last full 16-frame
    block, 8 copies of the first window before them and 7 of the last after them."""
    names = np.array(["a"] * 20 + ["b"] * 10 + ["c"] * 35)
    assert train_clip_starts(names, 16, 1).tolist() == [0] * 16 + [30] * 8 + list(range(30, 47)) + [46] * 7
    assert train_clip_starts(names, 16, 16).tolist() == [0, 30, 46]  # back to back: no copies
    path = mini["data"] / FILES[("3dpw", "train")]
    pw3d, db = ClipDataset("3dpw", path), load_db(path)
    assert len(pw3d) == 6 * 32  # 16 * (32 // 16) windows a video
    first_rows = [0] * 8 + list(range(17)) + [16] * 7  # video 0 (rows 0..31)
    for k, first in enumerate(first_rows):
        assert torch.equal(pw3d[k].features, torch.from_numpy(np.array(db["features"][first:first + 16]))), k
    assert torch.equal(pw3d[32].features, torch.from_numpy(np.array(db["features"][32:48])))  # video 1


def test_wo3dpw_windows_are_back_to_back(mini):
    """TCMR's own w/o 3DPW config, configs/repr_table6_mpii3d_model.yaml in TCMR_RELEASE's
    first commit (f2fb3eb, 26 April 2021), sets TRAIN.OVERLAP: false: 16-frame windows back
    to back. Its w/ 3DPW config (repr_table4_3dpw_model.yaml) sets it true: stride 1."""
    from strcli.train.trainer import build_datasets

    wo, w = RECIPES["wo3dpw"], RECIPES["w3dpw"]
    assert (wo.overlap, wo.stride, w.overlap, w.stride) == (False, 16, True, 1)
    assert (wo.datasets_2d, wo.datasets_3d, wo.occlusion, wo.epochs) == (("insta", "posetrack"), ("mpii3d", "h36m"),
                                                                         False, 30)
    names = np.array(["a"] * 48)
    assert train_clip_starts(names, 16, wo.stride).tolist() == [0, 16, 32]  # a 48-frame sequence: 3 windows
    assert len(train_clip_starts(names, 16, w.stride)) == 48
    _, data_3d = build_datasets(wo, mini["data"])
    mpii3d = {d.name: d for d in data_3d.datasets}["mpii3d"]
    db = load_db(mini["data"] / FILES[("mpii3d", "train")])
    assert len(mpii3d) == 6 * 2  # six 32-frame videos, two windows each
    for k in range(len(mpii3d)):
        assert torch.equal(mpii3d[k].features, torch.from_numpy(np.array(db["features"][16 * k:16 * k + 16]))), k


def test_a_run_of_the_old_wo3dpw_windows_is_not_resumed(mini, tmp_path):
    """A wo3dpw run made with stride-1 windows (strcli before issue 24) is refused, with the
    field named, rather than continued or reused by `evaluate --ablation`."""
    from strcli.model.checkpoints import save_file
    from strcli.utils.errors import UsageError

    run = Trainer(RECIPES["wo3dpw"].replace(iterations=1, batch_size=4), mini["data"], tmp_path / "run", mini["body"],
                  torch.device("cpu"), config=SMALL, mean_params=mini["mean"])
    state = run.state()
    save_file(state, tmp_path / "same.pt")
    run.resume(tmp_path / "same.pt")  # the same recipe resumes
    state["recipe"]["overlap"] = True
    save_file(state, tmp_path / "old.pt")
    with pytest.raises(UsageError, match=r"overlap True \(now False\)"):
        run.resume(tmp_path / "old.pt")
    # A model config of an older strcli (a field it did not have yet) is refused naming the field.
    state["recipe"]["overlap"] = False
    del state["config"]["integration_input"]
    save_file(state, tmp_path / "older.pt")
    with pytest.raises(UsageError, match=r"another model config or --ablation: integration_input absent") as info:
        run.resume(tmp_path / "older.pt")
    assert "train it again" in info.value.hint
    run.close()


def test_human36m_smpl_labels_are_off_by_default_in_both_recipes(mini):
    from strcli.train.trainer import build_datasets

    for recipe in ("w3dpw", "wo3dpw"):
        for flag in (False, True):
            _, data_3d = build_datasets(RECIPES[recipe].replace(h36m_smpl=flag), mini["data"])
            sets = {d.name: d for d in data_3d.datasets}
            clip = sets["h36m"][3]
            assert float(clip.w_smpl.sum()) == (16.0 if flag else 0.0), (recipe, flag)
            assert (float(clip.pose.abs().sum()) > 0) == flag and float(clip.w_3d.sum()) == 16.0
            if "3dpw" in sets:
                assert float(sets["3dpw"][0].w_smpl.sum()) == 16.0  # 3DPW's SMPL labels stay on
    assert not RECIPES["w3dpw"].h36m_smpl and not RECIPES["wo3dpw"].h36m_smpl


def test_w3dpw_prefers_the_occlusion_augmented_files(mini, tmp_path):
    from strcli.train.trainer import build_datasets

    data = tmp_path / "data"
    data.mkdir()
    for file in mini["data"].iterdir():
        (data / file.name).symlink_to(file)
    occ = joblib.load(mini["data"] / FILES[("3dpw", "train")])
    occ["features"] = occ["features"] + 1.0  # tell them apart
    joblib.dump(occ, data / OCC_FILES["3dpw"])
    notes: list[str] = []
    _, data_3d = build_datasets(RECIPES["w3dpw"], data, notes)
    assert {d.name: d.path.name for d in data_3d.datasets} == {
        "3dpw": "3dpw_train_occ_db.pt", "mpii3d": "mpii3d_train_scale12_db.pt", "h36m": "h36m_train_25fps_db.pt"}
    assert torch.equal(data_3d.datasets[0][0].features, torch.from_numpy(occ["features"][:16]))
    assert len(notes) == 2 and "mpii3d_train_scale12_occ_db.pt" in notes[0] and "h36m_train_25fps_occ_db.pt" in notes[1]
    assert all("training on" in n for n in notes)
    notes = []
    _, data_3d = build_datasets(RECIPES["wo3dpw"], data, notes)  # TCMR's w/o 3DPW recipe reads plain files
    assert notes == [] and {d.path.name for d in data_3d.datasets} == {"mpii3d_train_scale12_db.pt",
                                                                        "h36m_train_25fps_db.pt"}


def test_the_nine_extra_joints_come_from_j_regressor_extra(mini, assets, smpl_files):
    from strcli.train.joints import extra_regressor, spin49

    body = mini["body"]
    picked = [100, 900, 1700, 2500, 3300, 4100, 4900, 5700, 6500]
    known = np.zeros((9, 6890), np.float32)
    known[np.arange(9), picked] = 1.0  # each extra joint is one known vertex
    pose = torch.from_numpy(np.random.default_rng(0).normal(0, 0.3, (4, 24, 3))).float()
    rotmat = axis_angle_to_rotmat(pose)
    out = body.rotmat(rotmat[:, :1], rotmat[:, 1:], torch.zeros(4, 10))
    joints = spin49(out, torch.from_numpy(known))
    extra_slots = [27, 28, 37, 38, 39, 40, 41, 42, 43]  # rhip, lhip, neck, headtop, pelvis, thorax, spine, jaw, head
    assert torch.allclose(joints[:, extra_slots], out.vertices[:, picked], atol=1e-6)
    assert torch.equal(joints[:, 33], out.joints_smplx[:, 17])  # right shoulder: SMPL's own joint
    assert extra_regressor(body) is not None
    # the training loss uses the regressor registered on the body: labels made with it give
    # a zero 3D loss, and a body without it (the fallback) does not
    clip = Clip.collate([ClipDataset("3dpw", mini["data"] / FILES[("3dpw", "train")])[k] for k in (0, 40)])
    rotmat = axis_angle_to_rotmat(clip.pose.reshape(2, 16, 24, 3))
    pred = SMPLPrediction(pose6d=torch.zeros(2, 16, 144), rotmat=rotmat, betas=clip.shape.clone(),
                          cam=torch.tensor([1.0, 0.0, 0.0]).expand(2, 16, 3))
    assert float(STRLoss(body)(pred, clip).kp3d) < 1e-8
    bare = Body.from_file(smpl_files["chumpy"], assets / "smpl_helpers" / "J_regressor_h36m.npy")
    assert extra_regressor(bare) is None and float(STRLoss(bare)(pred, clip).kp3d) > 1e-4


def test_missing_j_regressors_are_exit_5_when_the_download_fails_or_with_offline_a_warning(
        mini, tmp_path, monkeypatch, assets, smpl_files):
    """Both regressors come from SPIN's data.tar.gz: a failed download of either is exit 5
    (the README's "a download failed"; J_regressor_extra's was 3, J_regressor_h36m's 5)."""
    from strcli.utils.errors import DownloadError
    from strcli.weights.registry import manifest_path

    run = trainer(mini, tmp_path / "run")
    from strcli.model.checkpoints import save_checkpoint

    save_checkpoint(tmp_path / "str.pt", run.model)
    unreachable = manifest_path().read_text().replace(
        'urls = ["http://visiondata.cis.upenn.edu/spin/data.tar.gz"]', 'urls = ["http://127.0.0.1:9/data.tar.gz"]')
    assert unreachable.count("127.0.0.1:9") == 3  # mean params, both regressors
    (tmp_path / "manifest.toml").write_text(unreachable)
    monkeypatch.setenv("STRCLI_MANIFEST", str(tmp_path / "manifest.toml"))
    args = ["evaluate", "--data-dir", str(mini["data"]), "--checkpoint", str(tmp_path / "str.pt"), "--datasets",
            "mpii3d", "--smpl-dir", str(smpl_files["chumpy"].parent), "--device", "cpu", "-q"]
    no_h36m = runner.invoke(app, args)
    assert no_h36m.exit_code == DownloadError.exit_code == 5, no_h36m.output
    assert "J_regressor_h36m.npy" in no_h36m.output and "weights import" in no_h36m.output
    for name in ("smpl_mean_params.npz", "J_regressor_h36m.npy"):
        assert runner.invoke(app, ["weights", "import", str(assets / "smpl_helpers" / name)]).exit_code == 0
    missing = runner.invoke(app, args)
    assert missing.exit_code == 5, missing.output
    assert "J_regressor_extra.npy" in missing.output and "weights import" in missing.output
    assert "--offline" in missing.output
    offline = runner.invoke(app, args + ["--offline", "--json-out", str(tmp_path / "fallback.json")])
    assert offline.exit_code == 0, offline.output
    assert "warning: SPIN's J_regressor_extra.npy is missing" in offline.output
    # the fallback is the Human3.6M regressor: the same numbers as a body without the extra regressor
    bare = Body.from_file(smpl_files["chumpy"], assets / "smpl_helpers" / "J_regressor_h36m.npy")
    expected = score_dataset(run.model, bare, "mpii3d", eval_videos("mpii3d", mini["data"] / FILES[("mpii3d", "val")]),
                             torch.device("cpu"))
    got = json.loads((tmp_path / "fallback.json").read_text())["datasets"][0]
    assert got["mpjpe"] == pytest.approx(expected.mpjpe, abs=1e-4)
    with_extra = score_dataset(run.model, mini["body"], "mpii3d",
                               eval_videos("mpii3d", mini["data"] / FILES[("mpii3d", "val")]), torch.device("cpu"))
    assert abs(with_extra.mpjpe - expected.mpjpe) > 1e-3  # the regressor changes the MPI-INF-3DHP joints


def test_precision_is_fp32_or_bf16(mini, tmp_path, assets, smpl_files):
    import_helpers(assets, mini)
    config = tmp_path / "small.json"
    config.write_text(json.dumps({"gru_hidden": 32, "integration_dim": 16, "integration_hidden": 16,
                                  "regressor_hidden": 128}))
    train = ["train", "--data-dir", str(mini["data"]), "--out", str(tmp_path / "run"), "--epochs", "1",
             "--iterations", "1", "--batch-size", "4", "--model-config", str(config), "--no-spin", "--workers", "0",
             "--smpl-dir", str(smpl_files["chumpy"].parent), "--device", "cpu", "--offline", "-q"]
    bad = runner.invoke(app, train + ["--precision", "fp16"])
    assert bad.exit_code == 2 and "--precision 'fp16': choose fp32 or bf16" in bad.output
    default = runner.invoke(app, train + ["--out", str(tmp_path / "default")])
    assert default.exit_code == 0, default.output  # one default for train and evaluate --ablation: fp32
    assert torch.load(tmp_path / "default" / "last.pt", weights_only=False)["precision"] == "fp32"
    assert load_model(tmp_path / "default" / "best.pt")[1].meta["precision"] == "fp32"
    good = runner.invoke(app, train + ["--precision", "bf16", "--h36m-smpl"])
    assert good.exit_code == 0, good.output
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["precision"] == "bf16"
    assert "3dpw_train_occ_db.pt (occlusion-augmented" in good.output  # the note: plain files used
    assert "3dpw_train_occ_db.pt" in (tmp_path / "run" / "notes.txt").read_text()
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["recipe"]["h36m_smpl"] is True and state["recipe"]["occlusion"] is True
    evaluate = ["evaluate", "--data-dir", str(mini["data"]), "--checkpoint", str(tmp_path / "run" / "best.pt"),
                "--datasets", "3dpw", "--smpl-dir", str(smpl_files["chumpy"].parent), "--device", "cpu", "--offline",
                "-q"]
    bad = runner.invoke(app, evaluate + ["--precision", "half"])
    assert bad.exit_code == 2 and "choose fp32 or bf16" in bad.output
    model, _ = load_model(tmp_path / "run" / "best.pt")
    videos = eval_videos("3dpw", mini["data"] / FILES[("3dpw", "test")])
    for precision in ("fp32", "bf16"):
        flags = [] if precision == "fp32" else ["--precision", "bf16"]  # fp32 is evaluate's default
        out = tmp_path / f"{precision}.json"
        result = runner.invoke(app, evaluate + flags + ["--json-out", str(out)])
        assert result.exit_code == 0, result.output
        expected = score_dataset(model, mini["body"], "3dpw", videos, torch.device("cpu"), precision=precision)
        assert json.loads(out.read_text())["datasets"][0]["mpjpe"] == pytest.approx(expected.mpjpe, abs=1e-4)
    fp32 = score_dataset(model, mini["body"], "3dpw", videos, torch.device("cpu"))
    bf16 = score_dataset(model, mini["body"], "3dpw", videos, torch.device("cpu"), precision="bf16")
    assert fp32.mpjpe != bf16.mpjpe  # bf16 really ran in bfloat16


def test_a_score_of_exactly_zero_stays_zero(mini):
    """A static body predicted as static has an acceleration error of exactly 0.0: a score,
    not a missing value (it used to come out as NaN)."""
    from strcli.train.data import EvalVideo

    class Still(torch.nn.Module):  # every frame: the same pose
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, clips):
            b, t, _ = clips.shape
            return SMPLPrediction(pose6d=torch.zeros(b, t, 144), rotmat=torch.eye(3).expand(b, t, 24, 3, 3),
                                  betas=torch.zeros(b, t, 10), cam=torch.ones(b, t, 3))

    target = np.random.default_rng(0).normal(0, 0.3, (1, 14, 3)).repeat(20, 0).astype(np.float32)
    video = EvalVideo("still", torch.zeros(20, 8), target, None, None, np.ones(20, bool))
    score = score_dataset(Still(), mini["body"], "3dpw", [video], torch.device("cpu"))
    assert score.accel == 0.0 and score.mpjpe > 0 and score.frames == 20


def small_train_args(mini, tmp_path, smpl_files, out, *more):
    config = tmp_path / "small.json"
    config.write_text(json.dumps({"gru_hidden": 32, "integration_dim": 16, "integration_hidden": 16,
                                  "regressor_hidden": 128}))
    return ["train", "--data-dir", str(mini["data"]), "--out", str(out), "--iterations", "2", "--batch-size", "4",
            "--model-config", str(config), "--no-spin", "--workers", "0", "--smpl-dir",
            str(smpl_files["chumpy"].parent), "--device", "cpu", "--offline", "-q", *more]


def test_a_diverging_run_stops_with_one_line_and_keeps_the_good_epochs(mini, tmp_path, assets, smpl_files):
    """--lr 1 or 1e30 used to end in a LinAlgError traceback from validation (exit 1). Now a
    NaN loss, or NaN predictions in validation, stop the run with one line (exit 10); the
    epochs before keep their last.pt and best.pt, untouched, and --resume --lr goes on."""
    from strcli.utils.errors import DivergedError

    import_helpers(assets, mini)
    fresh = runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, tmp_path / "lr1", "--epochs", "1",
                                                "--lr", "1"))
    assert fresh.exit_code == DivergedError.exit_code == 10, fresh.output
    error = fresh.stderr.strip().splitlines()[-1]
    assert error == ("error: training diverged at epoch 1, iteration 2 (the loss is nan); the learning rate is 1. "
                     "Nothing was saved (no epoch finished). Run again with a lower --lr, e.g. --lr 0.1.")
    assert "Traceback" not in fresh.output and not (tmp_path / "lr1").exists()

    out = tmp_path / "run"
    good = runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, out, "--epochs", "1", "--lr", "1e-3"))
    assert good.exit_code == 0, good.output
    kept = {name: (out / name).read_bytes() for name in ("last.pt", "best.pt", "log.csv")}
    for lr, where in (("1e30", "validation (the network predicts NaN or infinite joints for 3DPW sequence "),
                      ("1", "iteration 2 (the loss is nan)")):
        iterations = "1" if lr == "1e30" else "2"  # 1: its weights are still finite, its predictions not
        bad = runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, out, "--epochs", "2", "--resume",
                                                  "--lr", lr, "--iterations", iterations))
        assert bad.exit_code == 10, bad.output
        error = bad.stderr.strip().splitlines()[-1]
        assert error.startswith(f"error: training diverged at epoch 2, {where}") and "Traceback" not in bad.output
        assert error.endswith(f"{out / 'last.pt'} (epoch 1) and {out / 'best.pt'} are kept. Resume from the last "
                              f"good epoch with a lower learning rate: --resume --lr {float(lr) / 10:g}; or start "
                              "again in another --out with a lower --lr.")
        assert {name: (out / name).read_bytes() for name in kept} == kept  # nothing of the bad epoch written
    resumed = runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, out, "--epochs", "2", "--resume",
                                                  "--lr", "2e-4"))
    assert resumed.exit_code == 0, resumed.output
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["epoch"] == 2 and state["optimizer"]["param_groups"][0]["lr"] == 2e-4  # --lr took effect


def test_validation_of_a_network_predicting_nan_is_divergence_and_evaluate_names_the_checkpoint(
        mini, tmp_path, assets, smpl_files):
    from strcli.model.checkpoints import save_checkpoint
    from strcli.utils.errors import DivergedError

    run = trainer(mini, tmp_path / "run")
    with torch.no_grad():  # finite weights, overflowing predictions
        for parameter in run.model.parameters():
            parameter.mul_(1e30)
    with pytest.raises(DivergedError, match="training diverged at epoch 1, validation \\(the network predicts NaN "
                                            "or infinite joints for 3DPW sequence .*Nothing was saved"):
        run.validate()
    save_checkpoint(tmp_path / "huge.pt", run.model, {})
    import_helpers(assets, mini)
    result = runner.invoke(app, ["evaluate", "--data-dir", str(mini["data"]), "--checkpoint", str(tmp_path / "huge.pt"),
                                 "--datasets", "3dpw", "--smpl-dir", str(smpl_files["chumpy"].parent), "--device",
                                 "cpu", "--offline", "-q"])
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith(f"error: {tmp_path / 'huge.pt'} is not a usable network: the network predicts "
                                    "NaN or infinite joints for 3DPW sequence ")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "huge.eval.json").exists()


def test_test_data_holding_nan_is_refused_as_a_damaged_data_file(mini, tmp_path):
    """Else its NaN reaches the metrics and the network would be blamed."""
    for column in ("features", "joints3D", "pose", "shape"):
        db = joblib.load(mini["data"] / FILES[("3dpw", "test")])
        db[column] = np.array(db[column], np.float64)
        db[column][40, 0] = np.inf if column == "pose" else np.nan
        path = tmp_path / f"{column}.pt"
        joblib.dump(db, path)
        with pytest.raises(DataFileError, match=f"{path}: {column} of sequence .* holds NaN or infinite values"):
            eval_videos("3dpw", path)


def test_train_interrupted_or_resumed_with_nothing_to_resume_says_what_to_do(mini, tmp_path, assets, smpl_files,
                                                                               monkeypatch):
    """The Ctrl-C line was reconstruct's (finished videos are skipped, downloads resume), and
    --resume of a run folder without last.pt said `checkpoint .../last.pt does not exist`
    (exit 3)."""
    import_helpers(assets, mini)
    out = tmp_path / "run"
    nothing = runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, out, "--epochs", "1", "--resume"))
    assert nothing.exit_code == 2, nothing.output
    assert nothing.stderr == f"error: nothing to resume in {out}: no such run folder. Run the command without --resume.\n"
    out.mkdir()
    nothing = runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, out, "--epochs", "1", "--resume"))
    assert nothing.exit_code == 2 and nothing.stderr == (
        f"error: nothing to resume in {out}: it holds no last.pt, so no epoch finished. Run the command without "
        "--resume.\n")

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    real_fit = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", interrupted)
    stopped = runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, out, "--epochs", "1"))
    assert stopped.exit_code == 130
    assert stopped.stderr.strip().splitlines()[-1] == ("error: interrupted (Ctrl-C); nothing was saved (no epoch "
                                                       "finished); run the same command again, without --resume.")
    monkeypatch.setattr(Trainer, "fit", real_fit)
    assert runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, out, "--epochs", "1")).exit_code == 0
    monkeypatch.setattr(Trainer, "fit", interrupted)
    stopped = runner.invoke(app, small_train_args(mini, tmp_path, smpl_files, out, "--epochs", "2", "--resume"))
    assert stopped.exit_code == 130 and stopped.stderr.strip().splitlines()[-1] == (
        f"error: interrupted (Ctrl-C); the epochs that finished are kept in {out} (last.pt and best.pt), the one in "
        "progress is lost; rerun the same command with --resume to go on from the last finished epoch.")


def test_resuming_a_damaged_last_pt_names_it_as_the_runs_and_says_what_to_do(mini, tmp_path):
    run = trainer(mini, tmp_path / "run")
    run.fit(epochs=1)
    last = tmp_path / "run" / "last.pt"
    whole = last.read_bytes()
    last.write_bytes(whole[:len(whole) // 2])
    fresh = f"to train, move {tmp_path / 'run'} away and start the run again (without --resume)."
    with pytest.raises(CorruptAssetError) as refused:
        trainer(mini, tmp_path / "run").resume(last)
    assert str(refused.value) == (f"cannot resume the run in {tmp_path / 'run'}: its last.pt is not a PyTorch "
                                  "checkpoint (or it is truncated). Its best.pt is separate: "
                                  f"use it with --checkpoint {tmp_path / 'run' / 'best.pt'} (reconstruct, evaluate); "
                                  f"{fresh}")
    (tmp_path / "run" / "best.pt").unlink()
    with pytest.raises(CorruptAssetError, match="its last.pt is not a PyTorch .* To train, move .* away and start "):
        trainer(mini, tmp_path / "run").resume(last)
    torch.save({"format": "something else"}, last)
    with pytest.raises(CorruptAssetError, match=r"its last.pt is not a strcli training state \(last.pt of `strcli train`\)\. To train"):
        trainer(mini, tmp_path / "run").resume(last)
    assert CorruptAssetError.exit_code == 4
