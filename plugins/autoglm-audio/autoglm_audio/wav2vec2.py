"""``wav2vec2``: audio -> frame states, a frame mask and a masked-mean vector, with torchaudio's wav2vec 2.0.

Shapes (``B`` inputs, ``T`` frames of the longest input in the batch, ``D`` = ``width``, or 768 for
``arch="base"``): ``states [B, T, D]`` (zero at padding), ``mask [B, T]`` (True = a real frame),
``pooled [B, D]`` (the mean of the real frames) and, with ``embed_dim``, ``embedding [B, embed_dim]``
(``pooled`` through a linear head, L2-normalised).

One frame covers the conv feature extractor's receptive field (400 samples, 25 ms at 16 kHz, for the
default layers) and frames are one stride product apart (320 samples, 20 ms). A batch is zero-padded and
the true lengths go to the model, which masks padded frames in attention; with the default per-frame
layer norm in the extractor, an input gives the same vector alone as inside a padded batch. A group-norm
extractor (``extractor_norm="group_norm"``, and ``arch="base"``) normalises over time, so there each input
goes through the extractor on its own and only the transformer runs batched.

With ``normalize`` (the default), each input is scaled to zero mean and unit variance before the extractor.

Lifecycle (see :class:`autoglm_sdk.protocols.StageLifecycle`):

* ``fit(dataset)`` loads the ``pretrained`` checkpoint, if one is configured (nothing is learned from the
  data here); without ``fit`` the first forward loads it;
* ``load_artifact_files(files)`` marks the weights as coming from the artifact, so a loaded artifact never
  needs the checkpoint file;
* ``report()`` gives the parameter count and how many inputs were read from files, mixed to mono,
  resampled and truncated.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autoglm_audio.specs import Wav2Vec2Config, min_samples
from autoglm_sdk.plugin import (
    AutoGLMError,
    BuildContext,
    Dataset,
    EncoderOutput,
    InputError,
    ProjectionHead,
    stage_seed,
)

COUNTERS = ("inputs", "files_read", "mixed_to_mono", "resampled", "truncated")


@dataclass
class AudioBatch:
    """What :meth:`Wav2Vec2Encoder.preprocess` makes of a list of inputs: zero-padded mono waveforms
    ``[B, samples]`` at the model rate, in the model's dtype and on its device, and their true lengths."""

    waveforms: torch.Tensor
    lengths: torch.Tensor


class Wav2Vec2Encoder(nn.Module):
    name = "wav2vec2"
    kind = "encoder"
    modality = "audio"
    Config = Wav2Vec2Config

    def __init__(self, config: Wav2Vec2Config, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        # the weights depend on the pipeline seed and this stage alone, not on what other stages drew before
        self.init_seed = stage_seed(ctx)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            self.model = self._new_model()
            self.head = ProjectionHead(config.state_width(), config.embed_dim) if config.embed_dim else None
        self.per_input_extractor = config.arch == "base" or config.extractor_norm == "group_norm"
        self.sample_rate = config.sample_rate
        self.min_samples = min_samples(config.layers())
        self.max_samples = int(config.max_seconds * config.sample_rate)
        self.counts = dict.fromkeys(COUNTERS, 0)
        self._warned: set[str] = set()
        self._pretrained_pending = config.pretrained is not None
        self.source = "random initialisation"

    # ------------------------------------------------------------------ lifecycle

    def fit(self, dataset: Dataset) -> None:
        """Load the pretrained checkpoint, if any; the data itself is not needed."""
        self._load_pretrained_once()

    def load_artifact_files(self, files: dict[str, bytes]) -> None:
        """An artifact's weights follow, so the checkpoint is not read (and need not exist any more)."""
        self._pretrained_pending = False
        self.source = "read from the artifact"

    def report(self) -> dict[str, Any]:
        return {
            "weights": self.source,
            "arch": self.config.arch,
            "parameters": sum(p.numel() for p in self.parameters()),
            "sample_rate": self.sample_rate,
            "max_seconds": self.config.max_seconds,
            **self.counts,  # since construction, every epoch counted
        }

    # ---------------------------------------------------------------- encoding

    def preprocess(self, raw: Any) -> AudioBatch:
        """Read, check and pad a list of audio inputs.

        Each item is a sample with an ``audio`` key, or the audio itself, which is one of:

        * ``{"waveform": array or tensor [channels, time] or [time], "sample_rate": int}``;
        * a bare array or tensor ``[channels, time]`` or ``[time]``, which is assumed to be at the model's
          ``sample_rate`` already (nothing tells otherwise, so it is not resampled);
        * a path (``str`` or ``os.PathLike``) to a file soundfile reads (WAV, FLAC, OGG, ...).

        Float samples are expected in [-1, 1]; integer PCM is scaled by its type's range. Several channels
        are averaged to mono, other rates resampled with ``torchaudio.functional.resample`` and audio
        longer than ``max_seconds`` truncated; each of these is counted and warned about once. Empty or
        too short audio, NaN or infinite values, more than 2 dimensions and unreadable files raise
        :class:`~autoglm_sdk.errors.InputError` naming the sample (1-based) or the file.
        """
        if isinstance(raw, (str, bytes, os.PathLike, Mapping)) or not isinstance(raw, Sequence):
            raise InputError(f"wav2vec2: expected a list of samples with an `audio` key, got {type(raw).__name__}")
        if not raw:
            raise InputError("wav2vec2: no samples to encode")
        waves = [self._one(item, i) for i, item in enumerate(raw, 1)]
        self.counts["inputs"] += len(waves)
        lengths = torch.tensor([w.numel() for w in waves], dtype=torch.long)
        padded = torch.zeros(len(waves), int(lengths.max()), dtype=torch.float32)
        for row, wave in zip(padded, waves):
            row[: wave.numel()] = wave
        parameter = next(self.model.parameters())
        return AudioBatch(padded.to(device=parameter.device, dtype=parameter.dtype), lengths.to(parameter.device))

    def forward(self, batch: Any) -> EncoderOutput:
        if not isinstance(batch, AudioBatch):
            batch = self.preprocess(batch)
        self._load_pretrained_once()
        if self.training and self.config.augment is not None:
            batch = self._add_noise(batch)
        features, lengths = self._features(batch)
        states = self.model.encoder(features, lengths)
        mask = torch.arange(states.size(1), device=states.device)[None, :] < lengths[:, None]
        keep = mask.unsqueeze(-1).to(states.dtype)
        states = states * keep  # padded frames hold what they attended to; zero them for consumers that ignore the mask
        pooled = states.sum(1) / keep.sum(1).clamp_min(1)
        embedding = self.head(pooled) if self.head is not None else None
        return EncoderOutput(states=states, mask=mask, pooled=pooled, embedding=embedding)

    # ----------------------------------------------------------------- helpers

    def _add_noise(self, batch: AudioBatch) -> AudioBatch:
        """White noise at a random SNR on a random share of the inputs, over their real samples only (drawn
        from torch's global generator, which the build seeds)."""
        a = self.config.augment
        waves = batch.waveforms.clone()
        low, high = a.snr_db
        for row, length in zip(waves, batch.lengths.tolist()):
            if float(torch.rand(())) >= a.probability:
                continue
            signal = row[:length]
            snr = low + (high - low) * float(torch.rand(()))
            power = signal.pow(2).mean().clamp_min(1e-12)
            noisy = signal + torch.randn_like(signal) * (power / 10 ** (snr / 10)).sqrt()
            if self.config.normalize:  # as a noisy recording would be at inference
                noisy = (noisy - noisy.mean()) / (noisy.std(correction=0) + 1e-7)
            row[:length] = noisy
        return AudioBatch(waves, batch.lengths)

    def _features(self, batch: AudioBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv features ``[B, frames, C]`` and the number of real frames of each input."""
        extractor = self.model.feature_extractor
        if not self.per_input_extractor:
            return extractor(batch.waveforms, batch.lengths)
        # group norm normalises each channel over time, padding included: run each input alone
        outs = [extractor(batch.waveforms[i : i + 1, : int(n)], None)[0][0] for i, n in enumerate(batch.lengths)]
        lengths = torch.tensor([o.size(0) for o in outs], device=batch.lengths.device)
        return nn.utils.rnn.pad_sequence(outs, batch_first=True), lengths

    def _one(self, item: Any, i: int) -> torch.Tensor:
        """One input as a checked mono float32 waveform at the model rate, on the CPU."""
        where = f"sample {i}"
        audio = item
        if isinstance(item, Mapping) and "waveform" not in item:
            if "audio" not in item:
                keys = ", ".join(sorted(map(str, item))) or "none"
                raise InputError(f"wav2vec2: {where} has no `audio` (its keys: {keys})")
            audio = item["audio"]
        if isinstance(audio, (str, os.PathLike)):
            wave, rate = self._read_file(Path(audio), where)
            where = f"{where} ({audio})"
        elif isinstance(audio, Mapping):
            if "waveform" not in audio:
                keys = ", ".join(sorted(map(str, audio))) or "none"
                raise InputError(f"wav2vec2: {where}: audio dict has no `waveform` (its keys: {keys})")
            if "sample_rate" not in audio:
                raise InputError(
                    f"wav2vec2: {where}: audio dict has no `sample_rate`; "
                    "pass a bare array for audio already at the model rate"
                )
            rate = audio["sample_rate"]
            if isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or rate <= 0:
                raise InputError(f"wav2vec2: {where}: `sample_rate` must be a positive integer, got {rate!r}")
            wave = self._as_tensor(audio["waveform"], where)
            rate = int(rate)
        else:
            wave, rate = self._as_tensor(audio, where), self.sample_rate
        return self._coerce(wave, rate, where)

    def _read_file(self, path: Path, where: str) -> tuple[torch.Tensor, int]:
        import soundfile

        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # [time, channels]
        except Exception as exc:  # soundfile raises LibsndfileError (a RuntimeError), OSError, TypeError...
            raise InputError(f"wav2vec2: {where}: cannot read audio file {path}: {exc}") from exc
        self.counts["files_read"] += 1
        return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)

    @staticmethod
    def _as_tensor(value: Any, where: str) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            wave = value.detach().cpu()
        elif isinstance(value, (np.ndarray, list, tuple)):
            try:
                wave = torch.from_numpy(np.asarray(value))
            except (TypeError, ValueError) as exc:
                raise InputError(f"wav2vec2: {where}: waveform is not a numeric array ({exc})") from exc
        else:
            raise InputError(
                f"wav2vec2: {where}: expected a waveform array, an audio dict or a file path, "
                f"got {type(value).__name__}"
            )
        if wave.dtype == torch.bool or wave.is_complex():
            raise InputError(f"wav2vec2: {where}: waveform must be real numbers, got {wave.dtype}")
        if not wave.is_floating_point():  # integer PCM: scale by the type's range
            wave = wave.float() / float(torch.iinfo(wave.dtype).max + 1)
        return wave.float()

    def _coerce(self, wave: torch.Tensor, rate: int, where: str) -> torch.Tensor:
        if wave.dim() not in (1, 2):
            raise InputError(
                f"wav2vec2: {where}: expected a waveform [channels, time] or [time], "
                f"got {wave.dim()} dimensions {tuple(wave.shape)}"
            )
        if wave.numel() == 0:
            raise InputError(f"wav2vec2: {where}: the audio is empty (shape {tuple(wave.shape)})")
        if wave.dim() == 2 and wave.size(0) > wave.size(1):
            raise InputError(
                f"wav2vec2: {where}: waveform shape {tuple(wave.shape)} has more channels than "
                "samples; expected [channels, time] (transpose a [time, channels] array)"
            )
        if not torch.isfinite(wave).all():
            raise InputError(f"wav2vec2: {where}: the audio contains NaN or infinite values")
        if wave.dim() == 2:
            if wave.size(0) > 1:
                self.counts["mixed_to_mono"] += 1
                self._warn("mono", f"wav2vec2: {where} has {wave.size(0)} channels; mixing them down to mono")
            wave = wave.mean(0)
        if rate != self.sample_rate:
            import torchaudio.functional as AF

            self.counts["resampled"] += 1
            self._warn("rate", f"wav2vec2: {where} is at {rate} Hz; resampling it to the model's {self.sample_rate} Hz")
            # a little beyond the limit is enough; the exact cut happens at the model rate below
            keep = math.ceil((self.max_samples + 1) * rate / self.sample_rate) + 64
            wave = AF.resample(wave[:keep], rate, self.sample_rate)
        if wave.numel() > self.max_samples:
            self.counts["truncated"] += 1
            seconds = wave.numel() / self.sample_rate
            self._warn(
                "truncate",
                f"wav2vec2: {where} lasts {seconds:.2f} s; truncating it to "
                f"max_seconds={self.config.max_seconds} (raise max_seconds to keep longer audio)",
            )
            wave = wave[: self.max_samples]
        if wave.numel() < self.min_samples:
            raise InputError(
                f"wav2vec2: {where}: {wave.numel()} samples at {self.sample_rate} Hz is too short; "
                f"one frame needs at least {self.min_samples} "
                f"({1000 * self.min_samples / self.sample_rate:.1f} ms)"
            )
        if self.config.normalize:  # over the real samples only, so padding in a batch changes nothing
            wave = (wave - wave.mean()) / (wave.std(correction=0) + 1e-7)
        return wave.contiguous()

    def _new_model(self) -> nn.Module:
        import torchaudio.models as AM

        c = self.config
        dropouts = dict(
            encoder_projection_dropout=c.projection_dropout,
            encoder_attention_dropout=c.attention_dropout,
            encoder_ff_interm_dropout=c.ff_dropout,
            encoder_dropout=c.dropout,
            encoder_layer_drop=c.layer_drop,
        )
        if c.arch == "base":
            return AM.wav2vec2_base(**dropouts)
        layer_norm = c.extractor_norm == "layer_norm"
        return AM.wav2vec2_model(
            extractor_mode=c.extractor_norm,
            extractor_conv_layer_config=c.layers(),
            extractor_conv_bias=layer_norm,  # as torchaudio's layer-norm (large-lv60k) and group-norm (base) models
            encoder_embed_dim=c.width,
            encoder_pos_conv_kernel=c.pos_conv_kernel,
            encoder_pos_conv_groups=c.pos_conv_groups,
            encoder_num_layers=c.depth,
            encoder_num_heads=c.heads,
            encoder_ff_interm_features=c.ff,
            encoder_layer_norm_first=layer_norm,
            aux_num_out=None,
            **dropouts,
        )

    def _load_pretrained_once(self) -> None:
        if not self._pretrained_pending:
            return
        from safetensors.torch import load_file

        source = self.config.pretrained
        path = Path(source).expanduser()
        hint = "pass a .safetensors file saved from Wav2Vec2Model.state_dict() with this config's architecture"
        if not path.is_file():
            raise AutoGLMError(f"wav2vec2: pretrained checkpoint {source} does not exist or is not a file", hint=hint)
        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own SafetensorsError on a malformed file
            raise AutoGLMError(f"wav2vec2: cannot read pretrained checkpoint {source}: {exc}", hint=hint) from exc
        head_state: dict[str, torch.Tensor] = {}
        if any(k.startswith("model.") for k in state):  # this encoder's own state dict
            head_state = {k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")}
            state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
        try:
            self.model.load_state_dict(state, strict=True)
            if head_state and self.head is not None:
                self.head.load_state_dict(head_state, strict=True)
        except RuntimeError as exc:
            detail = str(exc).strip().splitlines()
            summary = "; ".join(line.strip() for line in detail[1:4]) or detail[0]
            raise AutoGLMError(
                f"wav2vec2: pretrained checkpoint {source} does not match the configured architecture: {summary[:600]}",
                hint=hint,
            ) from exc
        self._pretrained_pending = False
        self.source = f"pretrained {source}"

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"{message} (warned once; counted in the stage report)", UserWarning, stacklevel=4)
