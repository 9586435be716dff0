"""Scoring a model the way Table 1 does: TCMR's evaluation protocol, rule by rule.

Each rule's source is TCMR's evaluate.py (TCMR_RELEASE) unless another file is named.

- Sequences: the rows of each `vid_name`, less the rows whose `valid` is 0 (`eval_videos`).
  A sequence then shorter than 16 frames is skipped (`split_into_chunks` returns no chunk
  and evaluate.py `continue`s); `DatasetScore` counts the skipped sequences and frames.
- Windows: frame t is predicted from frames t-8 .. t+7, the prediction at position 8 being
  kept; the first 8 and the last 7 frames each get 16 copies of themselves instead
  (`split_into_chunks(..., is_train=False)` and `get_sequence`; `tcmr_window_index`). One
  rule for every model (STR, TCMR, VIBE).
- Joints: 3DPW and Human3.6M, the 14 LSP joints of the Human3.6M regressor
  (`H36M_TO_J14`), pelvis = mean of the two hips; MPI-INF-3DHP, its 17 test joints taken
  from SPIN's 49 (smplx's joints and SPIN's `J_regressor_extra`: `convert_kps(...,
  src='spin', dst='mpii3d_test')`), pelvis = its 'hip' joint (index -3 = 14).
- Frames that count: all, except on MPI-INF-3DHP where `valid_i` decides (a sequence with
  none is skipped). MPJPE and PA-MPJPE at the frames that count, over all joints of the set
  (MPI-INF-3DHP's pelvis, 0 after alignment, included in the mean).
- Accel: computed on the whole sequence (after the `valid` rows are dropped), at frames
  t = 1..n-2, and kept at the frames that count (their neighbours' validity does not
  matter): `accel_err[1:-1] = compute_error_accel(...)`, then indexed by `valid_map` less
  frames 0 and n-1.
- MPVPE (3DPW only): predicted vertices against the neutral SMPL posed with the true pose
  and shape, no translation, no alignment, at every frame of the sequence.
- Units and averages: metres x 1000 = mm (Accel: mm per frame^2); every metric is the
  mean over all counted frames of all sequences (per frame, not per sequence).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from strcli.body.smpl import Body
from strcli.model.regressor import SMPLPrediction
from strcli.train import metrics
from strcli.train.data import FILES, SEQLEN, EvalVideo, eval_videos
from strcli.train.joints import SPIN_TO_MPII3D17, extra_regressor, lsp14, spin49
from strcli.road.windows import tcmr_window_index, window_outputs
from strcli.utils.errors import NonFiniteError

# Table 1's columns, and the test file of each data set.
TEST_SETS = {"3dpw": FILES[("3dpw", "test")], "mpii3d": FILES[("mpii3d", "val")], "h36m": FILES[("h36m", "test")]}
DATASET_TITLES = {"3dpw": "3DPW", "mpii3d": "MPI-INF-3DHP", "h36m": "Human3.6M"}
# The paper's Table 1 rows for STR, for comparison in the README and the printed table.
PAPER_TABLE1 = {
    "w3dpw": {"3dpw": (85.2, 52.4, 101.2, 6.9), "mpii3d": (96.3, 63.1, None, 8.6), "h36m": (73.3, 51.9, None, 3.6)},
    "wo3dpw": {"3dpw": (91.5, 55.2, 108.7, 6.7), "mpii3d": (95.3, 61.6, None, 8.4), "h36m": (67.8, 46.6, None, 3.6)},
}
PRECISIONS = ("fp32", "bf16")


class NonFinitePredictions(NonFiniteError):
    """The model predicted NaN or infinite joints for a test sequence: `train` reports its
    run as diverged (exit 10), `evaluate` its checkpoint as unusable (exit 4)."""

    def __init__(self, dataset: str, video: str, frames: int, total: int) -> None:
        super().__init__(f"the network predicts NaN or infinite joints for {DATASET_TITLES.get(dataset, dataset)} "
                         f"sequence {video} ({frames} of {total} frames)",
                         "Its weights overflow (a diverged training run): score another checkpoint.")
        self.dataset, self.video = dataset, video


@dataclass(frozen=True)
class DatasetScore:
    dataset: str
    videos: int  # sequences scored
    frames: int  # frames scored (MPJPE / PA-MPJPE)
    mpjpe: float  # mm
    pa_mpjpe: float
    mpvpe: float | None  # 3DPW only
    accel: float  # mm / frame^2
    skipped_videos: int = 0  # sequences shorter than 16 frames after invalid rows were dropped
    skipped_frames: int = 0  # their frames


def check_precision(precision: str) -> str:
    """'fp32' or 'bf16' (autocast to bfloat16 on the model's device); else UsageError."""
    if precision not in PRECISIONS:
        from strcli.utils.errors import UsageError

        raise UsageError(f"--precision {precision!r}: choose fp32 or bf16.")
    return precision


@torch.inference_mode()
def predict_frames(model: nn.Module, features: Tensor, device: torch.device, batch: int = 64,
                   seqlen: int = SEQLEN, precision: str = "fp32") -> SMPLPrediction:
    """One prediction per frame of a video (N, 2048): position 8 of TCMR's window for that
    frame (`tcmr_window_index`: 16 copies of the frame in the first 8 and last 7), STR,
    TCMR and VIBE alike. `precision`: fp32, or bf16 autocast."""
    check_precision(precision)
    n = len(features)
    centre = seqlen // 2
    index = torch.from_numpy(tcmr_window_index(n, seqlen))  # (N, T)
    pose6d, rotmats, betas, cams = [], [], [], []
    for start in range(0, n, batch):
        clip = features[index[start:start + batch]].to(device)  # (b, T, 2048)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            pred = window_outputs(model, clip)  # (b, T, ...)
        pose6d.append(pred.pose6d[:, centre].float())
        rotmats.append(pred.rotmat[:, centre].float())
        betas.append(pred.betas[:, centre].float())
        cams.append(pred.cam[:, centre].float())
    return SMPLPrediction(pose6d=torch.cat(pose6d), rotmat=torch.cat(rotmats), betas=torch.cat(betas),
                          cam=torch.cat(cams))


@torch.inference_mode()
def score_dataset(model: nn.Module, body: Body, name: str, videos: list[EvalVideo], device: torch.device,
                  progress: Callable[[int, int], None] | None = None, precision: str = "fp32",
                  seqlen: int = SEQLEN) -> DatasetScore:
    """Table 1's numbers for one test set, by TCMR's rules (module docstring). The 9 extra
    joints of MPI-INF-3DHP come from the J_regressor_extra registered on `body`
    (`strcli.train.joints.attach_extra_regressor`), else from the documented fallback."""
    model.eval()
    per_frame: dict[str, list[Tensor]] = {"mpjpe": [], "pa_mpjpe": [], "mpvpe": [], "accel": []}
    frames = scored = skipped_videos = skipped_frames = 0
    extra = extra_regressor(body)
    for k, video in enumerate(videos):
        n = len(video.features)
        if n < seqlen:
            skipped_videos, skipped_frames = skipped_videos + 1, skipped_frames + n
        elif video.valid.any():
            scored += 1
            frames += int(video.valid.sum())
            _score_video(model, body, name, video, device, precision, seqlen, extra, per_frame)
        if progress:
            progress(k + 1, len(videos))

    def mean(key: str) -> float | None:
        values = [v for v in per_frame[key] if len(v)]
        return float(torch.cat(values).double().mean()) if values else None

    def number(key: str) -> float:
        value = mean(key)
        return math.nan if value is None else value  # 0.0 is a score, not a missing one

    return DatasetScore(name, scored, frames, number("mpjpe"), number("pa_mpjpe"), mean("mpvpe"), number("accel"),
                        skipped_videos, skipped_frames)


def _score_video(model: nn.Module, body: Body, name: str, video: EvalVideo, device: torch.device, precision: str,
                 seqlen: int, extra: Tensor | None, per_frame: dict[str, list[Tensor]]) -> None:
    pred = predict_frames(model, video.features, device, seqlen=seqlen, precision=precision)
    out = body.rotmat(pred.rotmat[:, :1], pred.rotmat[:, 1:], pred.betas)
    if name == "mpii3d":
        joints, pelvis = spin49(out, extra)[:, list(SPIN_TO_MPII3D17)], metrics.MPII3D_PELVIS
    else:
        joints, pelvis = lsp14(out), metrics.LSP_PELVIS
    joints = joints.float().cpu()
    bad = ~torch.isfinite(joints.flatten(1)).all(dim=1)
    if bad.any():  # before the metrics, which would refuse them without naming the sequence
        raise NonFinitePredictions(name, video.name, int(bad.sum()), len(bad))
    target = torch.from_numpy(video.joints3d).float()
    counted = np.asarray(video.valid, bool)
    per_frame["mpjpe"].append(metrics.mpjpe(joints, target, pelvis)[counted])
    per_frame["pa_mpjpe"].append(metrics.pa_mpjpe(metrics.align_pelvis(joints, pelvis),
                                                  metrics.align_pelvis(target, pelvis))[counted])
    per_frame["accel"].append(metrics.accel_error(joints, target, pelvis, counted=counted))
    if video.pose is not None and video.shape is not None:
        pose = torch.from_numpy(video.pose).to(device)  # (N, 72) axis-angle
        true = body.axis_angle(pose[:, :3], pose[:, 3:], torch.from_numpy(video.shape).to(device)).vertices
        per_frame["mpvpe"].append(metrics.mpvpe(out.vertices.float(), true.float()).cpu())


def find_test_sets(data_dir: Path) -> dict[str, Path]:
    """The Table 1 test files present in `data_dir`."""
    return {name: data_dir / file for name, file in TEST_SETS.items() if (data_dir / file).is_file()}


def test_data_problem(data_dir: Path, datasets: list[str] | None = None) -> str | None:
    """What is wrong with `data_dir` for scoring `datasets` (default: every test file
    found), in words, or None: a folder that does not exist or is a file, a named test file
    it lacks (all of them named), none of the test files at all, an empty one. Cheap: the
    file system only, so `evaluate` says it before any weights are fetched. An unknown
    data set name is a UsageError (exit 2)."""
    from strcli.utils.errors import UsageError

    unknown = [d for d in datasets or () if d not in TEST_SETS]
    if unknown:
        raise UsageError(f"unknown --datasets {','.join(unknown)}: use {', '.join(TEST_SETS)}.")
    files = [TEST_SETS[d] for d in (datasets or TEST_SETS)]
    needs = f"{' or '.join(files) if not datasets else ', '.join(files)}"
    if not data_dir.exists():
        return f"--data-dir {data_dir} does not exist (evaluate reads {needs} from it)"
    if not data_dir.is_dir():
        return f"--data-dir {data_dir} is a file, not a folder"
    missing = [f for f in files if not (data_dir / f).is_file()]
    if (datasets and missing) or len(missing) == len(files):
        return f"no test data in {data_dir} (looked for {', '.join(missing)})"
    empty = [f for f in files if (data_dir / f).is_file() and (data_dir / f).stat().st_size == 0]
    if empty:
        return f"{', '.join(empty)} in {data_dir} {'is' if len(empty) == 1 else 'are'} empty (0 bytes)"
    return None


def evaluate(model: nn.Module, body: Body, data_dir: Path, device: torch.device, datasets: list[str] | None = None,
             progress: Callable[[str, int, int], None] | None = None, precision: str = "fp32") -> list[DatasetScore]:
    from strcli.utils.errors import UsageError

    found = find_test_sets(data_dir)
    wanted = datasets or list(found)
    missing = [d for d in wanted if d not in found]
    if missing or not wanted:
        names = ", ".join(TEST_SETS[d] for d in (missing or TEST_SETS))
        raise UsageError(f"no test data in {data_dir} (looked for {names}).",
                         "See docs/reproducing.md for where to get the files.")
    scores = []
    for name in wanted:
        videos = eval_videos(name, found[name])
        scores.append(score_dataset(model, body, name, videos, device,
                                    (lambda done, total, n=name: progress(n, done, total)) if progress else None,
                                    precision))
    return scores


def scores_json(scores: list[DatasetScore], meta: dict) -> str:
    return json.dumps({"meta": meta, "datasets": [asdict(s) for s in scores]}, indent=2)


def table_rows(scores: list[DatasetScore]) -> list[tuple[str, str, str, str, str, str]]:
    """(data set, frames, MPJPE, PA-MPJPE, MPVPE, Accel) strings, Table 1's columns."""
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    return [(DATASET_TITLES[s.dataset], str(s.frames), fmt(s.mpjpe), fmt(s.pa_mpjpe), fmt(s.mpvpe), fmt(s.accel))
            for s in scores]
