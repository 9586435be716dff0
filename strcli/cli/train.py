"""`strcli train` and `strcli evaluate`: the paper's recipe, Table 1 and Table 2."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from strcli.cli.common import ABLATION_HELP, app, reports_errors, stderr, stdout
from strcli.utils.locks import write_text_whole
from strcli.utils.progress import count_progress


def _model_config(path: Path | None) -> Any:
    from strcli.model.config import STRConfig

    if path is None:
        return None
    from strcli.utils.errors import UsageError

    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"it holds a {type(data).__name__}, not an object")
        return STRConfig.from_dict(data)
    except (OSError, ValueError, TypeError) as err:
        raise UsageError(f"--model-config {path}: not a readable STR config ({err}).",
                         "Pass a JSON object of STRConfig fields (docs/model.md).") from err


# Options shared by `train` and `evaluate --ablation` (which trains).
EpochsOpt = Annotated[int | None, typer.Option(help="Epochs (recipe: 30).")]
IterationsOpt = Annotated[int | None, typer.Option(help="Iterations per epoch (recipe: 500).")]
BatchOpt = Annotated[int | None, typer.Option(help="Clips per iteration (recipe: 32).")]
ModelConfigOpt = Annotated[Path | None, typer.Option(help="JSON of STRConfig fields (widths), for "
                                                          "experiments; default: docs/model.md's.")]
NoSpinOpt = Annotated[bool, typer.Option("--no-spin", help="Start the regressor from random weights.")]
SmplDirOpt = Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's model folder (DIR/smpl/SMPL_NEUTRAL.pkl) or the file.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the initialisation and of the clip order.")]
WorkersOpt = Annotated[int, typer.Option(help="Data loading processes.")]
DataDirOpt = Annotated[Path, typer.Option(help="Folder of the pre-processed data (TCMR/VIBE layout).")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never download SPIN's files.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
PRECISION_HELP = ("fp32 (default: TCMR's; the authors' Quadro RTX 6000 has no bf16), or bf16 (autocast to "
                  "bfloat16; weights and loss stay fp32).")


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else None


def _train_device(device: str) -> Any:
    import os

    from strcli.utils.devices import resolve_device

    if "LOCAL_RANK" in os.environ and device in ("auto", "cuda"):
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    return resolve_device(device)


def _epoch_line(record: Any, epochs: int, dataset: str, prefix: str = "") -> str:
    return (f"{prefix}epoch {record.epoch}/{epochs}: loss {record.loss['total']:.4f}, {dataset} MPJPE "
            f"{record.val.mpjpe:.1f} PA-MPJPE {record.val.pa_mpjpe:.1f} mm, lr {record.lr:.2g}"
            f"{' (best)' if record.best else ''}")


@app.command()
@reports_errors
def train(
    data_dir: DataDirOpt,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<recipe>[-<ablation>]).")] = None,
    recipe: Annotated[str, typer.Option(help="w3dpw (Table 1, with 3DPW) or wo3dpw (without; Table 2).")] = "w3dpw",
    ablation: Annotated[str, typer.Option(help=ABLATION_HELP)] = "full",
    datasets_2d: Annotated[str | None, typer.Option(help="Replace the recipe's 2D sets: insta,posetrack,pennaction "
                                                         "(any of them, comma-separated).")] = None,
    datasets_3d: Annotated[str | None, typer.Option(help="Replace the recipe's 3D sets: 3dpw,mpii3d,h36m.")] = None,
    epochs: EpochsOpt = None,
    iterations: IterationsOpt = None,
    batch_size: BatchOpt = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate (recipe: 5e-5); with --resume, the rate from "
                                                  "there on (default: the run's own).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    spin: Annotated[Path | None, typer.Option(help="SPIN checkpoint for the regressor (default: the "
                                                   "manifest's spin_checkpoint).")] = None,
    no_spin: NoSpinOpt = False,
    model_config: ModelConfigOpt = None,
    smpl_dir: SmplDirOpt = None,
    seed: SeedOpt = 0,
    workers: WorkersOpt = 2,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (under torchrun: the local GPU).")] = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    h36m_smpl: Annotated[bool, typer.Option("--h36m-smpl", help="Use Human3.6M's SMPL labels (NeuralAnnot fits) in "
                                                              "the pose and shape losses; off by default, as in the "
                                                              "paper and TCMR's w/ 3DPW recipe.")] = False,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "fp32",
) -> None:
    """Train STR the paper's way (TCMR's recipe): log.csv, last.pt and best.pt in the run folder."""
    from strcli.utils.errors import UsageError
    from strcli.utils.devices import check_device_name
    from strcli.model.config import STRConfig
    from strcli.train.evaluate import check_precision
    from strcli.train.flags import check_folder_flag, check_training_values
    from strcli.train.trainer import RECIPES, check_data_dir

    if recipe not in RECIPES:
        raise UsageError(f"unknown --recipe {recipe!r}; choose {' or '.join(RECIPES)}.")
    STRConfig().ablate(ablation)  # an unknown name fails here, before any file is read
    check_precision(precision)
    check_training_values(epochs=epochs, iterations=iterations, batch_size=batch_size, lr=lr, seed=seed,
                          workers=workers)
    check_device_name(device)
    check_folder_flag("--out", out or Path("runs"))
    config = _model_config(model_config)  # a bad --model-config before any data or weights
    chosen = RECIPES[recipe].replace(epochs=epochs, iterations=iterations, batch_size=batch_size, lr=lr,
                                     datasets_2d=_names(datasets_2d), datasets_3d=_names(datasets_3d),
                                     h36m_smpl=h36m_smpl or None)
    check_data_dir(chosen, data_dir)  # every missing file named at once, before any download
    out = out or Path("runs") / (recipe + ("" if ablation == "full" else f"-{ablation}"))
    if (out / "last.pt").is_file() and not resume:
        raise UsageError(f"{out} already holds a run.", "Add --resume to continue it, or choose another --out.")
    if resume and not (out / "last.pt").exists():
        raise UsageError(f"nothing to resume in {out}: " + ("it holds no last.pt, so no epoch finished"
                                                            if out.is_dir() else "no such run folder") + ".",
                         "Run the command without --resume.")
    with _interrupt_hint(out):
        _train(chosen, data_dir, out, ablation, resume, lr, spin, no_spin, config, smpl_dir, seed, workers, device,
               offline, quiet, precision)


@contextlib.contextmanager
def _interrupt_hint(out: Path) -> Iterator[None]:
    """A Ctrl-C or SIGTERM during `train` says what rerunning does: resume from the last
    finished epoch's last.pt, or, when none finished, start again (reconstruct's wording,
    about videos and downloads, is not train's)."""
    from strcli.utils.errors import Interrupted

    def hint() -> str:
        if (out / "last.pt").is_file():
            kept = "last.pt and best.pt" if (out / "best.pt").is_file() else "last.pt"
            return (f"the epochs that finished are kept in {out} ({kept}), the one in progress is lost; "
                    "rerun the same command with --resume to go on from the last finished epoch.")
        return "nothing was saved (no epoch finished); run the same command again, without --resume."

    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("Ctrl-C", 130, hint()) from None
    except Interrupted as err:
        err.hint = hint()
        raise


def _train(chosen: Any, data_dir: Path, out: Path, ablation: str, resume: bool, lr: float | None, spin: Path | None,
           no_spin: bool, config: Any, smpl_dir: Path | None, seed: int, workers: int, device: str, offline: bool,
           quiet: bool, precision: str) -> None:
    from strcli.train.trainer import Trainer, training_assets

    torch_device = _train_device(device)
    assets = training_assets(smpl_dir, spin, use_spin=not no_spin, download=not offline)
    trainer = Trainer(chosen, data_dir, out, assets.body, torch_device, ablation, assets.spin, seed, workers,
                      config, assets.mean_params, precision)
    if trainer.rank == 0:
        for note in (*assets.notes, *trainer.notes):
            stderr.print(note, markup=False, highlight=False, soft_wrap=True)
    if resume:
        trainer.resume(out / "last.pt", lr)  # --lr given: the learning rate from here on
    with count_progress(stderr, quiet or trainer.rank != 0) as bar:
        task = bar.add_task(f"epoch {trainer.epoch + 1}", total=chosen.iterations, unit="iterations")

        def iteration(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"epoch {trainer.epoch + 1}")

        def epoch(record: Any) -> None:
            stderr.print(_epoch_line(record, chosen.epochs, chosen.val_dataset))

        try:
            trainer.fit(on_iteration=iteration, on_epoch=epoch)
        finally:
            trainer.close()
    if trainer.rank == 0:
        print(f"{out / 'best.pt'} (best validation PA-MPJPE {trainer.best:.1f} mm)")


@app.command()
@reports_errors
def evaluate(
    data_dir: DataDirOpt,
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint to score: STR (e.g. runs/w3dpw/best.pt), "
                                                      "a published TCMR or VIBE file, or SPIN's (its "
                                                      "regressor, per frame).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="str, tcmr, vibe or spin: refuse a --checkpoint of "
                                                            "another kind (default: whatever it is). spin without "
                                                            "--checkpoint scores the manifest's spin_checkpoint.")
                     ] = None,
    datasets: Annotated[str | None, typer.Option(help="3dpw,mpii3d,h36m (default: every test file found).")] = None,
    ablation: Annotated[str | None, typer.Option(help="Ablations instead: 'all' (Table 2), 'extra' (the "
                                                      "authors' extra ablations), 'everything', or variants "
                                                      "(no_ttr,ttr_2_fragments,...), trained with recipe wo3dpw "
                                                      "into --runs-dir (finished runs are reused, interrupted "
                                                      "ones resumed), scored on MPI-INF-3DHP beside the "
                                                      "reported numbers.")] = None,
    runs_dir: Annotated[Path, typer.Option(help="With --ablation: where the variants' runs go.")] = Path("runs"),
    epochs: EpochsOpt = None,
    iterations: IterationsOpt = None,
    batch_size: BatchOpt = None,
    model_config: ModelConfigOpt = None,
    no_spin: NoSpinOpt = False,
    seed: SeedOpt = 0,
    workers: WorkersOpt = 2,
    json_out: Annotated[Path | None, typer.Option(help="Write the table as JSON here (default: beside the "
                                                       "checkpoint, <name>.eval.json; with --ablation, "
                                                       "<runs-dir>/table2.json).")] = None,
    smpl_dir: SmplDirOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "fp32",
) -> None:
    """Score a checkpoint Table-1 style (MPJPE, PA-MPJPE, MPVPE, Accel in mm), or train and score the Table 2 variants (--ablation)."""
    from strcli.utils.errors import UsageError
    from strcli.model.published import TEMPORAL_MODELS, load_temporal
    from strcli.train.evaluate import (DATASET_TITLES, NonFinitePredictions, check_precision, evaluate as score,
                                       scores_json, table_rows, test_data_problem)
    from strcli.utils.errors import CorruptAssetError
    from strcli.train.trainer import training_assets
    from strcli.utils.devices import check_device_name
    from strcli.train.flags import check_file_flag, check_folder_flag, check_training_values

    check_precision(precision)
    check_training_values(epochs=epochs, iterations=iterations, batch_size=batch_size, seed=seed, workers=workers)
    check_device_name(device)
    check_file_flag("--json-out", json_out)
    if ablation is not None:
        check_folder_flag("--runs-dir", runs_dir)
        _evaluate_ablations(ablation, data_dir, runs_dir, epochs, iterations, batch_size, model_config, no_spin,
                            seed, workers, json_out, smpl_dir, device, offline, precision)
        return
    if model is not None and model not in TEMPORAL_MODELS:
        raise UsageError(f"--model {model}: choose {', '.join(TEMPORAL_MODELS)}.")
    if checkpoint is None and model != "spin":
        raise UsageError("evaluate needs --checkpoint FILE (or --ablation NAME, or --model spin).")
    names = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    if checkpoint is None:  # --model spin: SPIN's own file, the manifest's spin_checkpoint
        from strcli.weights.registry import ensure

        data_problem = test_data_problem(data_dir, names)
        if data_problem:
            raise UsageError(f"{data_problem}.", "See README, 'Reproducing the paper', for where to get the test files.")
        checkpoint = ensure("spin_checkpoint", download=not offline).path
    _check_evaluate_paths(test_data_problem(data_dir, names), checkpoint)  # before any weights are fetched
    torch_device = _train_device(device)
    assets = training_assets(smpl_dir, None, use_spin=False, download=not offline)
    for note in assets.notes:
        stderr.print(note, markup=False, highlight=False, soft_wrap=True)
    network, kind, meta = load_temporal(checkpoint, model)
    network = network.to(torch_device)
    body = assets.body.to(torch_device)
    with count_progress(stderr, quiet) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, unit="sequences")
            bar.update(tasks[name], completed=done)

        try:
            scores = score(network, body, data_dir, torch_device, names, progress, precision)
        except NonFinitePredictions as err:
            raise CorruptAssetError(f"{checkpoint} is not a usable network: {err.message}.",
                                    "Its weights overflow (a training run that diverged); score another checkpoint, "
                                    "e.g. the best.pt of a run that did not diverge.") from err
    title = kind.upper() + (f", {meta['ablation']}" if kind == "str" else "")
    table = Table(title=f"{checkpoint.name} ({title})")
    for column in ("data set", "frames", "MPJPE", "PA-MPJPE", "MPVPE", "Accel"):
        table.add_column(column, justify="left" if column == "data set" else "right")
    for row in table_rows(scores):
        table.add_row(*row)
    stdout.print(table)
    stdout.print("millimetres (Accel: mm per frame squared); TCMR's protocol, see docs/reproducing.md")
    for result in scores:
        if result.skipped_videos:
            stdout.print(f"{DATASET_TITLES[result.dataset]}: skipped {result.skipped_videos} sequence(s), "
                         f"{result.skipped_frames} "
                         "frames, shorter than 16 frames after invalid rows were dropped (TCMR's rule)",
                         soft_wrap=True)
    target = json_out or checkpoint.with_name(checkpoint.stem + ".eval.json")
    write_text_whole(target, scores_json(scores, {"checkpoint": str(checkpoint), "model": kind,
                                             "ablation": meta.get("ablation"), "meta": meta}))
    print(f"{target}")


def _check_evaluate_paths(data_problem: str | None, checkpoint: Path) -> None:
    """Refuse, in one message, the data folder's problem (`test_data_problem`) and a
    --checkpoint that is missing: exit 2 when the data is wrong, else 3 (a missing
    weights file, as for reconstruct --checkpoint)."""
    from strcli.utils.errors import MissingAssetError, UsageError

    checkpoint_problem = (f"--checkpoint {checkpoint} does not exist" if not checkpoint.exists() else
                          f"--checkpoint {checkpoint} is a folder, not a file" if checkpoint.is_dir() else None)
    data_hint = "See docs/reproducing.md for where to get the test files."
    if data_problem and checkpoint_problem:
        raise UsageError(f"{data_problem}; and {checkpoint_problem}.", f"Check both paths. {data_hint}")
    if data_problem:
        raise UsageError(f"{data_problem}.", data_hint)
    if checkpoint_problem:
        raise MissingAssetError(f"{checkpoint_problem}.", "Check the path (e.g. runs/w3dpw/best.pt).")


def _evaluate_ablations(ablation: str, data_dir: Path, runs_dir: Path, epochs: int | None,
                        iterations: int | None, batch_size: int | None, model_config: Path | None,
                        no_spin: bool, seed: int, workers: int, json_out: Path | None, smpl_dir: Path | None,
                        device: str, offline: bool, precision: str = "fp32") -> None:
    from strcli.train.ablations import parse_variants, run_ablations
    from strcli.train.trainer import RECIPES, training_assets

    from strcli.train.trainer import check_data_dir

    variants = parse_variants(ablation)
    config = _model_config(model_config)  # a bad --model-config before any data or weights
    recipe = RECIPES["wo3dpw"].replace(epochs=epochs, iterations=iterations, batch_size=batch_size)
    check_data_dir(recipe, data_dir)  # the variants train: every missing file named, before any download
    assets = training_assets(smpl_dir, None, use_spin=not no_spin, download=not offline)
    for note in assets.notes:
        stderr.print(note, markup=False, highlight=False, soft_wrap=True)

    def epoch(variant: str, record: Any) -> None:
        stderr.print(_epoch_line(record, recipe.epochs, recipe.val_dataset, f"{variant}: "))

    results = run_ablations(variants, recipe, data_dir, runs_dir, assets, _train_device(device),
                            config, seed, workers, epoch, precision)
    if not results:  # not process 0 under torchrun
        return
    table = Table(title="Ablations (Table 2 and the authors' extras): MPI-INF-3DHP")
    # The variant's name is never cut or folded (a narrow terminal wraps the other columns).
    table.add_column("variant", no_wrap=True, min_width=max(len(r.variant) for r in results))
    for column in ("PA-MPJPE", "Accel", "reported PA-MPJPE", "reported Accel", "reported by"):
        table.add_column(column, justify="left" if column == "reported by" else "right")
    for r in results:
        rep = r.reported
        table.add_row(r.variant, f"{r.score.pa_mpjpe:.1f}", f"{r.score.accel:.1f}",
                      *("-" if v is None else f"{v:.1f}" for v in ((rep.pa_mpjpe, rep.accel) if rep else (None, None))),
                      {"paper": "paper, Table 2", "authors": "authors' repository"}.get(rep.source, "-")
                      if rep else "-")
    stdout.print(table)
    stdout.print("millimetres (Accel: mm per frame squared); TCMR's protocol, see docs/reproducing.md")
    target = json_out or runs_dir / "table2.json"
    write_text_whole(target, json.dumps({"recipe": recipe.name, "dataset": "mpii3d", "variants": [
        {"variant": r.variant, "checkpoint": str(r.checkpoint), "pa_mpjpe": r.score.pa_mpjpe,
         "mpjpe": r.score.mpjpe, "accel": r.score.accel, "frames": r.score.frames,
         "paper_pa_mpjpe": r.paper[0] if r.paper else None, "paper_accel": r.paper[1] if r.paper else None,
         "reported_pa_mpjpe": r.reported.pa_mpjpe if r.reported else None,
         "reported_accel": r.reported.accel if r.reported else None,
         "reported_by": r.reported.source if r.reported else None}
        for r in results]}, indent=2))
    print(f"{target}")
