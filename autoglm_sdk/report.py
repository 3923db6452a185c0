"""The human-readable report (``report.md``) and its figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CURVE_PNG = "training_curve.png"
GROUPS_PNG = "accuracy_by_group.png"
CONFUSION_PNG = "confusion_matrix.png"


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def plot_training_curve(history: list[dict[str, float]], path: Path) -> bool:
    """Train loss and validation accuracy per epoch; False when there is nothing to plot."""
    if not history:
        return False
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot(epochs, [h["train_loss"] for h in history], color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="tab:blue")
    if "val_accuracy" in history[0]:
        ax2 = ax.twinx()
        ax2.plot(epochs, [h["val_accuracy"] for h in history], color="tab:orange", label="val accuracy")
        ax2.set_ylabel("validation accuracy", color="tab:orange")
        ax2.set_ylim(0, 1)
    ax.set_title("Training")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display on servers and CI); the one place that selects it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_groups(series: dict[str, dict[str, dict[str, float]]], group_key: str, path: Path) -> None:
    """Accuracy per group (e.g. per hop count) for this pipeline and its baselines."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    for label, groups in series.items():
        keys = list(groups)
        ax.plot(keys, [groups[k]["accuracy"] for k in keys], marker="o", label=label)
    ax.set_xlabel(group_key)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_bars(bars: dict[str, tuple[float, float]], xlabel: str, path: Path) -> None:
    """One horizontal bar per name with its spread (mean, std), top to bottom in order; the first, the baseline
    the others are read against, in grey."""
    plt = pyplot()
    names, means = list(bars), [m for m, _ in bars.values()]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(names)))
    ax.barh(names, means, xerr=[s for _, s in bars.values()], color=["grey"] + ["tab:blue"] * (len(names) - 1))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_xlim(min(means) - 10, max(means) + 5)  # the differences, not the distance from zero
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path) -> None:
    """Confusion matrix (rows: truth, columns: prediction), coloured by each row's share, with the counts in the
    cells and a colour bar; a class without samples is marked on its row rather than shown as all zero."""
    import numpy as np

    plt = pyplot()
    counts = np.array(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
    size = max(4.5, 0.4 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=110)
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    for row, col in zip(*np.nonzero(counts)):
        share = rates[row, col]
        ax.text(col, row, int(counts[row, col]), ha="center", va="center", fontsize=6,
                color="white" if share > 0.6 else "black")  # fmt: skip
    ticks = [f"{name} (no samples)" if totals[i, 0] == 0 else name for i, name in enumerate(labels)]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), ticks, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_report_md(directory: Path, report: dict[str, Any]) -> None:
    """``report.md`` (and its pictures) in ``directory`` from ``report.json``'s content."""
    lines = _metrics(directory, report) + _compression(report)
    for evaluation in report.get("evaluations", {}).values():  # contributed by plugins (autoglm_evaluate)
        lines += evaluation.get("markdown", [])
    for stage, figures in report.get("stages", {}).items():
        lines += ["", f"## Stage `{stage}`", ""] + [f"- {k}: {v}" for k, v in figures.items()]
    lines += _training(directory, report["training"]) + _model_and_run(report)
    (directory / "report.md").write_text("\n".join(lines))


def _generated(report: dict[str, Any]) -> list[str]:
    """A text task's generated-text figures per split, exact match per group, and examples."""
    lines = [
        "",
        "## Generated text",
        "",
        "| split | exact match | token F1 | chrF | token accuracy (teacher-forced) |",
        "|---|---|---|---|---|",
    ]
    for split, m in report["metrics"].items():
        if "exact_match" in m:
            cells = [_fmt(m[k]) for k in ("exact_match", "token_f1")] + [f"{m['chrf']:.1f}", _fmt(m["token_accuracy"])]
            lines.append(f"| {split} | " + " | ".join(cells) + " |")
    test = report["metrics"]["test"]
    groups = test.get("groups") or {}
    if groups and "exact_match" in next(iter(groups.values())):
        lines += ["", "| test exact match | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
        lines.append("| | " + " | ".join(_fmt(g["exact_match"]) for g in groups.values()) + " |")
    for example in test.get("examples", [])[:4]:
        lines += ["", f"- generated: {example['generated']}", f"  reference: {example['reference']}"]
    return lines


def _metrics(directory: Path, report: dict[str, Any]) -> list[str]:
    lines = [f"# {report['pipeline']}", ""]
    if report.get("description"):
        lines += [report["description"], ""]
    task = report["task"]
    kind = task.get("kind", "classify")
    what = (
        f"{task['level']}-level classification into {task['num_classes']} classes"
        if kind == "classify"
        else f"{kind} (target field `{task.get('target')}`; accuracy is that of the answers the texts state)"
    )
    lines += [
        f"Task: {what}. "
        f"Data: `{report['data']['plugin']}` (fingerprint `{report['data']['fingerprint'][:12]}`), "
        f"seed {report['seed']}.",
        "",
        "## Metrics",
        "",
        "| split | samples | scored | accuracy | loss |",
        "|---|---|---|---|---|",
    ]
    for split, m in report["metrics"].items():
        size = report["data"]["sizes"].get(split, "")
        lines.append(f"| {split} | {size} | {m['count']} | {_fmt(m['accuracy'])} | {_fmt(m['loss'])} |")
    test = report["metrics"].get("test", {})
    if test.get("groups"):
        key = report["data"].get("group_key") or "group"
        baselines = {
            p: b["test"]["groups"] for p, b in report.get("baselines", {}).items() if b.get("test", {}).get("groups")
        }
        series = {report["pipeline"]: test["groups"], **{f"baseline {p}": g for p, g in baselines.items()}}
        groups = list(test["groups"])
        lines += [
            "",
            f"## Test accuracy by {key}",
            "",
            "| pipeline | " + " | ".join(groups) + " |",
            "|---|" + "---|" * len(groups),
        ]
        for label, values in series.items():
            lines.append(
                f"| {label} | " + " | ".join(_fmt(values[g]["accuracy"]) if g in values else "-" for g in groups) + " |"
            )
        lines.append("| samples | " + " | ".join(str(test["groups"][g]["count"]) for g in groups) + " |")
        plot_groups(series, key, directory / GROUPS_PNG)
        lines += ["", f"![accuracy by {key}]({GROUPS_PNG})"]
    for path, baseline in report.get("baselines", {}).items():
        if "missing" in baseline:
            lines += ["", f"Baseline `{path}`: {baseline['missing']}."]
    if "exact_match" in test:
        lines += _generated(report)
    if test.get("per_class"):
        lines += ["", f"Per class on the test split (macro F1 {_fmt(test['macro_f1'])}):", ""]
        lines += ["| class | precision | recall | F1 | samples |", "|---|---|---|---|---|"]
        for name, c in test["per_class"].items():
            cells = [_fmt(c[k]) for k in ("precision", "recall", "f1")] if c["support"] else ["-"] * 3
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {c['support']} |")
    if test.get("abstained"):
        lines += ["", f"Abstained (no relation found) on {test['abstained']} of {test['count']} test samples."]
    if test.get("confusion"):
        plot_confusion(
            test["confusion"],
            report["task"]["label_names"] or [str(i) for i in range(report["task"]["num_classes"])],
            directory / CONFUSION_PNG,
        )
        lines += [
            "",
            "Confusion matrix on the test split (rows: truth, columns: prediction):",
            "",
            f"![confusion matrix]({CONFUSION_PNG})",
        ]
    return lines


def _compression(report: dict[str, Any]) -> list[str]:
    """One before/after table per compression step."""
    lines: list[str] = []
    for step in report.get("compression", []):
        lines += ["", f"## Compression `{step['section']}` ({step['plugin']})", ""]
        before, after = step.get("profile_before"), step.get("profile_after")
        if before and after:
            rows = [
                ("weights on disk (bytes)", "bytes", "{:,.0f}"),
                ("parameters", "parameters", "{:,.0f}"),
                ("latency p50, batch 1 (ms)", "p50_ms_batch1", "{:.2f}"),
                ("latency p90, batch 1 (ms)", "p90_ms_batch1", "{:.2f}"),
                ("latency p50, batch 32 (ms)", "p50_ms_batch32", "{:.2f}"),
                ("latency p90, batch 32 (ms)", "p90_ms_batch32", "{:.2f}"),
            ]
            if "deployed_bytes" in before or "deployed_bytes" in after:  # stages run from their runners' files
                rows.insert(1, ("deployed, runners' files for exported stages (bytes)", "deployed_bytes", "{:,.0f}"))
                before = {"deployed_bytes": before["bytes"], **before}
                after = {"deployed_bytes": after["bytes"], **after}
            lines += ["| | before | after | after / before |", "|---|---|---|---|"]
            for label, key, form in rows:
                ratio = after[key] / before[key] if before[key] else float("nan")
                lines.append(f"| {label} | {form.format(before[key])} | {form.format(after[key])} | {ratio:.2f}x |")
            val_before, val_after = step["metrics_before"]["val"]["accuracy"], step["metrics_after"]["val"]["accuracy"]
            lines += [
                f"| validation accuracy | {_fmt(val_before)} | {_fmt(val_after)} | "
                f"{100 * (val_after - val_before):+.1f} points |",
                "",
            ]
        lines += ["| split | accuracy before | accuracy after |", "|---|---|---|"]
        for split, before_metrics in step["metrics_before"].items():
            lines.append(
                f"| {split} | {_fmt(before_metrics['accuracy'])} | {_fmt(step['metrics_after'][split]['accuracy'])} |"
            )
    return lines


def _training(directory: Path, training: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Training",
        "",
        f"{training['epochs_run']} epochs, best validation accuracy {_fmt(training['best_val_accuracy'])} "
        f"at epoch {training['best_epoch']}"
        + (" (stopped early)." if training["stopped_early"] else ".")
        + (
            f" Resumed from the checkpoint after epoch {training['resumed_from_epoch']}."
            if training.get("resumed_from_epoch") is not None
            else ""
        ),
    ]
    objectives = training.get("objectives") or {}
    last = training["history"][-1] if training["history"] else {}
    if objectives:
        lines += ["", "| objective | weight | loss in the last epoch |", "|---|---|---|"]
        lines += [
            f"| {name} | {_fmt(weight)} | {_fmt(last.get(f'loss/{name}', '-'))} |"
            for name, weight in objectives.items()
        ]
    if len(training.get("restarts", [])) > 1:
        scores = ", ".join(f"seed {r['seed']}: {_fmt(r['best_val_accuracy'])}" for r in training["restarts"])
        lines += [
            "",
            f"{len(training['restarts'])} restarts (best validation accuracy {scores}); "
            f"kept restart {training['chosen_restart']} "
            f"(seed {training['restarts'][training['chosen_restart']]['seed']}).",
        ]
    if plot_training_curve(training["history"], directory / CURVE_PNG):
        lines += ["", f"![training curve]({CURVE_PNG})"]
    return lines


def placement_reasons(decision: dict[str, Any]) -> str:
    """`` (scores: DEVICE TOTAL, ...)`` and ``; not DEVICE: reason; ...`` of a placing scheduler's decision, for
    report.md and ``autoglm doctor --artifact``."""
    scores = ", ".join(f"{d} {s['total']:g}" for d, s in decision.get("scores", {}).items())
    rejected = "; ".join(f"{d}: {r}" for d, r in decision.get("rejected", {}).items())
    return (f" (scores: {scores})" if scores else "") + (f"; not {rejected}" if rejected else "")


def _model_and_run(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    model, backend = report["model"], report["backend"]
    lines += ["", "## Model", "", "| stage | plugin | backend |", "|---|---|---|"]
    for stage, plugin in model["stages"].items():
        lines.append(f"| {stage} | {plugin} | {backend['stages'].get(stage, '-')} |")
    lines += ["", f"{model['parameters']:,} parameters, {model['weights_bytes']:,} bytes of weights."]
    lines += ["", "## Backend", "", f"Chosen: `{backend['chosen']}` on `{backend['device']}`."]
    for fb in backend["fallbacks"]:
        lines.append(f"- fell back from `{fb['wanted']}`: {fb['reason']}")
    for stage, summary in (backend.get("runner_summaries") or {}).items():
        lines.append(f"- `{stage}` runs on {summary}")
    for stage, decision in (backend.get("placement") or {}).items():  # a placing scheduler's reasons
        lines.append(f"- `{stage}` placed on `{decision['device']}`" + placement_reasons(decision))
    timings = report["timings"]
    lines += ["", "## Timings", "", "| phase | seconds |", "|---|---|"]
    lines += [f"| {k.removesuffix('_seconds')} | {v:.2f} |" for k, v in timings.items()]
    lines += ["", "## Plugins", "", "| section | plugin | distribution | version |", "|---|---|---|---|"]
    for key, p in report["plugins"].items():
        lines.append(f"| {key} | {p['plugin']} | {p['distribution']} | {p['version']} |")
    env = report["environment"]
    lines += ["", f"Built with Python {env['python']}, torch {env['torch']} on {env['platform']}.", ""]
    return lines
