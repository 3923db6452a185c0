"""Text -> graph: the regex builder, the learned extractor (small random-init encoder and MiniLM) and the
text-only transformer, on the kinship phrasing bank, seen and held-out phrasing families, several seeds.

    python benchmarks/text_to_graph.py [--seeds 0 1 2] [--pipelines regex small minilm text-only] [--quick]
                                       [--merge] [--keep DIR]

Every pipeline but ``regex-classic`` reads the same stories (``phrasings = "bank"``): trained on 2-3 hops of
the training phrasing families, tested on 2..10 hops of those families (``test``) and of families never seen in
training (``held-out-phrasing``). Every built pipeline is also scored on the generator's original five phrasings
(``classic``: the test split of ``phrasings = "classic"``, same seed), where ``regex-classic``, today's default
pipeline trained on those phrasings, is the reference. Writes benchmarks/results/text_to_graph.{json,md,png}
(or ``--out STEM``): answer accuracy per hop on each, fact F1 of the learned extractors, and build times. The
bank-trained regex builder is given every question of the bank as a pattern (it refuses a story whose question it
cannot read); its fact patterns stay its own.
``--quick`` shrinks the data for a smoke run (results then go to ``text_to_graph-quick.*``); ``--keep DIR``
builds the artifacts in DIR (``KEY-SEED``) and keeps them, to read more stories with ``autoglm run``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
SMALL_ENCODER = {"pretrained": None, "hidden_size": 128, "num_layers": 2, "num_heads": 4, "epochs": 6, "lr": 1e-3}
PIPELINES = {
    "regex": ("regex builder (text-relations)", "kinship.toml", {}),
    "small": ("learned extractor, random-init 2-layer encoder", "kinship-extractor.toml", SMALL_ENCODER),
    "minilm": ("learned extractor, all-MiniLM-L6-v2", "kinship-extractor.toml", {}),
    "text-only": ("text-only transformer (small BERT)", "kinship-text-only.toml", {}),
    "regex-classic": ("regex builder trained on the five classic phrasings (the default)", "kinship.toml", None),
}
SPLITS = ("test", "held-out-phrasing", "classic")


def manifest_for(key: str, seed: int, quick: bool) -> dict:
    _, file, builder = PIPELINES[key]
    data = tomllib.loads((REPO / "examples" / file).read_text())
    data = copy.deepcopy(data)
    data["pipeline"]["seed"] = seed
    data["pipeline"]["baselines"] = []
    if builder is not None:  # regex-classic keeps the default manifest's own phrasings
        data["data"]["phrasings"] = "bank"
    if builder:
        data["graph_builder"].update(builder)
    if key == "regex":  # it would refuse every story whose question it has no pattern for: give it all of them
        data.setdefault("graph_builder", {})["query_patterns"] = bank_questions()
    if quick:
        data["data"].update(
            train={"hops": [2, 3], "stories": 600},
            val={"hops": [2, 3], "stories": 100},
            test={"hops": [2, 4, 6, 10], "stories": 120},
        )
        data["train"]["restarts"] = 1
        data["train"]["epochs"] = min(data["train"]["epochs"], 10)
        if data.get("graph_builder", {}).get("plugin") == "relation-extractor":
            data["graph_builder"].update(train_stories=600, epochs=2)
    return data


def bank_questions() -> list[str]:
    """text-relations' question patterns plus every question of the phrasing bank, held-out ones included."""
    from autoglm_graph.kinship_phrasings import QUESTIONS
    from autoglm_graph.specs import TextRelationsConfig

    bank = [
        q.replace("{T}", "{target}").replace("{S}", "{source}").rstrip("?") for qs in QUESTIONS.values() for q in qs
    ]
    return list(dict.fromkeys([*TextRelationsConfig().query_patterns, *bank]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=list(PIPELINES))
    parser.add_argument("--quick", action="store_true", help="small data, one restart: a smoke run")
    parser.add_argument("--out", default=None, help="results file stem (default text_to_graph, or -quick)")
    parser.add_argument("--keep", type=Path, default=None, help="build the artifacts here and keep them")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="update the existing results file: each (pipeline, seed) run replaces the earlier one, the rest stay",
    )
    args = parser.parse_args()
    stem = args.out or ("text_to_graph-quick" if args.quick else "text_to_graph")

    from autoglm_sdk import build, validate_manifest

    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        for key in args.pipelines:
            for seed in args.seeds:
                print(f"{PIPELINES[key][0]}, seed {seed} ...", file=sys.stderr, flush=True)
                manifest = validate_manifest(manifest_for(key, seed, args.quick))
                started = time.perf_counter()
                result = build(
                    manifest,
                    Path(tmp) / f"{key}-{seed}",
                    overwrite=True,
                    log=lambda m: print("  " + m, file=sys.stderr),
                )
                report = result.report
                report["metrics"]["classic"] = classic_metrics(result.path, manifest)
                # regex-classic's own test split is the classic one; it has no bank families at all
                splits = ["classic"] if key == "regex-classic" else [s for s in SPLITS if s in report["metrics"]]
                facts = report.get("evaluations", {}).get("relation-extractor", {}).get("figures", {}).get("facts", {})
                runs.setdefault(key, []).append(
                    {
                        "seed": seed,
                        "build_seconds": time.perf_counter() - started,
                        "accuracy": {s: report["metrics"][s]["accuracy"] for s in splits},
                        "by_hops": {
                            s: {k: v["accuracy"] for k, v in report["metrics"][s]["groups"].items()} for s in splits
                        },
                        "fact_f1": {s: facts[s]["f1"] for s in SPLITS if s in facts},
                    }
                )
    for seeds in runs.values():
        for run in seeds:
            run["date"] = time.strftime("%Y-%m-%d %H:%M")
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "quick": args.quick,
    }
    if args.merge and (RESULTS / f"{stem}.json").exists():
        earlier = json.loads((RESULTS / f"{stem}.json").read_text())
        for seeds in earlier["runs"].values():
            for run in seeds:
                run.setdefault("date", earlier["meta"]["date"])
        for key, seeds in earlier["runs"].items():  # a (pipeline, seed) run now replaces the earlier one
            ran = {r["seed"] for r in runs.get(key, [])}
            runs[key] = sorted([r for r in seeds if r["seed"] not in ran] + runs.get(key, []), key=lambda r: r["seed"])
        runs = {k: runs[k] for k in PIPELINES if k in runs}
        meta["seeds"] = sorted({r["seed"] for seeds in runs.values() for r in seeds})
    summary = {key: summarise(seeds) for key, seeds in runs.items()}
    for key, seeds in runs.items():
        summary[key]["seeds"] = [r["seed"] for r in seeds]
        summary[key]["dates"] = [r["date"][:10] for r in seeds]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text("\n".join(markdown(summary, meta, stem)))
    plot(summary, RESULTS / f"{stem}.png")
    print((RESULTS / f"{stem}.md").read_text())


def classic_metrics(artifact: Path, manifest) -> dict:
    """The built pipeline scored on the test split of the classic phrasings, same seed and split sizes."""
    from autoglm_sdk import load
    from autoglm_sdk.plugin import default_registry, evaluate

    section = manifest.stages["data"]
    config = section.config.model_copy(update={"phrasings": "classic"})
    spec = default_registry().spec("data", section.plugin)
    from autoglm_sdk.plugin import BuildContext

    dataset = spec.create(config, BuildContext(seed=manifest.pipeline.seed)).load()
    pipeline = load(artifact)
    return evaluate(pipeline.model, dataset.splits["test"], pipeline.task, 64, group_key=dataset.group_key)


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(seeds: list[dict]) -> dict:
    out: dict = {"build_seconds": mean_std([s["build_seconds"] for s in seeds])}
    for split in [s for s in SPLITS if s in seeds[0]["accuracy"]]:
        hops = sorted(seeds[0]["by_hops"][split], key=int)
        out[split] = {
            "accuracy": mean_std([s["accuracy"][split] for s in seeds]),
            "per_hop": {k: mean_std([s["by_hops"][split][k] for s in seeds]) for k in hops},
        }
        if all(split in s["fact_f1"] for s in seeds):
            out[split]["fact_f1"] = mean_std([s["fact_f1"][split] for s in seeds])
    return out


def markdown(summary: dict, meta: dict, stem: str) -> list[str]:
    lines = [
        "# Text -> graph on the kinship phrasing bank",
        "",
        f"{meta['date']}, seeds {meta['seeds']} (each row says its own)"
        f"{' (quick: small data)' if meta['quick'] else ''}, "
        f"Python {meta['python']}, {meta['platform']}. Trained on 2-3 hops of the training phrasing families; "
        "`test` uses those families, `held-out-phrasing` families never seen in training, `classic` the "
        "generator's original five phrasings (the regex-classic pipeline was trained on those alone). Mean ± "
        "standard deviation over seeds. A question the graph cannot answer counts as wrong.",
        "",
    ]
    for split in SPLITS:
        hops = sorted({k for s in summary.values() if split in s for k in s[split]["per_hop"]}, key=int)
        lines += [
            f"## {split}",
            "",
            "| pipeline | seeds | fact F1 | " + " | ".join(f"k={k}" for k in hops) + " | all | build s |",
            "|---|---|---|" + "---|" * (len(hops) + 2),
        ]
        for key, s in summary.items():
            if split not in s:
                continue
            f1 = s[split].get("fact_f1")
            f1_cell = f"{f1['mean']:.3f} ± {f1['std']:.3f}" if f1 else "-"
            cells = [
                f"{s[split]['per_hop'][k]['mean']:.3f} ± {s[split]['per_hop'][k]['std']:.3f}"
                if k in s[split]["per_hop"]
                else "-"
                for k in hops
            ]
            all_cell = f"{s[split]['accuracy']['mean']:.3f}"
            lines.append(
                f"| {PIPELINES[key][0]} | {seeds_cell(s)} | {f1_cell} | " + " | ".join(cells) + f" | {all_cell} | "
                f"{s['build_seconds']['mean']:.0f} |"
            )
        lines.append("")
    lines += [f"![accuracy by hops]({stem}.png)", ""]
    return lines


def seeds_cell(summary: dict) -> str:
    """Which seeds a row averages, and when it ran (rows of a --merge run differ)."""
    seeds = ", ".join(str(s) for s in summary["seeds"])
    return f"{seeds} ({' to '.join(sorted(set(summary['dates'])))})"


def plot(summary: dict, path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(SPLITS), figsize=(5 * len(SPLITS), 3.8), dpi=110, sharey=True)
    for ax, split in zip(axes, SPLITS):
        for key, s in [(k, s) for k, s in summary.items() if split in s]:
            hops = sorted(s[split]["per_hop"], key=int)
            means = [s[split]["per_hop"][k]["mean"] for k in hops]
            stds = [s[split]["per_hop"][k]["std"] for k in hops]
            ax.errorbar([int(k) for k in hops], means, yerr=stds, marker="o", capsize=3, label=PIPELINES[key][0])
        ax.axvspan(1.5, 3.5, color="tab:gray", alpha=0.15)
        ax.set_title(split)
        ax.set_xlabel("hops")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("answer accuracy")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
