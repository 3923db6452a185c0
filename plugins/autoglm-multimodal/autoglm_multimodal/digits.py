"""``digits-trimodal``: one digit, three modalities per sample.

* image: scikit-learn's bundled handwritten digits, ``[1, 8, 8]`` float32 in [0, 1];
* audio: the digit's word spoken by espeak-ng, ``{"waveform": [1, T], "sample_rate": R}``;
  test samples use voices training never heard;
* text: a caption in one of several phrasings ("seven", "the digit seven", "a handwritten 7").

Images are split by index, so no image is in two splits. Speech is synthesised
once per (word, voice, speed, pitch) and cached as WAV files.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np

from autoglm_multimodal.specs import DigitsTrimodalConfig
from autoglm_sdk.plugin import BuildContext, DataError, Dataset, Port, TaskSpec

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTIONS = (
    "{w}",
    "the digit {w}",
    "a handwritten {n}",
    "the number {w}",
    "a picture of a {n}",
    "digit {n}",
    "someone wrote {w}",
    "{n}",
)


def _cache_root(config: DigitsTrimodalConfig) -> Path:
    if config.cache_dir:
        return Path(config.cache_dir)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autoglm" / "digits-trimodal"


def synthesise(word: str, voice: str, speed: int, pitch: int, rate: int, root: Path) -> np.ndarray:
    """The waveform ``[1, T]`` of ``word`` at ``rate`` Hz, synthesised once and cached."""
    import soundfile

    path = root / f"{word}_{voice.replace('+', '-')}_{speed}_{pitch}_{rate}.wav"
    if not path.exists():
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            raise DataError(
                "digits-trimodal needs the espeak-ng program to synthesise speech",
                hint="apt-get install espeak-ng (scripts/setup.sh does this where it can)",
            )
        raw = path.with_suffix(".raw.wav")
        root.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), word],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not raw.exists():
            raise DataError(
                f"espeak-ng failed for voice {voice!r}: {proc.stderr.strip()[:200]}",
                hint="list voices with `espeak-ng --voices=en`",
            )
        wave, source_rate = soundfile.read(str(raw), dtype="float32")
        raw.unlink()
        wave = _resample(wave if wave.ndim == 1 else wave.mean(axis=1), source_rate, rate)
        tmp = path.with_suffix(".tmp.wav")
        soundfile.write(str(tmp), wave, rate, subtype="PCM_16")
        tmp.replace(path)  # a crash mid-write never leaves a truncated cache entry
    wave, _ = soundfile.read(str(path), dtype="float32")
    return wave[None, :]


def _resample(wave: np.ndarray, source: int, target: int) -> np.ndarray:
    """Linear-interpolation resampling; speech from espeak-ng has little energy near Nyquist."""
    if source == target:
        return wave.astype(np.float32)
    times = np.arange(int(len(wave) * target / source)) * (source / target)
    return np.interp(times, np.arange(len(wave)), wave).astype(np.float32)


class DigitsTrimodal:
    name = "digits-trimodal"
    kind = "data"
    Config = DigitsTrimodalConfig

    def __init__(self, config: DigitsTrimodalConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def load(self) -> Dataset:
        from sklearn.datasets import load_digits

        c = self.config
        digits = load_digits()
        images = (digits.images / 16.0).astype(np.float32)
        rng = random.Random(f"digits-trimodal/{self.seed}")
        root = _cache_root(c)
        splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
        digest = hashlib.sha256()
        for digit in range(10):
            indices = [int(i) for i in np.flatnonzero(digits.target == digit)]
            rng.shuffle(indices)
            indices = indices[: c.samples_per_digit]
            n_test = max(1, round(len(indices) * c.test_fraction))
            n_val = max(1, round(len(indices) * c.val_fraction))
            parts = {
                "test": indices[:n_test],
                "val": indices[n_test : n_test + n_val],
                "train": indices[n_test + n_val :],
            }
            for split, chosen in parts.items():
                voices = c.test_voices if split == "test" else c.train_voices
                for index in chosen:
                    voice, speed, pitch = rng.choice(voices), rng.choice(c.speeds), rng.choice(c.pitches)
                    caption = rng.choice(CAPTIONS).format(w=WORDS[digit], n=digit)
                    audio = synthesise(WORDS[digit], voice, speed, pitch, c.sample_rate, root)
                    splits[split].append(
                        {
                            "image": images[index][None, :, :],
                            "audio": {"waveform": audio, "sample_rate": c.sample_rate},
                            "text": caption,
                            "label": digit,
                            "voice": voice,
                        }
                    )
                    digest.update(f"{split}|{index}|{voice}|{speed}|{pitch}|{caption}\n".encode())
        for samples in splits.values():
            rng.shuffle(samples)
        return Dataset(
            task=TaskSpec("graph", 10, WORDS),
            port=Port("samples", frozenset({"image", "audio", "text"})),
            splits=splits,
            fingerprint=digest.hexdigest(),
            perturbations={"audio noise 10 dB SNR": noisy_audio, "image 3x3 occlusion": occluded_image},
        )


def noisy_audio(sample: dict, rng: random.Random, snr_db: float = 10.0) -> dict:
    """White noise at ``snr_db`` dB signal-to-noise ratio."""
    audio = dict(sample["audio"])
    wave = audio["waveform"]
    power = float((wave**2).mean())
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0.0, (power / 10 ** (snr_db / 10)) ** 0.5, wave.shape)
    audio["waveform"] = (wave + noise).astype(np.float32)
    sample["audio"] = audio
    return sample


def occluded_image(sample: dict, rng: random.Random, size: int = 3) -> dict:
    """A random ``size`` x ``size`` square of the image set to zero."""
    image = sample["image"].copy()
    top, left = rng.randrange(image.shape[1] - size + 1), rng.randrange(image.shape[2] - size + 1)
    image[:, top : top + size, left : left + size] = 0.0
    sample["image"] = image
    return sample
