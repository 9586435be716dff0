"""Scoring STR the way Table 1 does (TCMR's evaluation protocol).

Every frame of every test video gets a prediction: the window of 16 frames centred on it
(frames t-8 .. t+7, indices clamped at the ends, so the edge frame repeats), of which the
prediction at position 8 is kept. Joints: the 14 LSP joints from the Human3.6M regressor
(3DPW, Human3.6M), pelvis = mean of the hips; MPI-INF-3DHP: its 17 test joints taken from
the 49 SPIN joints, pelvis = its 'hip' joint, and only frames marked valid count. MPVPE
(3DPW only): predicted vertices against the neutral SMPL posed with the true pose and
shape, both without translation. Errors are averaged over all frames of all videos.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from strcli.body import Body
from strcli.model.regressor import SMPLPrediction
from strcli.train import metrics
from strcli.train.data import FILES, SEQLEN, EvalVideo, eval_videos
from strcli.train.joints import SPIN_TO_MPII3D17, lsp14, spin49
from strcli.windows import window_outputs

# Table 1's columns, and the test file of each data set.
TEST_SETS = {"3dpw": FILES[("3dpw", "test")], "mpii3d": FILES[("mpii3d", "val")], "h36m": FILES[("h36m", "test")]}
DATASET_TITLES = {"3dpw": "3DPW", "mpii3d": "MPI-INF-3DHP", "h36m": "Human3.6M"}
# The paper's Table 1 rows for STR, for comparison in the README and the printed table.
PAPER_TABLE1 = {
    "w3dpw": {"3dpw": (85.2, 52.4, 101.2, 6.9), "mpii3d": (96.3, 63.1, None, 8.6), "h36m": (73.3, 51.9, None, 3.6)},
    "wo3dpw": {"3dpw": (91.5, 55.2, 108.7, 6.7), "mpii3d": (95.3, 61.6, None, 8.4), "h36m": (67.8, 46.6, None, 3.6)},
}


@dataclass(frozen=True)
class DatasetScore:
    dataset: str
    videos: int
    frames: int  # frames scored (MPJPE / PA-MPJPE)
    mpjpe: float  # mm
    pa_mpjpe: float
    mpvpe: float | None  # 3DPW only
    accel: float  # mm / frame^2


@torch.inference_mode()
def predict_frames(model: nn.Module, features: Tensor, device: torch.device, batch: int = 64,
                   seqlen: int = SEQLEN) -> SMPLPrediction:
    """One prediction per frame of a video (N, 2048): the centre of the window around it
    (STR, TCMR and VIBE alike: one protocol for every model of the table)."""
    n = len(features)
    centre = seqlen // 2
    index = (torch.arange(n)[:, None] + torch.arange(-centre, seqlen - centre)[None, :]).clamp(0, n - 1)
    pose6d, rotmats, betas, cams = [], [], [], []
    for start in range(0, n, batch):
        clip = features[index[start:start + batch]].to(device)  # (b, T, 2048)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = window_outputs(model, clip)  # (b, T, ...)
        pose6d.append(pred.pose6d[:, centre].float())
        rotmats.append(pred.rotmat[:, centre].float())
        betas.append(pred.betas[:, centre].float())
        cams.append(pred.cam[:, centre].float())
    return SMPLPrediction(pose6d=torch.cat(pose6d), rotmat=torch.cat(rotmats), betas=torch.cat(betas),
                          cam=torch.cat(cams))


@torch.inference_mode()
def score_dataset(model: nn.Module, body: Body, name: str, videos: list[EvalVideo], device: torch.device,
                  progress: Callable[[int, int], None] | None = None) -> DatasetScore:
    """Table 1's numbers for one test set."""
    model.eval()
    per_frame: dict[str, list[Tensor]] = {"mpjpe": [], "pa_mpjpe": [], "mpvpe": [], "accel": []}
    frames = 0
    for k, video in enumerate(videos):
        pred = predict_frames(model, video.features, device)
        out = body.rotmat(pred.rotmat[:, :1], pred.rotmat[:, 1:], pred.betas)
        if name == "mpii3d":
            joints, pelvis = spin49(out)[:, list(SPIN_TO_MPII3D17)], metrics.MPII3D_PELVIS
        else:
            joints, pelvis = lsp14(out), metrics.LSP_PELVIS
        joints = joints.float().cpu()
        target = torch.from_numpy(video.joints3d).float()
        valid = video.valid
        per_frame["mpjpe"].append(metrics.mpjpe(joints, target, pelvis)[valid])
        per_frame["pa_mpjpe"].append(metrics.pa_mpjpe(metrics.align_pelvis(joints, pelvis),
                                                      metrics.align_pelvis(target, pelvis))[valid])
        if len(joints) >= 3:
            per_frame["accel"].append(metrics.accel_error(joints, target, pelvis, visible=valid))
        if video.pose is not None and video.shape is not None:
            pose = torch.from_numpy(video.pose).to(device)
            true = body.axis_angle(pose[:, :3], pose[:, 3:], torch.from_numpy(video.shape).to(device)).vertices
            per_frame["mpvpe"].append(metrics.mpvpe(out.vertices.float(), true.float()).cpu()[valid])
        frames += int(valid.sum())
        if progress:
            progress(k + 1, len(videos))

    def mean(key: str) -> float | None:
        values = [v for v in per_frame[key] if len(v)]
        return float(torch.cat(values).mean()) if values else None

    nan = float("nan")
    return DatasetScore(name, len(videos), frames, mean("mpjpe") or nan, mean("pa_mpjpe") or nan,
                        mean("mpvpe"), mean("accel") or nan)


def find_test_sets(data_dir: Path) -> dict[str, Path]:
    """The Table 1 test files present in `data_dir`."""
    return {name: data_dir / file for name, file in TEST_SETS.items() if (data_dir / file).is_file()}


def evaluate(model: nn.Module, body: Body, data_dir: Path, device: torch.device, datasets: list[str] | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> list[DatasetScore]:
    from strcli.errors import UsageError

    found = find_test_sets(data_dir)
    wanted = datasets or list(found)
    missing = [d for d in wanted if d not in found]
    if missing or not wanted:
        names = ", ".join(TEST_SETS[d] for d in (missing or TEST_SETS))
        raise UsageError(f"no test data in {data_dir} (looked for {names}).",
                         "See README, 'Reproducing the paper', for where to get the files.")
    scores = []
    for name in wanted:
        videos = eval_videos(name, found[name])
        scores.append(score_dataset(model, body, name, videos, device,
                                    (lambda done, total, n=name: progress(n, done, total)) if progress else None))
    return scores


def scores_json(scores: list[DatasetScore], meta: dict) -> str:
    return json.dumps({"meta": meta, "datasets": [asdict(s) for s in scores]}, indent=2)


def table_rows(scores: list[DatasetScore]) -> list[tuple[str, str, str, str, str, str]]:
    """(data set, frames, MPJPE, PA-MPJPE, MPVPE, Accel) strings, Table 1's columns."""
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    return [(DATASET_TITLES[s.dataset], str(s.frames), fmt(s.mpjpe), fmt(s.pa_mpjpe), fmt(s.mpvpe), fmt(s.accel))
            for s in scores]
