"""The SMPL body: chumpy-free loading (`smpl`), where the file is (`files`, torch-free), the
generated SMPL-format test body (`generated`), rotations and cameras.

`Body`, `find_smpl_file` and `load_smpl_arrays` are importable from here; they are loaded on
first use, so `import strcli.body.files` stays free of torch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"Body": "strcli.body.smpl", "SMPLArrays": "strcli.body.smpl", "load_smpl_arrays": "strcli.body.smpl",
         "find_smpl_file": "strcli.body.files"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'strcli.body' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
