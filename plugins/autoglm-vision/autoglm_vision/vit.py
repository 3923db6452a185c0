"""``vit``: images -> patch states, an all-True mask, a pooled vector and an optional shared-space embedding, on timm.

Shapes (``B`` images, ``T`` patches, ``D`` the model's feature size, ``width`` for plain ViTs):
``states [B, T, D]`` (patch tokens; class and register tokens dropped), ``mask [B, T]`` (all True: every
image has the same number of patches), ``pooled [B, D]`` (timm's own pooling: the class token or the mean of
the patches, per the model's ``global_pool``), and ``embedding [B, embed_dim]`` (the pooled vector through a
linear head, L2-normalised) when ``embed_dim`` is set.

Lifecycle (see :class:`autoglm_sdk.protocols.StageLifecycle`):

* the architecture is created in ``__init__`` with weights drawn from the pipeline seed and the stage key;
* ``fit(dataset)`` loads the ``pretrained`` checkpoint file, when one is configured (never from a hub);
* there are no artifact files: the artifact's safetensors hold every weight, so a loaded artifact needs
  neither the checkpoint nor the training data.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autoglm_sdk.plugin import AutoGLMError, BuildContext, Dataset, EncoderOutput, InputError, stage_seed
from autoglm_vision.specs import ViTEncoderConfig, is_plain_vit


def create_backbone(config: ViTEncoderConfig) -> nn.Module:
    """The timm model the config names, features only (``num_classes=0``), never with hub weights."""
    import timm

    if not timm.is_model(config.model):
        raise AutoGLMError(
            f"vit: timm has no model named {config.model!r}",
            hint="see timm.list_models() for the names this timm knows",
        )
    kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": config.in_chans}
    if is_plain_vit(config.model):
        kwargs.update(
            img_size=config.image_size,
            patch_size=config.patch_size,
            embed_dim=config.width,
            depth=config.depth,
            num_heads=config.heads,
        )
        if config.pool is not None:
            kwargs.update(global_pool=config.pool, class_token=config.pool == "token")
    try:
        return timm.create_model(config.model, pretrained=False, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise AutoGLMError(f"vit: cannot create timm model {config.model!r}: {exc}") from exc


class ViTEncoder(nn.Module):
    name = "vit"
    kind = "encoder"
    modality = "image"
    Config = ViTEncoderConfig

    def __init__(self, config: ViTEncoderConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.image_size = config.image_size
        self.in_chans = config.in_chans
        # Weights depend on the pipeline seed and this stage alone, not on how much of the global random
        # stream other stages used first; two vit stages still differ.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stage_seed(ctx))
            self.backbone = create_backbone(config)
            self.num_features = int(getattr(self.backbone, "num_features"))
            self.proj = nn.Linear(self.num_features, config.embed_dim) if config.embed_dim else None
        mean, std = self._normalisation()
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)
        self.source = "random init"
        self.resized = 0
        self._warned: set[str] = set()

    def _normalisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and std the timm model was made for (0.5 each where it names none for these channels)."""
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean"), cfg.get("std")
        if mean is None or std is None or len(mean) != self.in_chans or len(std) != self.in_chans:
            mean, std = (0.5,) * self.in_chans, (0.5,) * self.in_chans
        return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    # ------------------------------------------------------------------ lifecycle

    def fit(self, dataset: Dataset) -> None:
        """Load the ``pretrained`` checkpoint file into the model, when the config names one."""
        if self.config.pretrained is not False:
            self.load_checkpoint(self.config.pretrained)

    def load_checkpoint(self, source: str) -> None:
        """Load a local .safetensors or timm-compatible state dict into the backbone (the classifier head dropped)."""
        from timm.models import load_checkpoint

        path = Path(source).expanduser()
        hint = "set model, width, depth, heads, image_size, patch_size and in_chans to the checkpoint's architecture"
        if not path.is_file():
            raise AutoGLMError(
                f"vit: pretrained checkpoint {source} does not exist or is not a file",
                hint="give the path of a local .safetensors or state-dict file; vit never downloads",
            )
        try:
            load_checkpoint(self.backbone, str(path), strict=True, filter_fn=self._filter_checkpoint)
        except RuntimeError as exc:  # missing / unexpected keys, size mismatches
            raise AutoGLMError(f"vit: checkpoint {source} does not fit {self.config.model}: {exc}", hint=hint) from exc
        except Exception as exc:  # safetensors / pickle errors on a corrupt or foreign file
            raise AutoGLMError(f"vit: cannot load pretrained checkpoint {source}: {exc}", hint=hint) from exc
        self.source = f"pretrained {source}"

    def _filter_checkpoint(self, state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
        """Drop the checkpoint's classifier (this encoder keeps features only); adapt plain-ViT checkpoints."""
        own = model.state_dict()
        classifier = str((getattr(model, "pretrained_cfg", None) or {}).get("classifier") or "head")
        state_dict = {k: v for k, v in state_dict.items() if k in own or not k.startswith(classifier + ".")}
        if is_plain_vit(self.config.model):
            from timm.models.vision_transformer import checkpoint_filter_fn

            state_dict = checkpoint_filter_fn(state_dict, model)
        return state_dict

    def report(self) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "weights": self.source,
            "parameters": sum(p.numel() for p in self.parameters()),
            "image_size": self.image_size,
            "pooled_size": self.num_features,
            "embed_dim": self.config.embed_dim,
            "resized_images": self.resized,  # since construction, every epoch counted
        }

    # ---------------------------------------------------------------- encoding

    def preprocess(self, raw: Any) -> torch.Tensor:
        """Samples (dicts with an ``image``) or bare images -> a float32 batch ``[B, in_chans, S, S]`` in [0, 1].

        An image is a numpy array or tensor ``[C, H, W]``, ``[H, W]`` (grayscale) or ``[H, W, C]`` (uint8 is
        scaled from 0..255), a PIL image, or the path of an image file.
        """
        if isinstance(raw, (str, bytes, Path, Mapping)) or not isinstance(raw, Sequence):
            raise InputError(f"vit: expected a list of samples with an `image` key, got {type(raw).__name__}")
        if not raw:
            raise InputError("vit: no samples to encode")
        images = []
        for i, item in enumerate(raw, 1):
            if isinstance(item, Mapping):
                if "image" not in item:
                    keys = ", ".join(sorted(map(str, item))) or "none"
                    raise InputError(f"vit: sample {i} has no `image` (its keys: {keys})")
                item = item["image"]
            images.append(self._image(item, i))
        return torch.stack(images)

    def _image(self, image: Any, i: int) -> torch.Tensor:
        where = f"sample {i}"
        if isinstance(image, (str, Path)):
            where = f"sample {i} ({image})"
            image = self._read(image, where)
        elif type(image).__module__.startswith("PIL."):
            image = np.asarray(image.convert("L" if self.in_chans == 1 else "RGB"))
        if isinstance(image, np.ndarray):
            if image.dtype == object or not (np.issubdtype(image.dtype, np.number) or image.dtype == np.bool_):
                raise InputError(f"vit: {where}: image array has dtype {image.dtype}, expected numbers")
            tensor = torch.from_numpy(np.array(image))  # a copy: PIL's arrays are read-only
        elif isinstance(image, torch.Tensor):
            tensor = image.detach().cpu()
        else:
            raise InputError(f"vit: {where}: expected an image array, tensor or file path, got {type(image).__name__}")
        if tensor.dtype == torch.uint8:
            tensor = tensor.float() / 255.0
        elif tensor.is_complex():
            raise InputError(f"vit: {where}: image is complex-valued")
        else:
            tensor = tensor.float()
        if tensor.dim() == 2:
            tensor = tensor.unsqueeze(0)
        elif tensor.dim() == 3:
            if tensor.size(-1) <= 4 < tensor.size(0):  # [H, W, C]
                tensor = tensor.permute(2, 0, 1)
        else:
            raise InputError(
                f"vit: {where}: expected an image [C, H, W], [H, W] or [H, W, C], got shape {tuple(tensor.shape)}"
            )
        channels = tensor.size(0)
        if channels == 1 and self.in_chans == 3:
            self._warn_once("gray", f"vit: grayscale images ({where} is the first) are repeated to 3 channels")
            tensor = tensor.expand(3, -1, -1)
        elif channels != self.in_chans:
            raise InputError(
                f"vit: {where}: image has {channels} channels, expected {self.in_chans} (shape {tuple(tensor.shape)})"
            )
        if min(tensor.shape[1:]) < 1:
            raise InputError(f"vit: {where}: image is empty (shape {tuple(tensor.shape)})")
        if not torch.isfinite(tensor).all():
            raise InputError(f"vit: {where}: image has NaN or infinite values")
        if tuple(tensor.shape[1:]) != (self.image_size, self.image_size):
            self.resized += 1
            self._warn_once(
                "resize",
                f"vit: images are resized to {self.image_size}x{self.image_size} "
                f"({where} is {tensor.size(1)}x{tensor.size(2)}); set image_size to avoid it",
            )
            tensor = F.interpolate(
                tensor.unsqueeze(0),
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            ).squeeze(0)
        return tensor.contiguous()

    def _read(self, path: str | Path, where: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(Path(path).expanduser()) as img:
                return np.asarray(img.convert("L" if self.in_chans == 1 else "RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise InputError(f"vit: {where}: cannot read the image file: {exc}") from exc

    def forward(self, batch: Any) -> EncoderOutput:
        pixels = batch if isinstance(batch, torch.Tensor) and batch.dim() == 4 else self.preprocess(batch)
        if pixels.size(1) != self.in_chans:
            raise InputError(f"vit: expected a batch [B, {self.in_chans}, H, W], got {tuple(pixels.shape)}")
        pixels = pixels.to(device=self.mean.device, dtype=self.mean.dtype)
        if self.training and self.config.augment is not None:
            pixels = self._augment(pixels)
        features = self.backbone.forward_features((pixels - self.mean) / self.std)
        pooled = self.backbone.forward_head(features, pre_logits=True)
        if features.dim() == 4:  # convolutional models: a feature map [B, C, H, W] -> one state per position
            if features.size(1) != self.num_features and features.size(-1) == self.num_features:
                features = features.permute(0, 3, 1, 2)  # NHWC models
            states = features.flatten(2).transpose(1, 2)
        else:
            states = features[:, int(getattr(self.backbone, "num_prefix_tokens", 0)) :]
        mask = torch.ones(states.shape[:2], dtype=torch.bool, device=states.device)
        embedding = F.normalize(self.proj(pooled), dim=-1) if self.proj is not None else None
        return EncoderOutput(states=states, mask=mask, pooled=pooled, embedding=embedding)

    def _augment(self, pixels: torch.Tensor) -> torch.Tensor:
        """Each image gets its own random affine jitter (drawn from torch's global generator, which the
        build seeds)."""
        from torchvision.transforms import v2

        a = self.config.augment
        steps = [
            v2.RandomAffine(degrees=a.degrees, translate=(a.translate, a.translate), scale=(1 - a.scale, 1 + a.scale))
        ]
        if a.erase:
            steps.append(v2.RandomErasing(p=a.erase, scale=(0.02, 0.2), value=0.0))
        jitter = v2.Compose(steps)
        return torch.stack([jitter(image) for image in pixels])

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=4)
