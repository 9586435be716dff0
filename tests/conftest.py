"""Shared fixtures: the real test assets, the generated SMPL body, an isolated weights dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from strcli.body.generated import make_smpl_arrays, write_chumpy_pickle, write_plain_pickle  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("STRCLI_TEST_ASSETS", REPO.parent / "shared" / "assets"))


@pytest.fixture(scope="session")
def assets() -> Path:
    """`../shared/assets/` (or $STRCLI_TEST_ASSETS): real videos, detections, SMPL helpers."""
    if not (ASSETS / "smpl_helpers" / "smpl_mean_params.npz").is_file():
        pytest.fail(f"test assets not found at {ASSETS}: check out shared/ beside the repo "
                    "or set STRCLI_TEST_ASSETS")
    return ASSETS


@pytest.fixture(scope="session")
def smpl_arrays() -> dict[str, np.ndarray]:
    return make_smpl_arrays(seed=0)


@pytest.fixture(scope="session")
def smpl_files(tmp_path_factory: pytest.TempPathFactory, smpl_arrays) -> dict[str, Path]:
    """The generated body as an official-style chumpy pickle and as a plain pickle."""
    folder = tmp_path_factory.mktemp("smpl")
    return {
        "chumpy": write_chumpy_pickle(smpl_arrays, folder / "SMPL_NEUTRAL.pkl"),
        "plain": write_plain_pickle(smpl_arrays, folder / "plain_SMPL_NEUTRAL.pkl"),
    }


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own weights and cache dirs; the checkout's weights/ is never touched."""
    monkeypatch.setenv("STRCLI_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("STRCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("STRCLI_SMPL_DIR", raising=False)
    monkeypatch.delenv("STRCLI_MANIFEST", raising=False)
    return tmp_path
