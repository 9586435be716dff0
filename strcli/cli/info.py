"""`strcli info`: the STR configuration, its parameters per component, the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from strcli.cli.common import ABLATION_HELP, app, reports_errors, stdout


@app.command()
@reports_errors
def info(
    ablation: Annotated[str, typer.Option(help=ABLATION_HELP)] = "full",
    checkpoint: Annotated[Path | None, typer.Option(help="Describe the model of this strcli "
                                                         "checkpoint instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Print the STR configuration and its parameter count per component."""
    from strcli.model.summary import COMPONENTS, describe_model

    report = describe_model(ablation=ablation, checkpoint=checkpoint)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    config = Table(title=f"STR configuration ({report['ablation']})", show_header=False)
    for key, value in report["config"].items():
        config.add_row(key, str(value))
    params = Table(title="Parameters")
    params.add_column("component")
    params.add_column("parameters", justify="right")
    for key, count in report["parameters"].items():
        if key == "senet" and count == 0:
            continue  # an ablation's replacement is listed only where it is built
        params.add_row(COMPONENTS.get(key, key), f"{count:,}", end_section=key == "regressor")
    authors = report["authors_parameters"]
    comparable = report["comparable_with_authors"]
    params.add_row("the authors' STR (about)" if comparable else "the authors' full STR (about)",
                   f"{authors['str'] / 1e6:.1f}M")
    ours = report["parameters"]["total"]
    stdout.print(config)
    stdout.print(params)
    theirs = (f"about {authors['str'] / 1e6:.1f}M ({authors['counted_with_hmr'] / 1e6:.2f}M counted with SPIN's "
              f"HMR, {authors['spin_hmr'] / 1e6:.2f}M)")
    if comparable:
        stdout.print(f"STR's own network (no backbone): {ours / 1e6:.1f}M parameters; the authors': {theirs}; "
                     f"{100 * (ours / authors['str'] - 1):+.1f}%", highlight=False)
    else:  # an ablation (or other widths) against the full model's count would be a false difference
        what = (f"ablation {report['ablation']}" if report["ablation"] != "full"
                else "the widths of this checkpoint")
        stdout.print(f"STR's own network (no backbone), {what}: {ours / 1e6:.1f}M parameters; the authors' "
                     f"{theirs} is the full model's, with the paper's widths", highlight=False)
    stdout.print(f"strcli {report['strcli']}  torch {report['torch']}  devices: {report['devices']}")
