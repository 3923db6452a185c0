"""Evaluation of multimodal pipelines: accuracy from each subset of the modalities,
cross-modal retrieval in the shared space, degraded inputs, and a picture of the space.

Retrieval counts a hit when a retrieved item shows the same class as the query
(recall@k: the share of queries with a same-class item among the k nearest).
"""

from __future__ import annotations

import random
from itertools import combinations
from pathlib import Path
from typing import Any, Callable

import torch

from autoglm_sdk.protocols import TaskSpec


def without(samples: list[dict[str, Any]], drop: set[str]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k not in drop} for s in samples]


def subsets(modalities: list[str]) -> list[tuple[str, ...]]:
    return [c for size in range(1, len(modalities) + 1) for c in combinations(sorted(modalities), size)]


def subset_accuracy(model: Any, samples: list[dict[str, Any]], task: TaskSpec, modalities: list[str], batch_size: int,
                    autocast: Any = None) -> dict[str, float]:
    """Test accuracy when only each subset of the modalities is given."""
    from autoglm_sdk.trainer import evaluate

    out = {}
    for keep in subsets(modalities):
        stripped = without(samples, set(modalities) - set(keep))
        out["+".join(keep)] = evaluate(model, stripped, task, batch_size, autocast)["accuracy"]
    return out


@torch.no_grad()
def embeddings(model: Any, samples: list[dict[str, Any]], stages: tuple[str, ...], batch_size: int) -> dict[str, torch.Tensor]:
    from autoglm_sdk.trainer import batches

    model.eval()
    collected: dict[str, list[torch.Tensor]] = {s: [] for s in stages}
    for chunk in batches(samples, batch_size):
        pred = model(chunk)
        for stage in stages:
            collected[stage].append(pred.outputs[stage].embedding.float().cpu())
    return {s: torch.cat(v) for s, v in collected.items()}


def retrieval(vectors: dict[str, torch.Tensor], labels: torch.Tensor, names: dict[str, str], ks: tuple[int, ...] = (1, 5)) -> dict[str, dict[str, float]]:
    """recall@k for every ordered pair of modalities (``image→audio``: image queries, audio items)."""
    out = {}
    for query in vectors:
        for item in vectors:
            if query == item:
                continue
            sims = vectors[query] @ vectors[item].t()
            ranked = sims.argsort(dim=1, descending=True)
            same = labels[ranked] == labels.unsqueeze(1)
            out[f"{names[query]}→{names[item]}"] = {f"recall@{k}": float(same[:, :k].any(dim=1).float().mean()) for k in ks}
    return out


def degrade(samples: list[dict[str, Any]], perturb: Callable[[dict[str, Any], random.Random], dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"degrade/{seed}")
    return [perturb(dict(s), rng) for s in samples]


def plot_shared_space(vectors: dict[str, torch.Tensor], labels: torch.Tensor, names: dict[str, str],
                      label_names: tuple[str, ...], path: Path) -> None:
    """The shared space projected on its first two principal components, coloured by class (unlabelled: grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacked = torch.cat(list(vectors.values()))
    centred = stacked - stacked.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    points = (centred @ v[:2].t()).numpy()
    markers = ["o", "^", "s", "D"]
    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    start = 0
    colours = plt.get_cmap("tab10")
    for i, (stage, vec) in enumerate(vectors.items()):
        block = points[start:start + len(vec)]
        ax.scatter(block[:, 0], block[:, 1], c=[colours(int(c) % 10) if c >= 0 else "0.6" for c in labels], marker=markers[i % 4], s=14,
                   alpha=0.7, label=names[stage])
        start += len(vec)
    ax.set_title("Shared space (first two principal components)")
    ax.legend(title="modality", fontsize=8)
    for c in range(min(len(label_names), 10)):
        ax.scatter([], [], c=[colours(c)], label=label_names[c], s=14)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluate_crossmodal(model: Any, dataset: Any, stages: tuple[str, ...], names: dict[str, str], batch_size: int,
                        autocast: Any, seed: int) -> dict[str, Any]:
    """Everything above on the test split, clean and under each perturbation the data source offers."""
    from autoglm_sdk.trainer import class_ids

    test = dataset.splits["test"]
    modalities = sorted(dataset.port.modalities)
    labels = class_ids(test)
    report: dict[str, Any] = {"clean": {"accuracy_by_modalities": subset_accuracy(model, test, dataset.task, modalities, batch_size, autocast)}}
    vectors = embeddings(model, test, stages, batch_size) if stages else {}
    if vectors:
        report["clean"]["retrieval"] = retrieval(vectors, labels, names)
    for name, perturb in (getattr(dataset, "perturbations", None) or {}).items():
        degraded = degrade(test, perturb, seed)
        entry: dict[str, Any] = {"accuracy_by_modalities": subset_accuracy(model, degraded, dataset.task, modalities, batch_size, autocast)}
        if stages:
            entry["retrieval"] = retrieval(embeddings(model, degraded, stages, batch_size), labels, names)
        report[name] = entry
    report["_vectors"] = vectors  # popped by the builder for the plot
    return report
