"""Table 2 and the authors' extra ablations: train each ablated STR the same way and score
it on MPI-INF-3DHP, beside the numbers the paper (Table 2) or the authors (their repository)
reported.

The paper's ablations are trained without 3DPW (its Table 2 'STR' row equals Table 1's
'w/o 3DPW' on MPI-INF-3DHP), so every variant runs the `wo3dpw` recipe into
`<runs>/wo3dpw-<variant>/` and its best checkpoint is scored with the Table 1 protocol.
A variant whose run folder already holds a finished run is not trained again, and an
interrupted one resumes from its `last.pt`: rerunning the whole table only does what is
missing. Only a run made with the same settings is reused (`check_reusable`): one of
another precision, seed, regressor initialisation, model config or recipe is refused,
for every variant at once, before any is trained.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from strcli.model.checkpoints import TRAIN_STATE_FORMAT, load_model, read_checkpoint_file
from strcli.utils.errors import CorruptAssetError, UsageError
from strcli.model.config import ABLATION_ALIASES, ABLATIONS, AUTHORS_ABLATIONS, TABLE2_ABLATIONS, STRConfig
from strcli.train.data import eval_videos
from strcli.train.evaluate import TEST_SETS, DatasetScore, score_dataset
from strcli.train.trainer import EpochRecord, Recipe, Trainer, TrainingAssets

ABLATION_DATASET = "mpii3d"


@dataclass(frozen=True)
class Reported:
    """A variant's published numbers on MPI-INF-3DHP: PA-MPJPE (mm), Accel (mm/frame^2)."""

    pa_mpjpe: float
    accel: float | None  # the authors' extra rows mostly give none
    source: str  # "paper" (Table 2) or "authors" (their repository, str-authors.md)


# The paper's Table 2.
PAPER_TABLE2: dict[str, Reported] = {
    "full": Reported(61.6, 8.4, "paper"), "no_ttr": Reported(61.9, 8.7, "paper"),
    "no_ste": Reported(62.1, 8.4, "paper"), "no_ste_time": Reported(61.9, 8.4, "paper"),
    "no_ste_frequency": Reported(61.7, 8.5, "paper"),
    "no_self_integration": Reported(62.3, 9.1, "paper"),
    "no_cross_integration": Reported(62.7, 9.0, "paper"),
}
# The authors' extra ablations (their repository's history; str-authors.md), full STR 61.6 / 8.4.
AUTHORS_EXTRA: dict[str, Reported] = {
    "ttr_1_fragment": Reported(62.7, None, "authors"),
    "ttr_2_fragments": Reported(62.0, None, "authors"),
    "ttr_8_fragments": Reported(62.6, None, "authors"),
    "plain_gru_for_ttr": Reported(62.7, 9.0, "authors"),
    "senet_for_ste": Reported(62.5, None, "authors"),
    "ste_plain_difference": Reported(61.9, None, "authors"),
    "self_integration_only": Reported(62.7, None, "authors"),
    "cross_integration_only": Reported(62.3, None, "authors"),
    "plain_aggregation": Reported(62.6, None, "authors"),
}
REPORTED: dict[str, Reported] = {**PAPER_TABLE2, **AUTHORS_EXTRA}
# Words that stand for a set of variants in `--ablation`.
VARIANT_SETS: dict[str, list[str]] = {
    "all": list(TABLE2_ABLATIONS), "table2": list(TABLE2_ABLATIONS),
    "extra": list(AUTHORS_ABLATIONS), "authors": list(AUTHORS_ABLATIONS),
    "everything": list(ABLATIONS),
}


@dataclass(frozen=True)
class AblationResult:
    variant: str
    checkpoint: Path  # the variant's best.pt
    score: DatasetScore  # on MPI-INF-3DHP
    reported: Reported | None  # the paper's or the authors' numbers

    @property
    def paper(self) -> tuple[float, float | None] | None:
        """(PA-MPJPE, Accel) of the paper's Table 2, for its rows."""
        r = self.reported
        return (r.pa_mpjpe, r.accel) if r is not None and r.source == "paper" else None


def parse_variants(text: str) -> list[str]:
    """'all' (= 'table2', the paper's Table 2), 'extra' (= 'authors', their extra ablations),
    'everything', one name, or a comma list of any of these -> the variants, Table 2's
    order then the authors'."""
    wanted: list[str] = []
    unknown = []
    for item in (v.strip() for v in text.split(",")):
        if not item:
            continue
        if item in VARIANT_SETS:
            wanted.extend(VARIANT_SETS[item])
        elif item in ABLATIONS:
            wanted.append(item)
        else:
            unknown.append(item)
    if unknown or not wanted:
        raise UsageError(f"--ablation {text!r}: unknown variant {', '.join(unknown) or '(none)'}.",
                         f"Choose all (Table 2), extra (the authors' extra ablations), everything, "
                         f"or from {', '.join(ABLATIONS)}.")
    return [v for v in ABLATIONS if v in wanted]


def run_folder(runs_dir: Path, recipe: str, variant: str) -> Path:
    """`<runs>/<recipe>-<variant>`; a name that builds the same network as a Table 2 variant
    (self_integration_only, cross_integration_only) shares that variant's run."""
    return runs_dir / f"{recipe}-{ABLATION_ALIASES.get(variant, variant)}"


# Recipe fields a run may differ in and still be reused: its name, and the epochs (a run
# that did fewer is trained on; one that did more is refused by the epoch count below).
_RECIPE_FREE = ("name", "epochs")


def run_settings(recipe: Recipe, config: STRConfig, seed: int, precision: str, spin: Path | None) -> dict[str, Any]:
    """The settings that change a variant's results, as its run records them: the model config
    (ablated), the seed, the precision, the regressor's initialisation and every recipe field
    but its name and epochs (`_RECIPE_FREE`)."""
    recipe_fields = json.loads(json.dumps(dataclasses.asdict(recipe)))
    return {"config": config.to_dict(), "seed": seed, "precision": precision,
            "regressor_init": "SPIN" if spin is not None else "random",
            **{f"recipe {k}": v for k, v in recipe_fields.items() if k not in _RECIPE_FREE}}


def recorded_settings(folder: Path) -> tuple[dict[str, Any], int] | None:
    """The settings (`run_settings`' keys) a variant's run folder was trained with, and its
    epochs done; None when it holds no training state (`last.pt`). A state of before
    precision was recorded was fp32 (the only precision then); a regressor initialisation is
    read from best.pt's meta and left out when there is none. A damaged file:
    CorruptAssetError (exit 4)."""
    state = folder / "last.pt"
    if not state.is_file():
        return None
    raw = read_checkpoint_file(state)
    if raw.get("format") != TRAIN_STATE_FORMAT:
        raise CorruptAssetError(f"{state} is not a strcli training state (last.pt of `strcli train`).",
                                f"Move {folder} away to train the variant again.")
    settings = {"config": raw.get("config"), "seed": raw.get("seed"), "precision": raw.get("precision", "fp32"),
                **{f"recipe {k}": v for k, v in (raw.get("recipe") or {}).items() if k not in _RECIPE_FREE}}
    best = folder / "best.pt"
    if best.is_file():
        meta = read_checkpoint_file(best).get("meta")
        if isinstance(meta, dict) and "regressor_init" in meta:
            settings["regressor_init"] = meta["regressor_init"]
    epoch = raw.get("epoch")
    return settings, int(epoch) if isinstance(epoch, int) else 0


def check_reusable(variants: Sequence[str], recipe: Recipe, runs_dir: Path, config: STRConfig | None, seed: int,
                   precision: str, spin: Path | None) -> None:
    """Refuse (UsageError, exit 2, one line naming each variant and setting) when a variant's
    run folder holds a run trained with other settings than this one asks (`run_settings`),
    or for more epochs: resuming or reusing it would score a network this command did not
    ask for (a finished fp32 run under `--precision bf16`). Checked for every variant before
    any trains. A setting the run did not record is not compared."""
    problems = []
    for variant in variants:
        folder = run_folder(runs_dir, recipe.name, variant)
        found = recorded_settings(folder)
        if found is None:
            continue
        recorded, epochs_done = found
        wanted = run_settings(recipe, (config or STRConfig()).ablate(variant), seed, precision, spin)
        differ = ["another model config" if key == "config" else f"{key} {recorded[key]!r} (now {value!r})"
                  for key, value in wanted.items() if key in recorded and recorded[key] != value]
        if epochs_done > recipe.epochs:
            differ.append(f"{epochs_done} epochs done (now {recipe.epochs})")
        if differ:
            problems.append(f"{folder} ({', '.join(differ)})")
    if problems:
        raise UsageError("runs of these variants were trained with other settings than this run asks: "
                         + "; ".join(problems) + ".",
                         "Rerun with their settings to reuse them, or pass another --runs-dir (or move them "
                         "away) to train them again.")


def run_ablations(variants: Sequence[str], recipe: Recipe, data_dir: Path, runs_dir: Path,
                  assets: TrainingAssets, device: torch.device, config: STRConfig | None = None,
                  seed: int = 0, workers: int = 0,
                  on_epoch: Callable[[str, EpochRecord], None] | None = None,
                  precision: str = "fp32") -> list[AblationResult]:
    """Train (or finish training) each variant, then score its best checkpoint, both in
    `precision` (fp32, the default of `train` too, or bf16)."""
    check_reusable(variants, recipe, runs_dir, config, seed, precision, assets.spin)  # before any trains
    test_file = data_dir / TEST_SETS[ABLATION_DATASET]
    if not test_file.is_file():
        raise UsageError(f"Table 2 is scored on MPI-INF-3DHP: {test_file} is missing.",
                         "See docs/reproducing.md for the files.")
    videos = eval_videos(ABLATION_DATASET, test_file)
    results = []
    for variant in variants:
        out = run_folder(runs_dir, recipe.name, variant)
        trainer = Trainer(recipe, data_dir, out, assets.body, device, variant, assets.spin, seed, workers,
                          config, assets.mean_params, precision)
        try:
            if (out / "last.pt").is_file():
                trainer.resume(out / "last.pt")
            trainer.fit(on_epoch=(lambda record, v=variant: on_epoch(v, record)) if on_epoch else None)
        finally:
            trainer.close()
        if trainer.rank != 0:
            continue
        model, _ = load_model(out / "best.pt", device)
        score = score_dataset(model, trainer.body, ABLATION_DATASET, videos, device, precision=precision)
        results.append(AblationResult(variant, out / "best.pt", score, REPORTED.get(variant)))
    return results
