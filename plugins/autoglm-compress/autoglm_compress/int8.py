"""``int8``: dynamic INT8 for every linear layer of the chosen stages.

Each ``nn.Linear`` (and PyG's ``Linear``) becomes an :class:`Int8Linear`: its
weight is stored as int8 with one float32 scale per output row (symmetric,
zero point 0, so ``w ≈ scale * q``) and its inputs are quantized per batch on
the fly, as ``torch.ao``'s dynamic quantization does. On the CPU it runs
PyTorch's quantized kernel (``quantized::linear_dynamic``, fbgemm/x86); where
that kernel is missing (other devices, or a future PyTorch without it) it
multiplies by the dequantized weight instead, which keeps the size gain but
not the speed, and ``report()`` says which one ran. The weights live in plain
int8 and float32 buffers, so artifacts stay safetensors; on load ``restore``
swaps the same layers for empty ``Int8Linear`` s before the weights are read.
PyTorch's deprecation warnings about quantized tensors are silenced here: they
concern the API this module wraps, not anything the user can change.
"""

from __future__ import annotations

import fnmatch
import functools
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autoglm_compress.cast import chosen_stages
from autoglm_compress.specs import Int8Config
from autoglm_sdk.plugin import BuildContext, ManifestError, cpu_flags


def _pyg_linear() -> tuple[type, ...]:
    try:
        from torch_geometric.nn.dense.linear import Linear
    except ImportError:  # PyG absent: only torch's own linear layers exist
        return ()
    return (Linear,)


@functools.cache
def without_vnni() -> bool:
    """Whether this CPU lacks VNNI. fbgemm's int8 kernels then add u8 x s8 products in pairs in int16, which
    saturates on full-range activations (errors of 30% of the output on an AVX2-only AMD EPYC); activations
    quantized to 7 bits (``reduce_range``, as PyTorch's own x86 qconfig does) stay exact there."""
    # no flags to read (not Linux): assume the safe, slightly coarser range
    return not cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"}


def quantizable(module: nn.Module) -> bool:
    if not isinstance(module, (nn.Linear, *_pyg_linear())):
        return False
    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and not isinstance(weight, nn.parameter.UninitializedParameter)


class Int8Linear(nn.Module):
    """``y = x @ (scale * q).T + bias`` with ``q`` int8 ``[out, in]`` and ``scale`` float32 ``[out]``."""

    def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self._packed: Any = None
        self.kernel = "not run yet"
        self.per_token = False  # set by Int8Dynamic from its config; not stored: the manifest says it

    @classmethod
    def from_linear(cls, linear: nn.Module) -> "Int8Linear":
        weight = linear.weight.detach().float()
        layer = cls(weight.size(1), weight.size(0), linear.bias is not None)
        scale = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12)
        layer.weight_int8.copy_(torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        layer.weight_scale.copy_(scale)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach().float())
        return layer.to(weight.device)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight, for code that reads ``layer.weight`` directly."""
        return self.weight_int8.float() * self.weight_scale[:, None]

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._packed = None  # new weights: pack again on the next forward

    def _pack(self) -> Any:
        if self._packed is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                zeros = torch.zeros(self.out_features, dtype=torch.long)
                q = torch._make_per_channel_quantized_tensor(
                    self.weight_int8.cpu(), self.weight_scale.double().cpu(), zeros, 0
                )
                self._packed = torch.ops.quantized.linear_prepack(q, None if self.bias is None else self.bias.cpu())
        return self._packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_token and x.dtype == torch.float32:
            try:
                return self._per_token(x)
            except (RuntimeError, AttributeError, NotImplementedError):
                pass  # no int8 matmul for this device or shape: the dequantized weight below
        elif x.device.type == "cpu" and x.dtype == torch.float32:
            try:
                flat = x.reshape(-1, self.in_features)
                out = torch.ops.quantized.linear_dynamic(flat.contiguous(), self._pack(), without_vnni())
                self.kernel = "quantized::linear_dynamic"
                return out.reshape(*x.shape[:-1], self.out_features)
            except (RuntimeError, AttributeError, NotImplementedError):
                pass  # no quantized kernel in this PyTorch build: fall through to the dequantized weight
        self.kernel = "dequantized matmul"
        return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def _per_token(self, x: torch.Tensor) -> torch.Tensor:
        """Each row (token) of ``x`` quantized with its own scale, int8 x int8 -> int32 by ``torch._int_mm``: an
        outlier token no longer coarsens every other token's quantization, as one scale per batch does."""
        flat = x.reshape(-1, self.in_features)
        scale = (flat.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12)
        q = torch.round(flat / scale).clamp(-127, 127).to(torch.int8)
        out = torch._int_mm(q, self.weight_int8.t()).float() * scale * self.weight_scale
        if self.bias is not None:
            out = out + self.bias
        self.kernel = "torch._int_mm (per-token activations)"
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, int8"


class Int8Embedding(nn.Module):
    """An embedding table stored as int8 rows with one float32 scale per row; a lookup dequantizes only the rows
    it reads (weight-only quantization: there is no matmul to speed up, but the table is 4x smaller)."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.register_buffer("weight_int8", torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(num_embeddings))
        self.kernel = "int8 embedding rows"

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding) -> "Int8Embedding":
        weight = embedding.weight.detach().float()
        layer = cls(*weight.shape)
        scale = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12)
        layer.weight_int8.copy_(torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        layer.weight_scale.copy_(scale)
        return layer.to(weight.device)

    @property
    def weight(self) -> torch.Tensor:
        return self.weight_int8.float() * self.weight_scale[:, None]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight_int8).float() * self.weight_scale[ids].unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8"


def embeddable(module: nn.Module) -> bool:
    return type(module) is nn.Embedding and module.max_norm is None


class Int8Dynamic:
    name = "int8"
    kind = "compressor"
    Config = Int8Config

    def __init__(self, config: Int8Config, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.layers: list[Int8Linear | Int8Embedding] = []
        self.runner_stages: dict[str, str] = {}  # stage -> the quantiser its runner uses

    def _swap(self, model: Any, make: Any) -> Any:
        self.layers = []
        self.runner_stages: dict[str, str] = {}  # stage -> the quantiser its runner uses
        self.skipped: list[str] = []
        matched: set[str] = set()
        names: list[str] = []  # layer names, for the hint when a pattern matches none
        for key in chosen_stages(model, self.config.stages, self.name):
            runner = model.runner(key) if hasattr(model, "runner") else None  # a bare module has no runners
            root = model.stage_objects[key]
            targets = []
            for name, m in root.named_modules():
                if not (
                    (quantizable(m) or (self.config.embeddings and embeddable(m)))
                    and m.weight.numel() >= self.config.min_weights
                ):
                    continue
                names.append(name)
                hits = {pattern for pattern in self.config.skip if fnmatch.fnmatchcase(name, pattern)}
                matched |= hits
                if hits:
                    self.skipped.append(f"{key}:{name}")
                else:
                    targets.append((name, m))
            if runner is not None and "int8" in runner.capabilities and self.config.activations == "per_tensor":
                # a stage run by ONNX Runtime or torch.compile is quantised by that runtime's own quantiser when
                # it is exported or compiled; its PyTorch weights stay float32 (they are what gets exported)
                runner.quantize_int8(self.config.skip)
                self.runner_stages[key] = runner.describe().get("quantized") or f"int8 ({runner.backend})"
                continue
            for name, module in targets:
                replacement = make(module)
                if isinstance(replacement, Int8Linear):
                    replacement.per_token = self.config.activations == "per_token"
                parent_name, _, child = name.rpartition(".")
                parent = root.get_submodule(parent_name) if parent_name else root
                setattr(parent, child, replacement)
                self.layers.append(replacement)
        unmatched = [p for p in self.config.skip if p not in matched]
        if unmatched:
            raise ManifestError(
                f"int8: skip pattern(s) {', '.join(map(repr, unmatched))} match no quantizable layer",
                hint="patterns are globs over layer names within a stage, such as " + ", ".join(map(repr, names[:3])),
            )
        return model

    def apply(self, model: Any, ctx: Any) -> Any:
        return self._swap(
            model,
            lambda m: Int8Embedding.from_embedding(m) if isinstance(m, nn.Embedding) else Int8Linear.from_linear(m),
        )

    def restore(self, model: Any, ctx: Any) -> Any:
        """On load: the same layers as empty int8 layers, so the stored int8 weights and scales fit them."""

        def empty(m: nn.Module) -> nn.Module:
            if isinstance(m, nn.Embedding):
                return Int8Embedding(*m.weight.shape).to(m.weight.device)
            return Int8Linear(m.weight.size(1), m.weight.size(0), m.bias is not None).to(m.weight.device)

        return self._swap(model, empty)

    def report(self) -> dict[str, Any]:
        return {
            "layers_quantized": len(self.layers),
            "weights_quantized": sum(layer.weight_int8.numel() for layer in self.layers),
            "kernels": sorted({layer.kernel for layer in self.layers} | set(self.runner_stages.values())),
            "quantized_by_runner": self.runner_stages,
            "left_in_float32": self.skipped,
        }
