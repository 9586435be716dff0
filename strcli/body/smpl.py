"""The SMPL body: chumpy-free loading of the official files and a typed smplx wrapper.

The official SMPL `.pkl` files are Python 2 pickles that reference chumpy and scipy
classes. chumpy does not install on current numpy, and unpickling arbitrary classes runs
code, so `read_smpl_pickle` uses an unpickler that only admits numpy arrays, a few
builtins, scipy sparse matrices (rebuilt from their arrays) and chumpy objects (reduced
to their array). The result is cached once as a plain `.npz` keyed by the file's sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from torch import Tensor, nn

from strcli.config import (
    H36M_TO_J14,
    SMPL_BETAS,
    SMPL_BODY_JOINTS,
    SMPL_JOINTS,
    SMPL_VERTICES,
)
from strcli.utils.errors import CorruptAssetError, MissingAssetError, OutputError
from strcli.body.files import (  # noqa: F401 (re-exported: where the SMPL file is found, torch-free)
    CACHE_DIR_ENV, SMPL_DIR_ENV, SMPL_FILE_NAMES, SMPL_GENDERS, SMPL_HOMEPAGE, find_smpl_file)

# Arrays of an SMPL model file and the shape each must have (V vertices, F faces).
_POSE_BASIS = SMPL_BODY_JOINTS * 9  # 207


class _ChumpyArray:
    """Stand-in for chumpy objects: keeps the pickled state, exposes the array."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state

    def to_array(self, qualname: str) -> np.ndarray:
        if "x" not in self.state:
            raise CorruptAssetError(f"unsupported chumpy object {qualname} in the SMPL file.")
        return np.asarray(self.state["x"])


class _SparseMatrix:
    """Stand-in for scipy sparse matrices: rebuilt from their arrays, nothing executed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


_SPARSE_FORMATS = ("csc_matrix", "csr_matrix")  # scipy.sparse classes, imported when one is rebuilt


def _chumpy_class(qualname: str) -> type:
    return type(qualname.replace(".", "_"), (_ChumpyArray,), {"qualname": qualname})


def _sparse_class(kind: str) -> type:
    return type(kind, (_SparseMatrix,), {"kind": kind})


class _SMPLUnpickler(pickle.Unpickler):
    """Admits only what SMPL files contain; every other class is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3's protocol-2 pickles store bytes
    }
    _BUILTINS = {"set", "frozenset", "object", "list", "dict", "tuple", "slice"}

    def find_class(self, module: str, name: str) -> Any:
        if module in ("__builtin__", "builtins") and name in self._BUILTINS:
            return getattr(__import__("builtins"), name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_reconstructor
        if (module, name) in self._ALLOWED:
            return getattr(__import__(module, fromlist=[name]), name)
        if module.startswith("chumpy"):
            return _chumpy_class(f"{module}.{name}")
        if module.startswith("scipy.sparse") and name in _SPARSE_FORMATS:
            return _sparse_class(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an SMPL file")


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """copyreg._reconstructor limited to the stand-in classes above."""
    if not (isinstance(cls, type) and issubclass(cls, (_ChumpyArray, _SparseMatrix))):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r} from an SMPL file")
    return cls()


def _plain(value: Any) -> Any:
    if isinstance(value, _ChumpyArray):
        return value.to_array(type(value).qualname)
    if isinstance(value, _SparseMatrix):
        s = value.state
        shape = s.get("_shape", s.get("shape"))
        import scipy.sparse  # only when a .pkl is converted: a cached .npz needs no scipy

        matrix = getattr(scipy.sparse, type(value).kind)((s["data"], s["indices"], s["indptr"]), shape=shape)
        return np.asarray(matrix.todense())
    return value


def read_smpl_pickle(path: str | Path) -> dict[str, Any]:
    """The arrays of an official SMPL `.pkl`, without chumpy and without running code."""
    data = Path(path).read_bytes()
    try:
        raw = _SMPLUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as err:
        raise CorruptAssetError(f"{path} is not a readable SMPL model file ({err}).",
                                "Download it again from the SMPL website.") from err
    if not isinstance(raw, dict):
        raise CorruptAssetError(f"{path} does not hold an SMPL model (a dict of arrays).")
    return {key: _plain(value) for key, value in raw.items()}


@dataclass(frozen=True)
class SMPLArrays:
    """The arrays that define an SMPL body (V vertices, F faces, 24 joints)."""

    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, >=10)
    posedirs: np.ndarray  # (V, 3, 207)
    J_regressor: np.ndarray  # (24, V) dense
    weights: np.ndarray  # (V, 24) skinning weights
    kintree_table: np.ndarray  # (2, 24) parents in row 0
    f: np.ndarray  # (F, 3) triangle indices

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str | Path) -> SMPLArrays:
        names = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                 "kintree_table", "f")
        missing = [n for n in names if n not in data]
        if missing:
            raise CorruptAssetError(f"{source} is not an SMPL model: missing {', '.join(missing)}.")
        arrays = cls(**{n: np.asarray(data[n]) for n in names})
        arrays.check(source)
        return arrays

    def check(self, source: str | Path) -> None:
        v = self.v_template.shape[0]
        expected = {
            "v_template": (v, 3), "posedirs": (v, 3, _POSE_BASIS), "J_regressor": (SMPL_JOINTS, v),
            "weights": (v, SMPL_JOINTS), "kintree_table": (2, SMPL_JOINTS),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise CorruptAssetError(
                    f"{source}: {name} has shape {getattr(self, name).shape}, expected {shape} "
                    "for an SMPL model (is this SMPL-H, SMPL-X or MANO?).")
        if self.shapedirs.shape[:2] != (v, 3) or self.shapedirs.shape[2] < SMPL_BETAS:
            raise CorruptAssetError(f"{source}: shapedirs has shape {self.shapedirs.shape}, "
                                    f"expected ({v}, 3, >={SMPL_BETAS}).")
        if v != SMPL_VERTICES:
            raise CorruptAssetError(f"{source}: {v} vertices, an SMPL model has {SMPL_VERTICES}.")
        if self.f.ndim != 2 or self.f.shape[1] != 3 or len(self.f) == 0:
            raise CorruptAssetError(f"{source}: faces f has shape {self.f.shape}, expected (F, 3).")
        self._check_values(source)

    def _check_values(self, source: str | Path) -> None:
        """What the shapes do not say: every array numeric and finite, face indices and
        parents in range, skinning weights non-negative and summing to one per vertex (SMPL's
        linear blend skinning, Loper et al. 2015, Eq. 2 and 4, assumes a partition of unity).
        A file that lies here gives NaN meshes, or an index error in `render` or `export`."""
        lying = "Download it again from the SMPL website (or check who changed it)."
        for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"):
            value = getattr(self, name)
            if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
                raise CorruptAssetError(f"{source}: {name} holds {value.dtype} values, not numbers.", lying)
            bad = int(np.count_nonzero(~np.isfinite(value))) if np.issubdtype(value.dtype, np.inexact) else 0
            if bad:
                raise CorruptAssetError(f"{source}: {name} holds {bad} NaN or infinite value(s).", lying)
        v = self.v_template.shape[0]
        faces = self.f
        if not np.issubdtype(faces.dtype, np.integer) and not np.array_equal(faces, np.round(faces)):
            raise CorruptAssetError(f"{source}: faces f hold non-integer vertex indices.", lying)
        if faces.min() < 0 or faces.max() >= v:
            raise CorruptAssetError(f"{source}: faces f index vertices {int(faces.min())}..{int(faces.max())}, "
                                    f"outside 0..{v - 1}.", lying)
        parents = self.kintree_table[0].astype(np.int64)
        children = np.arange(1, SMPL_JOINTS)
        if not np.all((parents[1:] >= 0) & (parents[1:] < children)):
            raise CorruptAssetError(f"{source}: kintree_table's parents {parents[1:].tolist()} are not a tree "
                                    "(each joint's parent must be an earlier joint).", lying)
        weights = self.weights
        if weights.min() < -1e-6:
            raise CorruptAssetError(f"{source}: skinning weights are negative (down to {float(weights.min()):.3g}).",
                                    lying)
        sums = weights.sum(axis=1)
        off = np.abs(sums - 1.0) > 1e-3
        if off.any():
            worst = int(np.argmax(np.abs(sums - 1.0)))
            raise CorruptAssetError(f"{source}: the skinning weights of {int(off.sum())} vertices do not sum to one "
                                    f"(vertex {worst}: {float(sums[worst]):.4g}).", lying)


def check_joint_regressor(regressor: np.ndarray, source: str | Path, joints: int | None = None) -> None:
    """A joint regressor (`J_regressor_h36m.npy`: (17, 6890); `joints` rows when given) must
    be a finite numeric (J, 6890) matrix: CorruptAssetError (exit 4) otherwise."""
    if regressor.ndim != 2 or regressor.shape[1] != SMPL_VERTICES or (joints and regressor.shape[0] != joints):
        raise CorruptAssetError(f"{source} has shape {regressor.shape}, expected ({joints or 'J'}, {SMPL_VERTICES}) "
                                "for a joint regressor of SMPL's vertices.", "Check you have the right file.")
    if not np.issubdtype(regressor.dtype, np.number) or not np.isfinite(regressor).all():
        raise CorruptAssetError(f"{source} holds NaN, infinite or non-numeric values.", "Re-download it.")


def _cache_dir() -> Path:
    base = os.environ.get(CACHE_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "strcli")
    return Path(base) / "smpl"


def load_smpl_arrays(path: str | Path, cache_dir: str | Path | None = None) -> SMPLArrays:
    """Read an SMPL `.pkl` (converted once, cached as `.npz`) or an `.npz`."""
    path = Path(path)
    if not path.is_file():
        raise MissingAssetError(f"SMPL model file {path} does not exist.", "Check the path.")
    if path.suffix == ".npz":
        return _load_npz(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir else _cache_dir()
    cached = cache / f"{path.stem}-{digest}.npz"
    if cached.is_file():
        return _load_npz(cached)
    arrays = SMPLArrays.from_mapping(read_smpl_pickle(path), path)
    from strcli.utils.locks import WholeFile

    with contextlib.suppress(OutputError), WholeFile(cached) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays.__dict__)  # an unwritable cache only costs the conversion next time
    return arrays


def _load_npz(path: Path) -> SMPLArrays:
    try:
        with np.load(path, allow_pickle=False) as data:
            mapping = {key: data[key] for key in data.files}
    except (OSError, ValueError) as err:
        raise CorruptAssetError(f"{path} is not a readable SMPL .npz ({err}).") from err
    if "J_regressor" in mapping and mapping["J_regressor"].dtype == object:
        raise CorruptAssetError(f"{path}: J_regressor is a pickled object; convert the .pkl instead.")
    return SMPLArrays.from_mapping(mapping, path)


@dataclass(frozen=True)
class BodyOutput:
    """Posed SMPL bodies; N = number of bodies."""

    vertices: Tensor  # (N, 6890, 3)
    joints: Tensor  # (N, 24, 3) SMPL joints
    joints_h36m: Tensor | None  # (N, 17, 3) from the H36M regressor, when the Body has one
    joints_smplx: Tensor | None = None  # (N, 45, 3) smplx's 24 joints + 21 picked vertices (nose, eyes, ears, feet, fingertips)

    @property
    def joints_lsp14(self) -> Tensor | None:
        """(N, 14, 3) the evaluation joints (LSP order), when the H36M regressor is loaded."""
        if self.joints_h36m is None:
            return None
        return self.joints_h36m[:, list(H36M_TO_J14)]


class Body(nn.Module):
    """SMPL through smplx's linear blend skinning, with typed output and optional
    Human3.6M joint regressor (17 x 6890)."""

    def __init__(self, arrays: SMPLArrays, joint_regressor_h36m: np.ndarray | None = None) -> None:
        super().__init__()
        struct = Struct(**{k: v for k, v in arrays.__dict__.items()})
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 betas
            self.smpl = smplx.SMPL(model_path="", data_struct=struct, num_betas=SMPL_BETAS,
                                   create_betas=False, create_global_orient=False,
                                   create_body_pose=False, create_transl=False)
        if joint_regressor_h36m is not None:
            regressor = np.asarray(joint_regressor_h36m, np.float32)
            if regressor.shape != (17, arrays.v_template.shape[0]):
                raise CorruptAssetError(f"the H36M joint regressor has shape {regressor.shape}, "
                                        f"expected (17, {arrays.v_template.shape[0]}).")
            self.register_buffer("j_regressor_h36m", torch.from_numpy(regressor))
        else:
            self.j_regressor_h36m = None

    @classmethod
    def from_file(cls, path: str | Path, h36m_regressor: str | Path | None = None,
                  cache_dir: str | Path | None = None) -> Body:
        regressor = None
        if h36m_regressor is not None:
            try:
                regressor = np.load(h36m_regressor, allow_pickle=False)
            except (OSError, ValueError) as err:
                raise CorruptAssetError(f"{h36m_regressor} is not a readable .npy ({err}).") from err
            check_joint_regressor(regressor, h36m_regressor)
        return cls(load_smpl_arrays(path, cache_dir), regressor)

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 triangle indices."""
        return np.asarray(self.smpl.faces, np.int64)

    def axis_angle(self, global_orient: Tensor, body_pose: Tensor, betas: Tensor,
                   transl: Tensor | None = None) -> BodyOutput:
        """Pose from axis-angle: global_orient (N, 3), body_pose (N, 69) (23 joints x 3,
        radians), betas (N, 10), optional transl (N, 3) metres. Raises ValueError on any
        other shape."""
        return self(global_orient, body_pose, betas, transl, rotation="axis_angle")

    def rotmat(self, global_orient: Tensor, body_pose: Tensor, betas: Tensor,
               transl: Tensor | None = None) -> BodyOutput:
        """Pose from rotation matrices: global_orient (N, 1, 3, 3), body_pose (N, 23, 3, 3),
        betas (N, 10), optional transl (N, 3) metres. Raises ValueError on any other shape."""
        return self(global_orient, body_pose, betas, transl, rotation="rotmat")

    def forward(self, global_orient: Tensor, body_pose: Tensor, betas: Tensor, transl: Tensor | None = None,
                *, rotation: Literal["axis_angle", "rotmat"]) -> BodyOutput:
        """The representation is said, never guessed from a shape: (N, 3) axis-angles of
        three bodies and one body's (3, 3) matrix look alike. Prefer `axis_angle` / `rotmat`."""
        n = betas.shape[0]
        if rotation == "axis_angle":
            shapes = {"global_orient": (n, 3), "body_pose": (n, SMPL_BODY_JOINTS * 3)}
        elif rotation == "rotmat":
            shapes = {"global_orient": (n, 1, 3, 3), "body_pose": (n, SMPL_BODY_JOINTS, 3, 3)}
        else:
            raise ValueError(f"rotation must be 'axis_angle' or 'rotmat', not {rotation!r}")
        given = {"global_orient": global_orient, "body_pose": body_pose}
        for name, shape in shapes.items():
            if tuple(given[name].shape) != shape:
                raise ValueError(f"Body.{rotation}: {name} has shape {tuple(given[name].shape)}, "
                                 f"expected {shape} for {n} bodies")
        if betas.shape != (n, SMPL_BETAS) or (transl is not None and transl.shape != (n, 3)):
            raise ValueError(f"Body.{rotation}: betas {tuple(betas.shape)} / transl "
                             f"{None if transl is None else tuple(transl.shape)}, expected ({n}, {SMPL_BETAS}) / ({n}, 3)")
        out = self.smpl(global_orient=global_orient, body_pose=body_pose, betas=betas,
                        transl=transl, pose2rot=rotation == "axis_angle")
        vertices = out.vertices  # (N, 6890, 3)
        h36m = None
        if self.j_regressor_h36m is not None:
            h36m = torch.einsum("jv,nvc->njc", self.j_regressor_h36m.to(vertices.dtype), vertices)
        return BodyOutput(vertices=vertices, joints=out.joints[:, :SMPL_JOINTS], joints_h36m=h36m,
                          joints_smplx=out.joints)
