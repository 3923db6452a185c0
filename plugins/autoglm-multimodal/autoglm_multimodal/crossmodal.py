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

from autoglm_sdk.plugin import TaskSpec, batches, class_ids, evaluate, pyplot

SHARED_SPACE_PNG = "shared_space.png"


def without(samples: list[dict[str, Any]], drop: set[str]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k not in drop} for s in samples]


def subsets(modalities: list[str]) -> list[tuple[str, ...]]:
    return [c for size in range(1, len(modalities) + 1) for c in combinations(sorted(modalities), size)]


def subset_accuracy(
    model: Any,
    samples: list[dict[str, Any]],
    task: TaskSpec,
    modalities: list[str],
    batch_size: int,
    autocast: Any = None,
) -> dict[str, float]:
    """Test accuracy when only each subset of the modalities is given."""
    out = {}
    for keep in subsets(modalities):
        stripped = without(samples, set(modalities) - set(keep))
        out["+".join(keep)] = evaluate(model, stripped, task, batch_size, autocast)["accuracy"]
    return out


@torch.no_grad()
def embeddings(
    model: Any, samples: list[dict[str, Any]], stages: tuple[str, ...], batch_size: int
) -> dict[str, torch.Tensor]:
    model.eval()
    collected: dict[str, list[torch.Tensor]] = {s: [] for s in stages}
    for chunk in batches(samples, batch_size):
        pred = model(chunk)
        for stage in stages:
            collected[stage].append(pred.outputs[stage].embedding.float().cpu())
    return {s: torch.cat(v) for s, v in collected.items()}


def retrieval(
    vectors: dict[str, torch.Tensor], labels: torch.Tensor, names: dict[str, str], ks: tuple[int, ...] = (1, 5)
) -> dict[str, dict[str, float]]:
    """recall@k for every ordered pair of modalities (``image→audio``: image queries, audio items)."""
    out = {}
    for query in vectors:
        for item in vectors:
            if query == item:
                continue
            sims = vectors[query] @ vectors[item].t()
            ranked = sims.argsort(dim=1, descending=True)
            same = labels[ranked] == labels.unsqueeze(1)
            out[f"{names[query]}→{names[item]}"] = {
                f"recall@{k}": float(same[:, :k].any(dim=1).float().mean()) for k in ks
            }
    return out


def degrade(
    samples: list[dict[str, Any]], perturb: Callable[[dict[str, Any], random.Random], dict[str, Any]], seed: int
) -> list[dict[str, Any]]:
    rng = random.Random(f"degrade/{seed}")
    return [perturb(dict(s), rng) for s in samples]


def plot_shared_space(
    vectors: dict[str, torch.Tensor],
    labels: torch.Tensor,
    names: dict[str, str],
    label_names: tuple[str, ...],
    path: Path,
) -> None:
    """The shared space projected on its first two principal components, coloured by class (unlabelled: grey)."""
    plt = pyplot()
    stacked = torch.cat(list(vectors.values()))
    centred = stacked - stacked.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    points = (centred @ v[:2].t()).numpy()
    markers = ["o", "^", "s", "D"]
    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    start = 0
    colours = plt.get_cmap("tab10")
    for i, (stage, vec) in enumerate(vectors.items()):
        block = points[start : start + len(vec)]
        ax.scatter(
            block[:, 0],
            block[:, 1],
            c=[colours(int(c) % 10) if c >= 0 else "0.6" for c in labels],
            marker=markers[i % 4],
            s=14,
            alpha=0.7,
        )
        start += len(vec)
    ax.set_title("Shared space (first two principal components)")
    # two legends: the marker says the modality, the colour the class (one legend would mix them up)
    from matplotlib.lines import Line2D

    def handle(marker: str, colour: Any) -> Line2D:
        return Line2D([], [], marker=marker, linestyle="", color=colour, markersize=5)

    shapes = [handle(markers[i % 4], "0.3") for i in range(len(vectors))]
    modality = ax.legend(shapes, [names[s] for s in vectors], title="modality", fontsize=7, loc="upper left")
    ax.add_artist(modality)
    shown = range(min(len(label_names), 10))
    ax.legend([handle("o", colours(c)) for c in shown], [label_names[c] for c in shown], title="class", fontsize=7,
              loc="upper right")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluate_crossmodal(
    model: Any, dataset: Any, stages: tuple[str, ...], names: dict[str, str], batch_size: int, autocast: Any, seed: int
) -> dict[str, Any]:
    """Everything above on the test split, clean and under each perturbation the data source offers."""
    test = dataset.splits["test"]
    modalities = sorted(dataset.port.modalities)
    labels = class_ids(test)
    report: dict[str, Any] = {
        "clean": {
            "accuracy_by_modalities": subset_accuracy(model, test, dataset.task, modalities, batch_size, autocast)
        }
    }
    vectors = embeddings(model, test, stages, batch_size) if stages else {}
    if vectors:
        report["clean"]["retrieval"] = retrieval(vectors, labels, names)
    for name, perturb in (getattr(dataset, "perturbations", None) or {}).items():
        degraded = degrade(test, perturb, seed)
        entry: dict[str, Any] = {
            "accuracy_by_modalities": subset_accuracy(model, degraded, dataset.task, modalities, batch_size, autocast)
        }
        if stages:
            entry["retrieval"] = retrieval(embeddings(model, degraded, stages, batch_size), labels, names)
        report[name] = entry
    report["_vectors"] = vectors  # popped by the caller for the plot
    return report


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def markdown(crossmodal: dict[str, Any]) -> list[str]:
    """report.md's sections: accuracy by the modalities given, and retrieval, per condition."""
    conditions = list(crossmodal)
    subsets = list(crossmodal["clean"]["accuracy_by_modalities"])
    lines = [
        "",
        "## Accuracy by the modalities given (test split)",
        "",
        "| condition | " + " | ".join(subsets) + " |",
        "|---|" + "---|" * len(subsets),
    ]
    for cond in conditions:
        acc = crossmodal[cond]["accuracy_by_modalities"]
        lines.append(f"| {cond} | " + " | ".join(_fmt(acc[s]) for s in subsets) + " |")
    if "retrieval" in crossmodal["clean"]:
        pairs = list(crossmodal["clean"]["retrieval"])
        lines += [
            "",
            "## Cross-modal retrieval (test split; a hit is an item of the same class)",
            "",
            "| condition | " + " | ".join(f"{p} R@1 | {p} R@5" for p in pairs) + " |",
            "|---|" + "---|---|" * len(pairs),
        ]
        for cond in conditions:
            r = crossmodal[cond].get("retrieval", {})
            lines.append(
                f"| {cond} | "
                + " | ".join(f"{_fmt(r[p]['recall@1'])} | {_fmt(r[p]['recall@5'])}" for p in pairs)
                + " |"
            )
        lines += ["", f"![shared space]({SHARED_SPACE_PNG})"]
    return lines


def evaluate_session(session: Any, model: Any) -> dict[str, Any] | None:
    """The ``autoglm_evaluate`` contribution: for a graph-level pipeline with encoders and several modalities,
    the figures above, their report.md lines and the shared-space picture."""
    dataset = session.dataset
    encoders = [k for k in session.manifest.stages if k.startswith("encoders.")]
    if not encoders or len(dataset.port.modalities) < 2 or dataset.task.level != "graph":
        return None
    names = {k: "+".join(sorted(session.ports[k].modalities)) for k in encoders}
    from autoglm_multimodal.objectives import ContrastiveAlignment

    # the stages some alignment objective puts in the shared space, once each
    aligned = tuple(
        dict.fromkeys(
            s for o in model.objective_objects.values() if isinstance(o, ContrastiveAlignment) for s in o.stages
        )
    )
    figures = evaluate_crossmodal(
        model, dataset, aligned, names, session.batch_size, session.backend.autocast, session.seed
    )
    vectors = figures.pop("_vectors")

    def draw(path: Path) -> None:
        plot_shared_space(vectors, class_ids(dataset.splits["test"]), names, dataset.task.label_names, path)

    return {
        "name": "crossmodal",
        "figures": figures,
        "markdown": markdown(figures),
        "pictures": {SHARED_SPACE_PNG: draw} if vectors else {},
    }
