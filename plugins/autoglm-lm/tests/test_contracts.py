"""causal-lm passes the SDK's contract suite, as a random-init Llama and GPT-2, and with LoRA adapters; so does
span-extractor, with the graph's states on name tokens and without."""

from autoglm_sdk.testing import DecoderContract

SMALL = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32, "vocab_size": 300}


class TestCausalLMLlama(DecoderContract):
    plugin = "causal-lm"
    config = {**SMALL, "prompt": "{graph} {question}"}


class TestCausalLMEvidence(DecoderContract):
    """The graph's facts shown after the answer's marker: training and generation assemble two-part targets."""

    plugin = "causal-lm"
    config = {**SMALL, "prompt": "{question}", "evidence": "{graph}", "answer_weight": 1.0}


class TestCausalLMGPT2(DecoderContract):
    """Learned absolute positions: left padding must still give a sample the same positions alone and batched."""

    plugin = "causal-lm"
    config = {**SMALL, "architecture": "gpt2", "prompt": "{text}"}


class TestCausalLMLoRA(DecoderContract):
    plugin = "causal-lm"
    config = {**SMALL, "lora_rank": 4}


class TestSpanExtractor(DecoderContract):
    """An extractive decoder: the kit scores a name its text states, and generate returns a span of the text."""

    plugin = "span-extractor"
    config = {**SMALL, "answer_weight": 1.0, "dropout": 0.0}


class TestSpanExtractorTextOnly(DecoderContract):
    plugin = "span-extractor"
    config = {**SMALL, "graph_features": False, "dropout": 0.0}
