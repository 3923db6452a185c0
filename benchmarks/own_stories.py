"""Family stories written by hand for this project, not by the kinship generator, answered by built artifacts.

    python benchmarks/own_stories.py ARTIFACT [ARTIFACT ...] [--stories FILE] [--out STEM]

``benchmarks/data/own_stories.jsonl`` holds 35 short stories (2-3 facts each) in the style people write: facts
beside people they are not about ("She often visits Frank with her mother Helen"), "them" for people or things,
[bracketed] names, relatives called "grandpa" or "dad". Each line has the text with its question, the facts it
states (``[head, type, tail]``: tail is head's type), the question's ``[target, source]`` and the answer word.
The first 20 were written to find what the extractor misread; the bank's ``bystanders`` family, the bystander
augmentation and dropping facts that close a cycle were written after reading their misses, and the last 15
(written after the first of those changes) were read while choosing the others. So this is a small set written
by the same people as the bank and used while building: a check, not a held-out measure.

``benchmarks/data/blind_stories.jsonl`` (``--stories``) holds 40 longer stories with 2-6 facts on the question's
path, written on 2026-12-03 by a helper who had not read the phrasing bank or the stories above, in names of many
cultures and with narrative between the facts. It was first scored after that day's construction families were
made and measured (full build 24 of 40). Places and named things were then added to the bank's narrative sentences
after reading its misses, so from then on it is a check like the other set (the `aside-antecedent` family was
written after reading four of its misses, too).

``benchmarks/data/blind_stories_2.jsonl`` holds 40 more (2-6 facts on the path: 12, 12, 8, 5 and 3 stories),
written on 2026-12-05 by another helper who read nothing of the project, and scored once, after that day's changes
were made: the set that still measures stories nobody here tuned for (until its misses were read that day).

``benchmarks/data/blind_stories_3.jsonl`` holds 50 more (2-8 facts on the path: 10, 10, 10, 8, 6 and 6 with 7 or
8), written on 2026-12-05 (evening) by a helper who read nothing of the project, from a brief that asked for
crowd-worker, forum and note styles, pronouns across sentences, unnamed links ("his wife's sister"), lists,
everyday words (mom, grandpa, hubby, sis), dishes, places and pets beside people, and names in [brackets] in some.
Unnamed people's facts use ids such as ``husband_of_hannah``, which no extraction spells, so "every fact read right"
undercounts there (6 stories); the answers are exact. It was scored on the build before that evening's changes and
after them, without its stories or misses being read.

``benchmarks/data/blind_stories_4.jsonl`` holds 50 more (2-7 facts on the path: 12, 12, 10, 8, 6 and 2), written
on 2026-12-07 by a helper who read nothing of the project, from a brief that asked for posts, diaries, text
messages, school essays, news items, wedding toasts and first-person stories whose narrator is named somewhere
(signed at the end, in a byline), as well as crowd-worker paraphrase. First scored on seed 1's artifact of
2026-12-07 (33 of 50 right); its misses were read then, so from then on it is a check like the others.

``benchmarks/data/blind_stories_5.jsonl`` holds 60 more (2-8 facts on the path: 10, 12, 12, 10, 8 and 8 with 7 or
8), written on 2026-12-07 (second session) by a helper who read nothing of the project, from a brief that asked
mostly for crowd-worker paraphrase (facts woven into events, stated from either side and out of order, pronouns
across sentences, unnamed links named later, filler and bystanders), and for first-person stories, posts, diaries,
group chats and five clumsy, misspelt ones; five leave a link unnamed (``father_of_mateo``). First scored on the
fresh seed-0 and seed-1 builds of 2026-12-07 (code of commit 38d983c): 53 of 60 each. Its misses were read then
(three group chats, a diary and a post read no narrator), so from then on it is a check like the others.

``benchmarks/data/blind_stories_6.jsonl`` holds 40 long ones (5-10 facts on the path: 8, 8, 8, 6, 5 and 5), written
the same day by another helper who read nothing of the project, from a brief for crowd-worker paraphrase of long
generated stories (facts woven into events, out of chain order, from either side, pronouns, "their" for two people,
filler, people off the path; five unnamed links) with the rule table's compositions given, so that every label
follows from its chain. First scored on the same two builds with the chat rules above: 37 of 40 each.

``benchmarks/data/blind_stories_7.jsonl`` holds 50 more (2-6 facts on the path: 12, 12, 10, 8 and 8), written the
same day by a third helper who read nothing of the project, from a brief to write as 50 different ordinary people
asked for a few sentences about a family and a question: plain and chatty, events, lists, relatives described
through others, verbs, pronouns, "their", names in brackets, first-person narrators, typos, unusual questions; six
leave a link unnamed. First scored on the same two builds (code of commit 60327b6): seed 0 42 of 50, seed 1 44.

``benchmarks/data/blind_stories_8.jsonl`` holds 60 more (2-8 facts on the path: 12, 12, 12, 10, 8 and 6 with 7 or
8), written on 2026-12-07 (thirteenth session) by a helper who read nothing of the project, from a brief for
registers the other sets have few of: oral-history transcripts, emails and letters signed under a closing, obituaries,
genealogy notes, advice-forum posts, speeches, text messages and a school essay, besides crowd-worker paraphrase;
six leave a link unnamed. First scored on a fresh seed-2 build (code of commit 24e1cbf): 29 of 60, against 0.84-0.93
on the first scores of sets 5-7. 12 of its 31 misses were letters, emails, notes and posts whose writer the rules did
not find ("Love,\nAnanya", "Your loving Miriam", "Kate x", "I (29F, Emily)", "(typed up by Amira)"); its misses
were read then, so from then on it is a check like the others.

``benchmarks/data/blind_stories_9.jsonl`` holds 60 more (2-8 facts on the path, as set 8), written the same day by
another helper who read nothing of the project (nor set 8), in twelve registers: emails and letters, holiday
round-robin letters, voicemail transcripts, oral-history interviews ("Q: ... A: ..."), social-media posts with
comments, advice-column letters signed with a pseudonym, group chats, obituaries, birth and wedding announcements,
genealogy notes, diaries and plain paraphrase. First scored on the same seed-2 build with the letter rules of set
8: 25 of 60 (20 without them). Its misses were read then (interviews, voicemails, "- Dad in Denver (Mike)", a
poster's name above a post), so from then on it is a check like the others.

For each artifact: answer accuracy, and for a learned extractor the share of stories whose facts were all read
right (nothing missing, nothing extra). Writes benchmarks/results/own_stories.{json,md,png} (or ``--out STEM``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def canonical(head: str, kind: str, tail: str, inverse: dict[str, str]) -> tuple[str, str, str]:
    """One spelling for a fact and its reverse ("tail is head's kind" = "head is tail's inverse kind")."""
    head, tail = head.strip("[]").lower(), tail.strip("[]").lower()
    return min((head, kind, tail), (tail, inverse.get(kind, kind), head))


def path(story: dict) -> list[tuple[str, str, str]] | None:
    """The listed facts on a shortest path from the question's source to its target, in order from the source
    (each as listed: ``[head, type, tail]``), or None when the facts do not link the two."""
    key = lambda name: name.strip("[]").lower()  # noqa: E731
    target, source = (key(name) for name in story["query"])
    links: dict[str, list[tuple[str, tuple[str, str, str]]]] = {}
    for fact in story["facts"]:
        head, _, tail = fact
        links.setdefault(key(head), []).append((key(tail), tuple(fact)))
        links.setdefault(key(tail), []).append((key(head), tuple(fact)))
    way: dict[str, list[tuple[str, str, str]]] = {source: []}
    frontier = [source]
    while frontier:
        person = frontier.pop(0)
        for other, fact in links.get(person, ()):
            if other not in way:
                way[other] = [*way[person], fact]
                frontier.append(other)
    return way.get(target)


def path_length(story: dict) -> int | None:
    """Facts on the shortest path from the question's source to its target (the story's hop count)."""
    steps = path(story)
    return None if steps is None else len(steps)


def score(artifact: Path, stories: list[dict]) -> dict:
    import autoglm_sdk
    from autoglm_graph import kinship_vocab as kv

    pipeline = autoglm_sdk.load(artifact)
    answers = pipeline.predict([{"id": s["id"], "text": s["text"]} for s in stories], errors="report")
    rows = []
    for story, answer in zip(stories, answers):
        graph = answer.get("graph") or {}
        read = graph.get("facts")
        gold = {canonical(*fact, kv.INVERSE) for fact in story["facts"]}
        found = None if read is None else {canonical(f["head"], f["relation"], f["tail"], kv.INVERSE) for f in read}
        rows.append(
            {
                "id": story["id"],
                "hops": path_length(story),
                "label": story["label"],
                "prediction": answer.get("prediction") or answer.get("error") or "no answer",
                "right": answer.get("prediction") == story["label"],
                "facts_right": None if found is None else found == gold,
                "missing": None if found is None else sorted(gold - found),
                "extra": None if found is None else sorted(found - gold),
            }
        )
    read_facts = [r["facts_right"] for r in rows if r["facts_right"] is not None]
    return {
        "artifact": str(artifact),
        "accuracy": sum(r["right"] for r in rows) / len(rows),
        "facts_all_right": sum(read_facts) / len(read_facts) if read_facts else None,
        "stories": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path)
    parser.add_argument("--stories", type=Path, default=HERE / "data" / "own_stories.jsonl")
    parser.add_argument("--out", default="own_stories")
    args = parser.parse_args()
    stories = [json.loads(line) for line in args.stories.read_text().splitlines() if line.strip()]
    results = [score(a, stories) for a in args.artifacts]
    RESULTS.mkdir(exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "stories": str(args.stories), "count": len(stories)}
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = [
        "# Hand-written family stories",
        "",
        f"{meta['date']}: {len(stories)} stories of `{args.stories.name}` (see `benchmarks/own_stories.py`).",
        "",
        "| artifact | answers right | stories with every fact read right |",
        "|---|---|---|",
    ]
    for r in results:
        facts = "-" if r["facts_all_right"] is None else f"{r['facts_all_right']:.2f}"
        lines.append(f"| `{r['artifact']}` | {r['accuracy']:.2f} | {facts} |")
    hops = sorted({s["hops"] for s in results[0]["stories"] if s["hops"] is not None}) if results else []
    if len(hops) > 1:
        lines += ["", "Answers right by facts on the question's path:", ""]
        lines += ["| artifact | " + " | ".join(f"{k} ({count(results[0], k)})" for k in hops) + " |"]
        lines += ["|---|" + "---|" * len(hops)]
        for r in results:
            by = {k: [s["right"] for s in r["stories"] if s["hops"] == k] for k in hops}
            lines.append(f"| `{r['artifact']}` | " + " | ".join(f"{sum(v) / len(v):.2f}" for v in by.values()) + " |")
    for r in results:
        lines += ["", f"## Wrong answers of `{r['artifact']}`", ""]
        lines += [
            f"- {s['id']}: {s['prediction']} (asked {s['label']}); missing {s['missing']}, extra {s['extra']}"
            for s in r["stories"]
            if not s["right"]
        ] or ["- none"]
    lines += ["", f"![answers]({args.out}.png)", ""]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines))
    plot(results, RESULTS / f"{args.out}.png")
    print("\n".join(lines))


def count(result: dict, hops: int) -> int:
    return sum(s["hops"] == hops for s in result["stories"])


def plot(results: list[dict], path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(results), 3.4), dpi=110)
    names = [Path(r["artifact"]).name for r in results]
    ax.bar([i - 0.2 for i in range(len(results))], [r["accuracy"] for r in results], width=0.4, label="answers")
    ax.bar(
        [i + 0.2 for i in range(len(results))],
        [r["facts_all_right"] or 0 for r in results],
        width=0.4,
        label="every fact read right",
    )
    ax.set_xticks(range(len(results)), names, fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
