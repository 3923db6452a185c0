"""benchmarks/grow_bert.py: growing a BERT wider keeps its function exactly; deeper, nearly."""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from grow_bert import grow  # noqa: E402


def small_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = transformers.BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():  # trained-looking LayerNorms and biases, not the all-ones / all-zeros of a fresh model
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    return model


def outputs(model, ids, mask):
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states


def test_widening_is_exact_and_deepening_close():
    small = small_bert()
    ids, mask = torch.randint(5, 50, (3, 7)), torch.ones(3, 7, dtype=torch.long)
    mask[0, 5:] = 0
    want = outputs(small, ids, mask)

    wide = grow(small, factor_depth=1).eval()
    assert wide.config.hidden_size == 32 and wide.config.intermediate_size == 64
    got = outputs(wide, ids, mask)
    for w, g in zip(want, got):  # the residual stream of the wide model is the small one's, twice
        assert torch.allclose(g[..., :16], w, atol=1e-5) and torch.allclose(g[..., 16:], w, atol=1e-5)

    def sample_states():
        hidden = outputs(small, torch.randint(5, 50, (64, 7)), torch.ones(64, 7, dtype=torch.long))[1:]
        return [h.reshape(-1, 16) for h in hidden]

    deep = grow(small, sample_states=sample_states).eval()
    assert deep.config.num_hidden_layers == 4
    last = outputs(deep, ids, mask)[-1][..., :16][mask.bool()]
    cosine = torch.nn.functional.cosine_similarity(last, want[-1][mask.bool()])
    assert cosine.mean() > 0.9
    # and the inserted layers are what makes it inexact: their output projections start at zero
    assert not deep.encoder.layer[1].output.dense.weight.any()
    assert deep.encoder.layer[0].output.dense.weight.any()
