"""compile: INT8 through PT2E and torchao's x86 inductor quantiser (fused oneDNN int8 linears)."""

from __future__ import annotations

import shutil
import sys

import pytest
import torch

from autoglm_sdk.plugin import BackendUnavailableError, EncoderOutput

needs_cxx = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("g++", "c++", "clang++")), reason="inductor needs a C++ compiler; none found"
)


def make(**config):
    from autoglm_sdk import default_registry

    return default_registry().spec("backend", "compile").create(config)


class TinyBert(torch.nn.Module):
    """A dict of ids and mask in, an EncoderOutput out (with a field left None), like a text encoder."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(
            vocab_size=50,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=32,
        )
        self.bert = BertModel(config, add_pooling_layer=False)

    def forward(self, batch: dict) -> EncoderOutput:
        states = self.bert(input_ids=batch["ids"], attention_mask=batch["mask"].long()).last_hidden_state
        return EncoderOutput(states=states, mask=batch["mask"], pooled=states[:, 0])


def text_batch(rows: int, length: int) -> dict:
    mask = torch.ones(rows, length, dtype=torch.bool)
    mask[-1, length // 2 :] = False  # padding in the last row
    return {"ids": torch.randint(0, 50, (rows, length)), "mask": mask}


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 8)).eval()


@pytest.fixture(scope="module")
def bert_int8():
    """A tiny BERT quantised and compiled once (two graphs: any batch, and one row): ~15 s on two cores."""
    pytest.importorskip("torchao")
    pytest.importorskip("transformers")
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    stage = TinyBert().eval()
    runner = make().wrap_stage("encoders.text", stage, {}, explicit=True)
    runner.quantize_int8()
    counters.clear()
    with torch.inference_mode():
        first = text_batch(3, 12)
        out = runner(first)
    return stage, runner, out, first, dict(counters["inductor"])


def test_inductor_stages_offer_int8_and_the_others_do_not():
    assert "int8" in make().wrap_stage("s", mlp(), {}, explicit=True).capabilities
    assert not make(compiler="aot_eager").wrap_stage("s", mlp(), {}, explicit=True).capabilities
    assert not make().wrap_stage("s", object(), {}, explicit=False).capabilities  # runs eagerly: not a module


@needs_cxx
def test_int8_bert_answers_like_eager_at_batch_1_and_3(bert_int8):
    stage, runner, out, first, _ = bert_int8
    with torch.inference_mode():
        want = stage(first)
        assert isinstance(out, EncoderOutput) and out.embedding is None and torch.equal(out.mask, first["mask"])
        assert 0 < (out.states - want.states).abs().max() < 0.05  # int8: close, not equal
        for rows, length in ((1, 7), (3, 12), (5, 9)):
            batch = text_batch(rows, length)
            got, want = runner(batch), stage(batch)
            assert got.states.shape == (rows, length, 32)
            assert (got.states - want.states).abs().max() < 0.05
    described = runner.describe()
    assert described["quantized"] == "int8 (pt2e, x86 inductor quantizer)" and described["eager_reason"] is None
    assert 0 < described["int8_max_abs_diff_vs_eager"] < 0.05 and described["compile_seconds"] > 0
    assert "int8 (pt2e, x86 inductor quantizer), max |difference|" in runner.summary()


@needs_cxx
def test_int8_bert_runs_fused_onednn_int8_linears(bert_int8):
    _, runner, _, _, inductor = bert_int8
    graph = runner.compiled._orig_mod.graph  # the converted PT2E graph inductor compiled
    quantized = sum(str(n.target) == "quantized_decomposed.dequantize_per_channel.default" for n in graph.nodes)
    assert quantized == 12  # 2 layers x (query, key, value, attention output, intermediate, output)
    # each linear was prepacked for oneDNN and lowered to qlinear_pointwise, in both graphs (any batch, one row);
    # the GELU and the residual adds were fused into them as post-ops
    assert inductor["qlinear_weight_prepack_matcher_count"] == 2 * 12
    assert inductor["qlinear_unary_lower_count"] + inductor["qlinear_binary_lower_count"] == 2 * 12
    assert inductor["qlinear_binary_lower_count"] > 0 and inductor["qlinear_unary_matcher_count"] > 0


@needs_cxx
def test_skipped_layers_stay_float32():
    pytest.importorskip("torchao")
    torch.manual_seed(0)
    stage = mlp()
    runner = make().wrap_stage("s", stage, {}, explicit=True)
    runner.quantize_int8(["0"])
    assert runner.summary() == "compile; int8 (pt2e, x86 inductor quantizer)"  # not run yet: no difference yet
    x = torch.randn(4, 5, 16)
    with torch.inference_mode():
        assert (runner(x) - stage(x)).abs().max() < 0.05
    linears = [n for n in runner.compiled._orig_mod.graph.nodes if str(n.target) == "aten.linear.default"]
    quantized = [n for n in linears if str(n.args[1].target) == "quantized_decomposed.dequantize_per_channel.default"]
    assert len(linears) == 2 and len(quantized) == 1  # the second layer only
    assert "stage.2" in str(quantized[0].meta["nn_module_stack"])
    assert runner.describe()["layers_left_in_float32"] == 1


def test_without_torchao_int8_is_a_one_line_error_or_eager(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # find_spec and import both fail now
    with pytest.raises(BackendUnavailableError, match=r"needs torchao: pip install 'autoglm-backends\[pt2e\]'") as e:
        make().wrap_stage("encoders.text", mlp(), {}, explicit=True).quantize_int8()
    assert "\n" not in str(e.value) and str(e.value).startswith("encoders.text.backend: ")
    runner = make().wrap_stage("encoders.text", mlp(), {}, explicit=False)
    runner.quantize_int8()
    x = torch.randn(2, 16)
    assert torch.equal(runner(x), runner.stage(x)) and "pip install 'autoglm-backends[pt2e]'" in runner.summary()


def test_a_stage_that_fails_to_quantise_runs_eagerly_with_the_reason(monkeypatch):
    pytest.importorskip("torchao")
    from autoglm_backends import compiled

    def broken():
        raise ImportError("libtorchao.so: undefined symbol\nmore detail")

    monkeypatch.setattr(compiled, "_import_pt2e", broken)
    runner = make().wrap_stage("s", mlp(), {}, explicit=False)
    runner.quantize_int8()
    x = torch.randn(2, 16)
    assert torch.equal(runner(x), runner.stage(x))
    assert runner.describe()["eager_reason"] == (
        "INT8 needs torchao, which fails to import (libtorchao.so: undefined symbol): "
        "pip install 'autoglm-backends[pt2e]'"
    )
    with pytest.raises(BackendUnavailableError, match="s.backend: compile cannot run this stage: INT8 needs torchao"):
        explicit = make().wrap_stage("s", mlp(), {}, explicit=True)
        explicit.quantize_int8()
        explicit(x)
