"""prune: heads, feed-forward and MLP units removed by surgery; recovery; artifacts that load pruned."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoglm_compress.prune import Prune, attention_blocks, shrink_linear
from autoglm_compress.specs import PruneConfig
from autoglm_sdk.plugin import BuildContext, ManifestError
from autoglm_sdk.testing import CompressorContract


class TestPruneContract(CompressorContract):
    plugin = "prune"


class Holder(nn.Module):
    """What a compressor sees: a model with ``stage_objects``."""

    def __init__(self, **stages: nn.Module) -> None:
        super().__init__()
        self.inner = nn.ModuleDict(stages)
        self.stage_objects = dict(stages)


def tiny_bert(heads: int = 4) -> nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=heads,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    return BertModel(config, add_pooling_layer=False).eval()


def test_shrink_linear_keeps_the_chosen_rows_and_columns():
    torch.manual_seed(0)
    linear = nn.Linear(5, 4)
    small = shrink_linear(linear, rows=torch.tensor([0, 2]), cols=torch.tensor([1, 3, 4]))
    x = torch.randn(2, 5)
    x_kept = x[:, [1, 3, 4]]
    x[:, [0, 2]] = 0  # the removed inputs contribute nothing
    assert small.weight.shape == (2, 3)
    assert torch.allclose(small(x_kept), linear(x)[:, [0, 2]], atol=1e-6)


def test_pruning_heads_and_units_of_a_bert_shrinks_it_and_it_still_runs():
    pytest.importorskip("transformers")
    bert = tiny_bert()
    before = sum(p.numel() for p in bert.parameters())
    model = Holder(enc=bert)
    ids = torch.randint(0, 50, (3, 9))
    pruner = Prune(PruneConfig(amount=0.5, recovery_epochs=0))
    pruner.apply(model, BuildContext())
    stage = pruner.report()["stages"]["enc"]
    assert stage["heads"] == [8, 4] and stage["ffn_units"] == [64, 32]
    assert stage["parameters_after"] == sum(p.numel() for p in bert.parameters()) < before
    (_, block), _ = attention_blocks(bert)
    assert block.self.query.out_features == 8 and block.self.num_attention_heads == 2
    assert bert.encoder.layer[0].intermediate.dense.out_features == 16
    assert bert(input_ids=ids).last_hidden_state.shape == (3, 9, 16)


def test_removing_a_head_whose_weights_are_zero_changes_nothing():
    pytest.importorskip("transformers")
    bert = tiny_bert(heads=2)
    with torch.no_grad():  # head 1 of every layer: nothing reads into or out of it
        for layer in bert.encoder.layer:
            for lin in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value):
                lin.weight[8:] = 0
                lin.bias[8:] = 0
            layer.attention.output.dense.weight[:, 8:] = 0
    ids = torch.randint(0, 50, (2, 7))
    want = bert(input_ids=ids).last_hidden_state
    Prune(PruneConfig(amount=0.5, units=["heads"], recovery_epochs=0)).apply(Holder(enc=bert), BuildContext())
    assert bert.encoder.layer[0].attention.self.num_attention_heads == 1
    assert torch.allclose(bert(input_ids=ids).last_hidden_state, want, atol=1e-5)


def test_sequential_mlps_lose_hidden_units():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Dropout(0.1), nn.Linear(10, 3))
    Prune(PruneConfig(amount=0.3, units=["mlp"], recovery_epochs=0)).apply(Holder(head=mlp), BuildContext())
    assert mlp[0].out_features == 7 and mlp[3].in_features == 7
    assert mlp(torch.randn(4, 6)).shape == (4, 3)


def test_nothing_prunable_is_a_clear_error():
    with pytest.raises(ManifestError, match="prune: nothing to prune"):
        Prune(PruneConfig(units=["heads"], recovery_epochs=0)).apply(Holder(lin=nn.Linear(3, 3)), BuildContext())


def test_recovery_without_training_data_is_a_clear_error():
    with pytest.raises(ManifestError, match="recovery_epochs > 0 needs the training data"):
        Prune(PruneConfig()).apply(
            Holder(head=nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))), BuildContext()
        )


@pytest.fixture(scope="module")
def pruned_build(tmp_path_factory):
    pytest.importorskip("autoglm_text")
    from autoglm_sdk import build, validate_manifest

    manifest = validate_manifest(
        {
            "pipeline": {"name": "kin-text", "seed": 0},
            "data": {
                "plugin": "kinship",
                "train": {"hops": [2], "stories": 150},
                "val": {"hops": [2], "stories": 40},
                "test": {"hops": [2], "stories": 40},
            },
            "encoders": {
                "text": {
                    "plugin": "bert",
                    "hidden_size": 32,
                    "num_layers": 2,
                    "num_heads": 4,
                    "intermediate_size": 64,
                    "max_length": 96,
                }
            },
            "decoder": {"plugin": "classifier", "hidden": 32},
            "train": {"epochs": 2, "batch_size": 32},
            "compress": [
                {"plugin": "prune", "amount": 0.5, "keep_layers": 1, "recovery_epochs": 1, "recovery_lr": 0.001},
                {"plugin": "int8"},
            ],
        }
    )
    path = tmp_path_factory.mktemp("prune") / "art"
    return path, build(manifest, path).report


@pytest.mark.slow
def test_pruned_then_int8_build_is_smaller_and_reports_both_steps(pruned_build):
    _, report = pruned_build
    prune, int8 = report["compression"]
    assert prune["plugin"] == "prune" and int8["plugin"] == "int8"
    details = prune["details"]
    assert details["stages"]["encoders.text"]["layers"] == [2, 1]
    assert details["stages"]["encoders.text"]["heads"] == [4, 2]  # of the one layer kept
    assert details["stages"]["decoder"]["mlp_units"] == [32, 16]
    assert details["recovery"]["epochs"] == 1
    assert prune["profile_after"]["parameters"] < prune["profile_before"]["parameters"]
    assert int8["profile_after"]["bytes"] < 0.4 * prune["profile_before"]["bytes"]
    assert "int8 embedding rows" in int8["details"]["kernels"]


@pytest.mark.slow
def test_pruned_artifact_loads_with_its_smaller_layers(pruned_build):
    from autoglm_sdk import load
    from autoglm_sdk.plugin import evaluate

    path, report = pruned_build
    pipeline = load(path)
    bert = pipeline.model.stage_objects["encoders.text"].bert
    assert len(bert.encoder.layer) == 1
    assert bert.encoder.layer[0].attention.self.num_attention_heads == 2
    assert bert.encoder.layer[0].intermediate.dense.out_features == 32
    metrics = evaluate(pipeline.model, pipeline.data_split("test"), pipeline.task, 32)
    assert metrics["accuracy"] == pytest.approx(report["metrics"]["test"]["accuracy"])


def test_kept_layers_are_evenly_spaced_and_end_with_the_last():
    from autoglm_compress.prune import kept_layers

    assert kept_layers(6, 3) == [1, 3, 5]
    assert kept_layers(6, 2) == [2, 5]
    assert kept_layers(12, 4) == [2, 5, 8, 11]
    assert kept_layers(4, 9) == [0, 1, 2, 3]


def test_dropping_layers_of_a_bert_keeps_the_chosen_ones_and_restores_on_load():
    pytest.importorskip("transformers")
    bert = tiny_bert()
    last = {k: v.clone() for k, v in bert.encoder.layer[1].state_dict().items()}
    model = Holder(enc=bert)
    pruner = Prune(PruneConfig(keep_layers=1, units=[], recovery_epochs=0))
    pruner.apply(model, BuildContext())
    assert pruner.report()["stages"]["enc"]["layers"] == [2, 1]
    assert len(bert.encoder.layer) == 1 and bert.config.num_hidden_layers == 1
    assert all(torch.equal(v, last[k]) for k, v in bert.encoder.layer[0].state_dict().items())
    ids = torch.randint(0, 50, (3, 9))
    want = bert(input_ids=ids).last_hidden_state
    # loading: a fresh model takes the stored layer count, then the weights
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    fresh = Holder(enc=tiny_bert())
    Prune(PruneConfig(keep_layers=1, units=[], recovery_epochs=0)).restore(fresh, BuildContext(stored_shapes=shapes))
    fresh.load_state_dict(model.state_dict())
    assert torch.allclose(fresh.inner["enc"](input_ids=ids).last_hidden_state, want, atol=1e-6)


def test_a_prune_with_nothing_to_remove_is_refused_in_the_manifest():
    with pytest.raises(ValueError, match="nothing to prune"):
        PruneConfig(units=[])
