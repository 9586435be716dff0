"""What `strcli info` reports: the model's configuration and size, and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from strcli import __version__
from strcli.model import STR, STRConfig, parameter_table

# The authors' count (str-authors.md): 127.19M for STR, counted with SPIN's HMR (ResNet-50
# without its fc layer, and SPIN's regressor: 26.98M) as their 108.89M for TCMR is. STR's
# own network (temporal modules, integration networks, regressor) is the difference.
AUTHORS_TOTAL = 127_190_000
AUTHORS_HMR = 26_980_000
AUTHORS_STR_PARAMETERS = AUTHORS_TOTAL - AUTHORS_HMR  # about 100.2M


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
        "parameters": dict(parameter_table(model)),
        "authors_parameters": {"str": AUTHORS_STR_PARAMETERS, "counted_with_hmr": AUTHORS_TOTAL,
                               "spin_hmr": AUTHORS_HMR},
        # The authors counted their full model only: an ablation, or other widths, is not theirs.
        "comparable_with_authors": config == STRConfig(),
    }
