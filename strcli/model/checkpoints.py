"""strcli's checkpoint format: the weights plus the config that built them, loaded safely.

A checkpoint is a `torch.save`d dict of plain data and tensors:
    format "strcli-checkpoint", version (int), model ("str"), config (STRConfig as a dict),
    state_dict, meta (free-form strings and numbers: epoch, metrics, strcli version).
It is read with `torch.load(weights_only=True)`, so loading never runs code. A version
below OLDEST_LAYOUT (strcli 0.1's STR) is refused before any model is built: its weights
belong to another network and must be retrained.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from strcli import __version__
from strcli.utils.errors import CorruptAssetError, UsageError
from strcli.utils.locks import WholeFile
from strcli.model import STR, STRConfig

FORMAT = "strcli-checkpoint"
# 2: the STR layout of issue 14 (the authors' network: GRU branches, one GRU in Eq. 5, TCMR's
# attention fusion, per-part encoders). 1: strcli 0.1's layout, which no longer builds.
VERSION = 2
OLDEST_LAYOUT = 2  # files of an earlier version hold another network and are refused
TRAIN_STATE_FORMAT = "strcli-train-state"  # last.pt of `strcli train`: model, optimizer, scheduler, RNG


@dataclass(frozen=True)
class Checkpoint:
    config: STRConfig
    state_dict: dict[str, Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    model: str = "str"
    version: int = VERSION


def save_checkpoint(path: str | Path, model: STR, meta: Mapping[str, Any] | None = None) -> Path:
    """Write `model` atomically (temp name, then rename)."""
    path = Path(path)
    payload = {
        "format": FORMAT, "version": VERSION, "model": "str",
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": {"strcli": __version__, **(meta or {})},
    }
    with WholeFile(path) as tmp:
        save_file(payload, tmp)
    return path


def save_file(obj: Any, path: Path) -> None:
    """`torch.save` through a Python file, so a full disk or a permission error is an
    OSError with its errno (torch's own file writer reports a RuntimeError without one)."""
    with open(path, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())


def _numpy_scalar_globals() -> list[Any]:
    """What unpickling a numpy number needs (published checkpoints store their validation
    score as one): its dtype and numpy's scalar constructor, under numpy 2's and numpy 1's
    module names. They rebuild numbers from bytes and run nothing else."""
    import numpy as np
    from numpy._core import multiarray

    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return [multiarray.scalar, (multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]


def read_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """The raw dict of any torch checkpoint (ours, SPIN's, TCMR's, VIBE's; zip or legacy
    format), loaded without executing code: `weights_only=True`, plus numpy numbers."""
    path = Path(path)
    if not path.is_file():
        from strcli.utils.errors import MissingAssetError

        if path.exists():
            raise MissingAssetError(f"checkpoint {path} is {'a folder' if path.is_dir() else 'not a regular file'}.",
                             "Name the checkpoint file itself.")
        raise MissingAssetError(f"checkpoint {path} does not exist.", "Check the path.")
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load fails in many ways (struct.error, BadZipFile, ...): all mean unreadable
        raise _unloadable(path, err) from err
    if not isinstance(raw, dict):
        raise CorruptAssetError(f"{path} holds a {type(raw).__name__}, not a checkpoint dict.")
    return raw


def load_checkpoint(path: str | Path, raw: dict[str, Any] | None = None) -> Checkpoint:
    """Our checkpoint at `path` (`raw`: its dict, if already read)."""
    raw = read_checkpoint_file(path) if raw is None else raw
    if raw.get("format") != FORMAT:
        raise CorruptAssetError(
            f"{path} is not a strcli checkpoint (top-level keys: {', '.join(sorted(map(str, raw))[:8])}).",
            "Import published TCMR/VIBE/SPIN files with `strcli weights import`.")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptAssetError(f"{path} has a checkpoint version that is not a whole number ({version!r}).",
                                LYING_HINT)
    if version > VERSION:
        raise CorruptAssetError(f"{path} has checkpoint version {version}; this strcli "
                                f"({__version__}) reads up to {VERSION}.", "Upgrade strcli.")
    if version < OLDEST_LAYOUT:
        made_by = raw.get("meta", {}).get("strcli") if isinstance(raw.get("meta"), dict) else None
        raise CorruptAssetError(
            f"{path} was made by an older STR layout (checkpoint version {version}"
            + (f", strcli {made_by}" if made_by else "") + ") and cannot be loaded into this STR.",
            "Retrain it with `strcli train` (the network changed: docs/model.md).")
    config_data = raw.get("config")
    if not isinstance(config_data, Mapping):
        raise CorruptAssetError(f"{path} has an invalid model config: a {type(config_data).__name__}, not a "
                                "mapping of STRConfig fields.", LYING_HINT)
    try:
        config = STRConfig.from_dict(dict(config_data))
    except (UsageError, TypeError, ValueError, KeyError) as err:
        raise CorruptAssetError(f"{path} has an invalid model config ({err}).", LYING_HINT) from err
    meta = raw.get("meta", {})
    if not isinstance(meta, Mapping):
        raise CorruptAssetError(f"{path} has an invalid meta entry: a {type(meta).__name__}, not a mapping.",
                                LYING_HINT)
    model = raw.get("model", "str")
    if model != "str":
        raise CorruptAssetError(f"{path} says it holds model {model!r}; strcli checkpoints hold 'str'.", LYING_HINT)
    state_dict = check_state_dict(raw.get("state_dict"), path)
    with torch.device("meta"):  # the config's shapes, without memory: a lying config may ask for terabytes
        shaped = STR(config)
    check_fits(shaped, state_dict, str(path))
    return Checkpoint(config=config, state_dict=state_dict, meta=dict(meta), model=model, version=version)


LYING_HINT = "Re-copy or re-download it; a file written by a diverged or interrupted run must be retrained."


def check_state_dict(state: Any, source: str | Path) -> dict[str, Tensor]:
    """`state` as a dict of tensors, refused (CorruptAssetError, exit 4) when it is no mapping,
    when an entry is not a tensor under a string name, or when a floating-point tensor holds
    NaN or infinity (a diverged training run writes such files; they give NaN bodies or a
    LinAlgError far from the cause)."""
    if not isinstance(state, Mapping):
        raise CorruptAssetError(f"{source} has no weights: its state dict is a {type(state).__name__}, not a "
                                "mapping of names to tensors.", LYING_HINT)
    wrong = [f"{key!r} ({type(value).__name__})" for key, value in state.items()
             if not isinstance(key, str) or not isinstance(value, Tensor)]
    if wrong:
        raise CorruptAssetError(f"{source} holds weights that are not named tensors: {', '.join(wrong[:5])}"
                                + (" …" if len(wrong) > 5 else "") + ".", LYING_HINT)
    bad = [key for key, value in state.items()
           if (value.is_floating_point() or value.is_complex()) and value.layout == torch.strided
           and not bool(torch.isfinite(value).all())]
    if bad:
        raise CorruptAssetError(f"{source} holds NaN or infinite weights in {len(bad)} tensor(s): "
                                + ", ".join(bad[:5]) + (" …" if len(bad) > 5 else "") + ".", LYING_HINT)
    return dict(state)


def load_state_dict_checked(module: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """`load_state_dict(strict=True)`, but a mismatch names every offending key, and weights
    that are not tensors or hold NaN/inf are refused (`check_state_dict`)."""
    state_dict = check_state_dict(state_dict, source)
    check_fits(module, state_dict, source)
    module.load_state_dict(state_dict, strict=True)


def check_fits(module: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """CorruptAssetError naming every key whose shape differs, is missing or is unexpected.
    `module` may live on the meta device (shapes only, no memory)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [f"{k} {tuple(state_dict[k].shape)} in the file vs {tuple(expected[k].shape)} in the model"
             for k in sorted(set(expected) & set(state_dict))
             if tuple(state_dict[k].shape) != tuple(expected[k].shape)]
    problems = []
    if wrong:
        problems.append("shape mismatch: " + "; ".join(wrong[:10]) + (" …" if len(wrong) > 10 else ""))
    if missing:
        problems.append("missing keys: " + ", ".join(missing[:10]) + (" …" if len(missing) > 10 else ""))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected[:10])
                        + (" …" if len(unexpected) > 10 else ""))
    if problems:
        change = _known_layout_change(module, missing, unexpected)
        if change is not None:
            raise CorruptAssetError(f"{source} {change[0]}", change[1])
        raise CorruptAssetError(f"{source} does not fit the model: " + " | ".join(problems) + ".",
                                "Is it a checkpoint of another model or config?")


def _known_layout_change(module: nn.Module, missing: list[str], unexpected: list[str]) -> tuple[str, str] | None:
    """(what happened, what to do) when a mismatch is the mark of a recognised change of STR's
    layout made without a new checkpoint version (so `load_checkpoint`'s version check cannot
    tell): the file predates it and must be retrained. None when it is no such change.

    - senet_for_ste lost its GRU when SENet became per frame (commit 2748420; docs/model.md,
      the `senet_for_ste` row): its files from before hold `ste.gru.*`, nothing else differs."""
    config = getattr(module, "config", None)
    if (isinstance(config, STRConfig) and config.ste_form == "senet" and not missing and unexpected
            and all(key.startswith("ste.gru.") for key in unexpected)):
        what = ("is a senet_for_ste checkpoint made before SENet became per frame: its ste.gru.* weights "
                "belong to a GRU this STR no longer has (docs/model.md, senet_for_ste).")
        todo = ("Retrain it: `strcli train --ablation senet_for_ste`, into a new --out (or a new --runs-dir "
                "for `strcli evaluate --ablation`).")
        return what, todo
    return None


def load_model(path: str | Path, device: str | torch.device = "cpu",
               raw: dict[str, Any] | None = None) -> tuple[STR, Checkpoint]:
    """Build the STR a checkpoint describes and load its weights into it (eval mode)."""
    checkpoint = load_checkpoint(path, raw)  # its shapes already fit the config's (checked on the meta device)
    model = STR(checkpoint.config)
    load_state_dict_checked(model, checkpoint.state_dict, str(path))
    return model.to(device).eval(), checkpoint


def _unloadable(path: Path, err: Exception) -> CorruptAssetError:
    """Why torch could not load `path` safely, in one line of our words (torch's own text is
    long, cut off and holds terminal colour codes)."""
    import re
    import zipfile

    from strcli.utils.errors import CorruptAssetError, MissingAssetError

    if path.stat().st_size == 0:
        return CorruptAssetError(f"{path} is empty (0 bytes), not a checkpoint.", "Re-copy or re-download it.")
    if path.suffix in (".pkl", ".npz"):
        from strcli.body.smpl import load_smpl_arrays

        try:
            load_smpl_arrays(path)
        except (CorruptAssetError, MissingAssetError):
            pass
        else:
            return CorruptAssetError(f"{path} is an SMPL model file, not a checkpoint.",
                                     f"Pass its folder with --smpl-dir, or `strcli weights import {path}`.")
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if found:
        what = (f"holds Python objects that cannot be loaded safely ({found.group(1)}): strcli loads only "
                "tensors and plain data, never code")
    elif zipfile.is_zipfile(path):
        what = "is a damaged PyTorch file (truncated or changed)"
    else:
        what = "is not a PyTorch checkpoint (or it is truncated)"
    return CorruptAssetError(f"{path} {what}.", "Pass a strcli, TCMR, VIBE or SPIN checkpoint.")

