"""`strcli evaluate` against a reference implementation of TCMR's evaluation protocol.

The reference below is written from the rules (TCMR's evaluate.py, split_into_chunks,
get_sequence, compute_error_accel, batch_compute_similarity_transform_torch, SPIN's
JOINT_MAP), independently of strcli's code path: its own window lists, its own joint
regression (numpy, from the regressors and smplx's joints), its own Procrustes, its own
averaging. Test files hold edge frames, rows marked invalid, sequences too short to score,
MPI-INF-3DHP frames that do not count, and a vid_name split in two runs.
"""

from collections import defaultdict

import joblib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from generated_dataset import make_extra_regressor, write_set
from strcli.body.smpl import Body
from strcli.model.checkpoints import save_checkpoint
from strcli.cli.main import app
from strcli.model.config import STRConfig
from strcli.model.regressor import MeanParams
from strcli.model.str import STR
from strcli.train.data import FILES
from strcli.train.joints import attach_extra_regressor

runner = CliRunner()
SMALL = STRConfig(gru_hidden=32, integration_dim=16, integration_hidden=16, regressor_hidden=128)

# Facts of the protocol, spelled out here rather than imported.
H36M_TO_J14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]
SPIN_TO_COMMON = list(range(25, 39))  # convert_kps(spin -> common)
SPIN_TO_MPII3D_TEST = [38, 37, 33, 32, 31, 34, 35, 36, 27, 26, 25, 28, 29, 30, 39, 41, 43]
# the 17 MPI-INF-3DHP test joints in SPIN's SMPL output: smplx joint i (< 45) or 45 + row of J_regressor_extra
MPII3D_TEST_FROM_SMPL = [45 + 3, 45 + 2, 17, 19, 21, 16, 18, 20, 45 + 0, 5, 8, 45 + 1, 4, 7, 45 + 4, 45 + 6, 45 + 8]


def reference_windows(n, seqlen=16):
    """split_into_chunks(is_train=False, stride 1) then get_sequence: frame lists per frame."""
    if n < seqlen:
        return []
    chunks = [(i, i + seqlen - 1) for i in range(n - seqlen + 1)]
    front = [(j, j) for j in range(seqlen // 2)]
    last = chunks[-1][0]
    back = [(last + seqlen // 2 + j + 1,) * 2 for j in range(int(seqlen / 2 + 0.5) - 1)]
    return [list(range(a, b + 1)) if a != b else [a] * seqlen for a, b in front + chunks + back]


def similarity_aligned(s1, s2):
    """(J, 3) s1 moved onto s2 by the best scale, rotation (no reflection) and translation."""
    x1, x2 = (s1 - s1.mean(0)).T, (s2 - s2.mean(0)).T
    k = x1 @ x2.T
    u, _, vh = np.linalg.svd(k)
    z = np.eye(3)
    z[-1, -1] = np.sign(np.linalg.det(u @ vh))
    r = vh.T @ z @ u.T
    scale = np.trace(r @ k) / (x1 ** 2).sum()
    return (scale * r @ x1).T + s2.mean(0)


def reference_scores(model, body, h36m, extra, name, path):
    db = joblib.load(path)
    names = db["vid_name"]
    results, frames, skipped = defaultdict(list), 0, [0, 0]
    for seq in np.unique(names):
        rows = names == seq
        if "valid" in db:
            rows = rows & db["valid"].astype(bool)
        feats = db["features"][rows]
        n = len(feats)
        windows = reference_windows(n)
        if not windows:
            skipped[0], skipped[1] = skipped[0] + 1, skipped[1] + n
            continue
        assert len(windows) == n
        rotmats, betas = [], []
        with torch.no_grad():
            for frame_list in windows:
                out = model(torch.from_numpy(feats[frame_list]).float()[None])  # (1, 16, ...)
                rotmats.append(out.rotmat[0, 8].double())
                betas.append(out.betas[0, 8].double())
            rotmat, beta = torch.stack(rotmats).float(), torch.stack(betas).float()
            smpl = body.smpl(global_orient=rotmat[:, :1], body_pose=rotmat[:, 1:], betas=beta, pose2rot=False)
        verts = smpl.vertices.double().numpy()
        target = db["joints3D"][rows].astype(np.float64)
        if name == "mpii3d":
            joints54 = np.concatenate([smpl.joints.double().numpy(), np.einsum("jv,nvc->njc", extra, verts)], 1)
            pred = joints54[:, MPII3D_TEST_FROM_SMPL]
            target = target[:, SPIN_TO_MPII3D_TEST]
            counted = np.flatnonzero(db["valid_i"][rows][:, 0])
            if counted.size == 0:
                continue
            pred = pred - pred[:, [14]]
            target = target - target[:, [14]]
        else:
            pred = np.einsum("jv,nvc->njc", h36m, verts)[:, H36M_TO_J14]
            if target.shape[1] == 49:
                target = target[:, SPIN_TO_COMMON]
            counted = np.arange(n)
            pred = pred - (pred[:, [2]] + pred[:, [3]]) / 2
            target = target - (target[:, [2]] + target[:, [3]]) / 2
        frames += len(counted)
        results["mpjpe"].append(np.linalg.norm(pred - target, axis=-1).mean(-1)[counted] * 1000)
        aligned = np.stack([similarity_aligned(p, t) for p, t in zip(pred, target)])
        results["pa_mpjpe"].append(np.linalg.norm(aligned - target, axis=-1).mean(-1)[counted] * 1000)
        accel = np.zeros(n)
        second = lambda x: x[:-2] - 2 * x[1:-1] + x[2:]  # noqa: E731
        accel[1:-1] = np.linalg.norm(second(pred) - second(target), axis=-1).mean(-1) * 1000
        accel_frames = counted[(counted != 0) & (counted != n - 1)]
        results["accel"].append(accel[accel_frames])
        if name == "3dpw":
            pose = torch.from_numpy(db["pose"][rows]).float()
            true = body.smpl(global_orient=pose[:, :3], body_pose=pose[:, 3:],
                             betas=torch.from_numpy(db["shape"][rows]).float(), pose2rot=True)
            results["mpvpe"].append(np.linalg.norm(verts - true.vertices.double().numpy(), axis=-1).mean(-1) * 1000)
    means = {key: float(np.mean(np.concatenate(values))) for key, values in results.items()}
    return means, frames, skipped


@pytest.fixture(scope="module")
def protocol_data(tmp_path_factory, assets, smpl_files):
    root = tmp_path_factory.mktemp("protocol")
    h36m = np.load(assets / "smpl_helpers" / "J_regressor_h36m.npy")
    extra = make_extra_regressor(seed=5)
    body = Body.from_file(smpl_files["chumpy"], assets / "smpl_helpers" / "J_regressor_h36m.npy")
    attach_extra_regressor(body, extra)
    np.save(root / "J_regressor_extra.npy", extra)
    data = root / "data"
    # 3DPW: 14 joints, SMPL labels, `valid`: 24 frames; 10 (too short); 40 with 2 invalid rows
    # (38 scored); 20 with 6 invalid (14 left: too short)
    path = write_set(body, data / FILES[("3dpw", "test")], "3dpw", "test", 4, [24, 10, 40, 20], seed=11)
    db = joblib.load(path)
    db["valid"][[34 + 5, 34 + 30]] = 0
    db["valid"][74 + np.array([0, 3, 9, 10, 11, 19])] = 0
    joblib.dump(db, path)
    # MPI-INF-3DHP as TCMR stores it: SPIN's 49 joints, `valid_i` (N, 1), no `valid`: 24 frames with
    # frames 0, 5 and 23 not counted; 12 (too short); 30 all counted; 18 none counted
    src = write_set(body, root / "mpii3d_train.pt", "mpii3d", "train", 4, [24, 12, 30, 18], seed=12)
    db = joblib.load(src)
    valid_i = np.ones((len(db["vid_name"]), 1), np.float32)
    valid_i[[0, 5, 23]] = 0
    valid_i[66:] = 0
    db = {k: v for k, v in db.items() if k not in ("valid", "pose", "shape")}
    db["valid_i"] = valid_i
    joblib.dump(db, data / FILES[("mpii3d", "val")])
    # Human3.6M as TCMR stores it: 49 joints; 20 frames, then a sequence split in two runs
    # of 9 and 8 rows (one 17-frame sequence, as np.unique groups it), then 15 (too short)
    src = write_set(body, root / "h36m_train.pt", "h36m", "train", 3, [20, 17, 15], seed=13)
    db = joblib.load(src)
    db = {k: v for k, v in db.items() if k not in ("pose", "shape")}
    order = np.concatenate([np.arange(20), np.arange(20, 29), np.arange(37, 52), np.arange(29, 37)])
    db = {k: v[order] for k, v in db.items()}
    joblib.dump(db, data / FILES[("h36m", "test")])
    torch.manual_seed(7)
    model = STR(SMALL, MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz")).eval()
    save_checkpoint(root / "str.pt", model)
    return {"root": root, "data": data, "body": body, "model": model, "h36m": h36m, "extra": extra}


def test_evaluate_gives_the_reference_protocols_numbers(protocol_data, assets, smpl_files):
    for path in (assets / "smpl_helpers" / "smpl_mean_params.npz", assets / "smpl_helpers" / "J_regressor_h36m.npy",
                 protocol_data["root"] / "J_regressor_extra.npy"):
        assert runner.invoke(app, ["weights", "import", str(path)]).exit_code == 0
    out = protocol_data["root"] / "scores.json"
    result = runner.invoke(app, ["evaluate", "--data-dir", str(protocol_data["data"]), "--checkpoint",
                                 str(protocol_data["root"] / "str.pt"), "--smpl-dir", str(smpl_files["chumpy"].parent),
                                 "--device", "cpu", "--offline", "-q", "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    import json

    scores = {s["dataset"]: s for s in json.loads(out.read_text())["datasets"]}
    expected_frames = {"3dpw": 24 + 38, "mpii3d": 21 + 30, "h36m": 20 + 17}
    expected_skipped = {"3dpw": (2, 10 + 14), "mpii3d": (1, 12), "h36m": (1, 15)}
    for name in ("3dpw", "mpii3d", "h36m"):
        reference, frames, skipped = reference_scores(protocol_data["model"], protocol_data["body"],
                                                      protocol_data["h36m"], protocol_data["extra"], name,
                                                      protocol_data["data"] / FILES[(name, "test" if name != "mpii3d"
                                                                                     else "val")])
        got = scores[name]
        assert frames == expected_frames[name] == got["frames"], name
        assert tuple(skipped) == expected_skipped[name] == (got["skipped_videos"], got["skipped_frames"]), name
        for key in ("mpjpe", "pa_mpjpe", "accel") + (("mpvpe",) if name == "3dpw" else ()):
            assert got[key] == pytest.approx(reference[key], abs=1e-4), (name, key)
        assert reference["accel"] > 0 and reference["mpjpe"] > 10
    assert scores["mpii3d"]["mpvpe"] is None
    assert "skipped 2 sequence(s), 24 frames" in result.output


def test_reference_windows_are_tcmrs_edge_rule():
    windows = reference_windows(24)
    assert [w == [t] * 16 for t, w in enumerate(windows)] == [True] * 8 + [False] * 9 + [True] * 7
    assert windows[8] == list(range(16)) and windows[16] == list(range(8, 24))
    assert reference_windows(15) == []
