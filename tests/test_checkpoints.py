import json
import pickle
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from strcli.model.checkpoints import VERSION, load_checkpoint, load_model, save_checkpoint
from strcli.cli.main import app
from strcli.utils.errors import CorruptAssetError, MissingAssetError
from strcli.model import STR, STRConfig

TINY = STRConfig(feature_dim=16, gru_hidden=8, integration_dim=4, integration_hidden=4,
                 regressor_hidden=16)


def test_round_trip_reproduces_the_model(tmp_path):
    torch.manual_seed(0)
    model = STR(TINY.ablate("no_ste_time")).eval()
    path = save_checkpoint(tmp_path / "str.pt", model, meta={"epoch": 3, "pa_mpjpe": 61.6})
    loaded, checkpoint = load_model(path)
    assert checkpoint.config == model.config
    assert checkpoint.meta["epoch"] == 3 and checkpoint.meta["strcli"]
    f = torch.randn(2, 16, 16)
    assert torch.equal(loaded(f).pose6d, model(f).pose6d)
    assert not list(tmp_path.glob("*.tmp*"))  # written under a temp name, then renamed


def test_mismatched_shapes_name_the_keys(tmp_path):
    model = STR(TINY)
    path = save_checkpoint(tmp_path / "str.pt", model)
    raw = torch.load(path, weights_only=True)
    raw["config"]["regressor_hidden"] = 32  # the file claims a wider regressor than its tensors
    del raw["state_dict"]["ttr.grus.0.gru.bias_hh_l0"]
    raw["state_dict"]["extra.weight"] = torch.zeros(1)
    torch.save(raw, path)
    with pytest.raises(CorruptAssetError) as info:
        load_model(path)
    message = str(info.value)
    assert "regressor.fc1.weight (16, 173) in the file vs (32, 173) in the model" in message
    assert "missing keys: ttr.grus.0.gru.bias_hh_l0" in message
    assert "unexpected keys: extra.weight" in message


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/strcli-pwned",))


def test_code_in_a_checkpoint_is_never_run(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "strcli-checkpoint", "payload": _Exploit()}, path)
    with pytest.raises(CorruptAssetError, match="loaded safely"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip or pickle at all")
    with pytest.raises(CorruptAssetError, match="is not a PyTorch checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"gen_state_dict": {}, "epoch": 1}, foreign)
    with pytest.raises(CorruptAssetError, match="not a strcli checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(MissingAssetError):
        load_checkpoint(tmp_path / "absent.pt")


def test_newer_version_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "str.pt", STR(TINY))
    raw = torch.load(path, weights_only=True)
    raw["version"] = 99
    torch.save(raw, path)
    with pytest.raises(CorruptAssetError, match="version 99"):
        load_checkpoint(path)


def test_pickle_module_is_not_needed_to_read(tmp_path, monkeypatch):
    # weights_only loading must not fall back to full unpickling.
    path = save_checkpoint(tmp_path / "str.pt", STR(TINY))
    monkeypatch.setattr(pickle, "Unpickler", None)
    assert load_checkpoint(path).config == TINY


# strcli 0.1's STR layout: the state_dict keys and shapes of STR(TINY) as the main branch built
# it before issue 14 (dumped from that code), and its config.
OLD_LAYOUT = json.loads((Path(__file__).parent / "data" / "str_layout_v1.json").read_text())


def write_old_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    state = {k: torch.randn(shape) for k, shape in OLD_LAYOUT["state_dict"].items()}
    torch.save({"format": "strcli-checkpoint", "version": OLD_LAYOUT["checkpoint_version"], "model": "str",
                "config": OLD_LAYOUT["config"], "state_dict": state,
                "meta": {"strcli": OLD_LAYOUT["strcli"], "epoch": 30}}, path)
    return path


def test_old_layout_checkpoint_is_refused_in_one_line(tmp_path):
    assert VERSION == 2 and OLD_LAYOUT["checkpoint_version"] == 1
    assert "ste.frequency.spectral.gain" in OLD_LAYOUT["state_dict"]  # it is the old network
    # Its config alone would still build (every old field still exists), so only the version
    # check stands between the file and a half-fitting load.
    assert set(OLD_LAYOUT["config"]) <= set(TINY.to_dict())
    path = write_old_checkpoint(tmp_path / "old.pt")
    with pytest.raises(CorruptAssetError, match="made by an older STR layout") as info:
        load_model(path)
    assert "retrain" in str(info.value).lower() and "strcli 0.1.0" in str(info.value)
    result = CliRunner().invoke(app, ["info", "--checkpoint", str(path)])
    assert result.exit_code == CorruptAssetError.exit_code == 4
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "older STR layout" in result.stderr and "Retrain" in result.stderr
    # the same file with the current version number would fail on its keys, naming them
    raw = torch.load(path, weights_only=True)
    raw["version"] = VERSION
    torch.save(raw, path)
    with pytest.raises(CorruptAssetError, match="missing keys: .*unexpected keys: .*spectral"):
        load_model(path)


def old_senet_checkpoint(path):
    """A senet_for_ste file as strcli wrote it before SENet became per frame: today's keys
    plus the GRU branch it had then (`ste.gru.*`, the branch's own names and shapes)."""
    from strcli.model.str import _branch

    config = TINY.ablate("senet_for_ste")
    model = STR(config)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state.update({f"ste.gru.{k}": v.detach().clone() for k, v in _branch(config).state_dict().items()})
    torch.save({"format": "strcli-checkpoint", "version": VERSION, "model": "str", "config": config.to_dict(),
                "state_dict": state, "meta": {"strcli": "0.2.0"}}, path)
    return path


def test_senet_checkpoint_from_before_the_per_frame_senet_says_retrain(tmp_path):
    path = old_senet_checkpoint(tmp_path / "senet.pt")
    with pytest.raises(CorruptAssetError, match="made before SENet became per frame") as info:
        load_model(path)
    assert "docs/model.md" in info.value.message and "strcli train --ablation senet_for_ste" in info.value.hint
    result = CliRunner().invoke(app, ["info", "--checkpoint", str(path)])
    assert result.exit_code == 4 and result.stderr.count("\n") == 1
    assert "before SENet became per frame" in result.stderr and "Retrain it" in result.stderr
    # Any other mismatch keeps the plain message: the recognised case is only the GRU's keys.
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["ste.extra.weight"] = torch.zeros(1)
    torch.save(raw, path)
    with pytest.raises(CorruptAssetError, match="does not fit the model") as info:
        load_model(path)
    assert "ste.gru." in info.value.message and "Retrain" not in (info.value.hint or "")
