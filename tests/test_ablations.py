import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strcli.cli.main import app
from strcli.utils.errors import UsageError
from strcli.model.config import ABLATIONS, AUTHORS_ABLATIONS, TABLE2_ABLATIONS
from strcli.train.ablations import AUTHORS_EXTRA, PAPER_TABLE2, REPORTED, parse_variants, run_folder

runner = CliRunner()


def test_variant_sets():
    assert parse_variants("all") == list(TABLE2_ABLATIONS) == parse_variants("table2")
    assert parse_variants("extra") == list(AUTHORS_ABLATIONS) == parse_variants("authors")
    assert parse_variants("all,extra") == list(ABLATIONS) == parse_variants("everything")
    assert parse_variants(" ttr_2_fragments, no_ttr ") == ["no_ttr", "ttr_2_fragments"]  # table order
    assert parse_variants("no_ttr,all") == list(TABLE2_ABLATIONS)
    with pytest.raises(UsageError, match="unknown variant no_gru"):
        parse_variants("no_gru,all")
    with pytest.raises(UsageError, match="unknown variant"):
        parse_variants(" , ")


def test_reported_numbers():
    assert set(REPORTED) == set(ABLATIONS)
    assert (PAPER_TABLE2["full"].pa_mpjpe, PAPER_TABLE2["full"].accel) == (61.6, 8.4)
    assert (PAPER_TABLE2["no_cross_integration"].pa_mpjpe, PAPER_TABLE2["no_cross_integration"].accel) == (62.7, 9.0)
    assert {k: v.pa_mpjpe for k, v in AUTHORS_EXTRA.items()} == {
        "ttr_1_fragment": 62.7, "ttr_2_fragments": 62.0, "ttr_8_fragments": 62.6, "plain_gru_for_ttr": 62.7,
        "senet_for_ste": 62.5, "ste_plain_difference": 61.9, "self_integration_only": 62.7,
        "cross_integration_only": 62.3, "plain_aggregation": 62.6}
    assert AUTHORS_EXTRA["plain_gru_for_ttr"].accel == 9.0 and AUTHORS_EXTRA["senet_for_ste"].accel is None
    assert all(v.source == "authors" for v in AUTHORS_EXTRA.values())
    # the aliases are the same networks as Table 2 rows, and the numbers agree
    assert AUTHORS_EXTRA["self_integration_only"].pa_mpjpe == PAPER_TABLE2["no_cross_integration"].pa_mpjpe
    assert AUTHORS_EXTRA["cross_integration_only"].pa_mpjpe == PAPER_TABLE2["no_self_integration"].pa_mpjpe


def test_aliases_share_the_table2_run():
    runs = Path("runs")
    assert run_folder(runs, "wo3dpw", "self_integration_only") == runs / "wo3dpw-no_cross_integration"
    assert run_folder(runs, "wo3dpw", "ttr_8_fragments") == runs / "wo3dpw-ttr_8_fragments"


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_info_accepts_every_ablation(name):
    result = runner.invoke(app, ["info", "--json", "--ablation", name])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = {"self_integration_only": "no_cross_integration",
                "cross_integration_only": "no_self_integration"}.get(name, name)
    assert report["ablation"] == expected


def test_train_checks_the_ablation_name_first(tmp_path):
    bad = runner.invoke(app, ["train", "--data-dir", str(tmp_path), "--ablation", "no_gru", "--offline"])
    assert bad.exit_code == UsageError.exit_code and "unknown ablation 'no_gru'" in bad.stderr
    # a known name passes that check (and stops later, on the missing files, not on the name)
    good = runner.invoke(app, ["train", "--data-dir", str(tmp_path), "--ablation", "senet_for_ste", "--offline",
                               "--out", str(tmp_path / "run")])
    assert "unknown ablation" not in good.stderr and good.exit_code != 0


def finished_run(runs, variant, epochs=30, **changes):
    """A variant's run folder as `Trainer` leaves it (the settings its last.pt and best.pt
    record; no weights: the check reads settings only), made with wo3dpw, seed 0, fp32 and
    SPIN's regressor unless `changes` say otherwise."""
    import dataclasses

    import torch

    from strcli.model.checkpoints import TRAIN_STATE_FORMAT
    from strcli.model.config import STRConfig
    from strcli.train.trainer import RECIPES

    recipe = dataclasses.asdict(RECIPES["wo3dpw"].replace(**changes.pop("recipe", {})))
    state = {"format": TRAIN_STATE_FORMAT, "epoch": epochs, "best": 70.0, "recipe": json.loads(json.dumps(recipe)),
             "config": STRConfig().ablate(variant).to_dict(), "seed": 0, "precision": "fp32"}
    meta = {"regressor_init": changes.pop("regressor_init", "SPIN")}
    state.update(changes)
    state = {k: v for k, v in state.items() if v is not None}  # None: a key the run did not record
    folder = run_folder(runs, "wo3dpw", variant)
    folder.mkdir(parents=True)
    torch.save(state, folder / "last.pt")
    torch.save({"meta": meta}, folder / "best.pt")
    return folder


def test_a_run_of_other_settings_is_refused_before_any_variant_trains(tmp_path):
    from strcli.train.ablations import check_reusable, run_ablations
    from strcli.train.trainer import RECIPES, TrainingAssets

    recipe, spin = RECIPES["wo3dpw"], tmp_path / "spin.pt"
    finished_run(tmp_path / "same", "no_ttr")
    check_reusable(["no_ttr", "no_ste"], recipe, tmp_path / "same", None, 0, "fp32", spin)  # reused: no error
    check_reusable(["no_ttr"], recipe.replace(epochs=40), tmp_path / "same", None, 0, "fp32", spin)  # trained on
    with pytest.raises(UsageError, match=r"precision 'fp32' \(now 'bf16'\)") as info:
        check_reusable(["no_ttr", "no_ste"], recipe, tmp_path / "same", None, 0, "bf16", spin)
    assert "wo3dpw-no_ttr" in info.value.message and "--runs-dir" in info.value.hint
    for name, changes, asked, says in [
        ("seed", {"seed": 3}, {}, "seed 3 (now 0)"),
        ("batch", {"recipe": {"batch_size": 8}}, {}, "recipe batch_size 8 (now 32)"),
        ("init", {"regressor_init": "random"}, {}, "regressor_init 'random' (now 'SPIN')"),
        ("epochs", {}, {"epochs": 5}, "30 epochs done (now 5)"),
        ("config", {"config": {"ablation": "full"}}, {}, "another model config"),
        ("old", {"precision": None}, {"precision": "bf16"}, "precision 'fp32' (now 'bf16')"),  # before it was recorded
    ]:
        finished_run(tmp_path / name, "no_ste", **changes)
        with pytest.raises(UsageError) as info:
            check_reusable(["no_ste"], recipe.replace(epochs=asked.get("epochs")), tmp_path / name, None, 0,
                           asked.get("precision", "fp32"), spin)
        assert says in info.value.message, (name, info.value.message)
    # run_ablations refuses first: the empty data folder (no MPI-INF-3DHP) is not even looked at
    assets = TrainingAssets(body=None, mean_params=None, spin=spin)
    with pytest.raises(UsageError, match="other settings"):
        run_ablations(["no_ttr"], recipe, tmp_path / "no-data", tmp_path / "same", assets, None, precision="bf16")
    with pytest.raises(UsageError, match="MPI-INF-3DHP"):
        run_ablations(["no_ttr"], recipe, tmp_path / "no-data", tmp_path / "same", assets, None, precision="fp32")
