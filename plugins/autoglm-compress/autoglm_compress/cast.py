"""``bf16`` / ``fp16``: the chosen stages' floating-point parameters and buffers become 16-bit.

A cast stage converts the floating-point tensors it receives (plain tensors,
PyG graphs, encoder outputs, lists and dicts of them) to its dtype before its
forward and its floating-point outputs back to float32 after, so stages that
were not cast, the loss and the metrics keep working in float32. Integer
tensors (token ids, edge indices) are never touched. The artifact stores the
16-bit weights; on load, ``restore`` casts the freshly built stages the same
way before the weights are read.
"""

from __future__ import annotations

from typing import Any

import torch

from autoglm_compress.specs import CastConfig
from autoglm_sdk.plugin import BuildContext, ManifestError, map_tensors


def cast_floats(value: Any, dtype: torch.dtype) -> Any:
    """``value`` with every floating-point tensor inside it converted to ``dtype`` (see
    :func:`autoglm_sdk.pipeline.map_tensors`); integer tensors are left as they are."""
    return map_tensors(value, lambda t: t.to(dtype) if t.is_floating_point() and t.dtype != dtype else t)


def chosen_stages(model: Any, stages: list[str], compressor: str) -> list[str]:
    """The stages a compressor works on: those named, or every stage with weights; an unknown name is an error."""
    learnable = [
        k
        for k, m in model.stage_objects.items()
        if isinstance(m, torch.nn.Module) and any(True for _ in m.parameters())
    ]
    unknown = [s for s in stages if s not in model.stage_objects]
    if unknown:
        raise ManifestError(
            f"{compressor}.stages: `{unknown[0]}` is not a stage of this pipeline (stages with weights: {learnable})"
        )
    return stages or learnable


class Cast:
    kind = "compressor"
    Config = CastConfig
    name = ""
    dtype: torch.dtype = torch.float32

    def __init__(self, config: CastConfig, ctx: BuildContext | None = None) -> None:
        self.config = config

    def apply(self, model: Any, ctx: Any) -> Any:
        dtype = self.dtype
        for key in chosen_stages(model, self.config.stages, self.name):
            module = model.stage_objects[key]
            module.to(dtype)
            # inputs in, float32 out: the neighbours of a cast stage never see its dtype
            module.register_forward_pre_hook(
                lambda m, args, kwargs: (cast_floats(args, dtype), cast_floats(kwargs, dtype)), with_kwargs=True
            )
            module.register_forward_hook(lambda m, args, output: cast_floats(output, torch.float32))
        return model

    def restore(self, model: Any, ctx: Any) -> Any:
        """On load: the same casts and hooks on a freshly built pipeline, before its weights are read."""
        return self.apply(model, ctx)

    def report(self) -> dict[str, Any]:
        return {
            "dtype": str(self.dtype).removeprefix("torch."),
            "stages": self.config.stages or "every stage with weights",
        }


class BFloat16(Cast):
    name = "bf16"
    dtype = torch.bfloat16


class Float16(Cast):
    name = "fp16"
    dtype = torch.float16
