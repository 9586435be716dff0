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

from generated_dataset import write_miniature, write_set
from strcli.body import Body
from strcli.checkpoints import load_model
from strcli.cli import app
from strcli.errors import CorruptAssetError
from strcli.model.config import STRConfig
from strcli.model.regressor import MeanParams, SMPLPrediction
from strcli.rotations import axis_angle_to_rotmat
from strcli.train.data import Clip, ClipDataset, FILES, H5Column, clip_starts, load_db, normalise_keypoints
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
    data = write_miniature(body, root / "data", videos=6, frames=32)
    mean = MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz")
    return {"root": root, "body": body, "data": data, "mean": mean}


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
    with pytest.raises(CorruptAssetError, match="refusing"):
        load_db(tmp_path / "evil.pt")
    (tmp_path / "evil2.pt").write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(CorruptAssetError):
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
    with pytest.raises(CorruptAssetError, match="joints2D has 49 joints; insta files have 25"):
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
    for name in ("smpl_mean_params.npz", "J_regressor_h36m.npy"):
        assert runner.invoke(app, ["weights", "import", str(assets / "smpl_helpers" / name)]).exit_code == 0
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
    for name in ("smpl_mean_params.npz", "J_regressor_h36m.npy"):
        assert runner.invoke(app, ["weights", "import", str(assets / "smpl_helpers" / name)]).exit_code == 0
    config = tmp_path / "small.json"
    config.write_text(json.dumps({"gru_hidden": 32, "integration_dim": 16, "integration_hidden": 16,
                                  "regressor_hidden": 128}))
    args = ["evaluate", "--data-dir", str(mini["data"]), "--ablation", "no_ttr,full", "--runs-dir",
            str(tmp_path / "runs"), "--epochs", "1", "--iterations", "2", "--batch-size", "6", "--model-config",
            str(config), "--no-spin", "--workers", "0", "--smpl-dir", str(smpl_files["chumpy"].parent),
            "--device", "cpu", "--offline", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Table 2" in result.stdout and "no_ttr" in result.stdout and "61.9" in result.stdout  # paper's value
    table = json.loads((tmp_path / "runs" / "table2.json").read_text())
    assert [v["variant"] for v in table["variants"]] == ["full", "no_ttr"]  # Table 2's order
    for row in table["variants"]:
        model, checkpoint = load_model(row["checkpoint"])
        assert checkpoint.config.ablation == row["variant"] and checkpoint.meta["recipe"] == "wo3dpw"
        assert model.config.use_ttr == (row["variant"] != "no_ttr")
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
from strcli.body import Body
from strcli.model.config import STRConfig
from strcli.model.regressor import MeanParams
from strcli.train.trainer import RECIPES, Trainer
smpl, regressor, mean, data, out = sys.argv[1:6]
body = Body.from_file(smpl, regressor)
config = STRConfig(gru_hidden=32, integration_dim=16, integration_hidden=16, regressor_hidden=128)
run = Trainer(RECIPES["w3dpw"].replace(iterations=3, batch_size=8, lr=1e-3), Path(data), Path(out), body,
              torch.device("cpu"), config=config, mean_params=MeanParams.from_npz(mean))
run.fit(epochs=1)
torch.save({k: v for k, v in run.model.state_dict().items()}, Path(out) / f"rank{run.rank}.pt")
run.close()
"""


def test_torchrun_trains_with_distributed_data_parallel(mini, tmp_path, assets, smpl_files):
    import subprocess
    import sys

    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "ddp"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
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
