"""Export round trip: tiny model -> ONNX -> pack folder -> OnnxRuntimeEngine == torch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from engines.export import export_onnx, torch_logits, verify_export
from engines.models import VerityCNN
from engines.registry import InputSpec, ModelCard, resolve_pack, write_card
from engines.runtime.onnxruntime import OnnxRuntimeEngine
from engines.runtime.sessions import session_logits


def test_export_roundtrip_through_a_pack(tmp_path):
    torch.manual_seed(0)
    net = VerityCNN(widths=(8, 16), depths=(1, 1), dropout=0.0).eval()
    # Non-trivial BN statistics, so the folded graph is really checked.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    size = 48
    onnx_path = export_onnx(net, tmp_path / "pack" / "model.onnx", size)
    assert onnx_path.stat().st_size < 1_000_000
    card = ModelCard(name="tiny", version="0.0.1", role="spatial", onnx="model.onnx",
                     input=InputSpec(size=size, scale=3.0, center_y=0.55))
    write_card(tmp_path / "pack", card)
    pack = resolve_pack(tmp_path / "pack")
    engine = OnnxRuntimeEngine(pack, threads=1)

    crops = np.random.default_rng(0).integers(0, 256, (5, size, size, 3), dtype=np.uint8)
    expected = torch_logits(net, crops)
    got = engine.infer(crops)
    assert got.shape == (5,)
    assert np.max(np.abs(got - expected)) < 1e-4
    assert verify_export(net, onnx_path, crops) < 1e-4
    # Dynamic batch, including a single crop.
    assert session_logits(onnx_path, crops[:1]).shape == (1,)


def test_graph_takes_bgr_uint8_nhwc(tmp_path):
    import onnx

    net = VerityCNN(widths=(8,), depths=(1,)).eval()
    path = export_onnx(net, tmp_path / "m.onnx", 32)
    graph = onnx.load(str(path)).graph
    (inp,) = graph.input
    assert inp.name == "crops"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [32, 32, 3] and isinstance(dims[0], str)
    assert graph.output[0].name == "logits"
    # Swapping B and R changes the output: the graph reads BGR, not a colour-blind input.
    crops = np.zeros((1, 32, 32, 3), np.uint8)
    crops[..., 0] = 255
    flipped = crops[..., ::-1].copy()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_()
    a, b = torch_logits(net, crops), torch_logits(net, flipped)
    assert not np.allclose(a, b)
