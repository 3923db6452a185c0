"""Text-task scoring: the answer a sentence states, token F1, chrF, per-group figures; kinship's target sentences."""

from autoglm_sdk.protocols import TaskSpec
from autoglm_sdk.textgen import stated_label, text_scores, token_f1

LABELS = ("son", "son-in-law", "daughter", "aunt")


def test_the_first_label_named_is_the_answer_and_a_longer_name_wins_where_both_start():
    assert stated_label("Daniel is Linda's son-in-law: Linda's daughter is Sarah.", LABELS) == 1
    assert stated_label("Irene is Mia's aunt: Mia's son is Tom.", LABELS) == 3
    assert stated_label("Irene is Mia's grandmother.", LABELS) is None
    assert stated_label("Sonja is here", LABELS) is None  # a word that merely starts with a label


def test_token_f1_is_a_bag_of_words_overlap():
    assert token_f1("a b c", "a b c") == 1.0
    assert token_f1("a b", "c d") == 0.0
    assert abs(token_f1("a b c d", "a b") - 2 / 3) < 1e-9
    assert token_f1("", "") == 1.0


def test_text_scores_per_group_and_overall():
    task = TaskSpec("graph", 4, LABELS, kind="generate", target="target")
    samples = [
        {"target": "X is Y's son.", "label": 0, "hops": 2},
        {"target": "X is Y's aunt.", "label": 3, "hops": 2},
        {"target": "X is Y's son-in-law.", "label": 1, "hops": 10},
    ]
    scores = text_scores(["X is Y's son.", "X is Y's son.", "nothing"], samples, task, "hops")
    assert scores["exact_match"] == 1 / 3 and scores["answer_accuracy"] == 1 / 3
    assert scores["accuracy"] == scores["answer_accuracy"] and scores["unstated_answers"] == 1
    assert scores["score"] == (scores["answer_accuracy"] + scores["chrf"] / 100) / 2
    assert scores["groups"]["2"] == {"accuracy": 0.5, "exact_match": 0.5, "count": 2}
    assert scores["groups"]["10"]["accuracy"] == 0.0
    perfect = text_scores([s["target"] for s in samples], samples, task)
    assert perfect["chrf"] > 99 and perfect["exact_match"] == 1.0


def test_kinship_explanations_state_the_label_and_summaries_state_every_fact():
    from autoglm_graph.kinship import KinshipDataSource
    from autoglm_graph.specs import KinshipConfig

    config = KinshipConfig(train={"hops": [1, 2, 3, 6], "stories": 40}, noise_facts=2)
    data = KinshipDataSource(config).load()
    for sample in data.splits["train"]:
        target, source = sample["query"]
        assert sample["explanation"].startswith(f"{target} is {source}'s "), sample["explanation"]
        assert stated_label(sample["explanation"], data.task.label_names) == sample["label"], sample["explanation"]
        assert sample["explanation"].count(" is ") == sample["hops"] + 1
        for relative, word, anchor in sample["chain"]:
            assert f"{anchor}'s {word} is {relative}" in sample["explanation"]
            sentences = sample["summary"].split(". ")  # a fact is summarised the way the story stated it
            assert any(
                {f"{anchor}'s", f"{relative}'s"} & set(x.split())
                and {anchor, relative} <= set(x.replace("'s", "").rstrip(".").split())
                for x in sentences
            ), (anchor, relative, sample["summary"])
        assert sample["summary"].count(".") == len(sample["facts"])
