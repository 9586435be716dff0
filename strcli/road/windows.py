"""A track's per-frame features -> STR on fixed-length windows -> one prediction per frame.

STR sees T = 16 frames at a time. A track of n frames is cut into windows of T starting
every `stride` frames (default T/2: each frame is seen by two windows), the last window
ending on the last frame; a track shorter than T is padded by repeating its edge frames.
All windows of all tracks run through the network in batches. A frame's predictions from
the windows that contain it are averaged with tent weights that favour the window's
centre, where the network has context on both sides; the averaged 6D rotations are
orthonormalised again. See docs/model.md ("Inference on long videos").

Models that predict only the middle frame of each window (TCMR: `centre_only = True`)
get TCMR's convention instead (`tcmr_window_index`): one window per frame, frame t seeing
frames t-8 .. t+7, and a frame whose window would run past either end of the sequence
(the first 8 and the last 7) sees 16 copies of itself instead, as TCMR's demo does
(`FeatureDataset` in TCMR's lib/dataset/_dataset_demo.py) and its evaluation
(`split_into_chunks(..., is_train=False)` in lib/data_utils/_img_utils.py); only the
centre of each window counts, so every frame gets exactly one prediction
(docs/baselines.md). `strcli evaluate` uses the same windows for every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from strcli.config import WINDOW
from strcli.model import SMPLPrediction
from strcli.body.rotations import rot6d_to_rotmat


def tcmr_window_index(length: int, window: int = WINDOW) -> np.ndarray:
    """(n, T) the frames of TCMR's window for each frame t of a sequence of n frames: t - T/2
    .. t + T/2 - 1 where that range lies inside the sequence, else T copies of t (the first
    T/2 and the last T/2 - 1 frames of a sequence of at least T frames; every frame of a
    shorter one). The frame itself sits at position T/2 (8 of 16) either way.

    Source: TCMR's `split_into_chunks(vid_names, 16, 1, is_train=False)`
    (lib/data_utils/_img_utils.py) with `get_sequence` (evaluate.py: a chunk [s, s] becomes
    16 copies of s), and `FeatureDataset` of its demo (lib/dataset/_dataset_demo.py)."""
    centre = window // 2
    t = np.arange(length)[:, None]
    index = t + np.arange(-centre, window - centre)[None, :]  # (n, T)
    inside = (index[:, 0] >= 0) & (index[:, -1] <= length - 1)
    return np.where(inside[:, None], index, np.broadcast_to(t, index.shape)).astype(np.int64)


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one sequence of `length` frames start (in padded coordinates)."""

    length: int  # n, the sequence's frames
    window: int  # T
    starts: np.ndarray  # (W,) window starts
    pad_before: int  # edge frames repeated before frame 0 (short sequences)
    edge_copies: bool = False  # TCMR's windows: one per frame, `tcmr_window_index`

    def frame_index(self) -> np.ndarray:
        """(W, T) the sequence frame each window position shows."""
        if self.edge_copies:
            return tcmr_window_index(self.length, self.window)
        idx = self.starts[:, None] + np.arange(self.window)[None, :] - self.pad_before
        return np.clip(idx, 0, self.length - 1)

    def is_real(self) -> np.ndarray:
        """(W, T) False where a position shows a repeated edge frame (TCMR's windows: every
        position shows a real frame, copies included; only the centre counts)."""
        if self.edge_copies:
            return np.ones((self.length, self.window), bool)
        idx = self.starts[:, None] + np.arange(self.window)[None, :] - self.pad_before
        return (idx >= 0) & (idx < self.length)


def plan_windows(length: int, window: int = WINDOW, stride: int | None = None,
                 centred: bool = False) -> WindowPlan:
    """Windows over a sequence: every `stride` frames (default T/2), or with `centred`,
    TCMR's: one per frame, 16 copies of the frame at the edges (`tcmr_window_index`)."""
    if length < 1:
        raise ValueError("a sequence needs at least one frame")
    if centred:
        return WindowPlan(length, window, np.arange(length), window // 2, edge_copies=True)
    stride = stride or window // 2
    if length <= window:
        pad = (window - length) // 2  # centre the real frames in the window
        return WindowPlan(length, window, np.array([0]), pad)
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return WindowPlan(length, window, np.array(starts), 0)


def tent_weights(window: int) -> np.ndarray:
    """(T,) highest at the window's centre, small but non-zero at its ends."""
    t = np.arange(window)
    return 1.0 - np.abs(t - (window - 1) / 2) / (window / 2) + 1e-3


def centre_only(model: nn.Module) -> bool:
    """Whether `model` predicts only the middle frame of each window (TCMR declares it)."""
    return bool(getattr(model, "centre_only", False))


def position_weights(model: nn.Module, window: int) -> np.ndarray:
    """(T,) how much each window position counts: tent weights, or only the centre for a
    model that predicts the centre alone."""
    if centre_only(model):
        return (np.arange(window) == window // 2).astype(np.float64)
    return tent_weights(window)


def window_outputs(model: nn.Module, clips: Tensor) -> SMPLPrediction:
    """The model on (B, T, C) clips, as (B, T, ...) predictions: a centre-only model's one
    prediction per window is put at the centre (the other positions weigh nothing)."""
    pred = model(clips)
    if not centre_only(model):
        return pred
    b, t = clips.shape[:2]

    def spread(x: Tensor) -> Tensor:  # (B, ...) -> (B, T, ...)
        out = x.new_zeros((b, t) + x.shape[1:])
        out[:, t // 2] = x
        return out

    return SMPLPrediction(pose6d=spread(pred.pose6d), rotmat=spread(pred.rotmat), betas=spread(pred.betas),
                          cam=spread(pred.cam))


@torch.inference_mode()
def predict_sequences(model: nn.Module, features: Sequence[Tensor], window: int = WINDOW,
                      stride: int | None = None, batch_size: int = 64) -> list[SMPLPrediction]:
    """Per-frame SMPL for each sequence of features (n_i, C), all windows batched together."""
    plans = [plan_windows(len(f), window, stride, centre_only(model)) for f in features]
    device = next(model.parameters()).device
    clips = torch.cat([f.to(device)[torch.from_numpy(p.frame_index()).to(device)]
                       for f, p in zip(features, plans)])  # (sum W, T, C)
    outputs = [window_outputs(model, clips[i : i + batch_size]) for i in range(0, len(clips), batch_size)]
    pose6d = torch.cat([o.pose6d for o in outputs])  # (sum W, T, 144)
    betas = torch.cat([o.betas for o in outputs])
    cam = torch.cat([o.cam for o in outputs])
    results, first = [], 0
    weights = torch.as_tensor(position_weights(model, window), dtype=torch.float32, device=device)
    for plan in plans:
        count = len(plan.starts)
        results.append(_merge(plan, weights, pose6d[first : first + count], betas[first : first + count],
                              cam[first : first + count]))
        first += count
    return results


def _merge(plan: WindowPlan, weights: Tensor, pose6d: Tensor, betas: Tensor, cam: Tensor) -> SMPLPrediction:
    device = pose6d.device
    index = torch.from_numpy(plan.frame_index()[plan.is_real()]).to(device)  # (K,) frames
    mask = torch.from_numpy(plan.is_real()).to(device)
    w = weights.expand(len(plan.starts), -1)[mask][:, None]  # (K, 1)
    n = plan.length

    def average(values: Tensor) -> Tensor:  # (W, T, D) -> (n, D)
        flat = values[mask] * w
        total = torch.zeros(n, values.shape[-1], device=device).index_add_(0, index, flat)
        norm = torch.zeros(n, 1, device=device).index_add_(0, index, w)
        return total / norm

    mean6d = average(pose6d)
    rotmat = rot6d_to_rotmat(mean6d.reshape(n, 24, 6))
    return SMPLPrediction(pose6d=mean6d, rotmat=rotmat, betas=average(betas), cam=average(cam))


@dataclass(frozen=True)
class FinalFrames:
    """Merged predictions of frames no later window can change: positions [first, first + K)
    of sequence `sequence`."""

    sequence: int
    first: int
    prediction: SMPLPrediction  # (K, ...) per frame


class _Sequence:
    """Bookkeeping of one sequence in `StreamingWindows`: which features are still needed,
    which windows are ready, and running weighted sums of the frames not yet final."""

    def __init__(self, plan: WindowPlan) -> None:
        self.plan = plan
        self.index = plan.frame_index()  # (W, T)
        self.real = plan.is_real()  # (W, T)
        self.needs = self.index.max(axis=1) + 1  # (W,) features needed before window w can run
        # (W,) the earliest frame window w or any later one shows (TCMR's windows are not
        # monotone: the copies of frames 0..7 come before the window of frame 8 on 0..15)
        self.keep_from = np.minimum.accumulate(self.index.min(axis=1)[::-1])[::-1]
        # Frame p is final once every window that shows it has run; windows run in order.
        last = np.zeros(plan.length, np.int64)
        for w in range(len(plan.starts)):
            last[self.index[w][self.real[w]]] = w
        self.last_window = last
        self.features: dict[int, Tensor] = {}  # position -> (C,), only those still needed
        self.received = 0
        self.scheduled = 0  # windows handed to the network
        self.done = 0  # windows whose outputs are in the sums
        self.final = 0  # frames emitted
        self.sums: dict[int, tuple[Tensor, Tensor, Tensor, float]] = {}  # position -> sums, weight


class StreamingWindows:
    """`predict_sequences` for features that arrive a few frames at a time.

    Each sequence's length is known in advance (tracking runs first), so its window plan
    is too. Features are added in frame order; a window is queued as soon as its last
    frame has arrived, queued windows of all sequences run through STR in batches, and a
    frame's merged prediction is released as soon as the last window showing it has run.
    Memory holds at most a window's worth of features and unfinished frames per live
    sequence, whatever the video's length. The results equal `predict_sequences`'.
    """

    def __init__(self, model: nn.Module, lengths: Sequence[int], window: int = WINDOW,
                 stride: int | None = None, batch_size: int = 64) -> None:
        self.model, self.window, self.batch_size = model, window, batch_size
        self.device = next(model.parameters()).device
        self.sequences = [_Sequence(plan_windows(n, window, stride, centre_only(model))) for n in lengths]
        self.weights = position_weights(model, window)
        self.queue: list[tuple[int, int, Tensor]] = []  # (sequence, window, (T, C) clip)

    def add(self, sequence: int, features: Tensor) -> list[FinalFrames]:
        """Append (k, C) features of the next k frames of `sequence`."""
        seq = self.sequences[sequence]
        if seq.received + len(features) > seq.plan.length:
            raise ValueError(f"sequence {sequence} has {seq.plan.length} frames; got more")
        for row in features:
            seq.features[seq.received] = row
            seq.received += 1
        while seq.scheduled < len(seq.plan.starts) and seq.needs[seq.scheduled] <= seq.received:
            w = seq.scheduled
            self.queue.append((sequence, w, torch.stack([seq.features[int(p)] for p in seq.index[w]])))
            seq.scheduled += 1
            if seq.scheduled < len(seq.plan.starts):
                keep_from = int(seq.keep_from[seq.scheduled])
                for p in [p for p in seq.features if p < keep_from]:
                    del seq.features[p]
            else:
                seq.features.clear()
        return self._run() if len(self.queue) >= self.batch_size else []

    def flush(self) -> list[FinalFrames]:
        """Run every queued window (call once all features are in)."""
        out: list[FinalFrames] = []
        while self.queue:
            out += self._run()
        return out

    @torch.inference_mode()
    def _run(self) -> list[FinalFrames]:
        batch, self.queue = self.queue[: self.batch_size], self.queue[self.batch_size :]
        clips = torch.stack([clip for _, _, clip in batch]).to(self.device)  # (B, T, C)
        pred = window_outputs(self.model, clips)
        pose6d, betas, cam = (x.float().cpu() for x in (pred.pose6d, pred.betas, pred.cam))
        touched: list[int] = []
        for b, (s, w, _) in enumerate(batch):
            seq = self.sequences[s]
            for t in np.flatnonzero(seq.real[w]):
                p, weight = int(seq.index[w, t]), float(self.weights[t])
                old = seq.sums.get(p)
                new = (pose6d[b, t] * weight, betas[b, t] * weight, cam[b, t] * weight, weight)
                seq.sums[p] = new if old is None else tuple(a + c for a, c in zip(old, new))
            seq.done = w + 1
            if s not in touched:
                touched.append(s)
        return [f for s in touched if (f := self._release(s)) is not None]

    def _release(self, sequence: int) -> FinalFrames | None:
        seq = self.sequences[sequence]
        first = seq.final
        stop = first
        while stop < seq.plan.length and seq.last_window[stop] < seq.done:
            stop += 1
        if stop == first:
            return None
        rows = [seq.sums.pop(p) for p in range(first, stop)]
        weight = torch.tensor([r[3] for r in rows])[:, None]  # (K, 1)
        pose6d = torch.stack([r[0] for r in rows]) / weight
        seq.final = stop
        return FinalFrames(sequence, first, SMPLPrediction(
            pose6d=pose6d, rotmat=rot6d_to_rotmat(pose6d.reshape(len(rows), 24, 6)),
            betas=torch.stack([r[1] for r in rows]) / weight, cam=torch.stack([r[2] for r in rows]) / weight))
