"""What `strcli info` reports: the model's configuration and size, and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from strcli import __version__
from strcli.model import STR, STRConfig, parameter_table


def describe_model(ablation: str = "full", checkpoint: Path | None = None) -> dict[str, Any]:
    if checkpoint is not None:
        from strcli.checkpoints import load_checkpoint

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
    }
