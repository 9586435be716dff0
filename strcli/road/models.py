"""The networks of the road, loaded once for all videos: which weights files each model
needs, checked and fetched together, and the detector, ResNet-50, temporal models and SMPL
body built from them (lazily, when the first video that is not skipped needs them).

Here, not in `strcli.model`: loading reads the weights registry and builds the road's
feature extractor and detector, and `strcli.model` holds only the networks and their files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from strcli.body.files import TEST_BODY_NOTE, is_test_body
from strcli.body.smpl import Body, find_smpl_file
from strcli.model.checkpoints import load_checkpoint, load_model, read_checkpoint_file
from strcli.config import WINDOW
from strcli.utils.devices import cpu_native_bf16, resolve_device, resolve_precision
from strcli.utils.errors import CorruptAssetError, MissingAssetError, ResourceError, StrcliError, UsageError
from strcli.road.features import Backbone, FeatureExtractor, load_spin_backbone, load_spin_regressor
from strcli.model import STR, MeanParams, STRConfig, build_model
from strcli.road.options import ModelSources, ReconstructOptions  # noqa: F401 (checked without torch; re-exported)
from strcli.road.outputs import (
    WeightsUsed,
)
from strcli.model.published import (
    KIND_NAMES,
    TEMPORAL_MODELS,
    build_published,
    check_kind,
    published_from,
    recognise,
)
from strcli.road.tracking import (
    USER_DETECTOR_HINT,
    check_detector_file,
)
from strcli.weights.registry import (Manifest, Need, Progress as DownloadProgress, Status, check_asset, ensure, gather,
                            recorded_sha256, sha256_file)

# ----------------------------------------------------------------------------- progress


# The weights each temporal model uses when no --checkpoint file is given for it.
# The ways on when STR has no weights, in the order a user wants them: real bodies first.
STR_WEIGHTS_HINT = ("For real bodies today, add --model tcmr (the published TCMR weights, fetched with checksums on "
                    "first use); or train STR (`strcli train`) and pass --checkpoint FILE or `strcli weights import "
                    "FILE --name str_checkpoint`; or, for testing the pipeline only, pass --untrained (a randomly "
                    "initialised STR: the bodies are meaningless).")
DEFAULT_ASSETS = {"str": "str_checkpoint", "tcmr": "tcmr_demo", "vibe": "vibe_wo_3dpw", "spin": "spin_checkpoint"}


class Models:
    """The networks of the road, loaded once for all videos.

    `load_models(..., lazy=True)` resolves and checksums every weights file (so the
    fingerprints of finished videos can be compared) but builds the networks only when
    `ready()` is first called: a batch whose videos are all skipped never builds them."""

    def __init__(self, device: torch.device, detector: Path | None, weights: list[WeightsUsed],
                 warnings: list[str] | None = None, temporal: dict[str, nn.Module] | None = None,
                 extractor: FeatureExtractor | None = None, body: Body | None = None,
                 builder: Callable[[], tuple[dict[str, nn.Module], FeatureExtractor, Body]] | None = None,
                 detector_hint: str = USER_DETECTOR_HINT, precision: str | None = None) -> None:
        self.device = device
        # the detector's and the ResNet-50's, resolved (`--precision`): bf16 or fp32
        self.precision = precision or ("bf16" if device.type == "cuda" else "fp32")
        self.detector_hint = detector_hint  # how to get a good detector file, if it cannot be loaded
        self.detector = detector  # loaded per video (a fresh tracker each time)
        self.weights = weights
        self.warnings = warnings if warnings is not None else []
        self.temporal: dict[str, nn.Module] = temporal or {}  # name -> model (eval), in --model order
        self.extractor = extractor
        self.body = body
        self._builder = builder
        self.on_built: Callable[[], None] | None = None  # called once the lazy networks are built

    @property
    def built(self) -> bool:
        return self._builder is None

    def ready(self) -> Models:
        """Build the networks now if they are not yet (errors: CorruptAssetError, ResourceError)."""
        if self._builder is not None:
            try:
                self.temporal, self.extractor, self.body = self._builder()
            except StrcliError as err:
                self.build_error = err  # the batch stops: no video can run without the networks
                raise
            self._builder = None
            if self.on_built is not None:
                self.on_built()
        return self

    build_error: StrcliError | None = None


def _file_weights(name: str, path: Path, note: str = "") -> WeightsUsed:
    return WeightsUsed(name, str(path.resolve()), sha256_file(path), note)


def _asset_weights(name: str, asset: str, download: bool) -> WeightsUsed:
    state = ensure(asset, download=download)
    sha = recorded_sha256(asset) if state.status == Status.PRESENT else sha256_file(state.path)
    return WeightsUsed(name, str(state.path.resolve()), sha, f"asset {asset}")


def load_models(sources: ModelSources, device_name: str = "auto", batch_size: int = 64,
                need_detector: bool = True, compile_backbone: bool = False, lazy: bool = False,
                also: tuple[str, ...] = (),
                download_progress: Callable[[str], DownloadProgress] | None = None,
                precision: str = "auto") -> Models:
    """Everything `reconstruct_video` needs. Every missing file (and the assets named in
    `also`, e.g. the sample video) is found before anything is downloaded, and all of them
    are named in one error (`strcli.weights.registry.gather`: exit 3, or 5 when a download failed).
    With `lazy`, the files are found, read and checksummed now and the networks built on
    `Models.ready()`. `download_progress(name)` gets each download's (bytes done, total).
    `precision` (auto, fp32, bf16): the detector's and the ResNet-50's (`resolve_precision`)."""
    device = resolve_device(device_name)
    used_precision = resolve_precision(precision, device)
    files = _checkpoints_by_model(sources)
    smpl = _gather_files(sources, need_detector, set(files), also, download_progress)
    weights: list[WeightsUsed] = []
    warnings: list[str] = []

    detector = None
    detector_hint = USER_DETECTOR_HINT
    if need_detector:
        if sources.detector is not None:
            if not sources.detector.is_file() and sources.detector.suffix != ".yaml":
                raise MissingAssetError(f"detector weights {sources.detector} do not exist.",
                                        "Check the path, or leave --detector out to use the manifest's detector.")
            detector = sources.detector
            check_detector_file(detector)  # before any video: a file that would run code is refused
            if detector.is_file():
                weights.append(_file_weights("detector", detector))
            else:  # an ultralytics model yaml: an untrained network
                weights.append(WeightsUsed("detector", str(detector), "", "untrained (built from yaml)"))
                warnings.append("the detector is untrained (built from a yaml): it finds no one reliably.")
        else:
            used = _asset_weights("detector", "detector", sources.download)
            detector = Path(used.path or "")
            detector_hint = "Fetch it again with `strcli weights fetch detector`."
            check_detector_file(detector, detector_hint)
            weights.append(used)

    spin: Path | None = sources.backbone
    if spin is None:
        try:
            spin = Path(_asset_weights("backbone", "spin_checkpoint", sources.download).path or "")
        except MissingAssetError:
            if not sources.untrained:
                raise
            spin = None
    if spin is not None:
        weights.append(_file_weights("backbone", spin, "SPIN ResNet-50"))
    else:
        weights.append(WeightsUsed("backbone", None, "", f"random init (seed {sources.seed})"))
        warnings.append("the ResNet-50 backbone is randomly initialised (no SPIN checkpoint: `strcli weights "
                        "fetch spin_checkpoint`, or `strcli weights import` a copy).")

    plans: list[tuple[str, Path | None, dict[str, Any] | None]] = []
    for name in sources.models:
        path, raw = files.pop(name, (None, None))
        if name == "str":
            path, raw = _plan_str(sources, path, raw, weights, warnings)
        else:
            path, raw = _plan_published(name, sources, path, raw, weights, warnings)
        plans.append((name, path, raw))
    if is_test_body(smpl):  # named in the manifest (weights, warnings) so its files never travel without it
        weights.append(_file_weights("smpl", smpl, TEST_BODY_NOTE))
        warnings.append(f"the body model {smpl} is {TEST_BODY_NOTE}: for testing the pipeline only.")
    else:
        weights.append(_file_weights("smpl", smpl))

    def build() -> tuple[dict[str, nn.Module], FeatureExtractor, Body]:
        torch.manual_seed(sources.seed)
        backbone = Backbone()
        if spin is not None:
            load_spin_backbone(backbone, spin)
        temporal: dict[str, nn.Module] = {}
        while plans:  # each file's contents are let go once loaded
            name, path, raw = plans.pop(0)
            temporal[name] = (_build_str if name == "str" else _build_published)(name, sources, path, raw, spin)
        body = Body.from_file(smpl)
        try:
            extractor = FeatureExtractor(backbone, device, batch_size, compile_backbone, used_precision)
            if extractor.note:
                warnings.append(extractor.note)
            return ({k: m.to(device).eval() for k, m in temporal.items()}, extractor, body.to(device).eval())
        except torch.cuda.OutOfMemoryError as err:
            raise ResourceError(f"the networks do not fit in the memory of {device}.",
                                "Free the GPU (other processes?) or use --device cpu.") from err

    if used_precision == "bf16" and device.type == "cpu" and not cpu_native_bf16():
        warnings.append("--precision bf16 on a CPU without native bf16 (AVX512-BF16, AMX): emulated, slower "
                        "than fp32; --precision auto picks fp32 here.")
    models = Models(device, detector, weights, warnings, builder=build, detector_hint=detector_hint,
                    precision=used_precision)
    return models if lazy else models.ready()


def files_needed(sources: ModelSources, need_detector: bool, given: set[str]) -> list[Need]:
    """The manifest assets a run with `sources` uses (`given`: the models a --checkpoint file
    is for), in the order the road uses them, each with what the run does without it."""
    needs = []
    if need_detector and sources.detector is None:
        needs.append(Need("detector"))
    if sources.backbone is None:
        needs.append(Need("spin_checkpoint", "a randomly initialised backbone" if sources.untrained else ""))
    random = "a randomly initialised {}" if sources.untrained else ""
    for name in sources.models:
        if name in given:
            continue
        if name == "str":
            needs.append(Need(DEFAULT_ASSETS["str"], random.format("STR"),
                              "or pass --checkpoint FILE; or, for testing the pipeline only, --untrained (a "
                              "randomly initialised STR: the bodies are meaningless)",
                              "no trained STR weights: the STR authors published none, and no str_checkpoint was "
                              "imported"))
            if sources.untrained and check_asset(Manifest.load().get(DEFAULT_ASSETS["str"])).status == Status.MISSING:
                needs.append(Need("smpl_mean_params", "the built-in zero pose and mean shape"))
        elif all(need.asset != DEFAULT_ASSETS[name] for need in needs):  # spin's file may be the backbone's
            needs.append(Need(DEFAULT_ASSETS[name], random.format(name.upper())))
    return needs


def _gather_files(sources: ModelSources, need_detector: bool, given: set[str], also: tuple[str, ...],
                  download_progress: Callable[[str], DownloadProgress] | None) -> Path:
    """Every file of the run present (downloaded if allowed), or one error naming all that
    are missing (`strcli.weights.registry.gather`); the SMPL file's path."""
    try:
        smpl = find_smpl_file("neutral", sources.smpl_dir)
        elsewhere = []
    except MissingAssetError as err:
        smpl, elsewhere = None, [err]
    gather([Need(name) for name in also] + files_needed(sources, need_detector, given), sources.download,
           elsewhere, download_progress)
    for name in also:
        ensure(name, download=False)  # present now; a corrupt one is refused here (exit 4)
    assert smpl is not None  # gather raised otherwise
    return smpl


def _checkpoints_by_model(sources: ModelSources) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Each --checkpoint file (path and contents), recognised by its structure, under the
    model it is for; a file for a model that is not run, or of no known kind, is an error
    that says what it is."""
    files: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in sources.checkpoints:
        raw = read_checkpoint_file(path)
        kind = recognise(raw)
        if kind not in sources.models:
            if len(sources.models) == 1 or kind not in TEMPORAL_MODELS:
                check_kind(raw, sources.models[0] if len(sources.models) == 1 else "str", path)
            raise UsageError(f"{path} is a {KIND_NAMES[kind]}, but --model is {','.join(sources.models)}.",
                             f"Add {kind} to --model, or leave the file out.")
        if kind in files:
            raise UsageError(f"two --checkpoint files for {kind}: {files[kind][0]} and {path}.",
                             "Pass one file per --model.")
        files[kind] = (path, raw)
    return files


def _plan_published(name: str, sources: ModelSources, checkpoint: Path | None, raw: dict[str, Any] | None,
                    weights: list[WeightsUsed], warnings: list[str]) -> tuple[Path | None, dict[str, Any] | None]:
    """TCMR, VIBE or SPIN: the released file (default: the manifest's) read and recorded, or None
    for a random one (--untrained)."""
    asset = DEFAULT_ASSETS[name]
    if checkpoint is None:
        try:
            checkpoint = Path(_asset_weights(name, asset, sources.download).path or "")
        except MissingAssetError:
            if not sources.untrained:
                raise
    if checkpoint is not None:
        raw = raw if raw is not None else read_checkpoint_file(checkpoint)
        check_kind(raw, name, checkpoint)
        epoch = raw.get("epoch")
        epoch = epoch.item() if hasattr(epoch, "item") else epoch
        note = KIND_NAMES[name] + (f", epoch {epoch}" if epoch is not None else "")
        weights.append(_file_weights(name, checkpoint, note + (" (its regressor)" if name == "spin" else "")))
        return checkpoint, raw
    _mean_params(sources, weights, warnings)  # recorded now; loaded again when the model is built
    weights.append(WeightsUsed(name, None, "", f"random init (seed {sources.seed})"))
    warnings.append(f"{name.upper()} is UNTRAINED (--untrained): its bodies are meaningless.")
    return None, None


def _build_published(name: str, sources: ModelSources, checkpoint: Path | None, raw: dict[str, Any] | None,
                     spin: Path | None) -> nn.Module:
    if checkpoint is not None and raw is not None:
        return published_from(raw, name, checkpoint).model
    torch.manual_seed(sources.seed)
    model = build_published(name, _mean_params(sources, [], []))
    if spin is not None:
        load_spin_regressor(model.regressor, spin)
    return model


def _mean_params(sources: ModelSources, weights: list[WeightsUsed], warnings: list[str]) -> MeanParams:
    """SPIN's mean parameters (the smpl_mean_params asset), the regressor's starting point
    when a network is randomly initialised; without the file, the built-in neutral body.
    Which one was used goes into `weights` (so into the manifest and the fingerprint)."""
    try:
        state = ensure("smpl_mean_params", download=sources.download)
        mean = MeanParams.from_npz(state.path)
        used = WeightsUsed("mean_params", str(state.path.resolve()), sha256_file(state.path),
                           "asset smpl_mean_params")
    except (MissingAssetError, CorruptAssetError) as err:
        mean = MeanParams.neutral()
        used = WeightsUsed("mean_params", None, "", "built-in fallback (MeanParams.neutral: rest pose "
                           "upright in the camera, zero shape)")
        note = (f"SPIN's mean parameters are not available: {err.message.rstrip('.')}. The built-in fallback "
                "(the rest pose upright in the camera, zero shape) is used; get them with `strcli weights fetch smpl_mean_params` or "
                "`strcli weights import smpl_mean_params.npz`.")
        if note not in warnings:
            warnings.append(note)
    if all(w.name != "mean_params" for w in weights):
        weights.append(used)
    return mean


def _plan_str(sources: ModelSources, checkpoint: Path | None, raw: dict[str, Any] | None,
              weights: list[WeightsUsed], warnings: list[str]) -> tuple[Path | None, dict[str, Any] | None]:
    """STR: the checkpoint read and its config checked and recorded, or None for a random
    STR (--untrained)."""
    if checkpoint is None:
        try:
            checkpoint = Path(_asset_weights("str", DEFAULT_ASSETS["str"], False).path or "")
        except MissingAssetError:
            checkpoint = None
    if checkpoint is not None:
        raw = raw if raw is not None else read_checkpoint_file(checkpoint)
        config = load_checkpoint(checkpoint, raw).config
        config.check_length(WINDOW)
        weights.append(_file_weights("str", checkpoint, f"strcli checkpoint, {config.ablation}"))
        return checkpoint, raw
    if not sources.untrained:
        raise MissingAssetError("no trained STR weights: the STR authors published none, and strcli found no "
                                "str_checkpoint.", STR_WEIGHTS_HINT)
    _mean_params(sources, weights, warnings)  # recorded now; loaded again when the model is built
    note = f"random init (seed {sources.seed})" + (", regressor from SPIN" if _spin_known(weights) else "")
    weights.append(WeightsUsed("str", None, "", note))
    warnings.append("STR is UNTRAINED (--untrained): its bodies are meaningless; train it with "
                    "`strcli train` or pass --checkpoint.")
    return None, None


def _spin_known(weights: list[WeightsUsed]) -> bool:
    """Whether the backbone of `weights` comes from a SPIN file (so the regressors start from it)."""
    return any(w.name == "backbone" and w.path is not None for w in weights)


def _build_str(name: str, sources: ModelSources, checkpoint: Path | None, raw: dict[str, Any] | None,
               spin: Path | None) -> STR:
    if checkpoint is not None:
        return load_model(checkpoint, raw=raw)[0]
    torch.manual_seed(sources.seed)
    model = build_model(STRConfig(), _mean_params(sources, [], []))
    if spin is not None:
        load_spin_regressor(model.regressor, spin)
    return model
