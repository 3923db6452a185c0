"""The bert encoder: tokenizer trained from data, pretrained checkpoints, pooling, truncation, bad
inputs, artifact files, and a whole build -> load round trip."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch
from pydantic import Field, ValidationError

from autoglm_sdk.plugin import (
    ArtifactError,
    AutoGLMError,
    BuildContext,
    Dataset,
    EncoderOutput,
    InputError,
    PluginConfig,
    PluginSpec,
    Port,
    PortMismatch,
    TaskSpec,
)
from autoglm_text.bert import BertEncoder, train_wordpiece
from autoglm_text.specs import BertEncoderConfig, bert

TEXT_PORT = Port("samples", frozenset({"text"}))
TASK = TaskSpec("graph", 2, ("female", "male"))
TINY = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}
NAMES = ["Anna", "Ben", "Clara", "Dmitri", "Emil", "Fatima", "Gustav", "Hassan", "Ines", "Jonas", "Kira", "Liam"]
TEXTS = [
    "Anna is Ben's mother. Ben's sister is Clara.",
    "Dmitri has a brother named Emil.",
    "Fatima, the aunt of Gustav, lives nearby. Gustav's father is Hassan.",
    "Ines met her cousin Jonas at the station.",
]


def dataset(texts: list[str] = TEXTS) -> Dataset:
    samples = [{"text": t, "label": i % 2} for i, t in enumerate(texts)]
    return Dataset(TASK, TEXT_PORT, {"train": samples, "val": samples[:2], "test": samples[:2]}, "test")


def encoder(fit: bool = True, texts: list[str] = TEXTS, seed: int = 0, **config) -> BertEncoder:
    ctx = BuildContext(inputs={"data": TEXT_PORT}, task=TASK, seed=seed, stage="encoders.text")
    instance = bert.create({**TINY, **config}, ctx)
    if fit:
        instance.fit(dataset(texts))
    return instance.eval()


def vocab_digest(tokenizer) -> str:
    return hashlib.sha256(repr(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()


# ------------------------------------------------------------------ tokenizer


def test_tokenizer_is_trained_on_the_training_texts():
    enc = encoder()
    vocab = enc.tokenizer.get_vocab()
    assert {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} <= set(vocab)
    assert enc.tokenizer.token_to_id("[PAD]") == enc.pad_id == enc.bert.config.pad_token_id
    # few texts hold fewer pieces than the target size
    assert enc.bert.config.vocab_size == enc.tokenizer.get_vocab_size() < 2000
    tokens = enc.tokenizer.encode("Gustav's mother").tokens
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "gustav" in tokens  # lower-cased, whole training word
    # continuation pieces are ordinary vocabulary, not special tokens matched verbatim in the input
    assert sorted(t.content for t in enc.tokenizer.get_added_tokens_decoder().values()) == sorted(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )


def test_tokenizer_training_is_deterministic():
    # tokenizers' trainer alone gives run-to-run different vocabularies on exactly these kinds of ties
    texts = TEXTS + [f"{a} is the cousin of {b} and the uncle of Mia" for a in NAMES for b in NAMES[:4]]
    digests = {vocab_digest(train_wordpiece(texts, 150, True)) for _ in range(4)}
    assert len(digests) == 1


def test_vocab_size_and_case_follow_the_config():
    texts = TEXTS * 3 + [" ".join(NAMES)]
    small = train_wordpiece(texts, 100, True)
    large = train_wordpiece(texts, 400, True)
    assert small.get_vocab_size() <= large.get_vocab_size()
    cased = train_wordpiece(texts, 400, False)
    assert "Anna" in cased.encode("Anna").tokens and "anna" in large.encode("Anna").tokens


# ------------------------------------------------------------------ outputs


def test_output_shapes_mask_and_zeroed_padding():
    enc = encoder()
    with torch.no_grad():
        out = enc([{"text": "Anna"}, {"text": TEXTS[2]}])
    assert isinstance(out, EncoderOutput)
    assert out.states.shape[:2] == out.mask.shape and out.pooled.shape == (2, 16) and out.mask.dtype == torch.bool
    assert out.mask[0].sum() == 3  # [CLS] anna [SEP]
    assert out.mask[1].all()
    assert (out.states[0, 3:] == 0).all()  # padding states are zeroed


def test_cls_and_mean_pooling():
    cls_enc = encoder(pooling="cls")
    mean_enc = encoder(pooling="mean")
    # same seed, stage and data: the same weights, so only the pooling differs
    assert torch.equal(cls_enc.bert.get_input_embeddings().weight, mean_enc.bert.get_input_embeddings().weight)
    samples = [{"text": "Anna"}, {"text": TEXTS[0]}]
    with torch.no_grad():
        c, m = cls_enc(samples), mean_enc(samples)
    assert torch.allclose(c.states, m.states)
    assert torch.equal(c.pooled, c.states[:, 0])
    lengths = m.mask.sum(1, keepdim=True)
    manual = torch.stack([m.states[i, : int(n)].mean(0) for i, n in enumerate(lengths)])
    assert torch.allclose(m.pooled, manual, atol=1e-6)
    assert not torch.allclose(c.pooled, m.pooled)


def test_padding_does_not_change_a_text_s_vector():
    enc = encoder(pooling="mean")
    with torch.no_grad():
        alone = enc([{"text": "Anna"}]).pooled
        padded = enc([{"text": "Anna"}, {"text": TEXTS[2]}]).pooled[:1]
    assert (alone - padded).abs().max() < 1e-5


def test_preprocess_accepts_strings_and_batches_feed_forward():
    enc = encoder()
    batch = enc.preprocess(["Anna", "Ben is here"])
    assert batch.input_ids.dtype == torch.long and batch.mask.dtype == torch.bool and batch.truncated == 0
    with torch.no_grad():
        assert torch.equal(enc(batch).pooled, enc([{"text": "Anna"}, {"text": "Ben is here"}]).pooled)


def test_weights_depend_on_seed_and_stage():
    a, b, c = encoder(seed=1), encoder(seed=1), encoder(seed=2)
    weight = lambda e: e.bert.get_input_embeddings().weight  # noqa: E731
    assert torch.equal(weight(a), weight(b)) and not torch.equal(weight(a), weight(c))


# ---------------------------------------------------------------- truncation


def test_truncation_is_counted_and_warned_once():
    long = "Anna is the mother of Ben and the aunt of Clara and the sister of Dmitri " * 3
    with pytest.warns(UserWarning, match=r"2 of 5 training texts .* max_length=8"):
        enc = encoder(texts=["Anna", "Ben is here.", "Clara", long, long], max_length=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fit warned already: batches must not warn again
        with torch.no_grad():
            out = enc([{"text": long}, {"text": "Anna"}, {"text": long}])
            enc([{"text": long}])
    assert out.states.size(1) == 8 and out.mask[0].all()
    report = enc.report()
    assert report["truncated_train_samples"] == 2 and report["truncated_encodings"] == 3
    assert report["max_length"] == 8


def test_truncation_at_run_time_warns_once_when_training_had_none():
    enc = encoder(max_length=24)  # every training text fits
    long = "Anna is the mother of Ben and the aunt of Clara " * 3
    with pytest.warns(UserWarning, match="truncated"):
        with torch.no_grad():
            enc([{"text": long}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            enc([{"text": long}, {"text": long}])
    assert enc.report()["truncated_encodings"] == 3 and enc.report()["truncated_train_samples"] == 0


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "no samples"),
        ([{"text": ""}], "sample 1: `text` is empty"),
        ([{"text": "ok"}, {"text": "   "}], "sample 2: `text` is empty"),
        ([{"text": 3}], "must be a string, got int"),
        ([{"label": 0}], "sample 1 has no `text` (its keys: label)"),
        ("just a string", "expected a list of samples"),
        (None, "expected a list of samples"),
    ],
)
def test_bad_inputs_raise_input_errors(bad, message):
    enc = encoder()
    with pytest.raises(InputError) as info:
        enc(bad)
    assert message in info.value.message


def test_forward_before_fit_says_what_to_do():
    enc = encoder(fit=False)
    with pytest.raises(AutoGLMError, match=r"call fit\(dataset\) or load an artifact first"):
        enc([{"text": "Anna"}])


def test_training_split_without_text_is_a_data_error():
    from autoglm_sdk.plugin import DataError

    enc = encoder(fit=False)
    with pytest.raises(DataError, match="training sample 2 has no `text`"):
        enc.fit(Dataset(TASK, TEXT_PORT, {"train": [{"text": "a"}, {"label": 1}]}, "x"))


def test_signature():
    ctx = BuildContext(inputs={"data": TEXT_PORT})
    port = bert.output_port(BertEncoderConfig(hidden_size=32, num_heads=4), ctx)
    assert port == Port("embeddings", frozenset({"text"}), dim=32)
    with pytest.raises(PortMismatch, match="carry text.*got samples carrying graph"):
        bert.output_port(BertEncoderConfig(), BuildContext(inputs={"data": Port("samples", frozenset({"graph"}))}))
    with pytest.raises(PortMismatch, match="got semantic graph"):
        bert.output_port(BertEncoderConfig(), BuildContext(inputs={"g": Port("semantic_graph", dim=4)}))
    hub = BertEncoderConfig(pretrained="some-org/some-bert")
    assert bert.output_port(hub, ctx).dim is None  # known only once the checkpoint is loaded


def test_config_rejects_heads_that_do_not_divide_hidden_size():
    with pytest.raises(ValidationError, match="num_heads"):
        BertEncoderConfig(hidden_size=10, num_heads=3)


# ---------------------------------------------------------------- pretrained


def save_checkpoint(directory, with_tokenizer_json: bool = True):
    """A tiny random BERT and a tokenizer trained here, saved the way save_pretrained users have them."""
    from transformers import BertConfig, BertModel

    tokenizer = train_wordpiece(TEXTS, 300, True)
    torch.manual_seed(7)
    model = BertModel(
        BertConfig(
            vocab_size=tokenizer.get_vocab_size(),
            hidden_size=24,
            num_hidden_layers=1,
            num_attention_heads=3,
            intermediate_size=48,
            max_position_embeddings=64,
            pad_token_id=tokenizer.token_to_id("[PAD]"),
        )
    )
    model.save_pretrained(directory)
    if with_tokenizer_json:
        tokenizer.save(str(directory / "tokenizer.json"))
    else:  # an older checkpoint: only the WordPiece vocabulary, in id order
        vocab = tokenizer.get_vocab(with_added_tokens=False)
        (directory / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    return model.eval(), tokenizer


@pytest.mark.parametrize("with_tokenizer_json", [True, False])
def test_pretrained_directory_gives_the_checkpoint_s_outputs(tmp_path, with_tokenizer_json):
    reference, tokenizer = save_checkpoint(tmp_path, with_tokenizer_json)
    ctx = BuildContext(inputs={"data": TEXT_PORT}, task=TASK, stage="encoders.text")
    config = BertEncoderConfig(pretrained=str(tmp_path), pooling="cls")
    assert bert.output_port(config, ctx).dim == 24  # read from config.json without importing transformers
    enc = bert.create(config, ctx)
    enc.fit(dataset())
    enc.eval()
    assert enc.report()["tokenizer"] == f"pretrained {tmp_path}" and enc.report()["hidden_size"] == 24
    assert not any(n.startswith("pooler") for n, _ in enc.bert.named_parameters())
    text = TEXTS[2]
    ids = torch.tensor([tokenizer.encode(text).ids])
    with torch.no_grad():
        expected = reference(input_ids=ids).last_hidden_state
        out = enc([{"text": text}])
    assert enc.tokenizer.encode(text).ids == ids[0].tolist()
    assert torch.allclose(out.states, expected, atol=1e-6) and torch.allclose(out.pooled, expected[:, 0], atol=1e-6)
    assert enc.report()["max_length"] == 64  # capped by the checkpoint's position embeddings

    # the artifact files carry the checkpoint's config, so loading needs neither the directory nor the hub
    again = encoder(fit=False, seed=3)
    again.load_artifact_files(enc.artifact_files())
    again.load_state_dict(enc.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(again.eval()([{"text": text}]).pooled, out.pooled)


def test_missing_pretrained_directory_is_a_clear_error(tmp_path):
    enc = encoder(fit=False, pretrained=str(tmp_path / "nope"))
    with pytest.raises(AutoGLMError, match="does not exist"):
        enc.fit(dataset())
    empty = encoder(fit=False, pretrained=str(tmp_path))
    with pytest.raises(AutoGLMError, match="cannot load pretrained model"):
        empty.fit(dataset())


# ------------------------------------------------------------ artifact files


def test_artifact_files_rebuild_the_same_encoder():
    first = encoder(pooling="mean")
    files = first.artifact_files()
    assert set(files) == {"tokenizer.json", "bert_config.json"}
    second = encoder(fit=False, pooling="mean", seed=5)
    second.load_artifact_files(files)
    state = {k: v.clone() for k, v in first.state_dict().items()}
    second.load_state_dict(state, strict=True)
    second.eval()
    samples = [{"text": t} for t in TEXTS]
    with torch.no_grad():
        assert torch.equal(first(samples).pooled, second(samples).pooled)
    assert second.report()["tokenizer"] == "read from the artifact"
    with pytest.raises(ArtifactError, match="lacks this stage's bert_config.json"):
        encoder(fit=False).load_artifact_files({"tokenizer.json": files["tokenizer.json"]})


# ------------------------------------------------------------------ end to end


class KinTextsConfig(PluginConfig):
    per_split: int = Field(12, ge=2, description="Texts in each split.")


class KinTexts:
    """Graph-level text classification: does the sentence name a female or a male relative?"""

    name = "kin-texts"
    kind = "data"
    Config = KinTextsConfig

    def __init__(self, config: KinTextsConfig, ctx: BuildContext | None = None) -> None:
        self.config, self.seed = config, ctx.seed if ctx else 0

    def load(self) -> Dataset:
        generator = torch.Generator().manual_seed(self.seed)
        relations = (("mother", "aunt", "sister"), ("father", "uncle", "brother"))
        splits = {}
        for split in ("train", "val", "test"):
            samples = []
            for i in range(self.config.per_split):
                a, b, r = torch.randint(len(NAMES), (3,), generator=generator).tolist()
                label = i % 2
                samples.append({"text": f"{NAMES[a]} is the {relations[label][r % 3]} of {NAMES[b]}.", "label": label})
            splits[split] = samples
        digest = hashlib.sha256(repr(splits).encode()).hexdigest()
        return Dataset(TASK, TEXT_PORT, splits, digest)


kin_texts = PluginSpec(
    name="kin-texts",
    kind="data",
    config=KinTextsConfig,
    factory=f"{__name__}:KinTexts",
    signature=lambda config, ctx: TEXT_PORT,
)


@pytest.mark.slow
def test_build_then_load_reproduces_predictions(tmp_path):
    pytest.importorskip("autoglm_graph")
    from autoglm_sdk import build, load, validate_manifest

    manifest = validate_manifest(
        {
            "pipeline": {"name": "kin-text", "seed": 0},
            "data": {"plugin": f"{__name__}:kin_texts"},
            "encoders": {"text": {"plugin": "bert", **TINY, "max_length": 16}},
            "decoder": {"plugin": "classifier"},
            "train": {"epochs": 2, "batch_size": 8, "lr": 0.01},
        },
        allow_import_paths=True,
    )
    result = build(manifest, tmp_path / "kin")
    stage = result.report["stages"]["encoders.text"]
    assert stage["tokenizer"].startswith("trained on 12 texts") and stage["vocab_size"] > 5
    stage_files = {p.name for p in (tmp_path / "kin" / "stages" / "encoders.text").iterdir()}
    assert stage_files == {"tokenizer.json", "bert_config.json"}
    pipeline = load(result.path, allow_import_paths=True)
    records = [{"text": "Kira is the aunt of Liam."}, {"text": "Liam is the uncle of Kira."}]
    again = load(result.path, allow_import_paths=True)
    answers = pipeline.predict(records)
    assert answers == again.predict(records)
    assert all(a["prediction"] in ("female", "male") for a in answers)
    test = pipeline.data_split("test")
    assert pipeline.predict_samples(test) == again.predict_samples(test)
    # the loaded pipeline gives the build's own test metrics back
    from autoglm_sdk.plugin import evaluate

    metrics = evaluate(pipeline.model, test, pipeline.task, 8)
    assert metrics["accuracy"] == pytest.approx(result.report["metrics"]["test"]["accuracy"])
    assert metrics["loss"] == pytest.approx(result.report["metrics"]["test"]["loss"], rel=1e-5)
