"""Node classification on large graphs: full-batch training against neighbour-sampled mini-batches.

    python benchmarks/scale.py [--sizes 10000 100000 1000000] [--steps 20] [--budget-s 90] [--threads 1] [--out scale]

A contextual SBM graph (the ``csbm`` data source: 10 classes, 32 features, mean degree 10, 10% of the nodes
labelled for training, 100 per class for validation) at each size; a 2-layer GCN (hidden 64) and a linear head
trained with Adam for ``--steps`` steps, either on the whole graph (full-batch: every step scores every training
label) or on subgraphs sampled around 256 training nodes with fanouts [10, 5] (``--seed-nodes``, ``--fanouts``;
``[train] neighbors``, through ``autoglm_sdk.plugin.neighbor_splits``).

Each (size, mode) runs in a fresh interpreter so that memory peaks do not carry over. Training memory is the
rise of the process's peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs``) over its RSS once the graph
(and, sampled, the sampler's per-graph edge index) is built; that index is reported on its own. Throughput is
training labels scored per second (sampling included). A full-batch run whose memory, extrapolated by edges
from the largest smaller run, would not fit in 24 GiB (or in the memory available) is skipped, with the reason.
A run stops training after ``--budget-s`` seconds (3 steps at least), so full-batch on the largest graph may take
fewer steps; speed is measured from the second step on (the first one sets up). Validation accuracy after so
few steps is a sanity check only. ``--threads 1`` where the cores are shared: torch's threads spin against
another process's. ``--rewrite`` remakes the .md and .png from the .json without running.

Writes benchmarks/results/scale.{json,md,png} (``--out STEM``: STEM.{json,md,png}).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODES = ("full-batch", "sampled")
CLASSES, FEATURES, DEGREE, HIDDEN = 10, 32, 10, 64
#: one step's subgraph holds at most 256 * (1 + 10 + 50) = 15,616 nodes: small against every graph measured, so
#: its size, and the training memory, do not follow the graph's (with 1,024 seeds and [10, 10], up to 113,664
#: nodes, a step covers much of a 10k or 100k graph and memory grows with the graph until that bound)
FANOUTS, SEED_NODES = [10, 5], 256
LIMIT_MB = 24 * 1024  # a full-batch run must fit in 24 GiB
MB = 1024  # /proc/self/status counts kB


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def status_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def available_mb() -> float:
    return int(re.search(r"MemAvailable:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / MB


def gcn(torch):
    from torch_geometric.nn import GCNConv

    class GCN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = GCNConv(FEATURES, HIDDEN), GCNConv(HIDDEN, HIDDEN)
            self.head = torch.nn.Linear(HIDDEN, CLASSES)

        def forward(self, x, edge_index):
            h = self.conv1(x, edge_index).relu()
            return self.head(self.conv2(h, edge_index).relu())

    return GCN()


def child(nodes: int, mode: str, steps: int, budget_s: float, threads: int | None) -> dict:
    """Build the graph, train ``steps`` steps in ``mode`` (fewer where they would take over ``budget_s``), measure;
    one JSON line on stdout. Allocations past 24 GiB or 90% of the memory available fail here instead of
    calling the OOM killer onto the machine's other processes."""
    import resource

    limit = int(min(LIMIT_MB, available_mb() * 0.9) * MB * 1024)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    import torch
    import torch.nn.functional as F

    from autoglm_graph.csbm import CSBMDataSource
    from autoglm_graph.specs import CSBMConfig
    from autoglm_sdk.plugin import neighbor_splits

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    import_kb = status_kb("VmRSS")
    started = time.perf_counter()
    per_class = nodes // CLASSES
    config = CSBMConfig(
        classes=CLASSES,
        nodes_per_class=per_class,
        feature_dim=FEATURES,
        degree=DEGREE,
        train_per_class=per_class // 10,
        val_per_class=100,
    )
    data = CSBMDataSource(config).load()
    graph = data.splits["train"][0]["graph"]
    row = {"nodes": graph.num_nodes, "edges": graph.edge_index.size(1), "mode": mode}
    row["train_labels"] = int(graph.label_mask.sum())
    row["graph_s"] = time.perf_counter() - started
    gc.collect()
    graph_kb = status_kb("VmRSS")
    row.update(import_rss_mb=import_kb / MB, graph_rss_mb=graph_kb / MB)
    if mode == "sampled":
        started = time.perf_counter()
        splits = neighbor_splits(data.splits, FANOUTS, SEED_NODES, seed=0)
        row["index_s"] = time.perf_counter() - started
        sampler = splits["train"].sampler  # its tensors: RSS barely moves where freed memory is reused
        index = (sampler.edge_ids, sampler.sources, sampler.colptr, sampler.position)
        row["index_mb"] = sum(t.numel() * t.element_size() for t in index) / 2**20
    gc.collect()
    baseline_kb = status_kb("VmRSS")

    model = gcn(torch)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS: the peak from here on
    scored = sub_nodes = sub_edges = done = 0
    started = time.perf_counter()
    for step in range(steps):
        if step == 1:  # the first step (lazy set-up, Adam's state) counts for memory, not for speed
            scored, started = 0, time.perf_counter()
        elif step > 2 and time.perf_counter() - started > budget_s:
            break
        if mode == "sampled":
            batch = splits["train"][step % len(splits["train"])]["graph"]
            sub_nodes, sub_edges = sub_nodes + batch.num_nodes, sub_edges + batch.edge_index.size(1)
        else:
            batch = graph
        optimiser.zero_grad(set_to_none=True)
        logits = model(batch.x, batch.edge_index)
        loss = F.cross_entropy(logits[batch.label_mask], batch.y[batch.label_mask])
        loss.backward()
        optimiser.step()
        scored += int(batch.label_mask.sum())
        done += 1
    seconds = time.perf_counter() - started
    row["train_peak_mb"] = (status_kb("VmHWM") - baseline_kb) / MB
    timed = done - 1 if done > 1 else done
    row.update(steps=done, train_s=seconds, steps_per_s=timed / seconds, labels_per_s=scored / seconds)
    row["epoch_s"] = row["train_labels"] / row["labels_per_s"]  # one pass over every training label
    if mode == "sampled":
        row.update(mean_subgraph_nodes=sub_nodes / done, mean_subgraph_edges=sub_edges / done)

    model.eval()
    with torch.no_grad():
        if mode == "sampled":
            hits = total = 0
            for sample in splits["val"]:
                sub = sample["graph"]
                guess = model(sub.x, sub.edge_index)[sub.label_mask].argmax(-1)
                hits += int((guess == sub.y[sub.label_mask]).sum())
                total += int(sub.label_mask.sum())
        else:
            val = data.splits["val"][0]["graph"].label_mask
            guess = model(graph.x, graph.edge_index)[val].argmax(-1)
            hits, total = int((guess == graph.y[val]).sum()), int(val.sum())
    row["val_accuracy"] = hits / total
    return row


def skip_reason(nodes: int, done: list[dict]) -> str | None:
    """Why a full-batch run at ``nodes`` would not fit: its memory extrapolated by size from the largest smaller
    full-batch run (the graph's and the training's share grow with the edges, the interpreter's does not),
    against 24 GiB and the memory available."""
    smaller = [r for r in done if r["mode"] == "full-batch" and "train_peak_mb" in r and r["nodes"] < nodes]
    if not smaller:
        return None
    base = max(smaller, key=lambda r: r["nodes"])
    grows = base["graph_rss_mb"] - base["import_rss_mb"] + base["train_peak_mb"]
    predicted = base["import_rss_mb"] + grows * nodes / base["nodes"]
    budget = min(LIMIT_MB, available_mb() * 0.9)
    if predicted > budget:
        return f"predicted {predicted / 1024:.1f} GiB (from {base['nodes']:,} nodes) > {budget / 1024:.1f} GiB"
    return None


def run(nodes: int, mode: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", str(nodes), mode, "--steps", str(args.steps)]
    command += ["--budget-s", str(args.budget_s)] + (["--threads", str(args.threads)] if args.threads else [])
    command += ["--seed-nodes", str(args.seed_nodes), "--fanouts", *map(str, args.fanouts)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"nodes": nodes, "mode": mode, "skipped": f"failed (exit {done.returncode}): {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--budget-s", type=float, default=90, help="stop a run's training after this long (3 steps at least)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's; 1 on a shared machine)"
    )
    parser.add_argument("--seed-nodes", type=int, default=SEED_NODES, help="labelled nodes per sampled subgraph")
    parser.add_argument("--fanouts", type=int, nargs="+", default=FANOUTS, help="neighbours kept per node and hop")
    parser.add_argument("--out", default="scale", help="results file stem in benchmarks/results")
    parser.add_argument("--rewrite", action="store_true", help="rewrite STEM.md and .png from STEM.json, no runs")
    parser.add_argument("--child", nargs=2, metavar=("NODES", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    FANOUTS[:], globals()["SEED_NODES"] = args.fanouts, args.seed_nodes
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.steps, args.budget_s, args.threads)))
        return
    if args.rewrite:
        saved = json.loads((RESULTS / f"{args.out}.json").read_text())
        write(saved["meta"], saved["runs"], args.out)
        return
    rows: list[dict] = []
    for nodes in sorted(args.sizes):
        for mode in MODES:
            reason = skip_reason(nodes, rows) if mode == "full-batch" else None
            say(f"{nodes:,} nodes, {mode}: " + (f"skipped, {reason}" if reason else "running ..."))
            row = {"nodes": nodes, "mode": mode, "skipped": reason} if reason else run(nodes, mode, args)
            rows.append(row)
            if "train_peak_mb" in row:
                say(f"  peak +{row['train_peak_mb']:.0f} MB, {row['labels_per_s']:,.0f} labels/s")
    import torch

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "threads": args.threads or torch.get_num_threads(),
        "steps": args.steps,
        "budget_s": args.budget_s,
        "fanouts": FANOUTS,
        "seed_nodes": SEED_NODES,
    }
    write(meta, rows, args.out)


def write(meta: dict, rows: list[dict], stem: str) -> None:
    summary = summarise(rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": rows}, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text("\n".join(markdown(meta, summary, rows, stem)) + "\n")
    plot(rows, RESULTS / f"{stem}.png")
    print((RESULTS / f"{stem}.md").read_text())


def summarise(rows: list[dict]) -> dict:
    """Training memory max/min over sizes (sampled: flat, within 2x, once the graph outgrows one subgraph's reach)
    and from the second largest size to the largest."""
    out: dict = {}
    for mode in MODES:
        measured = [r for r in rows if r["mode"] == mode and "train_peak_mb" in r]
        if len(measured) > 1:
            peaks = [r["train_peak_mb"] for r in measured]
            out[mode] = {
                "sizes": [r["nodes"] for r in measured],
                "peak_max_over_min": max(peaks) / min(peaks),
                "peak_largest_over_smallest": peaks[-1] / peaks[0],
                "nodes_largest_over_smallest": measured[-1]["nodes"] / measured[0]["nodes"],
                "peak_two_largest": peaks[-1] / peaks[-2],
                "nodes_two_largest": measured[-1]["nodes"] / measured[-2]["nodes"],
            }
    return out


def markdown(meta: dict, summary: dict, rows: list[dict], stem: str) -> list[str]:
    lines = [
        "# Large graphs: full-batch against neighbour-sampled training",
        "",
        f"{meta['date']}, Python {meta['python']}, torch {meta['torch']}, {meta['platform']}, {meta['cpus']} CPUs "
        f"(torch threads: {meta['threads']}). csbm graph: {CLASSES} classes, {FEATURES} features, mean degree "
        f"{DEGREE}, 10% of the nodes training labels; GCN 2 x {HIDDEN} + linear head, Adam, {meta['steps']} steps "
        f"(fewer where a run passed {meta['budget_s']:.0f} s; speed from step 2 on). "
        f"Sampled: {meta['seed_nodes']} seed nodes per step, fanouts {meta['fanouts']}. Each run in a fresh "
        "process; training memory = peak RSS rise over the RSS after the graph (and the sampler's index) is built.",
        "",
        "| nodes | edges | mode | graph RSS MB | sampler index MB | training peak +MB | steps | steps/s | labels/s "
        "| s per epoch | subgraph nodes | val acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "train_peak_mb" not in r:
            lines.append(f"| {r['nodes']:,} | | {r['mode']} | skipped: {r['skipped']} | | | | | | | | |")
            continue
        index = f"{r['index_mb']:.0f}" if r["mode"] == "sampled" else "-"
        sub = f"{r['mean_subgraph_nodes']:,.0f}" if "mean_subgraph_nodes" in r else "all"
        lines.append(
            f"| {r['nodes']:,} | {r['edges']:,} | {r['mode']} | {r['graph_rss_mb']:.0f} | {index} "
            f"| {r['train_peak_mb']:.0f} | {r['steps']} | {r['steps_per_s']:.2f} | {r['labels_per_s']:,.0f} "
            f"| {r['epoch_s']:.2f} | {sub} | {r['val_accuracy']:.3f} |"
        )
    lines.append("")
    hops = [math.prod(meta["fanouts"][:h]) for h in range(len(meta["fanouts"]) + 1)]  # 1, 10, 100: nodes per seed
    if "sampled" in summary:
        s = summary["sampled"]
        grown = " → ".join(f"{r['mean_subgraph_nodes']:,.0f}" for r in rows if "mean_subgraph_nodes" in r)
        bound = (
            f"{meta['seed_nodes'] * sum(hops):,} nodes ({meta['seed_nodes']} seeds x ({' + '.join(map(str, hops))}))"
        )
        lines.append(
            f"- Sampled training memory, max / min over {len(s['sizes'])} sizes: {s['peak_max_over_min']:.2f}x "
            f"(goal: within 2x) for {s['nodes_largest_over_smallest']:.0f}x the nodes; {s['peak_two_largest']:.2f}x "
            f"between the two largest sizes ({s['nodes_two_largest']:.0f}x the nodes). A subgraph holds at most "
            f"{bound}; on a graph not much larger it covers much of the graph, so it grows with the graph until "
            f"that bound: {grown} nodes per step."
        )
    if "full-batch" in summary:
        s = summary["full-batch"]
        lines.append(
            f"- Full-batch training memory, largest / smallest measured size: {s['peak_largest_over_smallest']:.1f}x "
            f"for {s['nodes_largest_over_smallest']:.0f}x the nodes; {s['peak_two_largest']:.1f}x between the two "
            f"largest sizes ({s['nodes_two_largest']:.0f}x the nodes)."
        )
    return lines + ["", f"![memory and throughput against nodes]({stem}.png)"]


def plot(rows: list[dict], path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), dpi=110)
    for mode in MODES:
        measured = [r for r in rows if r["mode"] == mode and "train_peak_mb" in r]
        sizes = [r["nodes"] for r in measured]
        axes[0].plot(sizes, [r["train_peak_mb"] for r in measured], marker="o", label=mode)
        axes[1].plot(sizes, [r["labels_per_s"] for r in measured], marker="o", label=mode)
    for ax, label in zip(axes, ("training peak RSS rise (MB)", "training labels scored / s")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("nodes")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
