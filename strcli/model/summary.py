"""What `strcli info` reports: the model's configuration and size, and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from strcli import __version__
from torch import nn

from strcli.model import STR, STRConfig, count_parameters

# The authors' count (str-authors.md): 127.19M for STR, counted with SPIN's HMR (ResNet-50
# without its fc layer, and SPIN's regressor: 26.98M) as their 108.89M for TCMR is. STR's
# own network (temporal modules, integration networks, regressor) is the difference.
AUTHORS_TOTAL = 127_190_000
AUTHORS_HMR = 26_980_000
AUTHORS_STR_PARAMETERS = AUTHORS_TOTAL - AUTHORS_HMR  # about 100.2M


# What `strcli info` lists, in the order the data flows, each apart: key -> label.
COMPONENTS: dict[str, str] = {
    "ttr": "TTR (Eq. 1-2)",
    "ste_time": "STE time (Eq. 3-4)",
    "ste_frequency": "STE frequency (Eq. 5)",
    "senet": "SENet instead of STE (ablation)",
    "str_integration": "integration network, Eq. 6",
    "strategies": "integration strategies (Algorithm 1)",
    "z_integration": "integration network, Eq. 7",
    "regressor": "regressor (SPIN's)",
}


def component_modules(model: STR) -> dict[str, nn.Module | None]:
    """Each component of `COMPONENTS` in `model`, None where the variant has none."""
    ste = model.ste
    return {
        "ttr": model.ttr,
        "ste_time": getattr(ste, "time", None),
        "ste_frequency": getattr(ste, "frequency", None),
        "senet": ste if model.config.ste_form == "senet" else None,
        "str_integration": model.str_integration,
        "strategies": model.strategies,
        "z_integration": model.z_integration,
        "regressor": model.regressor,
    }


def component_parameters(model: STR) -> dict[str, int]:
    """Parameters of each component (0 where absent), then "total". The components are
    disjoint and cover the model, so they sum to the total (checked: RuntimeError)."""
    counts = {key: count_parameters(module) for key, module in component_modules(model).items()}
    total = count_parameters(model)
    if sum(counts.values()) != total:
        raise RuntimeError(f"STR's components hold {sum(counts.values())} parameters, the model {total}: "
                           "a component is missing from strcli.model.summary.COMPONENTS.")
    return {**counts, "total": total}


def describe_model(ablation: str = "full", checkpoint: Path | None = None) -> dict[str, Any]:
    if checkpoint is not None:
        from strcli.model.checkpoints import load_checkpoint

        config = load_checkpoint(checkpoint).config
    else:
        config = STRConfig().ablate(ablation)
    with torch.device("meta"):  # shapes only: no memory, no random init
        model = STR(config)
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                         for i in range(torch.cuda.device_count())]
    return {
        "strcli": __version__, "torch": torch.__version__, "devices": ", ".join(devices),
        "ablation": config.ablation, "config": config.to_dict(),
        "parameters": component_parameters(model),
        "authors_parameters": {"str": AUTHORS_STR_PARAMETERS, "counted_with_hmr": AUTHORS_TOTAL,
                               "spin_hmr": AUTHORS_HMR},
        # The authors counted their full model only: an ablation, or other widths, is not theirs.
        "comparable_with_authors": config == STRConfig(),
    }
