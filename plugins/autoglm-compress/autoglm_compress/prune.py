"""``prune``: structured pruning by tensor surgery, then a short recovery fine-tune.

Three kinds of unit are removed, the weakest ``amount`` of each group going.
A unit's score is, by default, its mean absolute activation on training
samples times the norm of the weights that read it (how much of the layer's
output it carries; ``importance = "activation"``), or the L2 norm of every
weight that writes or reads it (``"magnitude"``, also used when no samples are
at hand). The units:

* attention heads of transformer layers (a module with ``self.query``,
  ``self.key``, ``self.value`` and ``output.dense``, as in BERT, RoBERTa, MiniLM
  and ViT-style layers from transformers): the head's rows of Q, K and V and its
  columns of the output projection;
* feed-forward units of transformer layers (``intermediate.dense`` followed by
  ``output.dense``): a row of the first, a column of the second;
* hidden units of MLPs written as ``nn.Sequential`` (Linear, element-wise
  layers, Linear): a row of the first Linear, a column of the second.

The layers are replaced by smaller ``nn.Linear`` s, so the saved model is
smaller and every matmul narrower. Message-passing layers are left alone: their
channels feed later layers and residual paths that this module does not track,
and the report says so. On load, ``restore`` shrinks the same layers to the
stored shapes before the weights are read.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from autoglm_compress.cast import chosen_stages
from autoglm_compress.distill import Distillation
from autoglm_compress.specs import PruneConfig
from autoglm_sdk.plugin import ArtifactError, BuildContext, ManifestError

ELEMENTWISE = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.Dropout, nn.Identity)


def shrink_linear(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A new Linear keeping output ``rows`` and input ``cols`` (index tensors; None keeps all)."""
    weight = linear.weight.detach()
    if rows is not None:
        weight = weight[rows]
    if cols is not None:
        weight = weight[:, cols]
    bias = None if linear.bias is None else linear.bias.detach()
    if bias is not None and rows is not None:
        bias = bias[rows]
    out = nn.Linear(weight.size(1), weight.size(0), bias=bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        out.weight.copy_(weight)
        if bias is not None:
            out.bias.copy_(bias)
    return out


def _keep(scores: torch.Tensor, amount: float) -> torch.Tensor:
    """Indices of the strongest ``1 - amount`` of ``scores`` (at least one), in their original order."""
    count = max(1, round(len(scores) * (1 - amount)))
    return scores.topk(count).indices.sort().values


def attention_blocks(root: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (n, m)
        for n, m in root.named_modules()
        if all(isinstance(getattr(getattr(m, "self", None), k, None), nn.Linear) for k in ("query", "key", "value"))
        and isinstance(getattr(getattr(m, "output", None), "dense", None), nn.Linear)
        and hasattr(m.self, "attention_head_size")
    ]


def feed_forward_blocks(root: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (n, m)
        for n, m in root.named_modules()
        if isinstance(getattr(getattr(m, "intermediate", None), "dense", None), nn.Linear)
        and isinstance(getattr(getattr(m, "output", None), "dense", None), nn.Linear)
    ]


def mlp_pairs(root: nn.Module) -> list[tuple[str, nn.Sequential, int, int]]:
    """(name, sequential, i, j): Linear at i feeds Linear at j through element-wise layers only."""
    pairs = []
    for name, seq in root.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        layers = list(seq)
        for i, first in enumerate(layers):
            if not isinstance(first, nn.Linear):
                continue
            j = i + 1
            while j < len(layers) and isinstance(layers[j], ELEMENTWISE):
                j += 1
            if j < len(layers) and isinstance(layers[j], nn.Linear) and j > i + 1:
                pairs.append((name, seq, i, j))
    return pairs


def layer_stacks(root: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """ModuleLists of transformer layers (each holds an attention block): BERT's ``encoder.layer``."""
    return [
        (n, m)
        for n, m in root.named_modules()
        if isinstance(m, nn.ModuleList) and len(m) and all(attention_blocks(layer) for layer in m)
    ]


def kept_layers(count: int, keep: int) -> list[int]:
    """``keep`` of ``count`` layer indices, evenly spaced and ending with the last (6 -> 3: 1, 3, 5)."""
    if keep >= count:
        return list(range(count))
    return [round((i + 1) * count / keep) - 1 for i in range(keep)]


def cut_stack(root: nn.Module, name: str, stack: nn.ModuleList, keep: list[int]) -> None:
    """Replace ``stack`` (at ``name`` in ``root``) by its ``keep`` layers; a transformers config that counts the
    layers is told the new count."""
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, nn.ModuleList([stack[i] for i in keep]))
    for module in root.modules():
        config = getattr(module, "config", None)
        if getattr(config, "num_hidden_layers", None) == len(stack):
            config.num_hidden_layers = len(keep)


def set_heads(attention: nn.Module) -> None:
    """Make the attention module's head bookkeeping agree with its (possibly narrower) Q projection."""
    inner = attention.self
    width = inner.query.out_features
    inner.num_attention_heads = width // inner.attention_head_size
    inner.all_head_size = width


class Prune:
    name = "prune"
    kind = "compressor"
    Config = PruneConfig

    def __init__(self, config: PruneConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.stages: dict[str, dict[str, Any]] = {}
        self.recovery: dict[str, Any] | None = None
        self._activation: dict[int, torch.Tensor] = {}
        self.importance = config.importance

    # ------------------------------------------------------------------ apply

    def apply(self, model: Any, ctx: Any) -> Any:
        self.stages = {}
        teacher = model.frozen_copy() if self.config.recovery_epochs and self.config.distill and ctx.finetune else None
        keys = chosen_stages(model, self.config.stages, self.name)
        self._activation, self.importance = {}, self.config.importance
        if self.config.importance == "activation":
            if ctx.calibration:
                self._calibrate(
                    model, [model.stage_objects[k] for k in keys], ctx.calibration[: self.config.calibration_samples]
                )
            else:  # e.g. the contract kit's bare model: no samples to measure on
                self.importance = "magnitude (no calibration samples at hand)"
        for key in keys:
            root = model.stage_objects[key]
            before = sum(p.numel() for p in root.parameters())
            entry: dict[str, Any] = {"parameters_before": before}
            if self.config.keep_layers:
                entry["layers"] = self._drop_layers(root)
            if "heads" in self.config.units:
                entry["heads"] = self._prune_heads(root)
            if "ffn" in self.config.units:
                entry["ffn_units"] = self._prune_ffn(root)
            if "mlp" in self.config.units:
                entry["mlp_units"] = self._prune_mlps(root)
            entry["parameters_after"] = sum(p.numel() for p in root.parameters())
            if entry["parameters_after"] == before:
                entry["note"] = (
                    "nothing prunable: no attention heads, transformer feed-forward blocks or "
                    "Sequential MLPs (message-passing layers are not pruned)"
                )
            self.stages[key] = entry
        if not any(e["parameters_after"] < e["parameters_before"] for e in self.stages.values()):
            raise ManifestError(
                f"prune: nothing to prune in stages {sorted(self.stages)} with units {self.config.units}",
                hint="name stages that hold transformer layers or MLPs",
            )
        if self.config.recovery_epochs:
            if ctx.finetune is None:
                raise ManifestError(
                    "prune: recovery_epochs > 0 needs the training data, which is not at hand here",
                    hint="set recovery_epochs = 0",
                )
            # with a teacher the loss is (1 - distill) * task + distill * T^2 KL(teacher || student)
            extra = (
                ()
                if teacher is None
                else (Distillation(teacher, ctx.task, self.config.distill, self.config.temperature),)
            )
            self.recovery = ctx.finetune(
                model,
                self.config.recovery_epochs,
                self.config.recovery_lr,
                objectives=extra,
                task_weight=None if teacher is None else 1 - self.config.distill,
            )
            self.recovery["distilled_from"] = "the unpruned pipeline" if teacher is not None else None
        return model

    def _column_scores(self, consumer: nn.Linear, producers: list[nn.Linear]) -> torch.Tensor:
        """Importance of each input column of ``consumer`` (one unit each): with calibration data, the unit's
        mean |activation| times the norm of the weights that read it (what removing it takes out of the output);
        otherwise the L2 norm of every weight that writes or reads it."""
        reads = consumer.weight.detach().float()
        activation = self._activation.get(id(consumer))
        if activation is not None:
            return activation.to(reads.device) * reads.norm(dim=0)
        squares = reads.pow(2).sum(0)
        for producer in producers:
            squares = squares + producer.weight.detach().float().pow(2).sum(1)
        return squares.sqrt()

    def _consumers(self, root: nn.Module) -> list[nn.Linear]:
        """The Linears whose input columns are the units this pruner may remove."""
        out = []
        if "heads" in self.config.units:
            out += [block.output.dense for _, block in attention_blocks(root)]
        if "ffn" in self.config.units:
            out += [block.output.dense for _, block in feed_forward_blocks(root)]
        if "mlp" in self.config.units:
            out += [seq[j] for _, seq, _, j in mlp_pairs(root)]
        return out

    def _calibrate(self, model: Any, roots: list[nn.Module], samples: list[Any]) -> None:
        """Mean |input| of every consumer's columns over ``samples`` (the pipeline run eagerly, no gradients)."""
        sums: dict[int, torch.Tensor] = {}
        rows: dict[int, int] = {}

        def record(module: nn.Module, args: tuple) -> None:
            x = args[0].detach().float()
            flat = x.reshape(-1, x.size(-1))
            sums[id(module)] = sums.get(id(module), 0) + flat.abs().sum(0)
            rows[id(module)] = rows.get(id(module), 0) + flat.size(0)

        handles = [c.register_forward_pre_hook(record) for root in roots for c in self._consumers(root)]
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(samples), 32):
                    model(samples[i : i + 32])
        finally:
            for handle in handles:
                handle.remove()
            model.train(was_training)
        self._activation = {key: total / rows[key] for key, total in sums.items()}

    def _drop_layers(self, root: nn.Module) -> list[int]:
        before = after = 0
        for name, stack in layer_stacks(root):
            keep = kept_layers(len(stack), self.config.keep_layers)
            cut_stack(root, name, stack, keep)
            before, after = before + len(stack), after + len(keep)
        return [before, after]

    def _prune_heads(self, root: nn.Module) -> list[int]:
        before = after = 0
        for _, block in attention_blocks(root):
            inner, out = block.self, block.output
            size = inner.attention_head_size
            heads = inner.query.out_features // size
            if heads <= 1:
                continue
            columns = self._column_scores(out.dense, [inner.query, inner.key, inner.value])
            keep = _keep(columns.reshape(heads, size).sum(1), self.config.amount)
            rows = (keep[:, None] * size + torch.arange(size)).reshape(-1).to(inner.query.weight.device)
            for name in ("query", "key", "value"):
                setattr(inner, name, shrink_linear(getattr(inner, name), rows=rows))
            out.dense = shrink_linear(out.dense, cols=rows)
            set_heads(block)
            before, after = before + heads, after + len(keep)
        return [before, after]

    def _prune_ffn(self, root: nn.Module) -> list[int]:
        before = after = 0
        for _, block in feed_forward_blocks(root):
            up, down = block.intermediate.dense, block.output.dense
            keep = _keep(self._column_scores(down, [up]), self.config.amount).to(up.weight.device)
            block.intermediate.dense = shrink_linear(up, rows=keep)
            block.output.dense = shrink_linear(down, cols=keep)
            before, after = before + up.out_features, after + len(keep)
        return [before, after]

    def _prune_mlps(self, root: nn.Module) -> list[int]:
        before = after = 0
        for _, seq, i, j in mlp_pairs(root):
            first, second = seq[i], seq[j]
            if first.out_features <= 1:
                continue
            keep = _keep(self._column_scores(second, [first]), self.config.amount).to(first.weight.device)
            seq[i] = shrink_linear(first, rows=keep)
            seq[j] = shrink_linear(second, cols=keep)
            before, after = before + first.out_features, after + len(keep)
        return [before, after]

    # ---------------------------------------------------------------- restore

    def restore(self, model: Any, ctx: Any) -> Any:
        """On load: every Linear of the chosen stages takes the shape its stored weight has."""
        shapes = ctx.stored_shapes or {}
        if not shapes:
            raise ArtifactError(
                "prune: the artifact's weight shapes are unknown, so the pruned layers cannot be rebuilt"
            )
        for key in chosen_stages(model, self.config.stages, self.name):  # first the layers the stored weights have
            root = model.stage_objects[key]
            prefix = next(n for n, m in model.named_modules() if m is root)
            for name, stack in layer_stacks(root):
                stored = {k.split(".")[0] for k in _after(shapes, f"{prefix}.{name}.")}
                if stored and len(stored) < len(stack):
                    cut_stack(root, name, stack, list(range(len(stored))))
        names = {id(m): n for n, m in model.named_modules()}
        for key in chosen_stages(model, self.config.stages, self.name):
            root = model.stage_objects[key]
            for parent_name, parent in list(root.named_modules()):
                for child_name, child in list(parent.named_children()):
                    if not isinstance(child, nn.Linear):
                        continue
                    name = names[id(child)]  # a later int8 step stores the same [out, in] as weight_int8
                    stored = shapes.get(f"{name}.weight") or shapes.get(f"{name}.weight_int8")
                    if stored is None or tuple(child.weight.shape) == tuple(stored):
                        continue
                    resized = nn.Linear(
                        stored[1],
                        stored[0],
                        bias=child.bias is not None,
                        device=child.weight.device,
                        dtype=child.weight.dtype,
                    )
                    setattr(parent, child_name, resized)
            for _, block in attention_blocks(root):
                set_heads(block)
        return model

    def report(self) -> dict[str, Any]:
        return {
            "keep_layers": self.config.keep_layers,
            "amount": self.config.amount,
            "units": list(self.config.units),
            "importance": self.importance,
            "stages": self.stages,
            "recovery": self.recovery,
        }


def _after(shapes: dict[str, Any], prefix: str) -> list[str]:
    """The stored tensor names under ``prefix``, without it."""
    return [k[len(prefix) :] for k in shapes if k.startswith(prefix)]
