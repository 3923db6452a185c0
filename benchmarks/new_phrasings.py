"""Teaching a built extractor phrasings it never saw, as a user with their own stories would: an extractor
trained on the generator's training phrasing families, then 2-3-hop stories of families it never saw, given
as a user's jsonl. Three ways: the extractor kept as it is (``init_from`` alone), its relation classifier
taught by the stories' answers (``learn_from_answers``, no facts), and the extractor trained further on the
stories' annotated facts (a ``facts`` field per line, as README's "Training on your own annotated stories").

    python benchmarks/new_phrasings.py --from artifacts/kinship-extractor [--stories 2000] [--seeds 0]
        [--ways kept answers facts] [--keep DIR] [--restarts 2]

``--from`` is an artifact built with a relation-extractor on the kinship bank (examples/kinship-extractor.toml).
The user's stories are the bank's held-out phrasing families: 2-3 hops for training and validation, and other
stories of those families, 2-10 hops, for test. Facts are written as a user writes them (names and relation
words: ``["Selma", "father", "Erik"]``), so a story with a person it never names ("Erik's wife") has no such
line and is left out of the annotated training stories; test stories keep them. Every way starts from the same
extractor and trains the same reasoner and decoder. Writes benchmarks/results/new_phrasings.{json,md,png}.
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
WAYS = {
    "kept": "extractor kept as it is (init_from)",
    "answers": "relation classifier taught by answers",
    "facts": "extractor trained on annotated facts",
}


def held_out(hops: list[int], count: int, data_seed: int) -> list[dict]:
    """``count`` stories of the bank's held-out phrasing families at ``hops``."""
    from autoglm_graph.kinship import HELD_OUT_SPLIT, KinshipDataSource
    from autoglm_graph.specs import KinshipConfig
    from autoglm_sdk.plugin import BuildContext

    config = KinshipConfig(
        phrasings="bank",
        train={"hops": [2], "stories": 1},
        val={"hops": [2], "stories": 1},
        test={"hops": hops, "stories": count},
    )
    return KinshipDataSource(config, BuildContext(seed=data_seed)).load().splits[HELD_OUT_SPLIT]


def user_facts(sample: dict) -> list[list[str]] | None:
    """The story's facts as a user writes them, ``[head, word, tail]`` with "tail is head's word", or None where
    a person in them is never named (a user would write "Erik's wife", which the jsonl source cannot place)."""
    from autoglm_graph import kinship_vocab as kv

    people = sample["entities"]
    if any(people[i]["name"] is None for fact in sample["facts"] for i in (fact[0], fact[2])):
        return None
    return [
        [people[h]["name"], kv.word_for(kind, people[t]["gender"]), people[t]["name"]] for h, kind, t in sample["facts"]
    ]


def write_stories(folder: Path, stories: int, seed: int) -> dict[str, int]:
    """Two jsonl files of the same held-out-family stories: ``answers.jsonl`` (text, label, hops) and
    ``facts.jsonl``, whose train and val lines also carry their facts and question, less those with an unnamed
    person. Returns how many lines each split has in each file."""
    from autoglm_graph import kinship_vocab as kv

    fitted = held_out([2, 3], stories + 300, 1000 + seed)
    tested = held_out(list(range(2, 11)), 900, 2000 + seed)
    counts: dict[str, int] = {}
    for name, annotated in (("answers", False), ("facts", True)):
        lines = []
        for split, samples in (("train", fitted[:stories]), ("val", fitted[stories:]), ("test", tested)):
            for s in samples:
                line = {"text": s["text"], "label": kv.LABELS[s["label"]], "hops": s["hops"], "split": split}
                if annotated and split != "test":
                    facts = user_facts(s)
                    if facts is None:
                        continue
                    line.update(facts=facts, query=s["query"])
                lines.append(line)
                counts[f"{name}/{split}"] = counts.get(f"{name}/{split}", 0) + 1
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return counts


def manifest_for(way: str, artifact: str, stories: Path, seed: int, restarts: int = 2) -> dict:
    from autoglm_graph import kinship_vocab as kv

    data = copy.deepcopy(tomllib.loads((REPO / "examples" / "kinship-extractor.toml").read_text()))
    data["pipeline"].update(name=f"new-phrasings-{way}", seed=seed, baselines=[])
    data["data"] = {"plugin": "jsonl", "path": str(stories), "labels": list(kv.LABELS), "group_field": "hops"}
    words = {word: {"type": kind, "value": value} for word, (kind, value) in kv.WORD_MEANING.items()}
    data["graph_builder"].update(
        edge_types=list(kv.TYPES), init_from=artifact, learn_from_answers=way == "answers", relation_words=words
    )
    data["train"]["restarts"] = restarts  # each restart reads every story once more
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="artifact", required=True, help="an artifact with a relation-extractor")
    parser.add_argument("--stories", type=int, default=2000, help="the user's 2-3-hop stories (train)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--ways", nargs="+", choices=list(WAYS), default=list(WAYS), help="ways of teaching")
    parser.add_argument("--keep", type=Path, help="keep the stories and artifacts in this folder")
    parser.add_argument(
        "--restarts", type=int, default=2, help="reasoner restarts (the manifest's 8 answer long chains better)"
    )
    args = parser.parse_args()
    if not (Path(args.artifact) / "manifest.lock.toml").exists():
        sys.exit(f"error: {args.artifact} is not an artifact; build examples/kinship-extractor.toml first")

    from autoglm_sdk import build, validate_manifest

    runs: dict[str, list[dict]] = {way: [] for way in args.ways}
    lines: dict[int, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            folder = (args.keep or Path(tmp)) / f"seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            lines[seed] = write_stories(folder, args.stories, seed)
            for way in args.ways:
                print(f"{WAYS[way]}, seed {seed} ...", file=sys.stderr, flush=True)
                stories = folder / ("facts.jsonl" if way == "facts" else "answers.jsonl")
                manifest = validate_manifest(manifest_for(way, args.artifact, stories, seed, args.restarts))
                started = time.perf_counter()
                result = build(manifest, folder / way, log=lambda m: print("  " + m, file=sys.stderr))
                test = result.report["metrics"]["test"]
                facts = result.report.get("evaluations", {}).get("relation-extractor", {}).get("figures", {})
                runs[way].append(
                    {
                        "seed": seed,
                        "build_seconds": time.perf_counter() - started,
                        "val": result.report["metrics"]["val"]["accuracy"],
                        "val_fact_f1": facts.get("facts", {}).get("val", {}).get("f1"),
                        "test": test["accuracy"],
                        "abstained": test.get("abstained"),
                        "by_hops": {k: v["accuracy"] for k, v in test["groups"].items()},
                    }
                )
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "stories": args.stories,
        "lines": lines,
        "from": args.artifact,
        "restarts": args.restarts,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "new_phrasings.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")
    (RESULTS / "new_phrasings.md").write_text("\n".join(markdown(runs, meta)))
    plot(runs, RESULTS / "new_phrasings.png")
    print((RESULTS / "new_phrasings.md").read_text())


def mean(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def markdown(runs: dict[str, list[dict]], meta: dict) -> list[str]:
    hops = sorted(next(iter(runs.values()))[0]["by_hops"], key=int)
    annotated = sorted({n.get("facts/train", 0) for n in meta["lines"].values()})
    lines = [
        "# Teaching a built extractor new phrasings",
        "",
        f"{meta['date']}, seeds {meta['seeds']}, Python {meta['python']}, {meta['platform']}. Extractor from "
        f"`{meta['from']}`; {meta['stories']} user stories (2-3 hops) of the held-out phrasing families, "
        f"{'/'.join(map(str, annotated))} of them annotated with facts (those naming everyone in their facts); "
        f"test: 900 other stories of those families, 2-10 hops, 100 per k; {meta.get('restarts', 2)} reasoner "
        "restarts.",
        "",
        "| extractor | val answers | val fact F1 | test | " + " | ".join(f"k={k}" for k in hops) + " | build s |",
        "|---|---|---|---|" + "---|" * (len(hops) + 1),
    ]
    for way, seeds in runs.items():
        cells = [mean([s["by_hops"][k] for s in seeds]) for k in hops]
        f1 = [s["val_fact_f1"] for s in seeds if s["val_fact_f1"] is not None]
        lines.append(
            f"| {WAYS[way]} | {mean([s['val'] for s in seeds])} | {mean(f1) if f1 else '-'} | "
            f"{mean([s['test'] for s in seeds])} | "
            + " | ".join(cells)
            + f" | {statistics.mean(s['build_seconds'] for s in seeds):.0f} |"
        )
    if "kept" in runs:
        kept = statistics.mean(s["test"] for s in runs["kept"])
        lines.append("")
        for way in [w for w in runs if w != "kept"]:
            gain = statistics.mean(s["test"] for s in runs[way]) - kept
            lines.append(f"Test accuracy gained over the kept extractor, {WAYS[way]}: {gain:+.3f}.")
    lines += ["", "![by hops](new_phrasings.png)", ""]
    return lines


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for way, seeds in runs.items():
        hops = sorted(seeds[0]["by_hops"], key=int)
        means = [statistics.mean(s["by_hops"][k] for s in seeds) for k in hops]
        ax.plot([int(k) for k in hops], means, "o-", label=WAYS[way])
    ax.axvspan(1.5, 3.5, color="tab:gray", alpha=0.15)
    ax.set_xlabel("hops")
    ax.set_ylabel("answer accuracy (held-out families)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
