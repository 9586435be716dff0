"""A generated SMPL-format test body, since the real SMPL model cannot be shipped.

It is NOT SMPL: its shapes are meaningless. It lets the pipeline run end to end without
the SMPL file (`strcli weights make-test-smpl DIR`, then `--smpl-dir DIR`), and the tests
and benchmarks use it.

It has SMPL's array names, shapes, dtypes and kinematic tree (6890 vertices, 24 joints,
13776 faces) so that smplx and the Human3.6M joint regressor accept it, but its geometry is
a coarse stick figure: vertices scattered along the bones, skinned to their bone. It is
written the way the official files are: a protocol-2 pickle whose `shapedirs` is a chumpy
`Ch` object and whose `J_regressor` is a scipy sparse matrix, although chumpy is not
installed (a stand-in module is registered only while pickling).
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import scipy.sparse

# The label inside the file and what every result made with it says: defined beside the file
# finding, which recognises the body without numpy or scipy.
from strcli.body.files import TEST_BODY_KEY, TEST_BODY_NOTE  # noqa: F401 (re-exported)

PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                    20, 21])
# Rough rest positions of SMPL's 24 joints (metres, y up, facing +z).
REST_JOINTS = np.array([
    [0.0, 0.0, 0.0], [0.07, -0.09, 0.0], [-0.07, -0.09, 0.0], [0.0, 0.11, 0.0],
    [0.1, -0.47, 0.0], [-0.1, -0.47, 0.0], [0.0, 0.24, 0.0], [0.09, -0.87, -0.04],
    [-0.09, -0.87, -0.04], [0.0, 0.29, 0.0], [0.11, -0.93, 0.08], [-0.11, -0.93, 0.08],
    [0.0, 0.5, 0.0], [0.08, 0.4, 0.0], [-0.08, 0.4, 0.0], [0.0, 0.6, 0.03],
    [0.18, 0.43, 0.0], [-0.18, 0.43, 0.0], [0.43, 0.42, -0.02], [-0.43, 0.42, -0.02],
    [0.68, 0.43, 0.0], [-0.68, 0.43, 0.0], [0.76, 0.42, 0.0], [-0.76, 0.42, 0.0],
])
NUM_VERTICES = 6890
NUM_FACES = 13776
TURN = 12  # vertices per turn of a bone's helix
# Tube radii (metres) per bone that give roughly a person's silhouette (a real SMPL body
# covers about as many pixels): for benchmarks, where drawing cost follows covered area.
HUMAN_RADII = np.array([0.15, 0.09, 0.09, 0.14, 0.065, 0.065, 0.14, 0.045, 0.045, 0.14, 0.04, 0.04,
                        0.06, 0.07, 0.07, 0.1, 0.055, 0.055, 0.045, 0.045, 0.035, 0.035, 0.03, 0.03])


def make_smpl_arrays(seed: int = 0, radii: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The arrays of an SMPL-format model, float64 as in the official files; `radii` (24,)
    sets each bone's tube radius (default 4 cm)."""
    radii = np.full(24, 0.04) if radii is None else np.asarray(radii, np.float64)
    rng = np.random.default_rng(seed)
    owner = np.arange(NUM_VERTICES) % 24  # the joint each vertex belongs to
    children = {j: np.flatnonzero(PARENTS == j) for j in range(24)}
    v_template = np.empty((NUM_VERTICES, 3))
    axis_of = np.zeros((24, 3))
    for j in range(24):
        # The bone's vertices wind around it as a helix of TURN vertices per turn, so that
        # neighbouring vertices make small triangles, as on a real body surface.
        idx = np.flatnonzero(owner == j)
        end = REST_JOINTS[children[j][0]] if len(children[j]) else REST_JOINTS[j] + [0, 0.05, 0]
        axis = end - REST_JOINTS[j]
        u = np.cross(axis, [0.3, 0.5, 0.7])
        u /= np.linalg.norm(u)
        w = np.cross(axis / np.linalg.norm(axis), u)
        axis_of[j] = axis / np.linalg.norm(axis)
        k = np.arange(len(idx))
        angle = 2 * np.pi * k / TURN
        radius = radii[j] + rng.normal(0, 0.002, len(idx))
        v_template[idx] = (REST_JOINTS[j] + (k / len(idx))[:, None] * axis
                           + radius[:, None] * (np.cos(angle)[:, None] * u + np.sin(angle)[:, None] * w))
    weights = np.zeros((NUM_VERTICES, 24))
    weights[np.arange(NUM_VERTICES), owner] = 0.8
    parent_of_owner = np.where(PARENTS[owner] < 0, owner, PARENTS[owner])
    weights[np.arange(NUM_VERTICES), parent_of_owner] += 0.2
    j_regressor = np.zeros((24, NUM_VERTICES))
    for j in range(24):
        idx = np.flatnonzero(owner == j)
        j_regressor[j, idx] = 1.0 / len(idx)
    shapedirs = rng.normal(0, 0.01, (NUM_VERTICES, 3, 10))
    shapedirs[:, :, 0] += 0.05 * v_template  # beta_0 scales the body, as SMPL's first component roughly does
    posedirs = rng.normal(0, 0.001, (NUM_VERTICES, 3, 207))
    faces = []
    for j in range(24):
        idx = np.flatnonzero(owner == j)  # in helix order
        k = np.arange(len(idx) - TURN - 1)
        tube = np.concatenate([np.stack([idx[k], idx[k + 1], idx[k + TURN]], 1),
                               np.stack([idx[k + 1], idx[k + TURN + 1], idx[k + TURN]], 1)])
        # Wind the triangles counter-clockwise seen from outside, as SMPL's are.
        v = v_template[tube]
        normal = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        outward = v.mean(1) - v_template[idx].mean(0)
        outward -= (outward @ axis_of[j])[:, None] * axis_of[j]
        if (np.einsum("fc,fc->f", normal, outward) < 0).mean() > 0.5:
            tube = tube[:, ::-1]
        faces.append(tube)
    faces = np.concatenate(faces)
    faces = np.concatenate([faces, faces[: NUM_FACES - len(faces)]]).astype(np.uint32)  # SMPL's count
    kintree = np.stack([np.where(PARENTS < 0, 4294967295, PARENTS), np.arange(24)]).astype(np.int64)
    return {"v_template": v_template, "shapedirs": shapedirs, "posedirs": posedirs,
            "J_regressor": j_regressor, "weights": weights, "kintree_table": kintree, "f": faces}


def _official_dict(arrays: dict[str, np.ndarray], chumpy_class: type | None) -> dict:
    data = dict(arrays)
    data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    if chumpy_class is not None:
        ch = chumpy_class.__new__(chumpy_class)
        ch.__dict__.update({"x": arrays["shapedirs"], "_dirty_vars": set(), "_itr": None,
                            "_make_dense": False, "_make_sparse": False, "_depends_on_deps": {}})
        data["shapedirs"] = ch
    data["bs_style"] = "lbs"
    data["bs_type"] = "lrotmin"
    data["J"] = arrays["J_regressor"] @ arrays["v_template"]
    return data


def write_chumpy_pickle(arrays: dict[str, np.ndarray], path: Path, extra: dict[str, str] | None = None) -> Path:
    """Write `arrays` (and the `extra` entries) as the official SMPL files are: shapedirs
    as a chumpy.ch.Ch."""
    chumpy = types.ModuleType("chumpy")
    chumpy_ch = types.ModuleType("chumpy.ch")

    class Ch:  # the stand-in: pickled by reference as chumpy.ch.Ch
        pass

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    chumpy_ch.Ch = Ch
    chumpy.ch = chumpy_ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": chumpy_ch})
    try:
        path.write_bytes(pickle.dumps({**_official_dict(arrays, Ch), **(extra or {})}, protocol=2))
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
    return path


# The key that labels a file `write_test_body` wrote, and what it says.


def write_test_body(path: Path, seed: int = 0) -> Path:
    """Write the generated body to `path` as an official-style SMPL pickle, labelled inside
    (`TEST_BODY_KEY`) as a generated test body."""
    arrays = make_smpl_arrays(seed)
    return write_chumpy_pickle(arrays, path, {TEST_BODY_KEY: TEST_BODY_NOTE})


def write_plain_pickle(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """The same model without chumpy objects: what smplx itself can load (the reference)."""
    path.write_bytes(pickle.dumps(_official_dict(arrays, None), protocol=2))
    return path
