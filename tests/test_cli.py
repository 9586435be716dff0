import json
import subprocess
import sys
import pytest

import torch
from typer.testing import CliRunner

from strcli import __version__
from strcli.cli.main import app
from strcli.model.checkpoints import save_checkpoint
from strcli.utils.errors import CorruptAssetError, UsageError
from strcli.model import STR, STRConfig, count_parameters

runner = CliRunner()


def test_info_reports_the_real_parameter_count():
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    with torch.device("meta"):
        model = STR(STRConfig())
    assert report["parameters"]["total"] == count_parameters(model)
    assert report["parameters"] == {
        "ttr": count_parameters(model.ttr), "ste_time": count_parameters(model.ste.time),
        "ste_frequency": count_parameters(model.ste.frequency), "senet": 0,
        "str_integration": count_parameters(model.str_integration), "strategies": count_parameters(model.strategies),
        "z_integration": count_parameters(model.z_integration), "regressor": count_parameters(model.regressor),
        "total": count_parameters(model)}
    # docs/model.md's per-branch numbers, each apart, summing to the total
    parts = [34_627_584, 24_125_440, 11_542_528, 0, 787_971, 25_646_348, 787_971, 3_469_469]
    assert list(report["parameters"].values()) == parts + [sum(parts)] == parts + [100_987_311]
    table = runner.invoke(app, ["info"], env={"COLUMNS": "200"}).stdout
    for label, count in [("TTR (Eq. 1-2)", 34_627_584), ("STE time (Eq. 3-4)", 24_125_440),
                         ("STE frequency (Eq. 5)", 11_542_528), ("integration network, Eq. 6", 787_971),
                         ("integration strategies (Algorithm 1)", 25_646_348), ("integration network, Eq. 7", 787_971),
                         ("regressor (SPIN's)", 3_469_469), ("total", 100_987_311)]:
        assert any(label in line and f"{count:,}" in line for line in table.splitlines()), label
    assert "SENet" not in table
    senet = json.loads(runner.invoke(app, ["info", "--json", "--ablation", "senet_for_ste"]).stdout)["parameters"]
    assert senet["senet"] == 2 * 2048 * 128 + 128 + 2048 and senet["ste_time"] == senet["ste_frequency"] == 0
    assert sum(v for k, v in senet.items() if k != "total") == senet["total"]
    assert report["config"]["seq_len"] == 16 and report["ablation"] == "full"


def test_info_table_and_ablation():
    full = json.loads(runner.invoke(app, ["info", "--json"]).stdout)["parameters"]["total"]
    no_ttr = json.loads(runner.invoke(app, ["info", "--json", "--ablation", "no_ttr"]).stdout)
    assert no_ttr["ablation"] == "no_ttr" and no_ttr["parameters"]["total"] < full
    table = runner.invoke(app, ["info"])
    assert table.exit_code == 0
    assert f"{full:,}" in table.stdout and "use_ttr" in table.stdout
    # beside the authors' figure: 127.19M - SPIN's HMR 26.98M = about 100.2M
    assert "100.2M" in table.stdout and "127.19M" in table.stdout and "+0.8%" in table.stdout
    report = json.loads(runner.invoke(app, ["info", "--json"]).stdout)
    assert report["authors_parameters"]["str"] == 100_210_000 and full == 100_987_311


def test_info_compares_only_the_full_model_with_the_authors_count():
    """The authors' 100.2M is their full model's: an ablation is not set against it."""
    no_ttr = runner.invoke(app, ["info", "--ablation", "no_ttr"], env={"COLUMNS": "200"})
    assert no_ttr.exit_code == 0, no_ttr.output
    total = json.loads(runner.invoke(app, ["info", "--json", "--ablation", "no_ttr"]).stdout)["parameters"]["total"]
    (line,) = [line for line in no_ttr.stdout.splitlines() if line.startswith("STR's own network")]
    assert line == (f"STR's own network (no backbone), ablation no_ttr: {total / 1e6:.1f}M parameters; the authors' "
                    "about 100.2M (127.19M counted with SPIN's HMR, 26.98M) is the full model's, with the paper's "
                    "widths")
    assert "%" not in no_ttr.stdout and "the authors' full STR (about)" in no_ttr.stdout
    full = runner.invoke(app, ["info"], env={"COLUMNS": "200"})
    ours = json.loads(runner.invoke(app, ["info", "--json"]).stdout)["parameters"]["total"]
    (line,) = [line for line in full.stdout.splitlines() if line.startswith("STR's own network")]
    assert line == (f"STR's own network (no backbone): {ours / 1e6:.1f}M parameters; the authors': about 100.2M "
                    f"(127.19M counted with SPIN's HMR, 26.98M); {100 * (ours / 100_210_000 - 1):+.1f}%")
    assert json.loads(runner.invoke(app, ["info", "--json"]).stdout)["comparable_with_authors"] is True
    assert json.loads(runner.invoke(app, ["info", "--json", "--ablation", "no_ttr"]).stdout)[
        "comparable_with_authors"] is False


def test_info_reads_a_checkpoint(tmp_path):
    config = STRConfig(feature_dim=16, gru_hidden=8, integration_dim=4, integration_hidden=4,
                       regressor_hidden=16)
    model = STR(config)
    path = save_checkpoint(tmp_path / "c.pt", model)
    report = json.loads(runner.invoke(app, ["info", "--json", "--checkpoint", str(path)]).stdout)
    assert report["config"]["feature_dim"] == 16
    assert report["parameters"]["total"] == count_parameters(model)


def test_errors_are_one_line_with_their_exit_code(tmp_path):
    bad = runner.invoke(app, ["info", "--ablation", "nope"])
    assert bad.exit_code == UsageError.exit_code
    assert bad.stderr.startswith("error: unknown ablation 'nope'") and bad.stderr.count("\n") == 1
    garbage = tmp_path / "c.pt"
    garbage.write_bytes(b"junk")
    broken = runner.invoke(app, ["info", "--checkpoint", str(garbage)])
    assert broken.exit_code == CorruptAssetError.exit_code
    assert broken.stderr.count("\n") == 1


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "strcli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"strcli {__version__}"


@pytest.mark.parametrize("flag", [["--focal", "nan"], ["--focal", "inf"], ["--window-stride", "0"],
                                  ["--max-gap", "-1"], ["--min-track-length", "0"], ["--smooth", "0"],
                                  ["--detector-conf", "2"], ["--min-score", "nan"]])
def test_out_of_range_values_are_refused_with_exit_2(flag, tmp_path):
    from strcli.road.reconstruct import ReconstructOptions
    from strcli.road.tracking import TrackingConfig

    names = {"--focal": "focal", "--window-stride": "window_stride", "--detector-conf": "detector_conf",
             "--min-score": "min_score"}
    tracking = {"--max-gap": "max_gap", "--min-track-length": "min_length", "--smooth": "smooth_window"}
    value = float(flag[1]) if flag[0] in ("--focal", "--detector-conf", "--min-score") else int(flag[1])
    with pytest.raises(UsageError) as err:
        if flag[0] in tracking:
            TrackingConfig(**{tracking[flag[0]]: value})
        else:
            ReconstructOptions(**{names[flag[0]]: value})
    assert flag[0] in str(err.value.message if hasattr(err.value, "message") else err.value)


def test_window_stride_zero_is_refused_not_replaced_by_the_default(assets, tmp_path):
    result = CliRunner().invoke(app, ["reconstruct", str(assets / "videos" / "running.mp4"), "-o", str(tmp_path),
                                      "--window-stride", "0", "--untrained", "--offline", "--quiet"])
    assert result.exit_code == 2, result.output
    assert "--window-stride 0" in result.output


@pytest.mark.parametrize("args,line", [
    (["reconstruct", "--stride", "abc"], "error: invalid value for '--stride': Input should be a valid integer, "
                                         "unable to parse string as an integer. Run `strcli reconstruct --help` for "
                                         "the options."),
    (["render", "--alpha", "x", "out"], "error: invalid value for '--alpha': "),
    (["render"], "error: missing argument 'OUTPUT'. Run `strcli render --help` for the options."),
    (["export", "--no-such-flag", "out"], "error: no such option: --no-such-flag"),
])
def test_what_click_refuses_is_one_line_too(args, line):
    """A value of the wrong type, an unknown option or a missing argument, as the console
    script runs it: one line and exit 2, like every other refusal (click's own form is a
    boxed panel of several lines)."""
    done = subprocess.run([sys.executable, "-c", "from strcli.cli import run; run()", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(line), done.stderr
