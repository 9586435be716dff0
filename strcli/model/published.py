"""Checkpoints other projects published, recognised by their structure and loaded into our
modules: TCMR's and VIBE's temporal models (`strcli.model.tcmr`, `strcli.model.vibe`),
SPIN's backbone and regressor (`strcli.model.spin` for `--model spin`), and strcli's own
files.

Facts of the released layouts (docs/baselines.md): TCMR and VIBE files are dicts with
`epoch`, `performance` (a numpy number), `gen_state_dict` (the model), `gen_optimizer`,
`disc_motion_state_dict` and `disc_motion_optimizer`; the model's keys are `encoder.*`
and `regressor.*`, and `regressor.smpl.*` holds a copy of the SMPL model's buffers (smplx
registers them), which strcli does not use: bodies come from your own SMPL file. SPIN's
file is `{"model": HMR state dict, ...}`. Everything is read with
`strcli.model.checkpoints.read_checkpoint_file`: no code runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from strcli.model.checkpoints import (FORMAT, TRAIN_STATE_FORMAT, check_state_dict, load_state_dict_checked,
                                      read_checkpoint_file)
from strcli.utils.errors import CorruptAssetError
from strcli.config import TEMPORAL_MODELS  # noqa: F401 (the --model names, re-exported)
from strcli.model.regressor import MeanParams
from strcli.model.spin import SPIN
from strcli.model.tcmr import TCMR
from strcli.model.vibe import VIBE

SMPL_COPY_PREFIX = "regressor.smpl."
# What a file is, in words, by kind.
KIND_NAMES = {
    "str": "strcli STR checkpoint", "train_state": "strcli training state (last.pt of `strcli train`)",
    "tcmr": "TCMR checkpoint", "vibe": "VIBE checkpoint", "spin": "SPIN checkpoint",
}


def recognise(raw: Mapping[str, Any]) -> str | None:
    """The kind of a loaded checkpoint dict (a key of KIND_NAMES), or None."""
    if raw.get("format") == FORMAT:
        return "str"
    if raw.get("format") == TRAIN_STATE_FORMAT:
        return "train_state"
    state = _model_state(raw)
    if state is None:
        return None
    if "encoder.gru_cur.weight_ih_l0" in state:
        return "tcmr"
    if "encoder.gru.weight_ih_l0" in state:
        return "vibe"
    if "layer4.2.conv3.weight" in state or "module.layer4.2.conv3.weight" in state:
        return "spin"
    return None


def _model_state(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for key in ("gen_state_dict", "model", "state_dict"):
        if isinstance(raw.get(key), Mapping):
            return raw[key]
    return raw if raw and all(isinstance(v, Tensor) for v in raw.values()) else None


def check_kind(raw: Mapping[str, Any], expected: str, path: str | Path) -> None:
    """Refuse a file of another kind, saying what it is."""
    kind = recognise(raw)
    if kind == expected:
        return
    what = f"a {KIND_NAMES[kind]}" if kind else "no checkpoint strcli knows (top-level keys: " + \
        ", ".join(sorted(map(str, raw))[:6]) + ")"
    hint = {"tcmr": "--model tcmr", "vibe": "--model vibe", "str": "--model str",
            "spin": "--model spin (or --backbone)"}.get(kind or "")
    raise CorruptAssetError(f"{path} is {what}, not a {KIND_NAMES[expected]}.",
                            f"Pass it with {hint}." if hint else "Check which file you meant.")


# SPIN's regressor keys in its HMR state dict (the rest is the ResNet-50, which the road's
# backbone loads): the names of `strcli.model.Regressor`.
SPIN_REGRESSOR_PREFIXES = ("fc1.", "fc2.", "decpose.", "decshape.", "deccam.", "init_pose", "init_shape",
                           "init_cam")


@dataclass(frozen=True)
class PublishedModel:
    kind: str  # "tcmr", "vibe" or "spin"
    model: nn.Module  # eval mode, on the CPU
    meta: dict[str, Any] = field(default_factory=dict)  # epoch, performance (the file's 3DPW score)
    smpl_copy_keys: int = 0  # regressor.smpl.* entries set aside


def build_published(kind: str, mean_params: MeanParams | None = None) -> nn.Module:
    """A randomly initialised TCMR, VIBE or SPIN, shaped as the released files."""
    if kind == "tcmr":
        return TCMR(mean_params=mean_params)
    if kind == "vibe":
        return VIBE(mean_params=mean_params)
    if kind == "spin":
        return SPIN(mean_params=mean_params)
    raise ValueError(f"no published model {kind!r}")


def load_published(path: str | Path, kind: str) -> PublishedModel:
    """A released TCMR or VIBE file, loaded strictly (every learnt key must be there, with
    its shape, and nothing else) after setting aside its copy of SMPL's buffers; of a SPIN
    file, its regressor (every regressor key, strictly; the ResNet-50 is the backbone's)."""
    return published_from(read_checkpoint_file(path), kind, path)


def published_from(raw: Mapping[str, Any], kind: str, path: str | Path) -> PublishedModel:
    """`load_published` for a file already read (`raw`)."""
    check_kind(raw, kind, path)
    state = check_state_dict(_model_state(raw), path)  # names and tensors, all finite (the SMPL copy too)
    learnt = {k.removeprefix("module."): v for k, v in state.items()
              if not k.removeprefix("module.").startswith(SMPL_COPY_PREFIX)}
    model = build_published(kind)
    if kind == "spin":
        head = {k: v for k, v in learnt.items() if k.startswith(SPIN_REGRESSOR_PREFIXES)}
        load_state_dict_checked(model.regressor, head, str(path))
        return PublishedModel(kind, model.eval(), {}, 0)
    load_state_dict_checked(model, learnt, str(path))
    meta = {k: _plain(raw[k]) for k in ("epoch", "performance") if k in raw}
    if not all(isinstance(v, (int, float, str, type(None))) for v in meta.values()):
        raise CorruptAssetError(f"{path}: its epoch or performance is not a number "
                                f"({', '.join(f'{k}: {type(v).__name__}' for k, v in meta.items())}).",
                                "Re-copy or re-download it.")
    return PublishedModel(kind, model.eval(), meta, len(state) - len(learnt))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def load_temporal(path: str | Path, expected: str | None = None) -> tuple[nn.Module, str, dict[str, Any]]:
    """Any model's checkpoint (STR, TCMR, VIBE, or SPIN's: its regressor), by its structure:
    (model in eval mode on the CPU, kind, meta). With `expected`, a file of another kind is
    refused."""
    from strcli.model.checkpoints import load_model

    raw = read_checkpoint_file(path)
    kind = recognise(raw)
    if expected is not None or kind not in TEMPORAL_MODELS:
        check_kind(raw, expected or "str", path)
    if kind == "str":
        model, checkpoint = load_model(path, raw=dict(raw))
        return model, kind, {**checkpoint.meta, "ablation": checkpoint.config.ablation}
    assert kind is not None
    loaded = published_from(raw, kind, path)
    return loaded.model, kind, loaded.meta
