"""causal-lm in pipelines: task validation, target text, a build that generates, LoRA on a local checkpoint,
generation options and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from autoglm_sdk import validate_manifest
from autoglm_sdk.plugin import AutoGLMError, DataError, InputError, ManifestError

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "vocab_size": 400}


def manifest(**decoder: object) -> dict:
    """A small kinship pipeline whose decoder writes the explanation sentence."""
    return {
        "pipeline": {"name": "gen", "task": "generate", "target_field": "explanation"},
        "data": {
            "plugin": "kinship",
            "train": {"hops": [1, 2], "stories": 120},
            "val": {"hops": [2], "stories": 16},
            "test": {"hops": [2, 3], "stories": 16},
        },
        "graph_builder": {"plugin": "text-relations"},
        "reasoner": {"plugin": "path-composer", "states": 8},
        "decoder": {
            "plugin": "causal-lm",
            "inputs": ["reasoner", "data"],
            "prompt": "{question}",
            "evidence": "{graph}",
            "graph_states": ["target"],
            "max_new_tokens": 12,
            **TINY,
            **decoder,
        },
        "train": {"epochs": 1, "lr": 0.01, "batch_size": 16},
    }


def test_a_decoder_that_cannot_do_the_task_is_refused_at_validation_naming_one_that_can():
    raw = manifest()
    raw["decoder"] = {"plugin": "classifier"}
    with pytest.raises(ManifestError) as caught:
        validate_manifest(raw)
    message = caught.value.message
    assert "pipeline.task: decoder `classifier` cannot do task `generate` (it does classify)" in message
    assert "`causal-lm`" in message and "\n" not in message


def test_causal_lm_cannot_classify():
    raw = manifest()
    raw["pipeline"]["task"] = "classify"
    with pytest.raises(ManifestError, match="decoder `causal-lm` cannot do task `classify`"):
        validate_manifest(raw)


def test_the_decoder_must_read_the_samples_and_says_how():
    from autoglm_sdk import Session

    raw = manifest()
    del raw["decoder"]["inputs"]
    with pytest.raises(AutoGLMError, match=r'decoder.inputs = \["reasoner", "data"\]'):
        Session.open(validate_manifest(raw))


def test_a_missing_target_field_names_the_field_and_the_ones_there_are():
    from autoglm_sdk import Session

    raw = manifest()
    raw["pipeline"]["target_field"] = "explanations"
    with pytest.raises(DataError) as caught:
        Session.open(validate_manifest(raw))
    assert "no text field `explanations`" in caught.value.message and "explanation" in caught.value.message


def test_a_prompt_naming_an_unknown_field_is_refused():
    raw = manifest(prompt="{story} {question}")
    with pytest.raises(ManifestError, match=r"names unknown field \{story\}"):
        validate_manifest(raw)


@pytest.mark.slow
def test_a_built_text_pipeline_generates_scores_and_reloads(tmp_path: Path):
    from autoglm_sdk import build, load

    out = build(validate_manifest(manifest()), tmp_path / "art")
    test = out.report["metrics"]["test"]
    for key in ("exact_match", "token_f1", "chrf", "answer_accuracy", "token_accuracy", "groups", "examples"):
        assert key in test, key
    assert 0 <= test["chrf"] <= 100 and set(test["groups"]) == {"2", "3"}
    pipeline = load(tmp_path / "art")
    story = "Anna is Ben's mother. Ben's sister is Clara. How is Clara related to Anna?"
    greedy = pipeline.predict(story)[0]
    assert set(greedy) >= {"generated", "prediction", "graph"} and isinstance(greedy["generated"], str)
    assert pipeline.predict(story)[0]["generated"] == greedy["generated"], "greedy decoding is deterministic"
    pieces: list[str] = []
    streamed = pipeline.predict(story, on_text=pieces.append, max_new_tokens=6)[0]["generated"]
    assert "".join(pieces).strip() == streamed and pieces[-1].endswith("\n")
    beams = pipeline.predict(story, num_beams=3, max_new_tokens=6)[0]["generated"]
    no_cache = pipeline.model.generate(
        [{"text": story}], max_new_tokens=6, use_cache=False
    )  # the KV cache changes speed, never the text
    assert no_cache == pipeline.model.generate([{"text": story}], max_new_tokens=6)
    assert isinstance(beams, str)
    with pytest.raises(InputError, match="unknown generation option 'beams'"):
        pipeline.model.generate([{"text": story}], beams=2)


def save_tiny_checkpoint(folder: Path) -> None:
    """A small Llama and a tokenizer written by save_pretrained, as a user's local checkpoint would be."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from autoglm_graph.kinship import KinshipDataSource
    from autoglm_graph.specs import KinshipConfig
    from autoglm_lm.causal_lm import train_tokenizer

    stories = KinshipDataSource(KinshipConfig(train={"hops": [2], "stories": 60})).load().splits["train"]
    tokenizer = train_tokenizer([s["text"] + " " + s["explanation"] for s in stories], 400)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.mark.slow
def test_lora_on_a_local_checkpoint_trains_adapters_and_projector_only_and_the_artifact_needs_no_checkpoint(
    tmp_path: Path,
):
    from autoglm_sdk import Session, build, load

    save_tiny_checkpoint(tmp_path / "ckpt")
    m = validate_manifest(manifest(pretrained=str(tmp_path / "ckpt"), lora_rank=4))
    model = Session.open(m).new_model()
    decoder = model.stage_objects["decoder"]
    trainable = {n for n, p in decoder.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("projector.") for n in trainable), sorted(trainable)[:5]
    assert any(n.startswith("projector.") for n in trainable) and any("lora_A" in n for n in trainable)
    assert decoder.report()["model"].startswith("pretrained ")
    before = {n: p.detach().clone() for n, p in decoder.core.named_parameters() if "lora_" not in n}
    out = build(m, tmp_path / "art")
    assert out.report["stages"]["decoder"]["lora_rank"] == 4
    shutil.rmtree(tmp_path / "ckpt")  # the artifact carries tokenizer, config and weights
    pipeline = load(tmp_path / "art")
    after = dict(pipeline.model.stage_objects["decoder"].core.named_parameters())
    frozen = [n for n in before if torch.equal(before[n], after[n].detach())]
    assert len(frozen) == len(before), "LoRA must leave the checkpoint's own weights as they were"
    answer = pipeline.predict("Anna is Ben's mother. How is Ben related to Anna?")[0]
    assert isinstance(answer["generated"], str)


def test_a_checkpoint_directory_without_a_model_is_a_one_line_error(tmp_path: Path):
    from autoglm_sdk import Session

    (tmp_path / "empty").mkdir()
    m = validate_manifest(manifest(pretrained=str(tmp_path / "empty")))
    with pytest.raises(AutoGLMError, match="causal-lm: cannot load a causal language model from"):
        Session.open(m).new_model()


@pytest.mark.slow
def test_cli_run_streams_text_and_refuses_generation_flags_for_a_classifier(tmp_path: Path):
    from helpers import run_cli

    from autoglm_sdk import build

    build(validate_manifest(manifest()), tmp_path / "gen")
    story = "Anna is Ben's mother. How is Ben related to Anna?"
    result = run_cli("run", str(tmp_path / "gen"), "--text", story, "--stream", "--max-new-tokens", "5")
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["generated"].strip() and line["generated"] in result.stderr
    classify = manifest()
    classify["pipeline"] = {"name": "cls"}
    classify["decoder"] = {"plugin": "classifier", "readout": "target"}
    build(validate_manifest(classify), tmp_path / "cls")
    result = run_cli("run", str(tmp_path / "cls"), "--text", story, "--stream")
    assert result.returncode != 0 and "generation flags need a text pipeline" in result.stderr
    assert "Traceback" not in result.stderr


def test_jsonl_carries_target_text_and_refuses_a_line_without_it(tmp_path: Path):
    from autoglm_graph.jsonl import JsonlDataSource
    from autoglm_graph.specs import JsonlConfig

    lines = [{"text": f"Story {i}. Who?", "label": "a", "answer": f"It is {i}.", "split": "train"} for i in range(3)]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    data = JsonlDataSource(JsonlConfig(path=str(path), target_field="answer")).load()
    assert [s["answer"] for s in data.splits["train"]] == ["It is 0.", "It is 1.", "It is 2."]
    path.write_text(json.dumps({"text": "Story.", "label": "a"}) + "\n")
    with pytest.raises(DataError, match=r"s.jsonl:1: `answer` \(data.target_field\) must be a non-empty string"):
        JsonlDataSource(JsonlConfig(path=str(path), target_field="answer")).load()


def test_graph_facts_list_the_query_path_first_each_pair_once():
    from autoglm_graph.specs import TextRelationsConfig
    from autoglm_graph.text_relations import TextRelationsBuilder
    from autoglm_lm.causal_lm import graph_facts
    from autoglm_sdk.plugin import BuildContext

    builder = TextRelationsBuilder(TextRelationsConfig(), BuildContext())
    story = "Tom is Anna's brother. Anna is Ben's mother. Ben's sister is Clara. How is Tom related to Clara?"
    graph = builder.graph(story)
    names = tuple(builder.config.edge_types)
    path = graph_facts(graph, names, 10, "path")
    # the path from Clara (source) to Tom (target) first, each related pair once, leading away from the source
    assert path == ["Clara sibling Ben (male).", "Ben parent Anna (female).", "Anna sibling Tom (male)."], path
    assert graph_facts(graph, names, 2, "path") == path[:2]
    assert graph_facts(graph, names, 10, "to_source")[-1] == "Clara sibling Ben (male)."
    # the text's order, each pair the way the story stated it first
    stated = graph_facts(graph, names, 10, "stated")
    assert stated == ["Anna sibling Tom (male).", "Ben parent Anna (female).", "Ben sibling Clara (female)."], stated


def test_the_answer_part_of_a_target_comes_before_the_evidence():
    """With evidence, the target's tokens up to the marker come right after the prompt, then the evidence
    (unscored), then the rest: the answer cannot attend to the evidence."""
    from autoglm_sdk import Session

    model = Session.open(validate_manifest(manifest())).new_model()
    decoder = model.stage_objects["decoder"]
    sample = {
        "text": "Anna is Ben's mother. Ben's sister is Clara. How is Clara related to Anna?",
        "explanation": "Clara is Anna's daughter: Anna's son is Ben, and Ben's sister is Clara.",
    }
    graph = model([sample]).outputs["reasoner"]
    graphs = decoder._graphs(graph, 1)
    soft = decoder._soft_prompt(graph, 1)
    _, _, gold = decoder._assemble([sample], graphs, soft, with_targets=True)
    scored = (gold[0] != -100).tolist()
    runs = [scored[0]]  # lengths of alternating unscored/scored runs
    for before, now in zip(scored, scored[1:]):
        runs += [now] if now != before else []
    assert runs == [False, True, False, True], "prompt+graph tokens, answer, evidence, reason"
    tok = decoder.tokenizer
    words = tok.decode(gold[0][gold[0] != -100].tolist(), skip_special_tokens=True)
    assert words.replace(" ", "") == sample["explanation"].replace(" ", "")
    evidence = decoder.config.evidence.format(**decoder.fields(sample, graphs[0]))
    assert evidence.startswith("Anna child Ben (male).")


def test_answer_pretraining_trains_the_reasoner_alone_keeps_the_best_try_and_freezes_it(tmp_path: Path):
    from autoglm_sdk import Session, build

    raw = manifest(answer_weight=1.0)
    raw["objectives"] = {"answer": {"plugin": "answer-pretraining", "epochs": 3, "tries": 2, "lr_scale_after": 0.0}}
    raw["train"]["lr"] = 0.05
    session = Session.open(validate_manifest(raw))
    model = session.new_model()
    reasoner = model.stage_objects["reasoner"]
    drawn = {n: p.detach().clone() for n, p in reasoner.named_parameters()}
    phases = model.objective_objects["objectives.answer"].pretrain(model, session, seed=0)
    assert [t["try"] for t in phases["tries"]] == [0, 1] and phases["kept_try"] in (0, 1)
    assert phases["best_val_accuracy"] == max(t["best_val_accuracy"] for t in phases["tries"])
    assert len(phases["history"]) == 3
    assert any(not torch.equal(drawn[n], p) for n, p in reasoner.named_parameters()), "the reasoner trained"
    out = build(validate_manifest(raw), tmp_path / "art")
    assert out.report["training"]["pretraining"]["objectives.answer"]["tries"][0]["try"] == 0
    # frozen afterwards: the language model's training left the pretrained reasoner as pretraining ended
    from autoglm_sdk import load

    pretrained = Session.open(validate_manifest(raw))
    again = pretrained.new_model()
    again.objective_objects["objectives.answer"].pretrain(again, pretrained, seed=0)
    built = load(tmp_path / "art").model.stage_objects["reasoner"]
    for name, p in again.stage_objects["reasoner"].named_parameters():
        assert torch.allclose(p, dict(built.named_parameters())[name]), name


def test_answer_pretraining_needs_an_answer_head_and_a_stage_before_the_decoder():
    from autoglm_sdk import Session

    raw = manifest()  # answer_weight 0: no head
    raw["objectives"] = {"answer": {"plugin": "answer-pretraining", "epochs": 1}}
    session = Session.open(validate_manifest(raw))
    model = session.new_model()
    with pytest.raises(AutoGLMError, match="no answer head") as caught:
        model.objective_objects["objectives.answer"].pretrain(model, session)
    assert "answer_weight" in caught.value.hint
    raw["objectives"]["answer"]["stages"] = ["reasoners"]
    with pytest.raises(AutoGLMError, match="`reasoners` is not a stage before the decoder"):
        Session.open(validate_manifest(raw))


def test_min_new_tokens_holds_the_end_back(tmp_path: Path):
    from autoglm_sdk import build, load

    build(validate_manifest(manifest(max_new_tokens=40)), tmp_path / "art")
    pipeline = load(tmp_path / "art")
    decoder = pipeline.model.stage_objects["decoder"]
    sample = [{"text": "Anna is Ben's mother. How is Ben related to Anna?"}]
    lengths: dict[bool, list[int]] = {True: [], False: []}
    for cache in (True, False):
        hook = decoder.core.register_forward_hook(
            lambda module, args, kwargs, out: lengths[cache].append(kwargs["inputs_embeds"].size(1)), with_kwargs=True
        )
        text = pipeline.model.generate(sample, min_new_tokens=20, max_new_tokens=20, use_cache=cache)[0]
        hook.remove()
        # the answer part may stop at the marker; with the evidence and the rest, 20 new tokens in all
        assert len(decoder.tokenizer(text, add_special_tokens=False)["input_ids"]) >= 15
    assert len(lengths[True]) == len(lengths[False]) == 20, "one forward pass per new token"
    # with the cache each step reads the new token alone; without, the whole sequence so far
    # (one prompt read per phase: before the answer's marker, and after it where the tiny model wrote one)
    assert len([n for n in lengths[True] if n > 1]) <= 2 and min(lengths[False]) > 1
    assert sum(lengths[False]) > 5 * sum(lengths[True])
    with pytest.raises(InputError, match="beam search runs with the KV cache only"):
        pipeline.model.generate(sample, num_beams=2, use_cache=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_a_text_pipeline_trains_and_generates_on_cuda_as_on_the_cpu(tmp_path: Path):
    from autoglm_sdk import build, load

    raw = manifest(answer_weight=1.0)
    raw["objectives"] = {"answer": {"plugin": "answer-pretraining", "epochs": 2}}
    texts = {}
    for plugin in ("cpu", "cuda"):
        report = build(validate_manifest({**raw, "backend": {"plugin": plugin}}), tmp_path / plugin).report
        assert report["backend"]["chosen"] == plugin
        pipeline = load(tmp_path / plugin)
        texts[plugin] = pipeline.model.generate(pipeline.data_split("test")[:4], use_cache=True)
        uncached = pipeline.model.generate(pipeline.data_split("test")[:4], use_cache=False)
        # the cache changes the order of float sums; on a GPU a near tie may then break the other way
        assert sum(a == b for a, b in zip(texts[plugin], uncached)) >= 3, (texts[plugin], uncached)
    assert all(isinstance(t, str) for t in texts["cuda"]) and len(texts["cuda"]) == 4
