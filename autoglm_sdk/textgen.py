"""Scoring text tasks: teacher-forced token figures while training, generated text against references after.

A text decoder (see :class:`~autoglm_sdk.protocols.TextOutput`) is scored by its teacher-forced loss and
next-token accuracy on the target text, and by what it generates: exact match, token F1 (bag of words, as in
SQuAD), chrF (sacrebleu) and, where the data has labels, the answer the generated text states (the first label
name in it) against the gold label, overall and per group (hops). Training generates for the validation split
each epoch and keeps the epoch with the best ``score``; the final evaluation generates for every split but
``train``.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from typing import Any

from autoglm_sdk.protocols import TaskSpec

#: generated texts kept in the metrics (and the report) as examples
EXAMPLES = 8


def normalise(text: str) -> str:
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    """F1 of the two texts' words as bags (lower case, punctuation apart); 1.0 when both are empty."""
    words = lambda t: re.findall(r"\w+|[^\w\s]", t.lower())  # noqa: E731
    p, r = words(prediction), words(reference)
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def stated_label(text: str, label_names: tuple[str, ...]) -> int | None:
    """The label a text states: the label name that occurs first as a whole word (the longest where several start
    at the same place, so "son-in-law" is not read as "son"); None when it names none."""
    best: tuple[int, int, int] | None = None
    for index, name in enumerate(label_names):
        match = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)
        if match and (best is None or (match.start(), -len(name)) < (best[0], -best[1])):
            best = (match.start(), len(name), index)
    return None if best is None else best[2]


def chrf(predictions: list[str], references: list[str]) -> float:
    """Corpus chrF (sacrebleu, character 6-grams, beta 2), 0-100."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().corpus_score(predictions, [references]).score)


def text_scores(
    predictions: list[str], samples: list[dict[str, Any]], task: TaskSpec, group_key: str | None = None
) -> dict[str, Any]:
    """Generated texts against the samples' targets (``task.target``) and, where they carry one, their labels."""
    references = [str(s.get(task.target, "")) for s in samples]
    exact = [normalise(p) == normalise(r) for p, r in zip(predictions, references)]
    out: dict[str, Any] = {
        "count": len(samples),
        "exact_match": sum(exact) / max(len(samples), 1),
        "token_f1": sum(token_f1(p, r) for p, r in zip(predictions, references)) / max(len(samples), 1),
        "chrf": chrf(predictions, references) if samples else float("nan"),
    }
    labelled = [i for i, s in enumerate(samples) if "label" in s]
    # an answer is what a generated sentence states; a summary states no answer, whatever labels the data has
    answers = {i: stated_label(predictions[i], task.label_names) for i in labelled}
    if not task.label_names or task.kind != "generate":
        answers = {}
    if answers:
        out["answer_accuracy"] = sum(answers[i] == int(samples[i]["label"]) for i in answers) / len(answers)
        out["unstated_answers"] = sum(a is None for a in answers.values())
    out["accuracy"] = out.get("answer_accuracy", out["exact_match"])
    # what training chooses its best epoch on: the answers the texts state where there are labels, and their
    # wording (chrF, which unlike exact match still moves on long texts); for spans, exact match and token F1
    wording = out["chrf"] / 100 if out["chrf"] == out["chrf"] else 0.0
    out["score"] = (out["answer_accuracy"] + wording) / 2 if "answer_accuracy" in out else wording
    if task.kind == "extractive-qa":  # a span is right or wrong as a whole; F1 gives partial spans their due
        out["score"] = (out["exact_match"] + out["token_f1"]) / 2
    if group_key:
        groups: dict[str, list[float]] = {}
        for i, sample in enumerate(samples):
            tally = groups.setdefault(str(sample.get(group_key)), [0, 0, 0])
            tally[0] += float(answers[i] == int(sample["label"])) if i in answers else float(exact[i])
            tally[1] += float(exact[i])
            tally[2] += 1
        order = sorted(groups, key=lambda g: (len(g), g))
        out["groups"] = {
            g: {
                "accuracy": groups[g][0] / groups[g][2],
                "exact_match": groups[g][1] / groups[g][2],
                "count": groups[g][2],
            }
            for g in order
        }
    out["examples"] = [
        {"generated": p, "reference": r, **({"hops": s.get(group_key)} if group_key else {})}
        for p, r, s in list(zip(predictions, references, samples))[:EXAMPLES]
    ]
    return out


def evaluate_text(
    model: Any,
    samples: list[dict[str, Any]],
    task: TaskSpec,
    batch_size: int,
    autocast: Any = None,
    group_key: str | None = None,
    *,
    generate: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Teacher-forced ``loss`` and ``token_accuracy`` over ``samples`` (``accuracy`` is the token accuracy); with
    ``generate``, the generated texts' scores too (:func:`text_scores`; ``accuracy`` is then the stated answers'
    accuracy where there are labels, else exact match)."""
    import torch

    from autoglm_sdk.trainer import batches

    model.eval()
    loss_sum = correct = tokens = 0.0
    predictions: list[str] = []
    context = autocast if autocast else contextlib.nullcontext
    with torch.no_grad():
        for chunk in batches(samples, batch_size):
            with context():
                out = model(chunk).text
                if generate:
                    predictions += model.generate(chunk)
            loss_sum += float(out.loss) * out.target_tokens
            correct += out.correct_tokens
            tokens += out.target_tokens
            if progress is not None:
                progress(len(chunk))
    if not tokens:
        return {"accuracy": float("nan"), "loss": float("nan"), "count": 0}
    figures = {"loss": loss_sum / tokens, "token_accuracy": correct / tokens, "target_tokens": int(tokens)}
    if not generate:
        return {"accuracy": figures["token_accuracy"], "count": len(samples), **figures}
    return {**text_scores(predictions, samples, task, group_key), **figures}
