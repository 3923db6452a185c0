"""Transfer: start from a model already trained, and choose what trains when.

``[train] init_from`` names a built artifact or a build checkpoint; every tensor whose name and shape match the
new pipeline is copied in, the rest keep their fresh initialisation (a decoder with other classes). An artifact
also gives its stages' files (tokenizers, vocabularies), so an encoder keeps the vocabulary its weights were
trained with. The parameters are cut into blocks, input to output: each stage, split at numbered layers
(``convs.0``, ``encoder.layer.3``), the decoder as one block. ``layer_decay`` slows blocks down by their distance
from the output; ``unfreeze_every`` trains the output block first and adds one block, from the output back, on a
schedule (gradual unfreezing); ``freeze`` keeps whole stages fixed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from autoglm_sdk.dag import SINK
from autoglm_sdk.errors import AutoGLMError

_NUMBERED = re.compile(r"^(.*?\.\d+)(?:\.|$)")  # the name up to its first numbered component


def source(path: str | Path) -> tuple[dict[str, torch.Tensor], Path | None]:
    """The tensors a pipeline starts from, and the artifact whose stage files go with them (None: a checkpoint,
    whose stages were fitted to the same data and need no files)."""
    from safetensors.torch import load_file

    from autoglm_sdk.artifact import WEIGHTS
    from autoglm_sdk.trainer import STATE

    path = Path(path)
    if (path / WEIGHTS).exists():
        return load_file(str(path / WEIGHTS)), path
    if (path / STATE).exists():
        tensors = json.loads((path / STATE).read_text())["tensors"]
        return load_file(str(path / tensors / "model.safetensors")), None
    raise AutoGLMError(
        f"train.init_from: {path} is neither a built artifact (no weights.safetensors) nor a build checkpoint "
        "(no state.json)",
        hint="name an artifact directory written by `autoglm build`, or a folder OUTPUT.checkpoint",
    )


def load_matching(model: torch.nn.Module, tensors: dict[str, torch.Tensor], origin: str) -> dict[str, Any]:
    """Copy every tensor of ``tensors`` whose name and shape ``model`` has; what was loaded, skipped and left
    fresh (for the report). Nothing that matches is a mistake worth stopping for."""
    own = model.state_dict()
    loaded = {k: v for k, v in tensors.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    skipped = {
        k: ("not in this pipeline" if k not in own else f"shape {list(v.shape)} here {list(own[k].shape)}")
        for k, v in tensors.items()
        if k not in loaded
    }
    if not loaded:
        raise AutoGLMError(
            f"train.init_from: no tensor of {origin} fits this pipeline ({len(tensors)} tensors, none with a "
            "name and shape it has)",
            hint="start from an artifact built with the same stages (plugins and sizes)",
        )
    model.load_state_dict(loaded, strict=False)
    return {
        "init_from": origin,
        "loaded": len(loaded),
        "skipped": skipped,
        "fresh": sorted(k for k in own if k not in loaded),
    }


def blocks(model: Any) -> list[tuple[str, str, list[torch.nn.Parameter]]]:
    """(stage, block, parameters) of the trainable stages, input to output (see the module's docstring);
    objectives' own parameters (projection heads) are left to the caller."""
    out: dict[str, tuple[str, list[torch.nn.Parameter]]] = {}
    for key, stage in getattr(model, "stage_objects", {}).items():  # a bare module (tests, searchers): no stages
        if not isinstance(stage, torch.nn.Module):
            continue
        for name, parameter in stage.named_parameters():
            if not parameter.requires_grad:
                continue
            match = _NUMBERED.match(name)
            block = key if key == SINK or not match else f"{key}.{match.group(1)}"
            out.setdefault(block, (key, []))[1].append(parameter)
    return [(stage, block, params) for block, (stage, params) in out.items()]


def first_epoch(depth: int, unfreeze_every: int) -> int:
    """The epoch a block ``depth`` blocks from the output starts training (gradual unfreezing)."""
    return 1 + depth * unfreeze_every if unfreeze_every else 1


def set_trainable(groups: list[dict[str, Any]], epoch: int) -> bool:
    """Switch each block's parameters on or off for ``epoch`` (its group's ``first_epoch``); whether anything
    changed."""
    changed = False
    for group in groups:
        on = epoch >= group.get("first_epoch", 1)
        for parameter in group["params"]:
            changed |= parameter.requires_grad != on
            parameter.requires_grad_(on)
    return changed


def freeze(model: Any, stages: list[str]) -> None:
    for key in stages:
        stage = model.stage_objects[key]
        if isinstance(stage, torch.nn.Module):
            stage.requires_grad_(False)


def init_from(model: Any, path: str | Path) -> dict[str, Any]:
    """Load ``path``'s matching tensors into ``model`` (see :func:`load_matching`)."""
    tensors, _ = source(path)
    return load_matching(model, tensors, str(path))
