"""``autoglm search``: bilevel DARTS search for a manifest whose reasoner is ``darts``.

Each step trains the architecture weights ``alpha`` on a validation batch and
then the ordinary weights on a training batch (first-order DARTS; with
``order = 2`` the architecture gradient is taken at one virtual weight step,
its Hessian term by finite differences, as in the DARTS paper). Known failure
modes and what guards against them:

* collapse onto parameter-free operations: ``zero`` is never derived, at most
  ``max_skip`` layers are derived as ``skip``, and the search stops early when
  the weight of ``skip`` + ``zero`` keeps rising past ``collapse_share`` or when
  the dominant eigenvalue of the validation loss's Hessian in ``alpha`` (the
  curvature proxy of RobustDARTS) grows past ``curvature_growth`` times its
  smallest value; the architecture from before the signal is kept;
* weights that stay nearly uniform, so their argmax means little: the default
  read-out is by perturbation (Wang et al., 2021): each candidate of a layer is
  switched off in turn and the one whose removal costs the supernet the most
  validation accuracy is chosen;
* memory: no graph is retained between steps; the second-order step frees its
  virtual weights before the next batch.

Writes the derived manifest, a report (JSON and markdown) and a plot of the
architecture weights over the epochs; ``retrain`` builds the derived manifest.
"""

from __future__ import annotations

import copy
import json
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from autoglm_sdk.plugin import ManifestError


@dataclass
class SearchOptions:
    epochs: int = 50
    order: int = 1
    arch_lr: float = 3e-3
    arch_weight_decay: float = 1e-3
    warmup_epochs: int = 5
    readout: str = "perturbation"
    collapse_share: float = 0.6
    curvature_every: int = 5
    curvature_growth: float = 2.0
    retrain: bool = False


@dataclass
class SearchResult:
    architecture: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""
    seconds: float = 0.0
    epoch_seconds: float = 0.0
    readout_scores: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Criterion:
    """The loss the search trains on, which is exactly the build's (the session's objectives: task, stages'
    own terms, the manifest's [objectives]), under the session's backend autocast; and the accuracy it reads."""

    model: Any
    session: Any

    def __post_init__(self) -> None:
        self.objectives = self.session.objectives(self.model)

    def loss(self, samples: list[dict[str, Any]]) -> torch.Tensor:
        from autoglm_sdk.plugin import objective_terms

        with self.session.backend.autocast():
            pred = self.model(samples)
        return objective_terms(self.objectives, pred, samples)[0]

    def accuracy(self, samples: list[dict[str, Any]]) -> float:
        from autoglm_sdk.plugin import evaluate

        return evaluate(self.model, samples, self.session.task, 64, self.session.backend.autocast)["accuracy"]


def dominant_eigenvalue(loss_fn: Callable[[], torch.Tensor], alpha: torch.nn.Parameter, iterations: int = 8) -> float:
    """Largest eigenvalue of the Hessian of ``loss_fn`` in ``alpha`` by power iteration on Hessian-vector
    products (``alpha`` is small, so a few iterations converge)."""
    vector = torch.randn_like(alpha)
    vector /= vector.norm()
    value = 0.0
    for _ in range(iterations):
        grad = torch.autograd.grad(loss_fn(), alpha, create_graph=True)[0]
        hv = torch.autograd.grad((grad * vector).sum(), alpha)[0]
        value = float((hv * vector).sum())
        vector = hv / hv.norm().clamp_min(1e-12)
    return value


def search(model: Any, session: Any, options: SearchOptions, log: Callable[[str], None] = print) -> SearchResult:
    """Run the bilevel search on a session's pipeline whose ``reasoner`` stage is a DARTS supernet."""
    from autoglm_sdk.plugin import batches

    train_config, seed, batch_size = session.manifest.train, session.seed, session.batch_size
    lr, weight_decay = train_config.lr, train_config.weight_decay
    crit = Criterion(model, session)

    darts = model.stage_objects["reasoner"]
    if not darts.arch_parameters():
        raise ManifestError(
            "reasoner.architecture is set: that is a derived network, there is nothing to search",
            hint="remove reasoner.architecture to search again",
        )
    alpha = darts.alpha
    weights = [p for p in model.parameters() if p is not alpha and p.requires_grad]
    w_opt = torch.optim.AdamW(weights, lr=lr, weight_decay=weight_decay)
    a_opt = torch.optim.Adam([alpha], lr=options.arch_lr, betas=(0.5, 0.999), weight_decay=options.arch_weight_decay)
    generator = torch.Generator().manual_seed(seed)
    train, val = session.split("train"), session.split("val")
    ops = darts.config.operations
    free = [k for k, name in enumerate(ops) if name in ("skip", "zero")]
    result = SearchResult(architecture=[])
    best_alpha, lowest_curvature, rising = alpha.detach().clone(), math.inf, 0
    started = time.perf_counter()
    epoch_times = []
    for epoch in range(1, options.epochs + 1):
        t = time.perf_counter()
        model.train()
        val_batches = batches(val, batch_size, generator)
        for step, chunk in enumerate(batches(train, batch_size, generator)):
            if epoch > options.warmup_epochs:
                val_chunk = val_batches[step % len(val_batches)]
                a_opt.zero_grad(set_to_none=True)
                if options.order == 2:
                    _second_order_grad(crit, alpha, weights, chunk, val_chunk, lr)
                else:
                    crit.loss(val_chunk).backward(inputs=[alpha])
                a_opt.step()
            w_opt.zero_grad(set_to_none=True)
            crit.loss(chunk).backward(inputs=weights)
            w_opt.step()
        epoch_times.append(time.perf_counter() - t)
        model.eval()
        w = darts.weights().detach()
        entropy = float(-(w * w.clamp_min(1e-12).log()).sum(-1).mean())
        row = {
            "epoch": epoch,
            "weights": w.tolist(),
            "entropy": entropy,
            "free_share": float(w[:, free].sum(-1).mean()) if free else 0.0,
            "val_accuracy": crit.accuracy(val),
            "seconds": epoch_times[-1],
        }
        if epoch > options.warmup_epochs and options.curvature_every and epoch % options.curvature_every == 0:
            model.train()  # the loss the architecture is trained on
            row["curvature"] = dominant_eigenvalue(lambda: crit.loss(val[:batch_size]), alpha)
            model.eval()
        result.history.append(row)
        log(
            f"search epoch {epoch}/{options.epochs}: supernet val {row['val_accuracy']:.3f}, entropy "
            f"{entropy:.3f}, skip+zero {row['free_share']:.2f}"
            + (f", curvature {row['curvature']:.3g}" if "curvature" in row else "")
        )
        # collapse guards: keep the architecture from before the signal
        if epoch > options.warmup_epochs and free and row["free_share"] > options.collapse_share:
            result.stopped = f"epoch {epoch}: skip+zero hold {row['free_share']:.0%} of the weights"
            break
        if "curvature" in row:
            lowest_curvature = min(lowest_curvature, abs(row["curvature"]))
            if abs(row["curvature"]) > options.curvature_growth * max(lowest_curvature, 1e-6):
                rising += 1
                if rising >= 2:
                    result.stopped = (
                        f"epoch {epoch}: the curvature proxy grew to {row['curvature']:.3g} "
                        f"(lowest {lowest_curvature:.3g})"
                    )
                    break
            else:
                rising = 0
        best_alpha = alpha.detach().clone()
    with torch.no_grad():
        alpha.copy_(best_alpha)
    result.seconds = time.perf_counter() - started
    result.epoch_seconds = sum(epoch_times) / max(len(epoch_times), 1)
    model.eval()
    if options.readout == "perturbation":
        result.architecture, result.readout_scores = perturbation_readout(crit, darts, val)
    else:
        result.architecture = darts.derive()
    return result


def _second_order_grad(
    crit: Criterion,
    alpha: torch.nn.Parameter,
    weights: list[torch.nn.Parameter],
    train_chunk: list[Any],
    val_chunk: list[Any],
    xi: float,
) -> None:
    """DARTS' unrolled gradient: ``dL_val(w', a)/da - xi * d2L_train(w, a)/da dw . dL_val(w', a)/dw'`` with
    ``w' = w - xi * dL_train/dw``, the Hessian-vector product by central finite differences."""
    backup = [p.detach().clone() for p in weights]
    grads = torch.autograd.grad(crit.loss(train_chunk), weights, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(weights, grads):
            if g is not None:
                p.sub_(xi * g)
    val_loss = crit.loss(val_chunk)
    alpha_grad, *w_grads = torch.autograd.grad(val_loss, [alpha, *weights], allow_unused=True)
    with torch.no_grad():
        for p, b in zip(weights, backup):
            p.copy_(b)
    norm = torch.sqrt(sum((g * g).sum() for g in w_grads if g is not None)).clamp_min(1e-12)
    eps = 0.01 / float(norm)
    finite = []
    for sign in (1, -1):
        with torch.no_grad():
            for p, g in zip(weights, w_grads):
                if g is not None:
                    p.add_(sign * eps * g)
        finite.append(torch.autograd.grad(crit.loss(train_chunk), alpha)[0])
        with torch.no_grad():
            for p, b in zip(weights, backup):
                p.copy_(b)
    hessian_term = (finite[0] - finite[1]) / (2 * eps)
    alpha.grad = (alpha_grad if alpha_grad is not None else torch.zeros_like(alpha)) - xi * hessian_term


def perturbation_readout(crit: Criterion, darts: Any, val: list[Any]) -> tuple[list[str], list[dict]]:
    """Per layer, the operation whose removal lowers the supernet's validation accuracy most (``zero`` never;
    ``skip`` in at most ``max_skip`` layers), ties broken by the architecture weight."""
    ops = darts.config.operations
    base = crit.accuracy(val)
    weights = darts.weights().detach()
    scores = []
    for layer in range(len(darts.layer_ops)):
        drops = {}
        for k, name in enumerate(ops):
            if name == "zero":
                continue
            darts.masked = {(layer, k)}
            drops[name] = base - crit.accuracy(val) + 1e-3 * float(weights[layer, k])
        darts.masked = set()
        scores.append(drops)
    table = torch.tensor([[s.get(name, float("-inf")) for name in ops] for s in scores])
    from autoglm_graph.darts import derive

    return derive(table, ops, darts.config.max_skip), scores


def run_search(
    manifest_path: Path,
    output: Path,
    options: SearchOptions | dict[str, Any],
    overrides: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Search, write ``output``/{derived.toml, search.json, search.md, architecture_weights.png}; retrain if asked.
    The search runs in the manifest's build session: its backend, data, ports and objectives."""
    from autoglm_sdk import Session, load_manifest

    if isinstance(options, dict):
        options = SearchOptions(**options)
    manifest = load_manifest(manifest_path, overrides or [])
    reasoner = manifest.stages.get("reasoner")
    if reasoner is None or reasoner.plugin != "darts":
        raise ManifestError(
            f'{manifest_path}: `autoglm search` needs `reasoner.plugin = "darts"`'
            + (f", got `{reasoner.plugin}`" if reasoner else ""),
            hint="set the reasoner to darts and list the candidate operations in reasoner.operations",
        )
    session = Session.open(manifest, log=log)
    model = session.new_model()
    result = search(model, session, options, log)
    output.mkdir(parents=True, exist_ok=True)
    derived = derived_manifest(manifest.resolved(), manifest_path, result.architecture)
    (output / "derived.toml").write_text(derived)
    ops = reasoner.config.operations
    report = {
        "manifest": str(manifest_path),
        "operations": ops,
        "architecture": result.architecture,
        "backend": session.backend.probe().name,
        "device": session.backend.device,
        "objectives": {o.name: o.weight for o in session.objectives(model)},
        "options": options.__dict__,
        "stopped_early": result.stopped,
        "search_seconds": result.seconds,
        "seconds_per_epoch": result.epoch_seconds,
        "readout_scores": result.readout_scores,
        "history": result.history,
    }
    plot_weights(result.history, ops, output / "architecture_weights.png")
    if options.retrain:
        from autoglm_sdk import build, validate_manifest

        built = build(validate_manifest(tomllib.loads(derived)), output / "retrained", overwrite=True, log=log)
        report["retrained"] = {"artifact": str(output / "retrained"), "metrics": built.report["metrics"]}
    (output / "search.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "search.md").write_text(search_markdown(report))
    return report


def derived_manifest(resolved: dict[str, Any], manifest_path: Path, architecture: list[str]) -> str:
    """The searched manifest, resolved (defaults and ``--set`` overrides written out), with
    ``reasoner.architecture`` set, as TOML."""
    import tomli_w

    data = copy.deepcopy(resolved)
    data["reasoner"]["architecture"] = architecture
    data["reasoner"]["layers"] = len(architecture)
    data.setdefault("pipeline", {})["name"] = data.get("pipeline", {}).get("name", "pipeline") + "-derived"
    return f"# derived by `autoglm search {manifest_path}`\n" + tomli_w.dumps(data)


def plot_weights(history: list[dict[str, Any]], ops: list[str], path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()

    layers = len(history[0]["weights"]) if history else 0
    fig, axes = plt.subplots(1, max(layers, 1), figsize=(4.5 * max(layers, 1), 3.5), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for layer in range(layers):
        ax = axes[0][layer]
        for k, name in enumerate(ops):
            ax.plot(epochs, [row["weights"][layer][k] for row in history], label=name)
        ax.set_title(f"layer {layer + 1}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("softmax(alpha)")
        ax.grid(alpha=0.3)
    if layers:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def search_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Architecture search",
        "",
        f"Manifest `{report['manifest']}`; candidates {', '.join(report['operations'])}.",
        "",
        f"Derived architecture: **{' → '.join(report['architecture'])}** (read-out: {report['options']['readout']}).",
        "",
        f"Search: {len(report['history'])} epochs in {report['search_seconds']:.1f} s "
        f"({report['seconds_per_epoch']:.2f} s per epoch)"
        + (f"; stopped early at {report['stopped_early']}" if report["stopped_early"] else "")
        + ".",
        "",
        "![architecture weights](architecture_weights.png)",
        "",
    ]
    if report.get("retrained"):
        metrics = report["retrained"]["metrics"]
        lines += [
            f"Retrained: test accuracy {metrics['test']['accuracy']:.3f}, val {metrics['val']['accuracy']:.3f}.",
            "",
        ]
    return "\n".join(lines)
