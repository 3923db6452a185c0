"""digits-trimodal: three aligned modalities, unseen test voices, cached speech."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from autoglm_sdk.testing import DataSourceContract

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/setup.sh installs it as root)"
)


class TestDigitsTrimodal(DataSourceContract):
    plugin = "digits-trimodal"
    config = {"samples_per_digit": 6, "speeds": [165], "pitches": [50]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from autoglm_multimodal.digits import DigitsTrimodal
    from autoglm_multimodal.specs import DigitsTrimodalConfig
    from autoglm_sdk.plugin import BuildContext

    config = DigitsTrimodalConfig(
        samples_per_digit=8, speeds=[165], pitches=[50], cache_dir=str(tmp_path_factory.mktemp("speech"))
    )
    return DigitsTrimodal(config, BuildContext(seed=0)).load(), config


def test_every_sample_carries_three_modalities_of_one_digit(dataset):
    data, _ = dataset
    for samples in data.splits.values():
        for s in samples:
            assert s["image"].shape == (1, 8, 8) and 0 <= s["image"].min() and s["image"].max() <= 1
            assert s["audio"]["waveform"].ndim == 2 and s["audio"]["waveform"].shape[1] > 4000
            word = data.task.label_names[s["label"]]
            assert word in s["text"] or str(s["label"]) in s["text"]


def test_test_voices_are_never_heard_in_training(dataset):
    data, config = dataset
    heard = {s["voice"] for split in ("train", "val") for s in data.splits[split]}
    assert heard <= set(config.train_voices)
    assert {s["voice"] for s in data.splits["test"]} <= set(config.test_voices)


def test_speech_is_cached_and_deterministic(dataset):
    from autoglm_multimodal.digits import DigitsTrimodal
    from autoglm_sdk.plugin import BuildContext

    data, config = dataset
    again = DigitsTrimodal(config, BuildContext(seed=0)).load()
    assert again.fingerprint == data.fingerprint
    a, b = data.splits["test"][0]["audio"]["waveform"], again.splits["test"][0]["audio"]["waveform"]
    assert np.array_equal(a, b)


def test_overlapping_voice_lists_are_refused():
    from pydantic import ValidationError

    from autoglm_multimodal.specs import DigitsTrimodalConfig

    with pytest.raises(ValidationError, match="unheard in training"):
        DigitsTrimodalConfig(train_voices=["en+m1"], test_voices=["en+m1"])
