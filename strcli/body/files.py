"""Where the SMPL body model file is, found without importing torch.

`find_smpl_file` is what every command uses (`strcli.body.smpl` re-exports it); `strcli
reconstruct` calls it before torch is imported, so a mistyped `--smpl-dir` is refused in
about a second. A place the user names (`--smpl-dir`, else `$STRCLI_SMPL_DIR`) is the only
place looked in: when it does not exist or holds no SMPL file, the run stops (exit 3)
rather than take another body model from strcli's weights folder without saying so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from strcli.config import MANIFEST
from strcli.utils.errors import MissingAssetError

SMPL_GENDERS = ("neutral", "male", "female")
# File names users have, by gender: smplx's names first, then the official downloads.
SMPL_FILE_NAMES: dict[str, tuple[str, ...]] = {
    "neutral": ("SMPL_NEUTRAL.pkl", "SMPL_NEUTRAL.npz",
                "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
                "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"),
    "male": ("SMPL_MALE.pkl", "SMPL_MALE.npz", "basicmodel_m_lbs_10_207_0_v1.0.0.pkl",
             "basicmodel_m_lbs_10_207_0_v1.1.0.pkl"),
    "female": ("SMPL_FEMALE.pkl", "SMPL_FEMALE.npz", "basicModel_f_lbs_10_207_0_v1.0.0.pkl",
               "basicmodel_f_lbs_10_207_0_v1.1.0.pkl"),
}
SMPL_HOMEPAGE = {
    "neutral": "https://smplify.is.tue.mpg.de (SMPLify's basicModel_neutral_lbs_10_207_0_v1.0.0.pkl) "
               "or https://smpl.is.tue.mpg.de (SMPL v1.1.0)",
    "male": "https://smpl.is.tue.mpg.de",
    "female": "https://smpl.is.tue.mpg.de",
}
SMPL_DIR_ENV = "STRCLI_SMPL_DIR"
CACHE_DIR_ENV = "STRCLI_CACHE_DIR"
# The generated test body (`strcli.body.generated`) carries this key inside its pickle; every
# result made with it says TEST_BODY_NOTE (manifest, warning, export files).
TEST_BODY_KEY = "strcli_generated_test_body"
TEST_BODY_NOTE = "a generated test body, not SMPL: meaningless shapes (strcli weights make-test-smpl)"
# The testing-only alternative to the licence step, named in every SMPL-missing message.
TEST_BODY_HINT = ("To try the pipeline only: `strcli weights make-test-smpl DIR` writes a generated test body "
                  "(not SMPL: meaningless shapes) to use with --smpl-dir DIR.")


def named_smpl_place(smpl_dir: str | Path | None = None) -> tuple[str, Path] | None:
    """The place the user named for the SMPL file, (label, path): `--smpl-dir` when given,
    else $STRCLI_SMPL_DIR when set; None when they named none (strcli's weights folder)."""
    if smpl_dir:
        return "--smpl-dir", Path(smpl_dir).expanduser()
    env = os.environ.get(SMPL_DIR_ENV)
    return (f"${SMPL_DIR_ENV}", Path(env).expanduser()) if env else None


def find_smpl_file(gender: str = "neutral", smpl_dir: str | Path | None = None,
                   weights_dir: str | Path | None = None) -> Path:
    """The SMPL model file for `gender`, from the one place that applies: `smpl_dir`
    (--smpl-dir), else $STRCLI_SMPL_DIR, else `<weights>/smpl/` (`weights_dir`). A named
    place (the first two) may be:

    - the model file itself (.pkl or .npz, whatever its name);
    - a folder holding it under one of `SMPL_FILE_NAMES` (smplx's SMPL_NEUTRAL.pkl, the
      official v1.0.0 and v1.1.0 download names; letter case ignored);
    - a folder in smplx's layout, with the file in its `smpl/` subfolder (what
      `smplx.create(DIR, "smpl")` reads), or in `models/smpl/`.

    Raises MissingAssetError (exit 3) saying where it looked and what for, and whether that
    place exists. A named place that holds no SMPL file is never passed over for another.
    """
    if gender not in SMPL_GENDERS:
        raise MissingAssetError(f"unknown SMPL gender {gender!r}; use one of {SMPL_GENDERS}.")
    from strcli.weights.registry import weights_root  # the weights module owns where weights live (torch-free)

    weights = Path(weights_dir) if weights_dir else weights_root() / "smpl"
    named = named_smpl_place(smpl_dir)
    label, place = named or ("strcli's weights folder", weights)
    wanted = {name.lower(): k for k, name in enumerate(SMPL_FILE_NAMES[gender])}
    names = SMPL_FILE_NAMES[gender]
    looked_for = f"{', '.join(names)} (letter case ignored)"
    if place.is_file():
        if place.suffix.lower() in (".pkl", ".npz"):
            return place
        where = f"{place} (not a .pkl or .npz file)"
    elif not place.exists():
        where = f"{place} (does not exist)"
    else:
        searched = [f for f in (place, place / "smpl", place / "models" / "smpl") if f.is_dir()]
        for folder in searched:
            found = sorted((wanted[f.name.lower()], f) for f in folder.iterdir()
                           if f.name.lower() in wanted and f.is_file())
            if found:
                return found[0][1]
        where = ", ".join(map(str, searched))
    if named:
        what = (f"{label} {place} does not exist: strcli looked there for the SMPL {gender} body model file"
                if not place.exists() else
                f"no SMPL {gender} body model file in {label} {place}: strcli looked for {looked_for} in {where}")
        instead = "leave it out" if label == "--smpl-dir" else "unset it"
        raise MissingAssetError(
            f"{what} and uses no other SMPL file when you name a place.",
            f"Check the path ({label} takes the file, its folder or smplx's model folder), or {instead} to use "
            f"strcli's weights folder (docs/install.md: how to get the SMPL file). {TEST_BODY_HINT}")
    raise MissingAssetError(
        f"the SMPL {gender} body model file is missing: strcli looked for {looked_for} in {where}.",
        _how_to_get(gender, weights))


def _how_to_get(gender: str, weights: Path) -> str:
    names = SMPL_FILE_NAMES[gender]
    official = names[2] if gender == "neutral" else names[3]
    return (f"SMPL's licence forbids redistribution, so strcli cannot download it; it is the one manual "
            f"step: register at {SMPL_HOMEPAGE[gender]}, download {official}, then `strcli weights import "
            f"{official}` (it is copied to {weights / names[0]}), or pass --smpl-dir with the file or its "
            f"folder, or set ${SMPL_DIR_ENV}. " + TEST_BODY_HINT)


def recorded_smpl_file(manifest: dict[str, Any]) -> Path | None:
    """The SMPL file a reconstruct manifest records the bodies were made with, or None."""
    for used in manifest.get("weights", []) if isinstance(manifest, dict) else []:
        if isinstance(used, dict) and used.get("name") == "smpl" and isinstance(used.get("path"), str):
            return Path(used["path"])
    return None


def smpl_file_for_outputs(folders: list[Path], smpl_dir: Path | None = None) -> tuple[Path, str | None]:
    """The SMPL file to draw or export reconstruct output `folders` with, and a warning
    (or None): --smpl-dir's when given (that place only); else the file their manifest
    records (the one the bodies were made with, so --smpl-dir need not be repeated); when
    that file is gone, `find_smpl_file`'s place, with a warning naming the missing file, or
    a MissingAssetError (exit 3) that says the manifest's file is missing and where strcli
    looked next. A $STRCLI_SMPL_DIR that holds no SMPL file is refused even then."""
    import json

    if smpl_dir is not None:
        return find_smpl_file("neutral", smpl_dir), None
    if named_smpl_place() is not None:
        find_smpl_file("neutral")  # a named place that holds nothing is an error, not ignored
    gone: tuple[Path, Path] | None = None
    for folder in folders:
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        recorded = recorded_smpl_file(manifest)
        if recorded is not None and recorded.is_file():
            return recorded, None
        if recorded is not None and gone is None:
            gone = (folder / MANIFEST, recorded)
    if gone is None:
        return find_smpl_file("neutral"), None
    manifest_file, recorded = gone
    try:
        found = find_smpl_file("neutral")
    except MissingAssetError as err:
        raise MissingAssetError(
            f"the SMPL file recorded in {manifest_file}, {recorded}, is missing (moved or deleted?); looking next: "
            f"{err.message}",
            f"Pass --smpl-dir with that file's new place. {err.hint}") from err
    return found, f"the SMPL file recorded in {manifest_file}, {recorded}, is missing; using {found} instead."


def is_test_body(path: str | Path) -> bool:
    """Whether the SMPL-format file at `path` is strcli's generated test body (not SMPL),
    recognised by the label `write_test_body` puts inside it; False for a file that cannot
    be read (its loader reports that)."""
    try:
        return TEST_BODY_KEY.encode() in Path(path).read_bytes()
    except OSError:
        return False
