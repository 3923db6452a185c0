"""Energy-aware placement on a simulated fleet, against first-fit and round-robin.

    python benchmarks/placement.py [--seeds 20]

The fleet and the power model are :mod:`autoglm_backends.fleet`'s: 2 GPUs, 1 NPU and 4 CPU hosts, each with idle,
peak and powered-down watts and DVFS clock levels. Workloads: 4, 6 or 8 deployed pipelines of four stages
(encoder, builder, reasoner, decoder), request rates, service times, memory and SLOs drawn per seed. Every policy
keeps each device at most 85% busy and every stage it places within its SLO; a stage no device can take counts as
an SLO miss. Reported per load, mean ± standard deviation over seeds: utilisation of powered-on devices, devices
on, watts, joules per 1,000 requests and SLO misses. Pure Python: a few seconds.

Writes benchmarks/results/placement.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from autoglm_backends import fleet

RESULTS = Path(__file__).resolve().parent / "results"
LOADS = (4, 6, 8)
MEASURES = ("utilisation", "devices_on", "watts", "joules_per_1000", "slo_misses")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    devices = fleet.simulated_fleet()
    results: dict[str, dict] = {}
    for load in LOADS:
        runs: dict[str, list[dict]] = {name: [] for name in fleet.POLICIES}
        for seed in range(args.seeds):
            stages = fleet.simulated_stages(seed, load)
            for name, policy in fleet.POLICIES.items():
                runs[name].append(fleet.evaluate(policy(stages, devices), stages, devices))
        results[str(load)] = {name: {m: summary([r[m] for r in rows]) for m in MEASURES} for name, rows in runs.items()}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(), "seeds": args.seeds}
    fleet_rows = [
        {"name": d.name, "memory_gb": d.memory_gb, "idle_w": d.idle_w, "peak_w": d.peak_w, "dvfs": list(d.dvfs)}
        for d in devices
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "placement.json").write_text(
        json.dumps({"meta": meta, "fleet": fleet_rows, "results": results}, indent=2) + "\n"
    )
    (RESULTS / "placement.md").write_text("\n".join(markdown(meta, results)) + "\n")
    plot(results, RESULTS / "placement.png")
    print("\n".join(markdown(meta, results)))


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.pstdev(values)}


def markdown(meta: dict, results: dict) -> list[str]:
    lines = [
        "# Placement on a simulated fleet: energy-aware bin packing vs first-fit and round-robin",
        "",
        f"{meta['date']}, Python {meta['python']}, {meta['seeds']} seeds per load (mean ± std). Fleet and power model: "
        "`autoglm_backends.fleet` (2 GPUs, 1 NPU, 4 CPU hosts; idle/peak/sleep watts, DVFS levels).",
        "",
        "| pipelines | policy | utilisation (on) | devices on | watts | J per 1,000 requests | SLO misses |",
        "|---|---|---|---|---|---|---|",
    ]
    for load, policies in results.items():
        for name, m in policies.items():
            cells = [f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in ("utilisation", "devices_on")]
            cells += [f"{m[k]['mean']:.0f} ± {m[k]['std']:.0f}" for k in ("watts", "joules_per_1000")]
            cells.append(f"{m['slo_misses']['mean']:.2f}")
            lines.append(f"| {load} | {name} | " + " | ".join(cells) + " |")
    lines += ["", "Energy-aware against first-fit:", ""]
    for load, p in results.items():
        ea, ff = p["energy-aware"], p["first-fit"]
        lines.append(
            f"- {load} pipelines: utilisation {ff['utilisation']['mean']:.1%} → {ea['utilisation']['mean']:.1%}, "
            f"energy per 1,000 requests ×{ea['joules_per_1000']['mean'] / ff['joules_per_1000']['mean']:.2f}, "
            f"SLO misses {ff['slo_misses']['mean']:.2f} → {ea['slo_misses']['mean']:.2f}"
        )
    return lines + ["", "![placement](placement.png)"]


def plot(results: dict, path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    loads = list(results)
    for name in fleet.POLICIES:
        for ax, measure in zip(axes, ("utilisation", "joules_per_1000")):
            means = [results[k][name][measure]["mean"] for k in loads]
            ax.plot(loads, means, marker="o", label=name)
            ax.set_xlabel("deployed pipelines")
            ax.set_ylabel(
                {"utilisation": "utilisation of devices on", "joules_per_1000": "J per 1,000 requests"}[measure]
            )
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
