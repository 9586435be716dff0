"""Training STR as section 3.1 describes, on TCMR's recipe.

Each iteration takes a batch of 32 clips of 16 frames: 60% from the 2D data sets
(keypoints only), 40% from the 3D ones, placed as TCMR's training windows are
(`train_clip_starts`); the w/ 3DPW recipe reads the occlusion-augmented `*_occ_db.pt`
files where present; Human3.6M's SMPL labels are off unless `h36m_smpl`; Adam at 5e-5
without weight decay, divided by 10 after 5 epochs without a better validation PA-MPJPE;
500 iterations an epoch, 30 epochs; the regressor starts from SPIN's. After each epoch:
validation on the recipe's data set, `last.pt` (everything needed to resume), `best.pt`
(the STR checkpoint with the best validation PA-MPJPE so far, in strcli's format, usable
by `reconstruct --checkpoint`) and a line in `log.csv`. The order of the clips is drawn
from (seed, epoch) alone, and the random state is saved with each epoch, so `--resume`
continues exactly as if never stopped. Under `torchrun`, each process takes its share of
every batch (DistributedDataParallel), and process 0 validates and writes. A loss, weights
or validation predictions that become NaN or infinite stop the run (`DivergedError`),
keeping the good epochs' files.

Size (over 500 lines): one concern, the training loop and the state it carries from epoch
to epoch (build, fit, validate, resume, stop on divergence, write); its parts share the
`Trainer`'s state, and the recipe's data and losses are in modules of their own.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from strcli.body.smpl import Body
from strcli.model.checkpoints import (TRAIN_STATE_FORMAT, load_state_dict_checked, read_checkpoint_file,
                                      save_checkpoint, save_file)
from strcli.utils.errors import (CorruptAssetError, DataFileError, DivergedError, StrcliError, UsageError,
                                 failed_write)
from strcli.utils.locks import WholeFile, sweep_stale, write_text_whole
from strcli.model.config import STRConfig
from strcli.model.regressor import MeanParams
from strcli.model.str import STR
from strcli.train.data import FILES, OCC_FILES, THREE_D, TWO_D, Clip, ClipDataset, eval_videos, stride_for
from strcli.train.evaluate import DatasetScore, NonFinitePredictions, check_precision, score_dataset
from strcli.train.joints import attach_extra_regressor
from strcli.train.loss import LossWeights, STRLoss


@dataclass(frozen=True)
class Recipe:
    """A named training configuration (TCMR's, which the paper follows)."""

    name: str
    datasets_2d: tuple[str, ...]
    datasets_3d: tuple[str, ...]
    val_dataset: str  # validation set (its 'val' split, or 'test' where there is none)
    overlap: bool  # True: windows every frame (stride 1); False: back to back (stride 16)
    occlusion: bool = False  # read the occlusion-augmented *_occ_db.pt 3D files where present
    h36m_smpl: bool = False  # use Human3.6M's SMPL labels (TCMR's w/ 3DPW recipe: weight 0; the paper: none)
    epochs: int = 30
    iterations: int = 500  # per epoch
    batch_size: int = 32
    ratio_2d: float = 0.6
    lr: float = 5e-5
    patience: int = 5
    seqlen: int = 16
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        for names, allowed, kind in ((self.datasets_2d, TWO_D, "2D"), (self.datasets_3d, THREE_D, "3D")):
            unknown = [n for n in names if n not in allowed]
            if unknown:
                raise UsageError(f"unknown {kind} data set {', '.join(unknown)}; choose from {', '.join(allowed)}.")
        if not self.datasets_3d:
            raise UsageError("a recipe needs at least one 3D data set.")

    @property
    def stride(self) -> int:
        """Rows between training windows: TCMR's `int(seqlen * (1 - overlap) + 0.5)` with
        overlap (seqlen - 1) / seqlen when OVERLAP is true, else 0 (lib/dataset/_loaders.py)."""
        return stride_for((self.seqlen - 1) / self.seqlen if self.overlap else 0.0, self.seqlen)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


RECIPES = {
    # Table 1, "w/ 3DPW": TCMR's configs/repr_table4_3dpw_model.yaml (occlusion-augmented
    # 3D files, Human3.6M's w_smpl 0).
    "w3dpw": Recipe("w3dpw", ("insta",), ("3dpw", "mpii3d", "h36m"), "3dpw", overlap=True, occlusion=True),
    # Table 1, "w/o 3DPW", and Table 2 (scored on MPI-INF-3DHP): TCMR's own recipe without
    # 3DPW, configs/repr_table6_mpii3d_model.yaml (TCMR_RELEASE commit f2fb3eb, 26 April
    # 2021): Insta + PoseTrack, MPII3D + Human36M, plain files, 30 epochs, and
    # TRAIN.OVERLAP: false, i.e. back-to-back 16-frame windows (stride 16).
    # (repr_table4_h36m_mpii3d_model trains WITH 3DPW: not this recipe.)
    "wo3dpw": Recipe("wo3dpw", ("insta", "posetrack"), ("mpii3d", "h36m"), "3dpw", overlap=False),
}


# Recipe fields that decide which clips a run learns from; a run is resumed only when they match.
RESUME_MUST_MATCH = ("datasets_2d", "datasets_3d", "overlap", "occlusion", "h36m_smpl", "seqlen")


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    lr: float
    loss: dict[str, float]  # mean of each term over the epoch
    val: DatasetScore
    seconds: float
    best: bool


def training_file(recipe: Recipe, name: str, data_dir: Path) -> tuple[Path, str | None]:
    """The training file of data set `name` and, when the recipe wants the occlusion-augmented
    file and it is absent, a note saying the plain one is used instead."""
    plain = data_dir / FILES[(name, "train")]
    if recipe.occlusion and name in OCC_FILES:
        occ = data_dir / OCC_FILES[name]
        if occ.is_file():
            return occ, None
        return plain, (f"note: {occ.name} (occlusion-augmented, as TCMR's w/ 3DPW recipe trains on) is not in "
                       f"{data_dir}; training on {plain.name}.")
    return plain, None


def required_files(recipe: Recipe) -> list[str]:
    """The data files `recipe` trains and validates on (file names, TCMR's): every training
    set's train file, and the validation set's val file (or its test file where it has no
    val split)."""
    names = [FILES[(name, "train")] for name in (*recipe.datasets_3d, *recipe.datasets_2d)]
    split = "val" if (recipe.val_dataset, "val") in FILES else "test"
    return [*names, FILES[(recipe.val_dataset, split)]]


def check_data_dir(recipe: Recipe, data_dir: Path) -> None:
    """Refuse, in one message, a --data-dir that is missing, empty, or lacks any file the
    recipe needs (all of them named), before anything is loaded or downloaded; an empty
    file is named too. UsageError (exit 2)."""
    how = "See docs/reproducing.md for where to get them."
    needed = required_files(recipe)
    if not data_dir.exists():
        raise UsageError(f"--data-dir {data_dir} does not exist; recipe {recipe.name} needs "
                         f"{', '.join(needed)} in it.", how)
    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir} is a file, not a folder.")
    if not any(data_dir.iterdir()):
        raise UsageError(f"--data-dir {data_dir} is empty; recipe {recipe.name} needs {', '.join(needed)}.", how)
    validation = needed[-1]
    alternative = FILES.get((recipe.val_dataset, "test"))
    # A recipe that trains on occlusion-augmented files takes one in place of the plain file.
    occ = {FILES[(name, "train")]: OCC_FILES[name] for name in OCC_FILES
           if recipe.occlusion and (name, "train") in FILES}
    missing = [name for name in needed if not (data_dir / name).is_file()
               and not (name in occ and (data_dir / occ[name]).is_file())
               and not (name == validation and alternative and (data_dir / alternative).is_file())]
    if missing:
        raise UsageError(f"{data_dir} lacks {len(missing)} of the {len(needed)} files recipe {recipe.name} "
                         f"needs: {', '.join(missing)}.", how)
    empty = [name for name in needed if (data_dir / name).is_file() and (data_dir / name).stat().st_size == 0]
    if empty:
        raise UsageError(f"{', '.join(empty)} in {data_dir} {'is' if len(empty) == 1 else 'are'} empty (0 bytes).",
                         "Download or copy them again.")


def build_datasets(recipe: Recipe, data_dir: Path,
                   notes: list[str] | None = None) -> tuple[ConcatDataset | None, ConcatDataset]:
    """The 2D and 3D training sets of `recipe`; `notes` receives a line per occlusion-augmented
    file the recipe wanted and did not find."""
    stride = recipe.stride

    def load(names: tuple[str, ...]) -> ConcatDataset | None:
        sets = []
        for name in names:
            path, note = training_file(recipe, name, data_dir)
            if note is not None and notes is not None:
                notes.append(note)
            if not path.is_file():
                raise UsageError(f"recipe {recipe.name} needs {path.name} in {data_dir}.",
                                 "See docs/reproducing.md; or choose another --recipe.")
            smpl = recipe.h36m_smpl if name == "h36m" else None
            dataset = ClipDataset(name, path, recipe.seqlen, stride, smpl=smpl)
            if len(dataset):
                sets.append(dataset)
        return ConcatDataset(sets) if sets else None

    data_3d = load(recipe.datasets_3d)
    if data_3d is None:
        raise UsageError(f"the 3D training data of recipe {recipe.name} has no clip of {recipe.seqlen} frames.")
    return load(recipe.datasets_2d), data_3d


def val_path(recipe: Recipe, data_dir: Path) -> Path:
    for split in ("val", "test"):
        if (recipe.val_dataset, split) in FILES and (data_dir / FILES[(recipe.val_dataset, split)]).is_file():
            return data_dir / FILES[(recipe.val_dataset, split)]
    raise UsageError(f"no validation file for {recipe.val_dataset} in {data_dir}.",
                     "See docs/reproducing.md for where to get it.")


def epoch_batches(sizes: tuple[int, int], counts: tuple[int, int], iterations: int, seed: int,
                  epoch: int, rank: int = 0, world: int = 1) -> tuple[list[list[int]], list[list[int]]]:
    """Indices of the 2D and 3D clips of every iteration of an epoch: drawn from (seed,
    epoch) alone (uniform with replacement, as TCMR's shuffled loaders over concatenated
    data sets are in effect), each process taking its slice of every batch."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    out = []
    for size, count in zip(sizes, counts):
        if size == 0 or count == 0:
            out.append([[] for _ in range(iterations)])
            continue
        drawn = torch.randint(size, (iterations, count), generator=g)
        out.append([row[rank::world].tolist() for row in drawn])
    return out[0], out[1]


class Trainer:
    def __init__(self, recipe: Recipe, data_dir: Path, out_dir: Path, body: Body, device: torch.device,
                 ablation: str = "full", spin: Path | None = None, seed: int = 0, workers: int = 0,
                 config: STRConfig | None = None, mean_params: MeanParams | None = None,
                 precision: str = "fp32") -> None:
        """`body`: the SMPL body with the H36M regressor and, registered on it, SPIN's
        J_regressor_extra (`training_assets`; without it the loss uses the documented
        fallback). `precision`: fp32, or bf16 autocast of the forward pass (weights, loss
        and optimizer stay fp32)."""
        self.recipe, self.data_dir, self.out_dir = recipe, data_dir, out_dir
        self.device, self.seed, self.workers = device, seed, workers
        self.precision = check_precision(precision)
        self.rank, self.world = _distributed_rank()
        self.body = body.to(device)
        torch.manual_seed(seed)
        self.model = STR((config or STRConfig()).ablate(ablation), mean_params).to(device)
        self.spin = spin
        if spin is not None:
            from strcli.road.features import load_spin_regressor

            load_spin_regressor(self.model.regressor, spin)
        self.net: torch.nn.Module = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.loss = STRLoss(self.body, recipe.weights)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=recipe.lr, weight_decay=0.0)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="min", factor=0.1,
                                                                    patience=recipe.patience)
        self.notes: list[str] = []  # what the run could not do as the recipe says (shown and logged)
        self.data_2d, self.data_3d = build_datasets(recipe, data_dir, self.notes)
        self.val_videos = eval_videos(recipe.val_dataset, val_path(recipe, data_dir))
        self.epoch = 0  # epochs done
        self.best = math.inf

    def close(self) -> None:
        """Leave the process group (under torchrun): every process must, before exiting."""
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    # ---- state -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"format": TRAIN_STATE_FORMAT, "epoch": self.epoch, "best": self.best,
                "recipe": json.loads(json.dumps(dataclasses.asdict(self.recipe))),
                "config": self.model.config.to_dict(), "seed": self.seed, "precision": self.precision,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def resume(self, path: Path, lr: float | None = None) -> None:
        """Continue from the training state `path` (a run's last.pt). `lr`: the learning rate
        from here on (`--resume --lr`, e.g. after the run diverged); None: the run's own."""
        try:
            self._resume(path, lr)
        except CorruptAssetError as err:
            what = err.message.rstrip(".")
            what = what[len(str(path)) + 1:] if what.startswith(f"{path} ") else f"is damaged ({what})"
            raise CorruptAssetError(f"cannot resume the run in {path.parent}: its {path.name} {what}.",
                                    _damaged_state_hint(path)) from err

    def _resume(self, path: Path, lr: float | None) -> None:
        raw = read_checkpoint_file(path)
        if raw.get("format") != TRAIN_STATE_FORMAT:
            raise CorruptAssetError(f"{path} is not a strcli training state (last.pt of `strcli train`).")
        config = self.model.config.to_dict()
        if raw.get("config") != config:
            saved = raw.get("config") if isinstance(raw.get("config"), dict) else {}
            absent = "absent (a strcli older than the field)"
            what = ", ".join(f"{k} {saved[k]!r} (now {config[k]!r})" if k in saved else f"{k} {absent} (now {config[k]!r})"
                             for k in sorted(set(config) | set(saved)) if saved.get(k, absent) != config.get(k, absent))
            raise UsageError(f"{path} was trained with another model config or --ablation: {what}.",
                             "Resume it with the same options, or train it again into a new folder (move "
                             f"{path.parent} away, or choose another --out / --runs-dir).")
        # The data a run learns from: a run of another recipe (e.g. wo3dpw's stride-1 windows
        # of strcli before issue 24) is never continued, nor reused by `evaluate --ablation`.
        ours = json.loads(json.dumps(dataclasses.asdict(self.recipe)))
        theirs = raw.get("recipe", {})
        changed = [k for k in RESUME_MUST_MATCH if theirs.get(k) != ours[k]]
        if changed:
            what = ", ".join(f"{k} {theirs.get(k)!r} (now {ours[k]!r})" for k in changed)
            raise UsageError(f"{path} was trained on other data than recipe {self.recipe.name} now reads: {what}.",
                             f"Train it again into a new folder (move {path.parent} away, or choose another "
                             "--out / --runs-dir).")
        load_state_dict_checked(self.model, raw.get("model"), str(path))  # tensors, finite, every shape
        try:
            self.optimizer.load_state_dict(raw["optimizer"])
            self.scheduler.load_state_dict(raw["scheduler"])
            torch.set_rng_state(raw["rng"])
            if raw.get("cuda_rng") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(raw["cuda_rng"])
            self.epoch, self.best = int(raw["epoch"]), float(raw["best"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
            raise CorruptAssetError(f"{path} is a damaged training state ({type(err).__name__}: "
                                    f"{str(err).strip()[:120]}).") from err
        if self.epoch < 0:
            raise CorruptAssetError(f"{path} is a damaged training state (epoch {self.epoch}).")
        if lr is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    # ---- loop ------------------------------------------------------------------------
    def fit(self, epochs: int | None = None, on_iteration: Callable[[int, int], None] | None = None,
            on_epoch: Callable[[EpochRecord], None] | None = None) -> list[EpochRecord]:
        records = []
        for _ in range(self.epoch, epochs or self.recipe.epochs):
            records.append(self.train_epoch(on_iteration))
            if on_epoch and self.rank == 0:
                on_epoch(records[-1])
        return records

    def train_epoch(self, on_iteration: Callable[[int, int], None] | None = None) -> EpochRecord:
        started = time.perf_counter()
        recipe = self.recipe
        count_2d = int(recipe.batch_size * recipe.ratio_2d) if self.data_2d is not None else 0
        count_3d = recipe.batch_size - count_2d
        sizes = (len(self.data_2d) if self.data_2d is not None else 0, len(self.data_3d))
        batches_2d, batches_3d = epoch_batches(sizes, (count_2d, count_3d), recipe.iterations, self.seed,
                                               self.epoch, self.rank, self.world)
        loaders = [iter(DataLoader(data, batch_sampler=batches, collate_fn=Clip.collate,
                                   num_workers=self.workers, pin_memory=self.device.type == "cuda"))
                   if data is not None and batches[0] else None
                   for data, batches in ((self.data_2d, batches_2d), (self.data_3d, batches_3d))]
        self.net.train()
        sums: dict[str, float] = {}
        for it in range(recipe.iterations):
            clips = [next(loader) for loader in loaders if loader is not None]
            batch = Clip.cat(clips).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                pred = self.net(batch.features)
            terms = self.loss(pred, batch)
            self.optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            self.optimizer.step()
            losses = terms.as_floats()  # on the host already: checking them costs nothing
            if not math.isfinite(self._total_everywhere(losses["total"])):
                raise self._diverged(f"iteration {it + 1} (the loss is {losses['total']})", batch)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            if on_iteration and self.rank == 0:
                on_iteration(it + 1, recipe.iterations)
        broken = [name for name, value in self.model.state_dict().items()
                  if value.is_floating_point() and not torch.isfinite(value).all()]
        if broken:  # never validated, never saved: last.pt and best.pt stay the last good epoch's
            raise self._diverged(f"its last iteration (weights {', '.join(broken[:3])}"
                                 f"{', ...' if len(broken) > 3 else ''} hold NaN or infinite values)")
        val = self.validate()
        self.scheduler.step(val.pa_mpjpe)
        self.epoch += 1
        best = val.pa_mpjpe < self.best
        if best:
            self.best = val.pa_mpjpe
        record = EpochRecord(self.epoch, self.optimizer.param_groups[0]["lr"],
                             {k: v / recipe.iterations for k, v in sums.items()}, val,
                             time.perf_counter() - started, best)
        if self.rank == 0:
            self._write(record)
        return record

    def validate(self) -> DatasetScore:
        """Process 0 scores the validation set; under torchrun the others receive its
        PA-MPJPE (all step their schedulers on it) instead of scoring it again."""
        nan = float("nan")
        diverged: NonFinitePredictions | None = None
        score = DatasetScore(self.recipe.val_dataset, 0, 0, nan, nan, None, nan)
        if self.rank == 0:
            try:
                score = score_dataset(self.model, self.body, self.recipe.val_dataset, self.val_videos, self.device,
                                      precision=self.precision)
            except NonFinitePredictions as err:
                diverged = err
        if self.world > 1:  # [PA-MPJPE, diverged]: every process stops together, none waits forever
            value = torch.tensor([score.pa_mpjpe, float(diverged is not None)], device=self.device)
            torch.distributed.broadcast(value, 0)
            score = dataclasses.replace(score, pa_mpjpe=float(value[0]))
            if value[1] and diverged is None:
                diverged = NonFinitePredictions(self.recipe.val_dataset, "?", 0, 0)
        if diverged is not None:
            raise self._diverged(f"validation ({diverged.message})")
        return score

    def _total_everywhere(self, total: float) -> float:
        """This process's loss, or under torchrun the sum of every process's (NaN or inf if
        any one's is), so that all processes stop at the same iteration."""
        if self.world == 1:
            return total
        value = torch.tensor([total], device=self.device)
        torch.distributed.all_reduce(value)
        return float(value)

    def _diverged(self, where: str, batch: Clip | None = None) -> StrcliError:
        """The one line for a run whose loss, weights or predictions became NaN or infinite
        in the epoch in progress: DivergedError (exit 10) saying what is kept and what to do;
        a DataFileError (exit 2) when the batch itself held NaN or infinite values."""
        epoch = self.epoch + 1
        if batch is not None:
            bad = [f for f in Clip.__dataclass_fields__ if not torch.isfinite(getattr(batch, f)).all()]
            if bad:
                return DataFileError(f"training stopped at epoch {epoch}, {where}: the batch's {', '.join(bad)} "
                                     f"hold NaN or infinite values, so a training file in {self.data_dir} is "
                                     "damaged.", "Download or copy the data files again.")
        lr = self.optimizer.param_groups[0]["lr"]
        last, best = self.out_dir / "last.pt", self.out_dir / "best.pt"
        if self.epoch and last.is_file():
            kept = f"{last} (epoch {self.epoch})" + (f" and {best}" if best.is_file() else "")
            how = (f"{kept} are kept. Resume from the last good epoch with a lower learning rate: "
                   f"--resume --lr {lr / 10:g}; or start again in another --out with a lower --lr.")
        else:
            how = (f"Nothing was saved (no epoch finished). Run again with a lower --lr, e.g. --lr {lr / 10:g}"
                   f"{'' if not last.is_file() else ', in another --out'}.")
        return DivergedError(f"training diverged at epoch {epoch}, {where}; the learning rate is {lr:g}.", how)

    def _write(self, record: EpochRecord) -> None:
        try:
            sweep_stale(self.out_dir)  # killed runs' temporaries of every file in it
            with WholeFile(self.out_dir / "last.pt", sweep=False) as tmp:  # makes out_dir
                save_file(self.state(), tmp)
            if record.best:
                save_checkpoint(self.out_dir / "best.pt", self.model, {
                    "recipe": self.recipe.name, "epoch": record.epoch, "ablation": self.model.config.ablation,
                    "val_dataset": self.recipe.val_dataset, "val_pa_mpjpe": record.val.pa_mpjpe,
                    "regressor_init": "SPIN" if self.spin else "random", "precision": self.precision})
            notes = self.out_dir / "notes.txt"
            if self.notes and not notes.is_file():
                write_text_whole(notes, "".join(line + "\n" for line in self.notes))
            log = self.out_dir / "log.csv"
            new = not log.is_file()
            with log.open("a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(["epoch", "lr", "loss", "loss_2d", "loss_3d", "loss_pose", "loss_shape",
                                     "val_mpjpe", "val_pa_mpjpe", "val_mpvpe", "val_accel", "seconds", "best"])
                writer.writerow([record.epoch, f"{record.lr:.3g}", *(f"{record.loss[k]:.6f}" for k in
                                 ("total", "kp2d", "kp3d", "pose", "shape")),
                                 f"{record.val.mpjpe:.2f}", f"{record.val.pa_mpjpe:.2f}",
                                 "" if record.val.mpvpe is None else f"{record.val.mpvpe:.2f}",
                                 f"{record.val.accel:.2f}", f"{record.seconds:.1f}", int(record.best)])
        except StrcliError:
            raise  # best.pt's or last.pt's OutputError, naming the file
        except Exception as err:  # torch reports a full disk as a RuntimeError raised from the OSError
            mapped = failed_write(err, self.out_dir)
            if mapped is None:
                raise
            raise mapped from err


def _damaged_state_hint(path: Path) -> str:
    """What to do with a run whose last.pt cannot be resumed: its best.pt, if whole, is a
    usable network; the training itself starts again."""
    best = path.with_name("best.pt")
    fresh = f"to train, move {path.parent} away and start the run again (without --resume)"
    if best.is_file():
        return (f"Its best.pt is separate: use it with --checkpoint {best} (reconstruct, evaluate); "
                f"{fresh}.")
    return f"{fresh[0].upper()}{fresh[1:]}."


def _distributed_rank() -> tuple[int, int]:
    """(rank, world size); initialises torch.distributed under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world



@dataclass(frozen=True)
class TrainingAssets:
    body: Body  # SMPL neutral with the Human3.6M regressor and (registered on it) SPIN's J_regressor_extra
    mean_params: MeanParams  # SPIN's mean pose, shape and camera: where the regressor starts
    spin: Path | None  # SPIN's checkpoint (regressor initialisation), None: random
    notes: tuple[str, ...] = ()  # warnings to show (e.g. the J_regressor_extra fallback)


EXTRA_FALLBACK_NOTE = ("warning: SPIN's J_regressor_extra.npy is missing and --offline forbids fetching it: the 9 "
                       "extra joints (hips, neck, head top, pelvis, thorax, spine, jaw, head) of the training loss "
                       "and of MPI-INF-3DHP's test joints come from the Human3.6M regressor instead, so those "
                       "numbers differ from TCMR's. Get it with `strcli weights fetch j_regressor_extra`.")


def training_assets(smpl_dir: Path | None, spin: Path | None, use_spin: bool = True,
                    download: bool = True) -> TrainingAssets:
    """What training and evaluation need besides the data: found (or fetched on first use)
    through the weights manifest, or given as paths. SPIN's J_regressor_extra is required
    (DownloadError, exit 5, saying how to get it, when it can be neither found nor
    fetched); with `download` False (--offline) a missing one is a warning (`notes`) and the
    documented fallback (`strcli.train.joints.FALLBACK_H36M`)."""
    from strcli.body.smpl import find_smpl_file
    from strcli.weights.registry import ensure

    smpl = find_smpl_file("neutral", smpl_dir)
    regressor = ensure("j_regressor_h36m", download=download).path
    mean = MeanParams.from_npz(ensure("smpl_mean_params", download=download).path)
    if use_spin and spin is None:
        spin = Path(ensure("spin_checkpoint", download=download).path)
    body = Body.from_file(smpl, regressor)
    extra = extra_regressor_file(download)
    notes: tuple[str, ...] = ()
    if extra is None:
        notes = (EXTRA_FALLBACK_NOTE,)
    else:
        try:
            array = np.load(extra, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise CorruptAssetError(f"{extra} is not a readable .npy ({err}).",
                                    "Delete it and run `strcli weights fetch j_regressor_extra`.") from err
        attach_extra_regressor(body, array)
    return TrainingAssets(body, mean, spin if use_spin else None, notes)


def extra_regressor_file(download: bool = True) -> Path | None:
    """The path of SPIN's J_regressor_extra.npy, fetched on first use; None when it is
    missing and `download` is False (--offline). Raises DownloadError (exit 5, as for every
    asset whose download fails: J_regressor_h36m.npy comes from the same archive) saying
    how to get it when it is missing and cannot be fetched."""
    from strcli.utils.errors import DownloadError, MissingAssetError
    from strcli.weights.registry import Manifest, ensure

    try:
        return Path(ensure("j_regressor_extra", download=download).path)
    except MissingAssetError:
        if not download:
            return None
        raise
    except DownloadError as err:
        instructions = Manifest.load().get("j_regressor_extra").instructions
        raise DownloadError(f"SPIN's J_regressor_extra.npy is missing and could not be downloaded "
                                f"({err.message.rstrip('.')}).",
                                f"To get it, {instructions}; or pass --offline to use the documented "
                                "fallback (docs/training.md).") from err
