"""Grow a trained small BERT into a BERT-base-sized one (twice as wide, twice as deep), for benchmarks.

    python benchmarks/grow_bert.py ARTIFACT OUT_DIR

No BERT-base weights can be fetched here (no model hub, none on PyPI), and a BERT-base trained from random
weights on a 2-core CPU does not get past guessing in the time a benchmark has. A trained MiniLM (384 wide,
6 layers) grown the bert2BERT way (Chen et al., ACL 2022) is the next best thing: a 768-wide, 12-layer
encoder that starts out computing what the small one computes, which a short fine-tune then makes its own.

* Width, exactly function-preserving: every hidden unit, attention dimension and feed-forward unit is
  copied once; a layer reading copied inputs gets half of each weight, so it sums to the old value; the
  query is scaled by 1/sqrt(2) because attention scores are divided by sqrt(head width), which doubles.
  LayerNorm over a vector of duplicated halves sees the old mean and variance, so it too is unchanged.
* Depth, nearly function-preserving: after each trained layer, a new layer whose two output projections
  start at zero, so its residual branches add nothing; what remains are its two LayerNorms, given the
  scale and shift that map the trained layer's typical output back to itself. The fine-tune that follows
  trains the new layers from there.

Writes a Hugging Face checkpoint (``save_pretrained``) and the tokenizer, which the ``bert`` plugin loads
with ``pretrained = OUT_DIR``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path


def widen(weight, rows: int | None = None, cols: int | None = None):
    """``weight`` with its output rows mapped through ``rows`` (new row i <- old row rows[i]) and its
    input columns through ``cols``, each old column's weight shared among its copies."""
    import torch

    out = weight
    if rows is not None:
        out = out[rows]
    if cols is not None:
        copies = torch.bincount(cols, minlength=weight.shape[-1]).to(out.dtype)
        out = out[..., cols] / copies[cols]
    return out.clone()


def grow(small, factor_width: int = 2, factor_depth: int = 2, sample_states=None):
    """A BertModel ``factor_width`` times as wide and ``factor_depth`` times as deep as ``small``.

    ``sample_states``: callable giving the small model's layer outputs on some real inputs (a list, one
    ``[tokens, hidden]`` tensor per layer), used to set the inserted layers' LayerNorms."""
    import torch
    from transformers import BertConfig, BertModel

    c = small.config
    heads, head_dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads
    hidden = torch.arange(c.hidden_size * factor_width) % c.hidden_size  # residual stream: [x, x]
    ffn = torch.arange(c.intermediate_size * factor_width) % c.intermediate_size
    # inside attention, head h keeps its place and its width doubles: [q_h, q_h]
    per_head = torch.arange(head_dim * factor_width) % head_dim
    attn = torch.arange(heads).repeat_interleave(head_dim * factor_width) * head_dim + per_head.repeat(heads)
    config = BertConfig(
        **{
            **c.to_dict(),
            "hidden_size": c.hidden_size * factor_width,
            "intermediate_size": c.intermediate_size * factor_width,
            "num_hidden_layers": c.num_hidden_layers * factor_depth,
        }
    )
    big = BertModel(config, add_pooling_layer=False)
    old = small.state_dict()
    new = {}
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        new[f"embeddings.{name}.weight"] = old[f"embeddings.{name}.weight"][:, hidden].clone()
    for part in ("weight", "bias"):
        new[f"embeddings.LayerNorm.{part}"] = old[f"embeddings.LayerNorm.{part}"][hidden].clone()
    query_scale = math.sqrt(head_dim / (head_dim * factor_width)) * factor_width  # scores: x2 sum, /sqrt(2) scale
    layer_outputs = sample_states() if sample_states is not None else None
    for i in range(c.num_hidden_layers):
        src, dst = f"encoder.layer.{i}.", f"encoder.layer.{i * factor_depth}."
        for proj in ("query", "key", "value"):
            w = widen(old[f"{src}attention.self.{proj}.weight"], attn, hidden)
            b = widen(old[f"{src}attention.self.{proj}.bias"], attn)
            if proj == "query":
                w, b = w / query_scale, b / query_scale
            new[f"{dst}attention.self.{proj}.weight"], new[f"{dst}attention.self.{proj}.bias"] = w, b
        new[f"{dst}attention.output.dense.weight"] = widen(old[f"{src}attention.output.dense.weight"], hidden, attn)
        new[f"{dst}attention.output.dense.bias"] = widen(old[f"{src}attention.output.dense.bias"], hidden)
        new[f"{dst}intermediate.dense.weight"] = widen(old[f"{src}intermediate.dense.weight"], ffn, hidden)
        new[f"{dst}intermediate.dense.bias"] = widen(old[f"{src}intermediate.dense.bias"], ffn)
        new[f"{dst}output.dense.weight"] = widen(old[f"{src}output.dense.weight"], hidden, ffn)
        new[f"{dst}output.dense.bias"] = widen(old[f"{src}output.dense.bias"], hidden)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            for part in ("weight", "bias"):
                new[f"{dst}{norm}.{part}"] = old[f"{src}{norm}.{part}"][hidden].clone()
        for extra in range(1, factor_depth):
            added = f"encoder.layer.{i * factor_depth + extra}."
            for key in [k for k in new if k.startswith(dst)]:
                new[added + key[len(dst) :]] = new[key].clone()  # a trained layer's weights as the start
            for proj in ("attention.output.dense", "output.dense"):
                new[f"{added}{proj}.weight"].zero_()
                new[f"{added}{proj}.bias"].zero_()
            # with both branches silent the layer computes LN2(LN1(x)), and LayerNorm turns the trained
            # layer's output x into its normalised value z; both LayerNorms get the per-unit scale and shift
            # that best map z back to x over real tokens (least squares), so each gives back about x
            if layer_outputs is not None:
                x = layer_outputs[i]
                z = (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True, unbiased=False)
                # least squares per unit: x ~ a * z + b
                zc, xc = z - z.mean(0), x - x.mean(0)
                a = (zc * xc).sum(0) / (zc * zc).sum(0).clamp_min(1e-6)
                b = x.mean(0) - a * z.mean(0)
                for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
                    new[f"{added}{norm}.weight"] = a[hidden].clone()
                    new[f"{added}{norm}.bias"] = b[hidden].clone()
    missing, unexpected = big.load_state_dict(new, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing or unexpected:
        raise RuntimeError(f"grow: missing {missing}, unexpected {unexpected}")
    return big


def grow_artifact(artifact: Path, out: Path) -> None:
    """Grow the ``bert`` encoder of the built pipeline at ``artifact`` into a checkpoint directory ``out``."""
    import torch

    from autoglm_sdk import load

    pipeline = load(artifact)
    encoder = pipeline.model.stage_objects["encoders.text"]
    small = encoder.bert.eval()
    samples = pipeline.data_split("train")[:256]

    def sample_states():
        batch = encoder.preprocess(samples)
        with torch.inference_mode():
            states = small(
                input_ids=batch.input_ids, attention_mask=batch.mask.long(), output_hidden_states=True
            ).hidden_states[1:]
        return [s[batch.mask] for s in states]

    big = grow(small, sample_states=sample_states)
    out.mkdir(parents=True, exist_ok=True)
    big.save_pretrained(out)
    encoder.tokenizer.save(str(out / "tokenizer.json"))
    print(f"{sum(p.numel() for p in big.parameters()):,} parameters -> {out}", file=sys.stderr)


def main() -> None:
    grow_artifact(Path(sys.argv[1]), Path(sys.argv[2]))


if __name__ == "__main__":
    main()
