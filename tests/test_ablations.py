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
