"""onnxruntime and compile: probes, export checks, refusals, and builds whose encoder runs on them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from autoglm_backends.runners import NotExportable, flatten
from autoglm_sdk.plugin import BackendUnavailableError
from autoglm_sdk.testing import HardwareBackendContract


class TestOnnxRuntimeContract(HardwareBackendContract):
    plugin = "onnxruntime"


class TestCompileContract(HardwareBackendContract):
    plugin = "compile"
    config = {"compiler": "aot_eager"}  # inductor's C++ build takes minutes here; the kinship build below uses it


def make(name: str, **config):
    from autoglm_sdk import default_registry

    return default_registry().spec("backend", name).create(config)


# ----------------------------------------------------------------------------- probes


def test_onnxruntime_missing_is_not_installed_and_names_the_packages(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    status = make("onnxruntime").probe()
    assert not status.installed and not status.usable
    assert "onnxscript not installed" in status.reason and "pip install" in status.reason


def test_onnxruntime_provider_not_in_the_build_is_not_built():
    status = make("onnxruntime", providers=["NoSuchExecutionProvider"]).probe()
    assert status.installed and not status.built
    assert "NoSuchExecutionProvider" in status.reason and "CPUExecutionProvider" in status.reason


def test_onnxruntime_gpu_provider_without_a_device_is_skipped(monkeypatch):
    import onnxruntime as ort

    from autoglm_backends import onnxrt

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(onnxrt, "_cuda_device_count", lambda: 0)
    only_gpu = make("onnxruntime", providers=["CUDAExecutionProvider"]).probe()
    assert only_gpu.built and not only_gpu.available and "no CUDA device" in only_gpu.reason
    both = make("onnxruntime", providers=["CUDAExecutionProvider", "CPUExecutionProvider"]).probe()
    assert both.usable and both.capabilities["providers"] == ["CPUExecutionProvider"]
    assert "no CUDA device" in both.capabilities["skipped_providers"][0]


def test_compile_without_a_cxx_compiler_is_not_built(monkeypatch):
    import shutil

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    status = make("compile").probe()
    assert not status.built and "C++ compiler" in status.reason
    assert make("compile", compiler="aot_eager").probe().usable


# ----------------------------------------------------------------------------- runners


def test_flatten_round_trips_dataclasses_and_refuses_graphs():
    from torch_geometric.data import Data

    from autoglm_sdk.plugin import EncoderOutput

    out = EncoderOutput(torch.ones(2, 3, 4), torch.ones(2, 3, dtype=torch.bool), torch.zeros(2, 4))
    flat, rebuild = flatten(out)
    assert len(flat) == 3  # embedding and present are None and stay None
    again = rebuild([t + 1 for t in flat])
    assert isinstance(again, EncoderOutput) and again.embedding is None and float(again.pooled.sum()) == 8
    with pytest.raises(NotExportable, match="graph"):
        flatten(Data(x=torch.ones(3, 2), edge_index=torch.zeros(2, 0, dtype=torch.long)))


class Doubles(torch.nn.Module):
    def forward(self, batch: dict) -> torch.Tensor:
        return batch["x"] * 2 + batch["y"].sum(-1, keepdim=True)


def test_onnxruntime_runner_exports_with_dynamic_batch_and_length():
    runner = make("onnxruntime").wrap_stage("s", Doubles(), {}, explicit=True)
    for rows, cols in ((1, 5), (6, 9)):  # the export from one row must still take six
        batch = {"x": torch.randn(rows, cols), "y": torch.randn(rows, 3)}
        assert torch.allclose(runner(batch), Doubles()(batch), atol=1e-5)
    described = runner.describe()
    assert described["max_abs_diff_vs_eager"] < 1e-5 and described["providers"] == ["CPUExecutionProvider"]


def test_onnxruntime_refuses_a_stage_whose_output_differs(monkeypatch):
    from autoglm_backends import onnxrt

    real = onnxrt.OnnxStage._run
    monkeypatch.setattr(
        onnxrt.OnnxStage, "_run", lambda self, session, flat: [t + 0.5 for t in real(self, session, flat)]
    )
    batch = {"x": torch.randn(3, 4), "y": torch.randn(3, 2)}
    with pytest.raises(
        BackendUnavailableError, match=r"s: onnxruntime refused the stage: .* differs from eager .* by up to 0\.5"
    ):
        make("onnxruntime").wrap_stage("s", Doubles(), {}, explicit=True)(batch)
    lenient = make("onnxruntime", on_mismatch="eager").wrap_stage("s", Doubles(), {}, explicit=False)
    assert torch.equal(lenient(batch), Doubles()(batch))  # eager, and the report says why
    assert "differs from eager" in lenient.describe()["eager_reason"]


def test_a_refused_int8_stage_points_at_quantized_tol(monkeypatch):
    pytest.importorskip("autoglm_compress")
    from autoglm_backends import onnxrt
    from autoglm_compress.int8 import Int8Linear

    real = onnxrt.OnnxStage._run
    monkeypatch.setattr(
        onnxrt.OnnxStage, "_run", lambda self, session, flat: [t + 10 for t in real(self, session, flat)]
    )
    layer = Int8Linear.from_linear(torch.nn.Linear(16, 8))
    layer.per_token = True
    with pytest.raises(BackendUnavailableError, match=r"quantized_tol 0\.05 of the largest output") as caught:
        make("onnxruntime").wrap_stage("s", torch.nn.Sequential(layer), {}, explicit=True)(torch.randn(4, 16))
    assert "raise quantized_tol" in caught.value.hint


def test_a_stage_that_takes_graphs_is_refused_before_training_when_named():
    from helpers import SMALL

    from autoglm_sdk import build, validate_manifest

    manifest = validate_manifest({**SMALL, "reasoner": {**SMALL["reasoner"], "backend": "onnxruntime"}})
    with pytest.raises(
        BackendUnavailableError, match=r"reasoner.backend: `reasoner` takes a graph .* onnxruntime cannot"
    ):
        build(manifest, "/nonexistent/never-written")


# ----------------------------------------------------------------------------- builds


def kinship_text(backend: dict | str, compress: list | None = None) -> dict:
    return {
        "pipeline": {"name": "kin-text", "seed": 0},
        "data": {
            "plugin": "kinship",
            "train": {"hops": [2], "stories": 120},
            "val": {"hops": [2], "stories": 40},
            "test": {"hops": [2], "stories": 40},
        },
        "encoders": {
            "text": {
                "plugin": "bert",
                "hidden_size": 32,
                "num_layers": 1,
                "num_heads": 2,
                "intermediate_size": 64,
                "max_length": 96,
                "backend": backend,
            }
        },
        "decoder": {"plugin": "classifier"},
        "train": {"epochs": 2, "batch_size": 32},
        "compress": compress or [],
    }


@pytest.fixture(scope="module")
def onnx_build(tmp_path_factory):
    pytest.importorskip("autoglm_text")
    from autoglm_sdk import build, validate_manifest

    path = tmp_path_factory.mktemp("onnx") / "art"
    manifest = validate_manifest(kinship_text("onnxruntime", [{"plugin": "int8"}]))
    return path, build(manifest, path).report


@pytest.mark.slow
def test_encoder_on_onnxruntime_with_int8_from_its_quantiser(onnx_build):
    _, report = onnx_build
    assert report["backend"]["stages"] == {"encoders.text": "onnxruntime", "decoder": "cpu"}
    runner = report["backend"]["runners"]["encoders.text"]
    assert runner["max_abs_diff_vs_eager"] < 1e-4 and runner["quantized"].startswith("int8")
    assert 0 < runner["int8_max_abs_diff_vs_eager"] < 0.5
    step = report["compression"][0]
    assert step["details"]["quantized_by_runner"] == {"encoders.text": "int8 (onnxruntime quantize_dynamic)"}
    assert "int8 (onnxruntime quantize_dynamic)" in step["details"]["kernels"]
    # the artifact keeps float32 weights for the exported stage; what is deployed is its quantised ONNX file
    assert step["profile_after"]["deployed_bytes"] < step["profile_before"]["deployed_bytes"]


@pytest.mark.slow
def test_onnxruntime_artifact_loads_exports_again_and_answers_like_the_build(onnx_build):
    from autoglm_sdk import load

    path, report = onnx_build
    pipeline = load(path)
    runner = pipeline.model.runner("encoders.text")
    assert runner.quantize  # restored from the artifact's [[compress]] list
    from autoglm_sdk.plugin import evaluate

    test = pipeline.data_split("test")
    metrics = evaluate(pipeline.model, test, pipeline.task, 32)
    assert metrics["accuracy"] == pytest.approx(report["metrics"]["test"]["accuracy"])
    assert runner.describe()["onnx_bytes"] > 0


@pytest.mark.slow
def test_encoder_on_compile_reports_its_compile_time(tmp_path):
    pytest.importorskip("autoglm_text")
    from autoglm_sdk import build, validate_manifest

    report = build(validate_manifest(kinship_text("compile")), tmp_path / "c").report  # inductor: real kernels
    runner = report["backend"]["runners"]["encoders.text"]
    assert runner["backend"] == "compile" and runner["eager_reason"] is None
    assert runner["compile_seconds"] > 0 and runner["input_shapes_timed"] >= 1


def test_per_token_int8_layers_export_as_matmul_integer():
    pytest.importorskip("autoglm_compress")
    from autoglm_compress.int8 import Int8Linear, without_vnni

    torch.manual_seed(0)
    layer = Int8Linear.from_linear(torch.nn.Linear(16, 8))
    layer.per_token = True
    stage = torch.nn.Sequential(layer, torch.nn.ReLU())
    runner = make("onnxruntime").wrap_stage("s", stage, {}, explicit=True)
    x = torch.randn(4, 16)
    if without_vnni():
        # ONNX Runtime's uint8 x int8 kernel adds products in int16 pairs without VNNI and saturates (0.3 off on
        # an AVX2-only AMD EPYC): the backend's output check must catch it and refuse the stage in one line
        with pytest.raises(BackendUnavailableError, match="differs from eager PyTorch"):
            runner(x)
        return
    assert torch.allclose(runner(x), stage(x), atol=1e-4)
    import onnx

    graph = onnx.load(str(next(Path(runner._dir.name).glob("*.onnx")))).graph
    matmul = next(node for node in graph.node if node.op_type == "MatMulInteger")
    # ONNX Runtime's fast CPU kernel wants a uint8 left operand: the int8 activations arrive shifted into uint8
    producer = next(node for node in graph.node if matmul.input[0] in node.output)
    assert producer.op_type == "Cast" and producer.attribute[0].i == onnx.TensorProto.UINT8


def test_the_onnxruntime_quantiser_leaves_skipped_layers_in_float32():
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    stage = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    x = torch.randn(4, 5, 16)  # token states: exported as MatMul, which the quantiser takes
    counts = {}
    for skip in ([], ["0"]):
        runner = make("onnxruntime").wrap_stage("s", stage, {}, explicit=True)
        runner.quantize_int8(skip)
        runner(x)
        import onnx

        graph = onnx.load(str(next(Path(runner._dir.name).glob("*.int8.onnx")))).graph
        counts[len(skip)] = sum(node.op_type in ("MatMul", "Gemm") for node in graph.node)
        assert (runner.describe()["nodes_left_in_float32"] > 0) == bool(skip)
    assert counts == {0: 0, 1: 1}  # the first layer's product stays a float MatMul


@pytest.fixture(scope="module")
def small_bert():
    """A 2-layer BERT encoder stage (random weights, its own tokenizer) and stories to feed it."""
    pytest.importorskip("autoglm_text")
    from autoglm_graph.kinship import KinshipDataSource
    from autoglm_graph.specs import KinshipConfig
    from autoglm_sdk.plugin import BuildContext, Port
    from autoglm_text.bert import BertEncoder
    from autoglm_text.specs import BertEncoderConfig

    torch.manual_seed(0)
    data = KinshipDataSource(KinshipConfig(), BuildContext(seed=0)).load()
    config = BertEncoderConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128, max_length=96)
    ctx = BuildContext(inputs={"data": Port("samples", frozenset({"text"}))}, seed=0, stage="encoders.text")
    encoder = BertEncoder(config, ctx)
    encoder.fit(data)
    return encoder.eval(), data.splits["test"][:6]


@pytest.mark.parametrize("quantize", [False, True])
def test_transformer_fusion_gives_one_attention_operator_per_layer(small_bert, quantize):
    pytest.importorskip("onnxruntime")
    encoder, stories = small_bert
    attention = encoder.bert.config._attn_implementation
    runner = make("onnxruntime", fusion="transformer").wrap_stage("encoders.text", encoder, {}, explicit=True)
    if quantize:
        runner.quantize_int8()
    with torch.inference_mode():
        for size in (1, 6):  # exported from a batch of two: both a single story and a padded batch must run
            got, want = runner(stories[:size]), encoder(stories[:size])
            assert torch.equal(got.mask, want.mask)
            assert (got.pooled - want.pooled).abs().max() < (0.1 if quantize else 1e-4)
    info = runner.describe()
    assert info["eager_reason"] is None
    assert info["fused_operators"]["Attention"] == 2 and info["fused_operators"]["EmbedLayerNormalization"] == 1
    import onnx

    graph = onnx.load(str(next(Path(runner._dir.name).glob("*.int8.onnx" if quantize else "*[!8].onnx")))).graph
    ops = {node.op_type for node in graph.node}
    assert ("QAttention" in ops) == quantize and ("Attention" in ops) != quantize
    assert encoder.bert.config._attn_implementation == attention  # eager attention for the export only


def test_transformer_fusion_cannot_leave_layers_in_float32():
    runner = make("onnxruntime", fusion="transformer").wrap_stage("s", torch.nn.Linear(4, 4), {}, explicit=True)
    with pytest.raises(BackendUnavailableError, match=r"s: onnxruntime cannot leave layers in float32 \(skip\)"):
        runner.quantize_int8(["0"])


def test_transformer_fusion_feeds_the_inputs_the_exported_graph_kept(small_bert):
    """The TorchScript exporter drops an input the stage never reads; the rest must still reach their places."""
    pytest.importorskip("onnxruntime")
    encoder, _ = small_bert

    class ReadsIdsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = encoder.bert

        def forward(self, batch: dict) -> torch.Tensor:
            return self.bert(input_ids=batch["ids"]).last_hidden_state

    stage = ReadsIdsOnly().eval()
    runner = make("onnxruntime", fusion="transformer").wrap_stage("s", stage, {}, explicit=True)
    batch = {"unused": torch.zeros(3, 2), "ids": torch.randint(5, 50, (3, 7))}
    with torch.no_grad():
        assert (runner(batch) - stage(batch)).abs().max() < 1e-4
    assert runner.torchscript and [name for name, _ in runner.inputs] == ["input_1"]


def test_transformer_fusion_leaves_a_stage_without_attention_to_the_usual_export():
    runner = make("onnxruntime", fusion="transformer").wrap_stage("s", torch.nn.Linear(4, 3), {}, explicit=True)
    x = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.allclose(runner(x), runner.stage(x), atol=1e-5)
    assert runner.fused_operators == {} and not runner.torchscript
