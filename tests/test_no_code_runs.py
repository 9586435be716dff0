"""Issue 16 item 2: no file strcli loads runs code, the detector's included.

Each evil file's unpickling would call `os.system("touch MARKER")`: every loader must
refuse it with exit 4 (or a CorruptAssetError) and the marker must never appear. A file
built like the real yolo11m.pt (ultralytics' trainer checkpoint, stripped by ultralytics'
own `strip_optimizer`, as its releases are) loads and detects through strcli's loader.
"""

import os
import pickle
from copy import deepcopy
from datetime import datetime
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from strcli.cli.main import app
from strcli.utils.errors import CorruptAssetError, StrcliError
from strcli.road.tracking import Detections, YoloPersonDetector, import_ultralytics

runner = CliRunner()


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "a file ran code while being loaded"


def evil_torch(path: Path, marker: Path) -> Path:
    torch.save({"model": Payload(marker), "date": "2024", "version": "8.3.0"}, path)
    return path


def yolo_checkpoint(path: Path, person_bias: float | None = None) -> Path:
    """An ultralytics YOLO11n checkpoint in the layout of the released .pt files: the trainer's
    dict (ema in fp16, train_args, metrics, date, version...) stripped by ultralytics' own
    `strip_optimizer`, which is how the releases are made."""
    import_ultralytics()
    from ultralytics import YOLO, __version__
    from ultralytics.utils import DEFAULT_CFG_DICT, IterableSimpleNamespace
    from ultralytics.utils.torch_utils import strip_optimizer

    torch.manual_seed(0)
    model = YOLO("yolo11n.yaml").model
    if person_bias is not None:  # see test_tracking: a zero person bias makes an untrained YOLO find people
        for branch in model.model[-1].cv3:
            branch[-1].bias.data[0] = person_bias
    model.args = IterableSimpleNamespace(**DEFAULT_CFG_DICT)
    torch.save({"epoch": 0, "best_fitness": 0.5, "model": None, "ema": deepcopy(model).half(), "updates": 10,
                "optimizer": None, "train_args": dict(DEFAULT_CFG_DICT), "train_metrics": {"metrics/mAP50(B)": 0.5},
                "train_results": {"epoch": [1]}, "date": datetime.now().isoformat(), "version": __version__,
                "license": "AGPL-3.0 License (https://ultralytics.com/license)", "docs": "https://docs.ultralytics.com"},
               path)
    strip_optimizer(path)
    return path


def test_a_real_format_yolo_checkpoint_loads_and_detects(tmp_path):
    path = yolo_checkpoint(tmp_path / "yolo11n.pt", person_bias=0.0)
    detector = YoloPersonDetector(path, imgsz=128, conf=0.3)
    rng = np.random.default_rng(0)
    found = detector([rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)])
    assert len(found) == 1 and isinstance(found[0], Detections)
    assert len(found[0]) > 0 and (found[0].conf >= 0.3).all()  # the saved bias came through the loader


@pytest.mark.parametrize("make", ["plain", "inside_a_yolo_checkpoint", "pickle_renamed"])
def test_evil_detector_is_refused_before_any_code_runs(tmp_path, marker, make):
    evil = tmp_path / "evil.pt"
    if make == "plain":
        evil_torch(evil, marker)
    elif make == "inside_a_yolo_checkpoint":
        raw = torch.load(yolo_checkpoint(tmp_path / "good.pt"), weights_only=False)
        raw["train_results"] = Payload(marker)
        torch.save(raw, evil)
    else:
        evil.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CorruptAssetError) as info:
        YoloPersonDetector(evil)
    assert "weights fetch detector" not in str(info.value)


def test_ultralytics_loads_the_detector_safely_even_without_strcli_s_scan(tmp_path, marker, monkeypatch):
    """The scan of the pickle's globals is a first guard; the load itself is weights_only."""
    monkeypatch.setattr("strcli.road.tracking.check_detector_file", lambda path, hint="": None)
    with pytest.raises(CorruptAssetError):
        YoloPersonDetector(evil_torch(tmp_path / "evil.pt", marker))


def test_a_model_yaml_builds_without_eval(tmp_path, marker):
    import_ultralytics()
    from ultralytics.utils import YAML

    spec = YAML.load(Path(__import__("ultralytics").__file__).parent / "cfg" / "models" / "11" / "yolo11.yaml")
    spec["activation"] = f"__import__('os').system('touch {marker}')"
    spec["scale"] = "n"
    path = tmp_path / "evil.yaml"
    YAML.save(path, spec)
    with pytest.raises(CorruptAssetError):
        YoloPersonDetector(path)


@pytest.fixture
def clip(assets):
    return assets / "videos" / "running.mp4"


def _cli_cases(tmp_path: Path, marker: Path, smpl: Path, clip: Path) -> dict[str, list[str]]:
    evil = evil_torch(tmp_path / "evil.pt", marker)
    evil_smpl = tmp_path / "evil_smpl"
    evil_smpl.mkdir()
    (evil_smpl / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps({"v_template": Payload(marker)}, protocol=2))
    evil_npz = tmp_path / "evil_npz"
    evil_npz.mkdir()
    np.savez(evil_npz / "SMPL_NEUTRAL.npz", J_regressor=np.array([Payload(marker)], dtype=object))
    evil_npy = tmp_path / "J_regressor_extra.npy"
    np.save(evil_npy, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    base = ["reconstruct", str(clip), "-o", str(tmp_path / "out"), "--offline", "--untrained", "--device", "cpu",
            "-q", "--end", "2"]
    return {
        "detector": [*base, "--smpl-dir", str(smpl), "--detector", str(evil)],
        "checkpoint": [*base, "--smpl-dir", str(smpl), "--detections", str(tmp_path / "d.txt"),
                       "--checkpoint", str(evil)],
        "tcmr": [*base, "--smpl-dir", str(smpl), "--detections", str(tmp_path / "d.txt"), "--model", "tcmr",
                 "--checkpoint", str(evil)],
        "backbone": [*base, "--smpl-dir", str(smpl), "--detections", str(tmp_path / "d.txt"),
                     "--backbone", str(evil)],
        "smpl_pkl": [*base, "--smpl-dir", str(evil_smpl), "--detections", str(tmp_path / "d.txt")],
        "smpl_npz": [*base, "--smpl-dir", str(evil_npz), "--detections", str(tmp_path / "d.txt")],
        "info": ["info", "--checkpoint", str(evil)],
        "weights_import": ["weights", "import", str(evil), "--name", "str_checkpoint"],
        "weights_import_smpl": ["weights", "import", str(evil_smpl / "SMPL_NEUTRAL.pkl"), "--name", "smpl_neutral"],
        **{f"weights_import_{name}": ["weights", "import", str(evil), "--name", name]
           for name in ("detector", "spin_checkpoint", "tcmr_demo", "vibe_wo_3dpw")},
        "weights_import_detector_by_its_name": ["weights", "import", str(evil_torch(tmp_path / "yolo11m.pt", marker))],
        "weights_import_npy": ["weights", "import", str(evil_npy), "--name", "j_regressor_extra"],
    }


IMPORTS = ["weights_import", "weights_import_smpl", "weights_import_detector", "weights_import_spin_checkpoint",
           "weights_import_tcmr_demo", "weights_import_vibe_wo_3dpw", "weights_import_detector_by_its_name",
           "weights_import_npy"]


@pytest.mark.parametrize("case", ["detector", "checkpoint", "tcmr", "backbone", "smpl_pkl", "smpl_npz", "info",
                                  *IMPORTS])
def test_every_cli_loader_refuses_a_file_that_runs_code(tmp_path, marker, smpl_files, clip, case):
    (tmp_path / "d.txt").write_text("1,-1,10,10,50,100,0.9,-1,-1,-1\n")
    args = _cli_cases(tmp_path, marker, smpl_files["chumpy"].parent, clip)[case]
    result = runner.invoke(app, args)
    assert result.exit_code == 4, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in result.output
    if case in IMPORTS:  # refused before anything is copied or recorded
        assert len(lines) == 1
        weights = tmp_path / "weights"
        assert not weights.exists() or [p.name for p in weights.rglob("*") if p.is_file()] == []
    if case.startswith("weights_import_detector"):
        assert "posix.system" in lines[0] and "could run code" in lines[0]
    if case == "detector":
        assert "weights fetch detector" not in result.output  # the user's own file: not ours to fetch


def _resume(path: Path) -> None:
    from strcli.model.checkpoints import read_checkpoint_file

    read_checkpoint_file(path)  # what Trainer.resume reads last.pt with


@pytest.mark.parametrize("loader", ["joblib_data", "train_resume", "published", "spin"])
def test_every_library_loader_refuses_a_file_that_runs_code(tmp_path, marker, loader):
    from strcli.road.features import spin_state_dict
    from strcli.model.published import load_temporal
    from strcli.train.data import load_db

    if loader == "joblib_data":
        path = tmp_path / "3dpw_test_db.pt"
        joblib.dump({"features": Payload(marker)}, path)
        call = load_db
    else:
        path = evil_torch(tmp_path / "last.pt", marker)
        call = {"train_resume": _resume, "published": load_temporal, "spin": spin_state_dict}[loader]
    with pytest.raises(StrcliError) as info:
        call(path)
    assert info.value.exit_code == 4


def test_weights_import_still_takes_a_real_detector_and_plain_arrays(tmp_path):
    good = yolo_checkpoint(tmp_path / "my_yolo.pt")
    result = runner.invoke(app, ["weights", "import", str(good), "--name", "detector"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "weights" / "yolo11m.pt").read_bytes() == good.read_bytes()
    extra = tmp_path / "J_regressor_extra.npy"
    np.save(extra, np.eye(9, 6890, dtype=np.float32))  # a joint regressor of SMPL's vertices
    result = runner.invoke(app, ["weights", "import", str(extra)])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "weights" / "J_regressor_extra.npy"), np.eye(9, 6890, dtype=np.float32))
