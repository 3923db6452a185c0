"""The kit's standard fixtures: small seeded inputs and build contexts per kind."""

from __future__ import annotations

from typing import Any

from autoglm_sdk.protocols import BuildContext, Port, TaskSpec

FEATURE_DIM = 8
NUM_EDGE_TYPES = 3
NUM_CLASSES = 3
TASK = TaskSpec("graph", NUM_CLASSES, ("a", "b", "c"))
#: the task a text decoder (capability ``task:generate``) is built for: the samples' ``target`` text
TEXT_TASK = TaskSpec("graph", NUM_CLASSES, ("a", "b", "c"), kind="generate", target="target")
#: an extractive decoder's task: its target (``span``) is a name the text states
SPAN_TASK = TaskSpec("graph", NUM_CLASSES, ("a", "b", "c"), kind="extractive-qa", target="span")
#: graphs mark a query pair (node 0 the source, the last node the target), as a text builder does
GRAPH_PORT = Port(
    "semantic_graph", dim=FEATURE_DIM, num_edge_types=NUM_EDGE_TYPES, attributes=frozenset({"query_pair"})
)
#: Candidate inputs for graph builders: the first one its signature accepts is used.
#: the relation types the stories state, which the text port declares (learned builders train on them)
TEXT_RELATIONS = ("parent", "child", "sibling", "pibling", "nibling")
SAMPLE_PORTS = {
    "graph": Port("samples", frozenset({"graph"}), dim=FEATURE_DIM, num_edge_types=NUM_EDGE_TYPES),
    "text": Port("samples", frozenset({"text"}), edge_type_names=TEXT_RELATIONS),
    "image": Port("samples", frozenset({"image"})),
    "audio": Port("samples", frozenset({"audio"})),
}
#: For graph builders that read encoders (a multimodal builder): two encoders' outputs.
EMBEDDING_PORTS = {
    "encoders.text": Port("embeddings", frozenset({"text"}), dim=FEATURE_DIM),
    "encoders.image": Port("embeddings", frozenset({"image"}), dim=FEATURE_DIM),
}
#: raw image samples: float32 arrays [channels, height, width] in [0, 1]
IMAGE_SHAPE = (3, 32, 32)
#: raw audio samples: {"waveform": float32 array [channels, time], "sample_rate": int}
AUDIO_RATE = 16_000
AUDIO_SECONDS = (0.4, 0.6, 0.5)
TEXTS = [
    "Anna is Ben's mother. Ben's sister is Clara. How is Clara related to Anna?",
    "Dmitri has a brother named Emil. What is Emil to Dmitri?",
    "Fatima, the aunt of Gustav, lives nearby. Gustav's father is Hassan. How is Hassan related to Fatima?",
]
#: each story's gold annotation, for builders that learn from stories: people (name, gender), the stated facts
#: ``[head, type, tail]`` read "tail is head's type", and the question's [target, source]
TEXT_GOLD = [
    ([("Anna", "female"), ("Ben", "male"), ("Clara", "female")], [(1, "parent", 0), (1, "sibling", 2)], (2, 0)),
    ([("Dmitri", "male"), ("Emil", "male")], [(0, "sibling", 1)], (1, 0)),
    ([("Fatima", "female"), ("Gustav", "male"), ("Hassan", "male")], [(1, "pibling", 0), (1, "parent", 2)], (2, 0)),
]


def annotated_text(i: int) -> dict[str, Any]:
    """Story ``i`` of TEXTS with its gold ``entities``, ``mentions`` (every name occurrence), ``facts`` and
    ``query_entities``, in the format the kinship generator and the jsonl source give learned builders."""
    import re

    text = TEXTS[i % len(TEXTS)]
    people, facts, query = TEXT_GOLD[i % len(TEXT_GOLD)]
    mentions = [
        {"start": m.start(), "end": m.end(), "entities": [e], "kind": "name"}
        for e, (name, _) in enumerate(people)
        for m in re.finditer(rf"\b{name}\b", text)
    ]
    return {
        "text": text,
        "entities": [{"name": name, "gender": gender} for name, gender in people],
        "mentions": sorted(mentions, key=lambda m: m["start"]),
        "facts": [list(f) for f in facts],
        "query_entities": list(query),
    }


def random_graphs(count: int = 3, dim: int = FEATURE_DIM, seed: int = 0) -> list[Any]:
    """``count`` small directed graphs of 4..7 nodes with typed edges and node texts."""
    import torch

    from autoglm_sdk.graph import SemanticGraph

    generator = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(count):
        n = 4 + i % 4
        num_edges = 2 * n
        edge_index = torch.randint(0, n, (2, num_edges), generator=generator)
        graphs.append(
            SemanticGraph(
                x=torch.randn(n, dim, generator=generator),
                edge_index=edge_index,
                edge_type=torch.randint(0, NUM_EDGE_TYPES, (num_edges,), generator=generator),
                y=torch.randint(0, NUM_CLASSES, (n,), generator=generator),
                is_source=torch.arange(n) == 0,
                is_target=torch.arange(n) == n - 1,
                node_text=[f"node {j}" for j in range(n)],
            )
        )
    return graphs


def samples_for(port: Port, count: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Raw samples filling ``port``, with graph-level labels."""
    from torch_geometric.data import Data

    samples = []
    graphs = random_graphs(count, port.dim or FEATURE_DIM, seed) if "graph" in port.modalities else []
    for i in range(count):
        sample: dict[str, Any] = {"label": i % NUM_CLASSES}
        if "graph" in port.modalities:
            g = graphs[i]
            sample["graph"] = Data(x=g.x, edge_index=g.edge_index, edge_type=g.edge_type, y=g.y)
        if "text" in port.modalities:
            sample.update(annotated_text(i))
        if "image" in port.modalities:
            sample["image"] = _random_array(IMAGE_SHAPE, seed * 100 + i).clip(0, 1)
        if "audio" in port.modalities:  # tones of different length and pitch: a padded batch must not leak
            import numpy as np

            t = np.arange(int(AUDIO_RATE * AUDIO_SECONDS[i % 3]), dtype=np.float32) / AUDIO_RATE
            wave = 0.5 * np.sin(2 * np.pi * (220.0 * (i + 1)) * t) + 0.05 * _random_array(t.shape, seed * 100 + i)
            sample["audio"] = {"waveform": wave[None, :].astype(np.float32), "sample_rate": AUDIO_RATE}
        samples.append(sample)
    return samples


def encoder_outputs(ports: dict[str, Port], count: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Per sample, one single-row EncoderOutput per encoder port: image ports get a 4x4 patch
    grid, others sequences of 3..6 states."""
    import torch

    from autoglm_sdk.encoding import EncoderOutput

    generator = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(count):
        per_stage = {}
        for stage, port in ports.items():
            length = 16 if "image" in port.modalities else 3 + (i + len(stage)) % 4
            states = torch.randn(1, length, port.dim or FEATURE_DIM, generator=generator)
            per_stage[stage] = EncoderOutput(states, torch.ones(1, length, dtype=torch.bool), states.mean(1))
        samples.append(per_stage)
    return samples


def batch_encoder_outputs(singles: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad and stack per-sample EncoderOutputs into one batch per encoder (padding masked out)."""
    import torch

    from autoglm_sdk.encoding import EncoderOutput

    out = {}
    for stage in singles[0]:
        parts = [s[stage] for s in singles]
        width = max(p.states.size(1) for p in parts)
        states = torch.zeros(len(parts), width, parts[0].states.size(2), dtype=parts[0].states.dtype)
        mask = torch.zeros(len(parts), width, dtype=torch.bool)
        for b, p in enumerate(parts):
            states[b, : p.states.size(1)] = p.states[0]
            mask[b, : p.states.size(1)] = True
        out[stage] = EncoderOutput(states, mask, torch.cat([p.pooled for p in parts]))
    return out


def _random_array(shape: tuple[int, ...], seed: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def writes_text(kind: str, spec: Any) -> bool:
    """A decoder for text tasks: it reads the reasoner's graph and the samples (their text and target text)."""
    from autoglm_sdk.protocols import supported_tasks

    return kind == "decoder" and any(t != "classify" for t in supported_tasks(spec.capabilities))


def text_graphs(samples: list[dict[str, Any]], seed: int = 0) -> list[Any]:
    """One random graph per text sample whose first nodes are named as the sample's people, as a text graph
    builder's would be (decoders may find the nodes in the text by name)."""
    graphs = random_graphs(len(samples), seed=seed)
    for graph, sample in zip(graphs, samples):
        names = [e["name"] for e in sample.get("entities", [])]
        graph.node_text = [names[j] if j < len(names) else f"node {j}" for j in range(int(graph.num_nodes))]
    return graphs


def text_task(spec: Any) -> TaskSpec:
    """The kit's task for a text decoder: writing text where it can, else extracting spans."""
    from autoglm_sdk.protocols import supported_tasks

    return TEXT_TASK if {"generate", "summarise"} & set(supported_tasks(spec.capabilities)) else SPAN_TASK


def text_samples(count: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Text samples for text decoders, each with a ``target`` text that names its label and a ``span`` (a name its
    text states)."""
    samples = samples_for(SAMPLE_PORTS["text"], count, seed)
    for sample in samples:
        sample["target"] = f"The answer is {TASK.label_name(sample['label'])}: from {sample['entities'][0]['name']}."
        sample["span"] = sample["entities"][0]["name"]
    return samples


def context_for(kind: str, spec: Any, config: Any, seed: int = 0) -> BuildContext:
    """A build context that satisfies ``spec``'s signature for the kit's fixtures."""
    from autoglm_sdk.protocols import PortMismatch

    if writes_text(kind, spec):
        return BuildContext(
            inputs={"reasoner": GRAPH_PORT, "data": SAMPLE_PORTS["text"]}, task=text_task(spec), seed=seed, stage=kind
        )
    if kind in ("reasoner", "decoder"):
        return BuildContext(inputs={"upstream": GRAPH_PORT}, task=TASK, seed=seed, stage=kind)
    if kind in ("graph_builder", "encoder"):
        problems = []
        for port in SAMPLE_PORTS.values():
            ctx = BuildContext(inputs={"data": port}, task=TASK, seed=seed, stage=kind)
            try:
                spec.output_port(config, ctx)
                return ctx
            except PortMismatch as exc:
                problems.append(str(exc))
        if kind == "graph_builder":
            ctx = BuildContext(inputs=dict(EMBEDDING_PORTS), task=TASK, seed=seed, stage=kind)
            try:
                spec.output_port(config, ctx)
                return ctx
            except PortMismatch as exc:
                problems.append(str(exc))
        raise AssertionError(f"no standard fixture fits this {kind.replace('_', ' ')}: {'; '.join(problems)}")
    if kind == "objective":  # objectives read the stages' outputs: here two encoders'
        return BuildContext(inputs=dict(EMBEDDING_PORTS), task=TASK, seed=seed, stage=kind)
    return BuildContext(task=TASK, seed=seed, stage=kind)


def prediction(count: int = 3, seed: int = 0) -> Any:
    """What an objective sees of one batch: logits ``[count, NUM_CLASSES]`` and every EMBEDDING_PORTS encoder's
    output with an L2-normalised ``embedding``, all requiring gradients."""
    import torch

    from autoglm_sdk.pipeline import Prediction

    outputs = batch_encoder_outputs(encoder_outputs(EMBEDDING_PORTS, count, seed))
    for out in outputs.values():
        out.embedding = torch.nn.functional.normalize(out.pooled, dim=-1).detach().requires_grad_(True)
    logits = torch.randn(count, NUM_CLASSES, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
    return Prediction(logits, None, outputs)


def dataset_for(ctx: BuildContext, count: int = 6, seed: int = 0) -> Any:
    """A small Dataset for a stage's ``fit``: samples filling the stage's samples input (graph samples otherwise)."""
    from autoglm_sdk.protocols import Dataset

    port = next((p for p in ctx.inputs.values() if p.type == "samples"), SAMPLE_PORTS["graph"])
    make = text_samples if ctx.task in (TEXT_TASK, SPAN_TASK) else lambda n, s: samples_for(port, n, s)
    splits = {split: make(count, seed + i) for i, split in enumerate(("train", "val", "test"))}
    return Dataset(ctx.task or TASK, port, splits, fingerprint=f"kit-{seed}")
