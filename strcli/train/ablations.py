"""Table 2: train each ablated STR the same way and score it on MPI-INF-3DHP.

The paper's ablations are trained without 3DPW (its Table 2 'STR' row equals Table 1's
'w/o 3DPW' on MPI-INF-3DHP), so every variant runs the `wo3dpw` recipe into
`<runs>/wo3dpw-<variant>/` and its best checkpoint is scored with the Table 1 protocol.
A variant whose run folder already holds a finished run is not trained again, and an
interrupted one resumes from its `last.pt`: rerunning the whole table only does what is
missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from strcli.checkpoints import load_model
from strcli.errors import UsageError
from strcli.model.config import ABLATIONS, STRConfig
from strcli.train.data import eval_videos
from strcli.train.evaluate import TEST_SETS, DatasetScore, score_dataset
from strcli.train.trainer import EpochRecord, Recipe, Trainer, TrainingAssets

ABLATION_DATASET = "mpii3d"
# The paper's Table 2 (MPI-INF-3DHP): PA-MPJPE (mm), Accel (mm/frame^2).
PAPER_TABLE2 = {
    "full": (61.6, 8.4), "no_ttr": (61.9, 8.7), "no_ste": (62.1, 8.4), "no_ste_time": (61.9, 8.4),
    "no_ste_frequency": (61.7, 8.5), "no_self_integration": (62.3, 9.1), "no_cross_integration": (62.7, 9.0),
}


@dataclass(frozen=True)
class AblationResult:
    variant: str
    checkpoint: Path  # the variant's best.pt
    score: DatasetScore  # on MPI-INF-3DHP
    paper: tuple[float, float] | None  # the paper's (PA-MPJPE, Accel)


def parse_variants(text: str) -> list[str]:
    """'all', one name or a comma list -> the variants, in Table 2's order."""
    wanted = list(ABLATIONS) if text.strip() == "all" else [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in wanted if v not in ABLATIONS]
    if unknown or not wanted:
        raise UsageError(f"--ablation {text!r}: unknown variant {', '.join(unknown) or '(none)'}.",
                         f"Choose 'all' or from {', '.join(ABLATIONS)}.")
    return [v for v in ABLATIONS if v in wanted]


def run_ablations(variants: Sequence[str], recipe: Recipe, data_dir: Path, runs_dir: Path,
                  assets: TrainingAssets, device: torch.device, config: STRConfig | None = None,
                  seed: int = 0, workers: int = 0,
                  on_epoch: Callable[[str, EpochRecord], None] | None = None) -> list[AblationResult]:
    """Train (or finish training) each variant, then score its best checkpoint."""
    test_file = data_dir / TEST_SETS[ABLATION_DATASET]
    if not test_file.is_file():
        raise UsageError(f"Table 2 is scored on MPI-INF-3DHP: {test_file} is missing.",
                         "See README, 'Reproducing the paper', for the files.")
    videos = eval_videos(ABLATION_DATASET, test_file)
    results = []
    for variant in variants:
        out = runs_dir / f"{recipe.name}-{variant}"
        trainer = Trainer(recipe, data_dir, out, assets.body, device, variant, assets.spin, seed, workers,
                          config, assets.mean_params)
        try:
            if (out / "last.pt").is_file():
                trainer.resume(out / "last.pt")
            trainer.fit(on_epoch=(lambda record, v=variant: on_epoch(v, record)) if on_epoch else None)
        finally:
            trainer.close()
        if trainer.rank != 0:
            continue
        model, _ = load_model(out / "best.pt", device)
        score = score_dataset(model, trainer.body, ABLATION_DATASET, videos, device)
        results.append(AblationResult(variant, out / "best.pt", score, PAPER_TABLE2.get(variant)))
    return results
