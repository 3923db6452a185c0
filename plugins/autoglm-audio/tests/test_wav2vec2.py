"""The wav2vec2 encoder: shapes and padding, local checkpoints, file input with mixing and resampling,
truncation, bad inputs, the projection head, the signature and the config."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from autoglm_audio.specs import Wav2Vec2Config, min_samples, wav2vec2
from autoglm_audio.wav2vec2 import AudioBatch, Wav2Vec2Encoder
from autoglm_sdk.plugin import AutoGLMError, BuildContext, EncoderOutput, InputError, Port, PortMismatch

RATE = 16_000
AUDIO_PORT = Port("samples", frozenset({"audio"}))
TINY = {
    "conv_layers": [(8, 10, 5), (8, 3, 2), (8, 3, 2), (8, 3, 2), (8, 2, 2)],
    "width": 16,
    "depth": 1,
    "heads": 2,
    "ff": 32,
    "pos_conv_kernel": 8,
    "pos_conv_groups": 2,
}


def encoder(seed: int = 0, **config) -> Wav2Vec2Encoder:
    ctx = BuildContext(inputs={"data": AUDIO_PORT}, seed=seed, stage="encoders.audio")
    return wav2vec2.create({**TINY, **config}, ctx).eval()


def tone(seconds: float, rate: int = RATE, freq: float = 220.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    t = np.arange(int(rate * seconds), dtype=np.float32) / rate
    noise = np.random.default_rng(seed).standard_normal((channels, t.size)).astype(np.float32)
    return (0.5 * np.sin(2 * np.pi * freq * t)[None, :] + 0.05 * noise).astype(np.float32)


def sample(seconds: float, rate: int = RATE, **kwargs) -> dict:
    return {"audio": {"waveform": tone(seconds, rate, **kwargs), "sample_rate": rate}, "label": 0}


def frames(num_samples: int, layers=TINY["conv_layers"]) -> int:
    for _, kernel, stride in layers:
        num_samples = (num_samples - kernel) // stride + 1
    return num_samples


def run(enc, inputs) -> EncoderOutput:
    with torch.no_grad():
        return enc(inputs)


# ------------------------------------------------------------------ outputs


def test_output_shapes_mask_and_zeroed_padding():
    enc = encoder()
    out = run(enc, [sample(0.3), sample(0.5, freq=440.0)])
    short, long = frames(4800), frames(8000)
    assert out.states.shape == (2, long, 16) and out.pooled.shape == (2, 16) and out.embedding is None
    assert out.mask.dtype == torch.bool and out.mask.sum(1).tolist() == [short, long]
    assert (out.states[0, short:] == 0).all()
    manual = out.states[0, :short].mean(0)
    assert torch.allclose(out.pooled[0], manual, atol=1e-6)


@pytest.mark.parametrize("norm", ["layer_norm", "group_norm"])
def test_padding_does_not_change_an_input_s_vector(norm):
    enc = encoder(extractor_norm=norm)
    alone = run(enc, [sample(0.3)]).pooled
    padded = run(enc, [sample(0.3), sample(1.1, freq=330.0)]).pooled[:1]
    assert (alone - padded).abs().max() < 1e-5


def test_preprocess_forms_agree():
    enc = encoder()
    wave = tone(0.4)
    batch = enc.preprocess([{"audio": {"waveform": wave, "sample_rate": RATE}}, wave, torch.from_numpy(wave[0])])
    assert isinstance(batch, AudioBatch) and batch.waveforms.shape == (3, 6400) and batch.lengths.tolist() == [6400] * 3
    out = run(enc, batch)
    assert torch.allclose(out.pooled[0], out.pooled[1]) and torch.allclose(out.pooled[0], out.pooled[2])
    pcm = (wave * 32767).astype(np.int16)  # integer PCM is scaled into [-1, 1]
    assert torch.allclose(run(enc, [pcm]).pooled, out.pooled[:1], atol=1e-3)


def test_weights_depend_on_seed_and_stage_and_report():
    a, b, c = encoder(seed=1), encoder(seed=1), encoder(seed=2)
    first = lambda e: e.model.feature_extractor.conv_layers[0].conv.weight  # noqa: E731
    assert torch.equal(first(a), first(b)) and not torch.equal(first(a), first(c))
    run(a, [sample(0.3)])
    report = a.report()
    assert report["parameters"] == sum(p.numel() for p in a.parameters()) > 0
    assert report["inputs"] == 1 and report["weights"] == "random initialisation"
    assert report["resampled"] == report["mixed_to_mono"] == report["truncated"] == 0


def test_embedding_head_is_unit_norm_and_trained():
    enc = encoder(embed_dim=8)
    enc.train()
    out = enc([sample(0.3), sample(0.5, freq=440.0)])
    assert out.embedding.shape == (2, 8)
    assert torch.allclose(out.embedding.norm(dim=-1), torch.ones(2), atol=1e-5)
    out.embedding.sum().backward()
    assert enc.head.proj.weight.grad is not None and enc.head.proj.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- checkpoints


def test_local_checkpoint_round_trip(tmp_path):
    from safetensors.torch import save_file, save_model

    reference = encoder(seed=1)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in reference.model.state_dict().items()}, str(path))
    inputs = [sample(0.3), sample(0.6, freq=330.0)]
    expected = run(reference, inputs)

    fresh = encoder(seed=2, pretrained=str(path))
    conv = lambda e: e.model.feature_extractor.conv_layers[0].conv.weight  # noqa: E731
    assert not torch.equal(conv(fresh), conv(reference))
    fresh.fit(None)  # as a build does: the checkpoint is loaded here
    assert fresh.report()["weights"] == f"pretrained {path}"
    out = run(fresh, inputs)
    assert torch.equal(out.states, expected.states) and torch.equal(out.pooled, expected.pooled)

    lazy = encoder(seed=3, pretrained=str(path))  # without fit, the first forward loads it
    assert torch.equal(run(lazy, inputs).pooled, expected.pooled)

    # this encoder's own state dict (model. and head. keys), as `autoglm build` writes it
    with_head = encoder(seed=4, embed_dim=8)
    whole = tmp_path / "whole.safetensors"
    save_model(with_head, str(whole))
    again = encoder(seed=5, embed_dim=8, pretrained=str(whole))
    assert torch.equal(run(again, inputs).embedding, run(with_head, inputs).embedding)

    # a loaded artifact brings its own weights: the checkpoint is not read, and may be gone
    path.unlink()
    loaded = encoder(seed=6, pretrained=str(path))
    loaded.load_artifact_files({})
    loaded.load_state_dict(reference.state_dict(), strict=True)
    assert torch.equal(run(loaded, inputs).pooled, expected.pooled)


def test_bad_checkpoints_are_clear_errors(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(AutoGLMError, match="does not exist"):
        encoder(pretrained=str(tmp_path / "nope.safetensors")).fit(None)
    other = encoder(width=32, ff=16)
    path = tmp_path / "wider.safetensors"
    save_file({k: v.contiguous() for k, v in other.model.state_dict().items()}, str(path))
    with pytest.raises(AutoGLMError, match="does not match the configured architecture"):
        encoder(pretrained=str(path)).fit(None)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(AutoGLMError, match="cannot read pretrained checkpoint"):
        encoder(pretrained=str(junk)).fit(None)


# ------------------------------------------------------------ files, coercions


def test_stereo_8khz_wav_file_is_mixed_and_resampled(tmp_path):
    import soundfile
    import torchaudio.functional as AF

    stereo = np.concatenate([tone(0.5, 8000, seed=1), tone(0.5, 8000, freq=300.0, seed=2)])  # [2, 4000]
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), stereo.T, 8000, subtype="FLOAT")
    enc = encoder()
    with pytest.warns(UserWarning) as record:
        out = run(enc, [{"audio": str(path)}, str(path)])
    messages = " | ".join(str(w.message) for w in record)
    assert "2 channels" in messages and "mono" in messages and "8000 Hz" in messages and "16000 Hz" in messages
    assert len(record) == 2  # once each, though two inputs needed both
    expected = AF.resample(torch.from_numpy(stereo).mean(0), 8000, RATE)
    assert torch.allclose(run(enc, [expected.numpy()]).pooled, out.pooled[:1], atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(enc, [path])  # a pathlib.Path works too, and does not warn again
    report = enc.report()
    assert report["files_read"] == 3 and report["mixed_to_mono"] == 3 and report["resampled"] == 3


def test_long_audio_is_truncated_with_one_warning():
    enc = encoder(max_seconds=0.5)
    with pytest.warns(UserWarning, match=r"lasts 1\.20 s; truncating it to max_seconds=0\.5"):
        out = run(enc, [sample(1.2)])
    assert out.mask.sum().item() == frames(8000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(enc, [sample(2.0), sample(0.3)])
    assert enc.report()["truncated"] == 2
    # resampled audio is cut at the model rate
    with pytest.warns(UserWarning, match="resampling"):
        resampled = run(enc, [sample(1.0, rate=22_050)])
    assert resampled.mask.sum().item() == frames(8000)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "no samples"),
        (None, "expected a list of samples"),
        ({"audio": np.zeros(16000, np.float32)}, "expected a list of samples"),
        ([{"label": 0}], "sample 1 has no `audio` (its keys: label)"),
        ([sample(0.3), {"audio": np.zeros((1, 0), np.float32)}], "sample 2: the audio is empty"),
        ([{"audio": np.full(8000, np.nan, np.float32)}], "sample 1: the audio contains NaN"),
        ([np.zeros((1, 2, 8000), np.float32)], "sample 1: expected a waveform [channels, time] or [time], got 3"),
        ([np.zeros((8000, 2), np.float32)], "more channels than samples"),
        ([np.zeros(100, np.float32)], "sample 1: 100 samples at 16000 Hz is too short"),
        ([{"audio": {"waveform": tone(0.3)}}], "sample 1: audio dict has no `sample_rate`"),
        ([{"audio": {"waveform": tone(0.3), "sample_rate": 0}}], "`sample_rate` must be a positive integer"),
        ([{"audio": 3}], "sample 1: expected a waveform array, an audio dict or a file path, got int"),
    ],
)
def test_bad_inputs_raise_input_errors(bad, message):
    with pytest.raises(InputError) as info:
        encoder()(bad)
    assert message in info.value.message


def test_unreadable_files_name_the_path(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    for path in (text, tmp_path / "missing.flac"):
        with pytest.raises(InputError) as info:
            encoder()([sample(0.3), {"audio": str(path)}])
        assert "sample 2" in info.value.message and str(path) in info.value.message


# ---------------------------------------------------------- signature, config


def test_signature():
    ctx = BuildContext(inputs={"data": AUDIO_PORT})
    port = wav2vec2.output_port(Wav2Vec2Config(width=32, heads=4), ctx)
    assert port == Port("embeddings", frozenset({"audio"}), dim=32)
    assert wav2vec2.output_port(Wav2Vec2Config(arch="base"), ctx).dim == 768
    with pytest.raises(PortMismatch, match="carry audio.*got samples carrying text"):
        wav2vec2.output_port(Wav2Vec2Config(), BuildContext(inputs={"data": Port("samples", frozenset({"text"}))}))
    with pytest.raises(PortMismatch, match="got semantic graph"):
        wav2vec2.output_port(Wav2Vec2Config(), BuildContext(inputs={"g": Port("semantic_graph", dim=4)}))


def test_config_checks():
    default = Wav2Vec2Config()
    assert default.sample_rate == 16_000 and default.max_seconds == 4.0 and default.embed_dim is None
    stride = 1
    for _, _, s in default.conv_layers:
        stride *= s
    assert stride == 320 and min_samples(default.layers()) == 400
    with pytest.raises(ValidationError, match="heads"):
        Wav2Vec2Config(width=10, heads=3)
    with pytest.raises(ValidationError, match="pos_conv_groups"):
        Wav2Vec2Config(width=18, heads=2, pos_conv_groups=4)
    with pytest.raises(ValidationError, match="max_seconds"):
        Wav2Vec2Config(max_seconds=0.01)
    with pytest.raises(ValidationError, match="positive"):
        Wav2Vec2Config(conv_layers=[(8, 0, 2)])


def test_base_architecture_forward():
    enc = encoder(arch="base")  # group-norm extractor: each input goes through it alone
    out = run(enc, [sample(0.25), sample(0.5, freq=330.0)])
    assert out.pooled.shape == (2, 768) and out.mask.sum(1).tolist() == [
        frames(4000, enc.config.layers()),
        frames(8000, enc.config.layers()),
    ]
    assert (run(enc, [sample(0.25)]).pooled - out.pooled[:1]).abs().max() < 1e-5


def test_normalize_makes_loudness_irrelevant_and_can_be_turned_off():
    quiet, loud = sample(0.3), sample(0.3)
    loud["audio"]["waveform"] = loud["audio"]["waveform"] * 20
    enc = encoder()
    assert torch.allclose(run(enc, [quiet]).pooled, run(enc, [loud]).pooled, atol=1e-4)
    raw = encoder(normalize=False)
    assert not torch.allclose(run(raw, [quiet]).pooled, run(raw, [loud]).pooled, atol=1e-3)
    batch = enc.preprocess([quiet])
    real = batch.waveforms[0]
    assert abs(float(real.mean())) < 1e-4 and abs(float(real.std(correction=0)) - 1) < 1e-3


def test_noise_augmentation_only_in_training_and_only_on_real_samples():
    enc = encoder(augment={"probability": 1.0, "snr_db": [10, 10]})
    inputs = [sample(0.3), sample(0.2, seed=1)]
    batch = enc.preprocess(inputs)
    torch.manual_seed(0)
    noisy = enc._add_noise(batch)
    short = int(batch.lengths[1])
    assert torch.equal(noisy.waveforms[1, short:], batch.waveforms[1, short:])  # padding stays zero
    changed = noisy.waveforms[0] - batch.waveforms[0]
    assert float(changed.abs().mean()) > 0.05
    assert torch.allclose(run(enc, inputs).pooled, run(enc, inputs).pooled)  # eval: no noise, deterministic
    enc.train()
    torch.manual_seed(1)
    first = enc(inputs).pooled
    torch.manual_seed(2)
    assert not torch.allclose(first, enc(inputs).pooled)
    with pytest.raises(ValidationError, match="snr_db must be"):
        Wav2Vec2Config(augment={"snr_db": [30, 5]})
