"""The files the road uses, seen from above the registry: a user's file identified and
checked with the very loaders that will read it before the registry stores it
(`import_file`), and every asset's state with the SMPL files where the body finder takes them
(`list_states`).

The registry (`strcli.weights.registry`) knows names, places, checksums and downloads only;
what a file must hold to be usable (an SMPL model, a checkpoint of the right kind, a
detector whose pickle runs no code) is known here, where the loaders are. Importing this
module imports no torch: each loader is imported when a file of its kind is checked.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from strcli.body.files import SMPL_DIR_ENV, SMPL_FILE_NAMES, SMPL_GENDERS, TEST_BODY_HINT, find_smpl_file
from strcli.utils.errors import CorruptAssetError, MissingAssetError, UsageError
from strcli.weights import registry
from strcli.weights.registry import Asset, AssetState, Manifest, Registry, Status, smpl_asset_name


def import_file(source: str | Path, name: str | None = None, manifest: Manifest | None = None,
                root: Path | None = None) -> AssetState:
    """`strcli weights import`: register a file the user already has under its manifest name.

    The asset is `name`, else the one the file is by checksum or file name (an official SMPL
    download name included), else by its structure (a TCMR, VIBE, SPIN or STR checkpoint).
    Raises MissingAssetError (no such file), UsageError (cannot tell which asset, exit 2) or
    CorruptAssetError (wrong checksum, wrong kind of checkpoint, or a file its loader would
    refuse, exit 4); nothing is copied then."""
    source = Path(source)
    if not source.is_file():
        # An SMPL file the user has not got yet: name the generated test body, the way to try
        # the pipeline without the licensed file.
        also = f" {TEST_BODY_HINT}" if _means_smpl(source, name) else ""
        if source.is_dir():
            raise MissingAssetError(f"{source} is a folder, not a file.", "Name the file itself." + also)
        if source.exists():
            raise MissingAssetError(f"{source} is not a regular file.", "Name a weights or SMPL file." + also)
        raise MissingAssetError(f"{source} does not exist.", "Check the path." + also)
    manifest = manifest or Manifest.load()
    root = root or registry.weights_root()
    digest = registry.sha256_file(source)
    asset = manifest.get(name) if name else (registry.identify(source, manifest, Registry(root), digest)
                                             or _smpl_by_name(source, manifest))
    raw = None  # the file's contents, read once, when its structure has to be known
    if asset is None or asset.model:
        from strcli.model.checkpoints import read_checkpoint_file

        try:
            raw = read_checkpoint_file(source)
        except CorruptAssetError:
            if asset is not None:
                raise  # an asset that must be a checkpoint, and this file is none
    if asset is None:
        asset = identify_checkpoint(source, raw, manifest)
    if asset is None:
        raise UsageError(f"cannot tell which asset {source.name} is.",
                         f"Pass --name with one of: {', '.join(manifest.assets)}.")
    if asset.model:
        from strcli.model.published import check_kind

        check_kind(raw, asset.model, source)  # "this is a VIBE checkpoint, not a TCMR checkpoint"
        check_checkpoint(raw, asset.model, source)
    return registry.store_file(source, asset, digest, root, check=check_loadable)


def check_download(asset: Asset, source: Path) -> None:
    """The check a downloaded file with no checksum to verify must pass before the registry
    records it (`registry.set_download_check`): the one `weights import` makes, a checkpoint
    read with `weights_only` and loaded into its model, every other file by its loader.
    Raises CorruptAssetError for a file the commands could not use (a download cut short)."""
    if asset.model:
        from strcli.model.checkpoints import read_checkpoint_file
        from strcli.model.published import check_kind

        raw = read_checkpoint_file(source)
        check_kind(raw, asset.model, source)
        check_checkpoint(raw, asset.model, source)
    check_loadable(asset, source)


registry.set_download_check(check_download)


def check_checkpoint(raw: dict[str, Any], kind: str, source: Path) -> None:
    """Load a checkpoint of `kind` (str, tcmr, vibe, spin) as the commands will, so that a file
    they would refuse (NaN/inf weights, a config that is no mapping, a wrong type or shape
    anywhere) is refused at import too: CorruptAssetError (exit 4)."""
    if kind == "str":
        from strcli.model.checkpoints import load_model

        load_model(source, raw=raw)
    elif kind in ("tcmr", "vibe"):
        from strcli.model.published import published_from

        published_from(raw, kind, source)
    elif kind == "spin":
        from strcli.config import FEATURE_DIM
        from strcli.model.regressor import Regressor
        from strcli.road.features import Backbone, load_spin_backbone, load_spin_regressor

        load_spin_backbone(Backbone(), source, raw)
        load_spin_regressor(Regressor(FEATURE_DIM), source, raw)


def _means_smpl(path: Path, name: str | None) -> bool:
    """Whether an import is of an SMPL body file, by the asset named (`--name smpl_neutral`)
    or the file's name (an official download name, or one that says SMPL, not its mean
    parameters), before the file can be read."""
    if name is not None:
        return name in {smpl_asset_name(g) for g in SMPL_GENDERS}
    lower = path.name.lower()
    official = {n.lower() for names in SMPL_FILE_NAMES.values() for n in names}
    return lower in official or ("smpl" in lower and "mean" not in lower)


def _smpl_by_name(path: Path, manifest: Manifest) -> Asset | None:
    """The SMPL asset a file is by an official SMPL download name (`SMPL_FILE_NAMES`)."""
    for gender, names in SMPL_FILE_NAMES.items():
        if path.name in names and smpl_asset_name(gender) in manifest.assets:
            return manifest.assets[smpl_asset_name(gender)]
    return None


def identify_checkpoint(path: Path, raw: dict[str, Any] | None, manifest: Manifest) -> Asset | None:
    """The manifest asset a checkpoint file (`raw`: its contents, None if it is none) is, by
    its structure (TCMR, VIBE, SPIN, STR): the only asset of that kind, or the one whose
    released name it has. None if the file is no checkpoint strcli knows; UsageError if the
    kind has several assets and the name does not say which."""
    from strcli.model.published import KIND_NAMES, recognise

    kind = recognise(raw) if raw is not None else None
    candidates = [a for a in manifest.assets.values() if a.model and a.model == kind]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        return None
    named = [a for a in candidates if Path(a.file).name == path.name]
    if named:
        return named[0]
    raise UsageError(f"{path.name} is a {KIND_NAMES[kind]}, but not under a released file name, so "
                     "strcli cannot tell which one.",
                     f"Pass --name with one of: {', '.join(a.name for a in candidates)}.")


def check_loadable(asset: Asset, source: Path) -> None:
    """Refuse (CorruptAssetError, exit 4), before it is copied, a file that the commands using
    `asset` would refuse to load, a file that would run code among them: the detector's
    pickle scan, the restricted SMPL unpickler, numpy without pickles. Checkpoints (`model`)
    were read with `weights_only` by `import_file` already."""
    if asset.name == "detector":
        from strcli.road.tracking import check_detector_checkpoint

        check_detector_checkpoint(source, "Import an Ultralytics YOLO detection checkpoint (.pt), or "
                                          "`strcli weights fetch detector` for yolo11m.pt.")
    elif asset.name in {smpl_asset_name(g) for g in SMPL_GENDERS}:
        from strcli.body.smpl import load_smpl_arrays

        load_smpl_arrays(source)  # refuse a file that is not an SMPL model
    elif asset.name == "smpl_mean_params":
        from strcli.model.regressor import MeanParams

        MeanParams.from_npz(source)  # pose, shape, cam: their sizes, finite
    elif asset.name in ("j_regressor_h36m", "j_regressor_extra"):
        import numpy as np

        from strcli.body.smpl import check_joint_regressor

        try:
            regressor = np.load(source, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise CorruptAssetError(f"{source} is not a readable .npy without pickles ({err}), as {asset.name} "
                                    "must be.", "Check you have the right file.") from err
        if not isinstance(regressor, np.ndarray):
            raise CorruptAssetError(f"{source} is an .npz archive, not the .npy {asset.name} must be.",
                                    "Check you have the right file.")
        check_joint_regressor(regressor, source, 17 if asset.name == "j_regressor_h36m" else 9)
    elif asset.file.endswith((".npy", ".npz")):
        import numpy as np

        try:
            loaded = np.load(source, allow_pickle=False)
            if not isinstance(loaded, np.ndarray):  # an .npz: its arrays are read on access
                with loaded:
                    for key in loaded.files:
                        loaded[key]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise CorruptAssetError(f"{source} is not a readable {Path(asset.file).suffix} without pickles "
                                    f"({err}), as {asset.name} must be.", "Check you have the right file.") from err


def list_states(manifest: Manifest | None = None, root: Path | None = None) -> list[AssetState]:
    """Every asset's state (`strcli weights list`). The SMPL files are reported where strcli
    will take them from: through $STRCLI_SMPL_DIR when set, or under an official download
    name in weights/smpl/ (`strcli.body.files.find_smpl_file`), as UNVERIFIED (SMPL has no
    pinned checksum) with the place in the detail."""
    return [_smpl_state(state) for state in registry.list_states(manifest, root)]


def _smpl_state(state: AssetState) -> AssetState:
    gender = state.asset.name.removeprefix("smpl_")
    if state.asset.name != smpl_asset_name(gender) or gender not in SMPL_GENDERS:
        return state
    env = os.environ.get(SMPL_DIR_ENV)
    if not env and state.status != Status.MISSING:
        return state
    try:
        found = find_smpl_file(gender, weights_dir=state.path.parent)
    except MissingAssetError:
        return replace(state, detail=f"not in ${SMPL_DIR_ENV}={env} either") if env else state
    if found.resolve() == state.path.resolve():
        return state
    where = f"${SMPL_DIR_ENV}" if env and not found.resolve().is_relative_to(state.path.parent.resolve()) \
        else "weights/smpl"
    return AssetState(state.asset, found, Status.UNVERIFIED, f"found through {where}: {found}")
