"""The ResNet-50 on a CPU without native bf16: exported once to ONNX, cached beside the
weights with its checksum, run by ONNX Runtime (`--precision onnx`; `pip install -e ".[onnx]"`). Whether it beats
PyTorch fp32 depends on the CPU (docs/performance.md), so `auto` never picks it.

The cache file is `<weights>/exported/resnet50-<key>.onnx`, where `<key>` is the sha256 of
the backbone's weights (so SPIN's file and every random initialisation get their own), and
`<file>.sha256` beside it holds the file's own sha256, written after the export. A cache
file whose checksum does not match (truncated, edited, another file under the name) is
refused: it is deleted and exported again. Written under a temporary name, then renamed.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from strcli.config import CROP_SIZE
from strcli.utils.locks import WholeFile, write_text_whole
from strcli.weights.registry import sha256_file, weights_root

OPSET = 17  # ONNX opset of the export (ONNX Runtime 1.16 and newer run it)


def weights_key(backbone: nn.Module) -> str:
    """sha256 (16 hex digits) of the backbone's parameters and buffers, in state-dict order."""
    digest = hashlib.sha256()
    for name, value in backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_export(backbone: nn.Module, folder: Path | None = None) -> tuple[Path, str | None]:
    """The ONNX file of `backbone` ((N, 3, 224, 224) -> (N, 2048), N free), exported now
    unless a cache file with a matching checksum exists. Returns (path, note): the note
    says when a cache file was refused and why. OutputError (exit 6) when the folder
    cannot be written."""
    folder = folder or weights_root() / "exported"
    path = folder / f"resnet50-{weights_key(backbone)}.onnx"
    recorded = path.with_name(path.name + ".sha256")
    note = None
    if path.is_file():
        expected = recorded.read_text().strip() if recorded.is_file() else ""
        actual = sha256_file(path)
        if expected == actual:
            return path, None
        note = (f"the cached ONNX export {path} did not match its checksum "
                f"({'none recorded' if not expected else 'sha256 ' + actual[:12] + ', recorded ' + expected[:12]}): "
                "exported again")
        path.unlink(missing_ok=True)
        recorded.unlink(missing_ok=True)
    with WholeFile(path) as tmp:
        example = torch.zeros(1, 3, CROP_SIZE, CROP_SIZE)
        with warnings.catch_warnings():
            # PyTorch's TorchScript-based exporter (deprecated since 2.9, in 2.14 still whole):
            # the torch.export-based one needs onnxscript, one more dependency, for a plain CNN.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(backbone.eval(), (example,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["crops"], output_names=["features"],
                              dynamic_axes={"crops": {0: "n"}, "features": {0: "n"}})
        checksum = sha256_file(tmp)
    write_text_whole(recorded, checksum + "\n")
    return path, note


class OnnxBackbone:
    """An ONNX Runtime session of the exported ResNet-50: (N, 3, 224, 224) float32 crops on
    the host -> (N, 2048) float32, using PyTorch's thread count."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, crops: Tensor) -> Tensor:
        array = np.ascontiguousarray(crops.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(["features"], {"crops": array})[0])
