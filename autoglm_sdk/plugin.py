"""The names a plugin author may import: ``from autoglm_sdk.plugin import PluginSpec, Port, ...``.

This module and :mod:`autoglm_sdk` (``__all__``) are the SDK's public surface;
:mod:`autoglm_sdk.testing` is the contract kit. Everything else in the core may
change without notice, and a test in the SDK fails when a plugin, contrib or a
benchmark imports it. Light like the rest of the entry path: names load their
modules (and torch) only when first used.
"""

from __future__ import annotations

from autoglm_sdk import lazy_names

_LAZY = {
    # declaring a plugin (no torch)
    "PluginSpec": "autoglm_sdk.protocols",
    "PluginConfig": "autoglm_sdk.protocols",
    "PathField": "autoglm_sdk.protocols",
    "BuildContext": "autoglm_sdk.protocols",
    "Port": "autoglm_sdk.protocols",
    "PortMismatch": "autoglm_sdk.protocols",
    "TaskSpec": "autoglm_sdk.protocols",
    "TextOutput": "autoglm_sdk.protocols",
    "Dataset": "autoglm_sdk.protocols",
    "BackendStatus": "autoglm_sdk.protocols",
    "Fallback": "autoglm_sdk.placement",
    "StageNeed": "autoglm_sdk.placement",
    "StageRunner": "autoglm_sdk.protocols",
    "Objective": "autoglm_sdk.protocols",
    "CONTRACT_VERSION": "autoglm_sdk.protocols",
    "require_input": "autoglm_sdk.protocols",
    "require_modality": "autoglm_sdk.protocols",
    "reasoner_signature": "autoglm_sdk.protocols",
    "stage_seed": "autoglm_sdk.protocols",
    "hookimpl": "autoglm_sdk.hooks",
    "default_registry": "autoglm_sdk.registry",
    # errors a plugin raises for its users
    "AutoGLMError": "autoglm_sdk.errors",
    "AutoGLMWarning": "autoglm_sdk.errors",
    "ManifestError": "autoglm_sdk.errors",
    "DataError": "autoglm_sdk.errors",
    "InputError": "autoglm_sdk.errors",
    "ArtifactError": "autoglm_sdk.errors",
    "BackendUnavailableError": "autoglm_sdk.errors",
    # what flows between stages (torch)
    "SemanticGraph": "autoglm_sdk.graph",
    "check_graph": "autoglm_sdk.graph",
    "hops_between": "autoglm_sdk.graph",
    "EncoderOutput": "autoglm_sdk.encoding",
    "ProjectionHead": "autoglm_sdk.encoding",
    "encode_present": "autoglm_sdk.encoding",
    "to_device": "autoglm_sdk.pipeline",
    "map_tensors": "autoglm_sdk.pipeline",
    # training and measuring, for objectives, compressors and searchers (torch)
    "Session": "autoglm_sdk.session",
    "Prediction": "autoglm_sdk.pipeline",
    "TaskLoss": "autoglm_sdk.objectives",
    "objective_terms": "autoglm_sdk.objectives",
    "class_ids": "autoglm_sdk.objectives",
    "scored": "autoglm_sdk.objectives",
    "batches": "autoglm_sdk.trainer",
    "fit_alone": "autoglm_sdk.trainer",
    "evaluate": "autoglm_sdk.trainer",
    "snapshot": "autoglm_sdk.trainer",
    "neighbor_splits": "autoglm_sdk.sampling",
    "NeighborSampler": "autoglm_sdk.sampling",
    "SampledSplit": "autoglm_sdk.sampling",
    "footprint": "autoglm_sdk.bench",
    "measure": "autoglm_sdk.bench",
    "profile": "autoglm_sdk.bench",
    "percentile": "autoglm_sdk.bench",
    "cpu_flags": "autoglm_sdk.bench",
    "cpu_bf16": "autoglm_sdk.bench",
    "machine": "autoglm_sdk.bench",
    "time_split": "autoglm_sdk.bench",
    "describe_machine": "autoglm_sdk.bench",
    "pyplot": "autoglm_sdk.report",
    "plot_bars": "autoglm_sdk.report",
    "EpochBar": "autoglm_sdk.progress",
    # launching builds elsewhere (Ray Train)
    "checkpoint_dir": "autoglm_sdk.session",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(globals(), _LAZY)
