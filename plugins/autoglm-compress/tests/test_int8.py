"""int8: int8 weights with per-row scales, PyTorch's quantized kernel, artifacts that load quantized."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import SMALL

from autoglm_compress.int8 import Int8Linear
from autoglm_sdk.testing import CompressorContract


class TestInt8Contract(CompressorContract):
    plugin = "int8"


class TestInt8PerTokenContract(CompressorContract):
    plugin = "int8"
    config = {"activations": "per_token"}


def test_int8_linear_is_close_to_the_float_layer_and_uses_the_quantized_kernel():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    layer = Int8Linear.from_linear(linear)
    x = torch.randn(5, 7, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation noise reaches the user
        got = layer(x)
    with torch.no_grad():
        want = linear(x)
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 0.05 * float(want.abs().max())
    assert layer.kernel == "quantized::linear_dynamic"
    assert layer.weight_int8.dtype == torch.int8 and int(layer.weight_int8.abs().max()) == 127


def test_the_dequantized_fallback_gives_nearly_the_same_answer():
    torch.manual_seed(1)
    layer = Int8Linear.from_linear(torch.nn.Linear(16, 8))
    x = torch.randn(3, 16)
    fast = layer(x)
    slow = layer(x.double()).float()  # not float32: the quantized kernel does not apply
    assert layer.kernel == "dequantized matmul"
    assert torch.allclose(fast, slow, atol=0.05)


def test_per_token_activations_follow_an_outlier_token_better():
    torch.manual_seed(3)
    linear = torch.nn.Linear(64, 32)
    x = torch.randn(2, 6, 64)
    x[0, 0] *= 50  # one outlying token: one scale per batch coarsens all the others
    with torch.no_grad():
        want = linear(x)
    per_batch, per_token = Int8Linear.from_linear(linear), Int8Linear.from_linear(linear)
    per_token.per_token = True
    error_batch = float((per_batch(x) - want)[:, 1:].abs().max())
    error_token = float((per_token(x) - want)[:, 1:].abs().max())
    assert per_token.kernel.startswith("torch._int_mm") and per_batch.kernel == "quantized::linear_dynamic"
    assert error_token < 0.25 * error_batch


def test_state_dict_round_trip_repacks():
    torch.manual_seed(2)
    source = Int8Linear.from_linear(torch.nn.Linear(32, 16))
    x = torch.randn(4, 32)
    target = Int8Linear(32, 16, bias=True)
    target(x)  # packed with its empty weights
    target.load_state_dict(source.state_dict())
    assert torch.equal(target(x), source(x))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from autoglm_sdk import build, validate_manifest

    path = tmp_path_factory.mktemp("int8") / "art"
    manifest = validate_manifest(
        {
            **SMALL,
            "reasoner": {"plugin": "gcn", "hidden": 128, "layers": 2},
            "decoder": {"plugin": "classifier", "hidden": 64},
            "compress": [{"plugin": "int8"}],
        }
    )
    return path, build(manifest, path).report


def test_int8_build_shrinks_the_weights_and_keeps_accuracy(built):
    _, report = built
    step = report["compression"][0]
    assert step["profile_after"]["bytes"] < 0.4 * step["profile_before"]["bytes"]
    assert step["details"]["layers_quantized"] >= 3 and step["details"]["kernels"] == ["quantized::linear_dynamic"]
    for split in ("val", "test"):
        assert abs(step["metrics_after"][split]["accuracy"] - step["metrics_before"][split]["accuracy"]) <= 0.05


def test_int8_artifact_loads_quantized_and_answers_like_the_build(built):
    from autoglm_sdk import load

    path, report = built
    pipeline = load(path)
    assert any(isinstance(m, Int8Linear) for m in pipeline.model.modules())
    (answer,) = pipeline.predict_samples(pipeline.data_split("test"))
    assert answer["accuracy"] == pytest.approx(report["metrics"]["test"]["accuracy"])


class _Holder(torch.nn.Module):
    """The part of a pipeline a compressor touches: named stages."""

    def __init__(self, stage: torch.nn.Module) -> None:
        super().__init__()
        self.stage = stage
        self.stage_objects = {"encoders.text": stage}


def test_skip_leaves_the_named_layers_in_float32_and_says_so():
    from autoglm_compress.int8 import Int8Dynamic
    from autoglm_compress.specs import Int8Config

    stage = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    compressor = Int8Dynamic(Int8Config(skip=["0"]))
    compressor.apply(_Holder(stage), None)
    assert type(stage[0]) is torch.nn.Linear and isinstance(stage[2], Int8Linear)
    assert compressor.report()["left_in_float32"] == ["encoders.text:0"]


def test_a_skip_pattern_that_matches_nothing_is_an_error_naming_it():
    from autoglm_compress.int8 import Int8Dynamic
    from autoglm_compress.specs import Int8Config
    from autoglm_sdk.plugin import ManifestError

    stage = torch.nn.Sequential(torch.nn.Linear(8, 8))
    with pytest.raises(ManifestError, match="'layer.0.\\*'") as caught:
        Int8Dynamic(Int8Config(skip=["layer.0.*"])).apply(_Holder(stage), None)
    assert "'0'" in caught.value.hint  # an example of the names there are
