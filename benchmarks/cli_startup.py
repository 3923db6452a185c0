"""CLI start-up and default build time, side by side with `import torch`, in one run.

    python benchmarks/cli_startup.py [--runs 7] [--builds 2]

Writes benchmarks/results/cli_startup.{json,md,png}. Each command runs in a
fresh interpreter; the figure is the median wall time (this machine is noisy,
so compare the ratios, not the absolute seconds).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"


def timed(command: list[str], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--builds", type=int, default=2)
    args = parser.parse_args()

    cli = [sys.executable, "-m", "autoglm_cli"]
    default = str(REPO / "autoglm_sdk" / "default_manifest.toml")
    commands = {
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "python -c 'import torch_geometric'": [sys.executable, "-c", "import torch_geometric"],
        "autoglm --help": [*cli, "--help"],
        "autoglm plugins list": [*cli, "plugins", "list"],
        "autoglm plugins list --load": [*cli, "plugins", "list", "--load"],
        "autoglm manifest validate": [*cli, "manifest", "validate", default],
    }
    results = {}
    for label, command in commands.items():
        print(f"timing {label} ...", file=sys.stderr)
        results[label] = timed(command, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        print("timing autoglm build examples/sbm-gcn.toml ...", file=sys.stderr)
        sbm = str(REPO / "examples" / "sbm-gcn.toml")
        results["autoglm build examples/sbm-gcn.toml"] = timed(
            [*cli, "build", sbm, "-q", "--force", "-o", f"{tmp}/art"], args.builds
        )
    torch_s = results["python -c 'import torch'"]["median_s"]
    for row in results.values():
        row["ratio_to_import_torch"] = row["median_s"] / torch_s

    RESULTS.mkdir(exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    (RESULTS / "cli_startup.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = [
        "# CLI start-up against `import torch`",
        "",
        f"{meta['date']}, Python {meta['python']}, {meta['platform']}. Median of the runs, fresh interpreter each.",
        "",
        "| command | median s | min s | max s | runs | / import torch |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        lines.append(
            f"| `{label}` | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | {r['runs']} "
            f"| {r['ratio_to_import_torch']:.2f} |"
        )
    lines += ["", "![start-up times](cli_startup.png)", ""]
    (RESULTS / "cli_startup.md").write_text("\n".join(lines))

    from autoglm_sdk.plugin import pyplot

    plt = pyplot()

    light = {k: v for k, v in results.items() if "build" not in k}
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    ax.barh(
        list(light),
        [v["median_s"] for v in light.values()],
        color=["tab:gray", "tab:gray"] + ["tab:blue"] * (len(light) - 2),
    )
    ax.axvline(torch_s / 5, color="tab:red", linestyle="--", label="1/5 of import torch")
    ax.set_xlabel("median seconds")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS / "cli_startup.png")
    print((RESULTS / "cli_startup.md").read_text())


if __name__ == "__main__":
    main()
