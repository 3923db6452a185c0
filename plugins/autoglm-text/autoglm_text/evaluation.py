"""What the build report says about a pipeline whose graph builder is ``relation-extractor``.

* facts: precision, recall and F1 of the extracted facts, overall and per relation, on every split but train
  (up to ``LIMIT`` stories each), so seen and held-out phrasings sit side by side;
* answers: accuracy per phrasing family on every split whose stories name their families (the kinship bank);
* the worst errors: test stories answered wrong with the most confidence, with the facts the extractor read
  beside the facts the story states.
"""

from __future__ import annotations

from typing import Any

LIMIT = 500
WORST = 5


def evaluate_session(session: Any, model: Any) -> dict[str, Any] | None:
    from autoglm_text.extractor import RelationExtractor

    extractor = model.stage_objects.get("graph_builder")
    if not isinstance(extractor, RelationExtractor) or extractor.encoder is None:
        return None
    splits = {name: samples for name, samples in session.dataset.splits.items() if name != "train"}
    facts = {}
    for name, samples in splits.items():
        annotated = [s for s in samples[:LIMIT] if s.get("facts")]
        if annotated:
            facts[name] = fact_table(extractor, annotated)
    answers, worst = answer_tables(session, model, splits)
    figures = {"facts": facts, "answers_by_phrasing": answers, "worst": worst}
    return {
        "name": "relation-extractor",
        "figures": figures,
        "markdown": markdown(facts, answers, worst),
        "pictures": {"fact_f1_by_relation.png": lambda path: plot_f1(facts, path)} if facts else {},
    }


def fact_table(extractor: Any, samples: list[dict[str, Any]]) -> dict[str, Any]:
    from autoglm_text.extraction import fact_scores

    return fact_scores(extractor, samples)


def answer_tables(session: Any, model: Any, splits: dict[str, list[dict[str, Any]]]) -> tuple[dict, list]:
    """Accuracy per phrasing family per split, and the test split's most confident wrong answers."""
    import torch

    from autoglm_sdk.plugin import batches

    by_family: dict[str, dict[str, list[int]]] = {}
    wrong: list[tuple[float, dict[str, Any], int, Any]] = []
    model.eval()
    with torch.no_grad():
        for name, samples in splits.items():
            if not any("phrasings" in s for s in samples):
                continue
            for chunk in batches(samples, session.batch_size):
                with session.backend.autocast():
                    pred = model(chunk)
                probs = pred.logits.float().softmax(-1)
                for i, (sample, p) in enumerate(zip(chunk, probs)):
                    guess = int(p.argmax())
                    right = guess == sample["label"]
                    for family in sample.get("phrasings", ()):
                        row = by_family.setdefault(name, {}).setdefault(family, [0, 0])
                        row[0] += right
                        row[1] += 1
                    if name == "test" and not right:
                        wrong.append((float(p[guess]), sample, guess, pred.outputs["graph_builder"].get_example(i)))
    answers = {
        split: {family: {"accuracy": r / n, "stories": n} for family, (r, n) in sorted(rows.items())}
        for split, rows in by_family.items()
    }
    extractor = model.stage_objects["graph_builder"]
    worst = [
        {
            "text": sample["text"],
            "label": session.task.label_name(sample["label"]),
            "prediction": session.task.label_name(guess),
            "confidence": round(confidence, 4),
            "extracted": [[f["head"], f["relation"], f["tail"]] for f in extractor.explain(graph)["facts"]],
            "stated": stated_facts(sample),
        }
        for confidence, sample, guess, graph in sorted(wrong, key=lambda w: -w[0])[:WORST]
    ]
    return answers, worst


def stated_facts(sample: dict[str, Any]) -> list[list[str]]:
    from autoglm_text.stories import gold_names

    names = gold_names(sample)
    return [[names[int(h)], r, names[int(t)]] for h, r, t in sample.get("facts", ())]


def markdown(facts: dict, answers: dict, worst: list) -> list[str]:
    lines = ["## Text -> graph (relation-extractor)", ""]
    if facts:
        lines += [
            "Extracted facts against the facts each story states (either direction counts once).",
            "",
            "| split | stories | precision | recall | F1 |",
            "|---|---|---|---|---|",
        ]
        for split, s in facts.items():
            lines.append(f"| {split} | {s['stories']} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} |")
        relations = sorted({r for s in facts.values() for r in s["per_relation"]})
        lines += ["", "F1 per relation:", "", "| relation | " + " | ".join(facts) + " |", "|---|" + "---|" * len(facts)]
        for r in relations:
            cells = [f"{facts[s]['per_relation'].get(r, {}).get('f1', 0):.3f}" for s in facts]
            lines.append(f"| {r} | " + " | ".join(cells) + " |")
        lines += ["", "![fact F1 by relation](fact_f1_by_relation.png)", ""]
    if answers:
        lines += ["Answer accuracy per phrasing family (a story counts for every family it uses):", ""]
        lines += ["| split | family | stories | accuracy |", "|---|---|---|---|"]
        for split, rows in answers.items():
            for family, r in rows.items():
                lines.append(f"| {split} | {family} | {r['stories']} | {r['accuracy']:.3f} |")
        lines.append("")
    if worst:
        lines += ["The most confident wrong answers on test:", ""]
        for w in worst:
            lines += [
                f"- {w['text']}",
                f"  - answer {w['label']}, predicted {w['prediction']} ({w['confidence']:.2f})",
                f"  - extracted: {'; '.join(' '.join(f) for f in w['extracted']) or 'nothing'}",
                f"  - stated: {'; '.join(' '.join(f) for f in w['stated'])}",
            ]
        lines.append("")
    return lines


def plot_f1(facts: dict[str, Any], path: Any) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()
    relations = sorted({r for s in facts.values() for r in s["per_relation"]})
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=110)
    width = 0.8 / max(1, len(facts))
    for k, (split, s) in enumerate(facts.items()):
        values = [s["per_relation"].get(r, {}).get("f1", 0.0) for r in relations]
        ax.bar([i + k * width for i in range(len(relations))], values, width, label=split)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(relations))], relations, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("fact F1")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
