import pytest
import torch
import torchvision

from strcli.utils.errors import CorruptAssetError
from strcli.road.features import CPU_BACKBONE_BATCH, Backbone, FeatureExtractor, load_spin_backbone, load_spin_regressor
from strcli.model import MeanParams
from strcli.model.regressor import Regressor


def write_spin_checkpoint(path, assets, seed=0):
    """A checkpoint in the layout SPIN released: {"model": HMR state dict, ...}."""
    torch.manual_seed(seed)
    resnet = torchvision.models.resnet50(weights=None)
    regressor = Regressor(2048, mean_params=MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz"))
    state = {k: v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    state.update(regressor.state_dict())
    torch.save({"model": state, "epoch": 3, "total_step_count": 1000}, path)
    return resnet, regressor


@pytest.fixture(scope="module")
def spin(tmp_path_factory, assets):
    path = tmp_path_factory.mktemp("spin") / "model_checkpoint.pt"
    resnet, regressor = write_spin_checkpoint(path, assets)
    return path, resnet, regressor


def test_backbone_loads_spin_weights_and_gives_2048_features(spin):
    path, resnet, _ = spin
    backbone = Backbone()
    load_spin_backbone(backbone, path)
    assert torch.equal(backbone.resnet.layer4[2].conv3.weight, resnet.layer4[2].conv3.weight)
    x = torch.randn(3, 3, 224, 224)
    resnet.fc = torch.nn.Identity()
    backbone.eval(), resnet.eval()
    features = FeatureExtractor(backbone, batch_size=2)(x)
    assert features.shape == (3, 2048) and features.dtype == torch.float32
    assert torch.allclose(features, resnet(x), atol=1e-4)  # batching changes nothing
    # On a CPU, small batches whatever is asked (cache-friendly): the same features.
    wide = FeatureExtractor(backbone, batch_size=64)
    assert wide.batch_size == CPU_BACKBONE_BATCH < 64
    assert torch.allclose(wide(torch.cat([x] * 4)), torch.cat([features] * 4), atol=1e-4)


def test_regressor_loads_from_spin(spin):
    path, _, reference = spin
    regressor = Regressor(2048)
    load_spin_regressor(regressor, path)
    for key, value in reference.state_dict().items():
        assert torch.equal(regressor.state_dict()[key], value), key


def test_wrong_file_is_named(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    with pytest.raises(CorruptAssetError, match="not a SPIN checkpoint"):
        load_spin_backbone(Backbone(), path)


def test_compiled_backbone_gives_the_same_features_with_one_padded_shape(spin):
    """--compile: torch.compile'd ResNet-50; a short last batch is padded, so it never
    recompiles, and the features equal the eager ones."""
    path, resnet, _ = spin
    backbone = Backbone()
    load_spin_backbone(backbone, path)
    x = torch.randn(5, 3, 224, 224)
    eager = FeatureExtractor(backbone, batch_size=4)(x)
    compiled = FeatureExtractor(backbone, batch_size=4, compile=True)
    features = compiled(x)  # batches of 4 and 1 (padded to 4)
    assert features.shape == (5, 2048) and torch.allclose(features, eager, atol=1e-3, rtol=1e-3)
    assert torch.allclose(compiled(x[:1]), eager[:1], atol=1e-3, rtol=1e-3)


# ---------------------------------------------------------------- --precision (the CPU's bf16)


def test_precision_auto_follows_what_the_cpu_reports(monkeypatch):
    import strcli.utils.devices as devices
    from strcli.utils.errors import UsageError

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: False)  # a CPU without AVX512-BF16 or AMX
    monkeypatch.setattr(devices, "onnxruntime_available", lambda: False)
    assert devices.resolve_precision("auto", cpu) == "fp32"
    with pytest.raises(UsageError, match="needs ONNX Runtime"):
        devices.resolve_precision("onnx", cpu)
    monkeypatch.setattr(devices, "onnxruntime_available", lambda: True)
    assert devices.resolve_precision("auto", cpu) == "fp32"  # ONNX Runtime only when asked: it does not always pay
    assert devices.resolve_precision("onnx", cpu) == "onnx"
    with pytest.raises(UsageError, match="runs the ResNet-50 on the CPU"):
        devices.resolve_precision("onnx", cuda)
    assert devices.resolve_precision("bf16", cpu) == "bf16"  # asked for: taken (and warned about by the road)
    assert devices.resolve_precision("auto", cuda) == "bf16"  # the GPU path as before
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: True)
    assert devices.resolve_precision("auto", cpu) == "bf16"
    assert devices.resolve_precision(" FP32 ", cpu) == "fp32"
    with pytest.raises(UsageError, match="bad --precision 'fp16': use auto, fp32, bf16"):
        devices.resolve_precision("fp16", cpu)


def test_cpu_native_bf16_is_what_pytorch_detects(monkeypatch):
    import strcli.utils.devices as devices

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert devices.cpu_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert devices.cpu_native_bf16() is True


def test_bf16_features_are_close_and_fp32_are_unchanged(spin):
    """The fp32 path equals the plain network (today's numbers); bf16 autocast on the CPU
    gives features within 1% (relative, whole batch) of them, in fp32."""
    path, resnet, _ = spin
    backbone = Backbone()
    load_spin_backbone(backbone, path)
    backbone.eval()
    resnet.fc = torch.nn.Identity()
    resnet.eval()
    torch.manual_seed(1)
    x = torch.randn(3, 3, 224, 224)
    with torch.inference_mode():
        reference = resnet(x)
    fp32 = FeatureExtractor(backbone, batch_size=8, precision="fp32")(x)
    assert torch.allclose(fp32, reference, atol=1e-4)
    bf16 = FeatureExtractor(backbone, batch_size=8, precision="bf16")
    features = bf16(x)
    assert features.dtype == torch.float32 and bf16.precision == "bf16"
    error = ((features - reference).norm() / reference.norm()).item()
    assert 0 < error < 0.01
    with pytest.raises(ValueError, match="fp32, bf16, or onnx"):
        FeatureExtractor(backbone, precision="fp16")


def test_onnx_backbone_is_cached_with_its_checksum(spin, tmp_path, monkeypatch):
    """--precision onnx: the ResNet-50 exported once (cached beside the weights, keyed by its
    weights), run by ONNX Runtime with the fp32 features; a cache file that does not match
    its recorded checksum is refused and exported again."""
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is in the dev extra: pip install -e '.[dev]'")
    import strcli.road.onnx_backbone as onnx_backbone

    monkeypatch.setenv("STRCLI_WEIGHTS_DIR", str(tmp_path / "weights"))
    path, _, _ = spin
    backbone = Backbone()
    load_spin_backbone(backbone, path)
    backbone.eval()
    torch.manual_seed(2)
    x = torch.randn(3, 3, 224, 224)
    reference = FeatureExtractor(backbone, precision="fp32")(x)
    extractor = FeatureExtractor(backbone, batch_size=2, precision="onnx")
    assert extractor.note is None
    assert torch.allclose(extractor(x), reference, rtol=1e-4, atol=1e-4)
    cached = sorted((tmp_path / "weights" / "exported").glob("*.onnx"))
    assert [p.name for p in cached] == [f"resnet50-{onnx_backbone.weights_key(backbone)}.onnx"]
    recorded = cached[0].with_name(cached[0].name + ".sha256").read_text().strip()
    assert recorded == onnx_backbone.sha256_file(cached[0])

    exports = []
    real_export = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: (exports.append(1), real_export(*a, **k))[1])
    FeatureExtractor(backbone, precision="onnx")  # the cache is used: no export
    assert exports == []
    with open(cached[0], "r+b") as handle:  # one byte changed: the file lies
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    again = FeatureExtractor(backbone, precision="onnx")
    assert exports == [1] and "did not match its checksum" in again.note
    assert onnx_backbone.sha256_file(cached[0]) == cached[0].with_name(cached[0].name + ".sha256").read_text().strip()
    assert torch.allclose(again(x), reference, rtol=1e-4, atol=1e-4)
