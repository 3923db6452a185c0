"""``jsonl``: a user's own labelled texts from a JSON-lines file.

One JSON object per line with a text field, a label field and optionally a
split field (``train``/``val``/``test``; ``dev`` and ``validation`` mean
``val``) and a group field to break metrics down by. Without a split field,
lines are split at random (seeded) by ``val_fraction`` and ``test_fraction``.
Every malformed line is reported with its line number; the first few go into
the error message.

For learned graph builders a line may carry the facts its text states,
``"facts": [[head, relation, tail], ...]``, read **"tail is head's relation"**
(``["Sarah", "mother", "Linda"]``: Linda is Sarah's mother), and the question's
people, ``"query": [target, source]``. Heads and tails are names, or
descriptions of unnamed people as the text writes them ("their father"); each
must occur in the text, which is checked. They become the gold annotation
(``entities``, ``mentions``, ``facts``, ``query_entities``) that
``relation-extractor`` trains on; pronouns are not annotated, so the
annotation is marked ``partial``.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
from pathlib import Path

from autoglm_graph.specs import JsonlConfig
from autoglm_sdk.plugin import BuildContext, DataError, Dataset, Port, TaskSpec

SPLIT_ALIASES = {"train": "train", "val": "val", "dev": "val", "validation": "val", "test": "test"}


class JsonlDataSource:
    name = "jsonl"
    kind = "data"
    Config = JsonlConfig

    def __init__(self, config: JsonlConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def load(self) -> Dataset:
        c = self.config
        if not c.path:
            raise DataError("data.path: name the JSON-lines file to read", hint='for example path = "stories.jsonl"')
        path = Path(c.path)
        if not path.is_file():
            raise DataError(f"data.path: {path} does not exist or is not a file")
        rows, problems = [], []
        digest = hashlib.sha256()
        try:
            lines = io.StringIO(path.read_text(encoding="utf-8"))  # lines end at \n only, as when reading the file
        except UnicodeDecodeError as exc:
            raise DataError(f"data.path: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            digest.update(line.encode())
            try:
                rows.append(self._row(json.loads(line), number))
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name}:{number}: not valid JSON ({exc.msg})")
            except ValueError as exc:
                problems.append(f"{path.name}:{number}: {exc}")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise DataError("; ".join(problems[:3]) + more, hint="fix or remove those lines")
        if not rows:
            raise DataError(f"data.path: {path} has no records")
        # numbers in numeric order, then strings; "10" must not sort before "2"
        labels = list(c.labels) or sorted(
            {r["label"] for r in rows}, key=lambda v: (not isinstance(v, int), v if isinstance(v, int) else 0, str(v))
        )
        known = {str(lab) for lab in labels}
        unknown = [f"{path.name}:{r['line']}: label {r['label']!r}" for r in rows if str(r["label"]) not in known]
        if unknown:
            more = f" (and {len(unknown) - 3} more)" if len(unknown) > 3 else ""
            raise DataError("; ".join(unknown[:3]) + more + " is not in data.labels", hint="add it to data.labels")
        numbers = sorted({r["label"] for r in rows if isinstance(r["label"], int)})
        if not c.labels and numbers and numbers[-1] >= len(numbers):  # class indices leave no class out
            line = next(r["line"] for r in rows if r["label"] == numbers[-1])
            raise DataError(
                f"{path.name}:{line}: label {numbers[-1]} is a class index, but only {len(numbers)} integer labels "
                f"occur (expected 0..{len(numbers) - 1})",
                hint="fix that line, or list every class in data.labels",
            )
        index = {str(lab): i for i, lab in enumerate(labels)}
        splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
        rng = random.Random(f"jsonl/{self.seed}")
        for row in rows:
            split = row.pop("split") or self._random_split(rng)
            row["label"] = index[str(row["label"])]
            splits[split].append(row)
        return Dataset(
            task=TaskSpec("graph", len(labels), tuple(str(lab) for lab in labels)),
            port=Port("samples", frozenset({"text"})),
            splits=splits,
            fingerprint=digest.hexdigest(),
            group_key=c.group_field,
        )

    def _row(self, record: object, number: int) -> dict:
        c = self.config
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        text = record.get(c.text_field)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"`{c.text_field}` must be a non-empty string")
        if c.label_field not in record:
            raise ValueError(f"missing the label field `{c.label_field}`")
        label = record[c.label_field]
        is_index = isinstance(label, int) and not isinstance(label, bool) and label >= 0
        if not is_index and not (isinstance(label, str) and label.strip()):
            raise ValueError(
                f"`{c.label_field}` is {json.dumps(label)}; a label is a class name (a string) "
                "or a class index (an integer from 0)"
            )
        split = None
        if c.split_field and record.get(c.split_field) is not None:
            split = SPLIT_ALIASES.get(str(record[c.split_field]).lower())
            if split is None:
                raise ValueError(f"`{c.split_field}` is {record[c.split_field]!r}; use train, val or test")
        row = {"text": text, "label": record[c.label_field], "split": split, "line": number}
        if c.group_field:
            row[c.group_field] = record.get(c.group_field)
        if c.target_field:
            target = record.get(c.target_field)
            if not isinstance(target, str) or not target.strip():
                raise ValueError(f"`{c.target_field}` (data.target_field) must be a non-empty string")
            row[c.target_field] = target
        if c.facts_field and record.get(c.facts_field) is not None:
            query = record.get(c.query_field) if c.query_field else None
            row.update(annotation(text, record[c.facts_field], query, c.facts_field, c.query_field))
        return row

    def _random_split(self, rng: random.Random) -> str:
        draw = rng.random()
        if draw < self.config.test_fraction:
            return "test"
        if draw < self.config.test_fraction + self.config.val_fraction:
            return "val"
        return "train"


POSSESSIVES = {"my", "your", "his", "her", "its", "our", "their"}


def annotation(text: str, facts: object, query: object, facts_field: str, query_field: str | None) -> dict:
    """The gold annotation of one story from its facts (``[head, relation, tail]``: tail is head's relation)
    and its query (``[target, source]``); ValueError naming the fact or person that is wrong."""
    if not isinstance(facts, list) or not all(
        isinstance(f, list) and len(f) == 3 and all(isinstance(v, str) and v.strip() for v in f) for f in facts
    ):
        raise ValueError(f"`{facts_field}` must be a list of [head, relation, tail] strings")
    people: list[str] = []
    for head, _, tail in facts:
        for person in (head.strip(), tail.strip()):
            if person.lower() not in (p.lower() for p in people):
                people.append(person)
    if query is not None:
        if not (isinstance(query, list) and len(query) == 2 and all(isinstance(v, str) for v in query)):
            raise ValueError(f"`{query_field}` must be [target, source], two names")
        people.extend(q for q in query if q.lower() not in (p.lower() for p in people))
    index = {p.lower(): i for i, p in enumerate(people)}
    related: dict[int, set[int]] = {}
    for head, _, tail in facts:
        h, t = index[head.strip().lower()], index[tail.strip().lower()]
        related.setdefault(h, set()).add(t)
        related.setdefault(t, set()).add(h)
    mentions, taken = [], [False] * len(text)
    for i, person in sorted(enumerate(people), key=lambda item: -len(item[1])):  # longer phrases first
        found = False
        for m in re.finditer(rf"(?<!\w){re.escape(person)}(?!\w)", text, flags=re.IGNORECASE):
            if any(taken[m.start() : m.end()]):
                continue
            taken[m.start() : m.end()] = [True] * (m.end() - m.start())
            found = True
            words = list(re.finditer(r"\w[\w'-]*", m.group()))
            if len(words) > 1 and words[0].group().lower() in POSSESSIVES:  # "their father": pronoun + description
                head_word = words[-1]
                mentions.append(
                    {
                        "start": m.start(),
                        "end": m.start() + words[0].end(),
                        "entities": sorted(related.get(i, ())),
                        "kind": "pronoun",
                    }
                )
                mentions.append(
                    {
                        "start": m.start() + head_word.start(),
                        "end": m.start() + head_word.end(),
                        "entities": [i],
                        "kind": "description",
                    }
                )
            else:
                kind = "name" if person[:1].isupper() else "description"
                mentions.append({"start": m.start(), "end": m.end(), "entities": [i], "kind": kind})
        if not found:
            raise ValueError(f"`{person}` (in `{facts_field}` or `{query_field}`) does not occur in the text")
    mentions = [m for m in mentions if m["entities"]]
    return {
        "entities": [{"name": p if p[:1].isupper() else None} for p in people],
        "mentions": sorted(mentions, key=lambda m: m["start"]),
        "facts": [[index[h.strip().lower()], r.strip(), index[t.strip().lower()]] for h, r, t in facts],
        "query_entities": [index[q.lower()] for q in query] if query is not None else None,
        "partial": True,
    }
