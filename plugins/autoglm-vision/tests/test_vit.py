"""The vit encoder: outputs and pooling, local checkpoints, image files, input coercions, bad inputs, the
projection head and the signature."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from autoglm_sdk.plugin import (
    AutoGLMError,
    BuildContext,
    Dataset,
    EncoderOutput,
    InputError,
    Port,
    PortMismatch,
    TaskSpec,
)
from autoglm_vision.specs import ViTEncoderConfig, is_plain_vit, vit
from autoglm_vision.vit import ViTEncoder, create_backbone

IMAGE_PORT = Port("samples", frozenset({"image"}))
TASK = TaskSpec("graph", 2, ("dark", "light"))
TINY = {"width": 16, "depth": 1, "heads": 2, "image_size": 16, "patch_size": 4}


def images(count: int = 3, seed: int = 0, size: int = 16) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((3, size, size), dtype=np.float32) for _ in range(count)]


def dataset() -> Dataset:
    samples = [{"image": im, "label": i % 2} for i, im in enumerate(images(4))]
    return Dataset(TASK, IMAGE_PORT, {"train": samples, "val": samples[:2], "test": samples[:2]}, "test")


def encoder(fit: bool = True, seed: int = 0, **config) -> ViTEncoder:
    ctx = BuildContext(inputs={"data": IMAGE_PORT}, task=TASK, seed=seed, stage="encoders.image")
    instance = vit.create({**TINY, **config}, ctx)
    if fit:
        instance.fit(dataset())
    return instance.eval()


def encode(enc: ViTEncoder, batch) -> EncoderOutput:
    with torch.no_grad():
        return enc(batch)


# ------------------------------------------------------------------ outputs


def test_output_shapes_drop_the_class_token_and_pool_it():
    enc = encoder()
    out = encode(enc, [{"image": im} for im in images(2)])
    assert out.states.shape == (2, 16, 16)  # (16 / 4) ** 2 patches, class token dropped
    assert out.mask.dtype == torch.bool and out.mask.shape == (2, 16) and out.mask.all()
    assert out.pooled.shape == (2, 16) and out.embedding is None
    pixels = (enc.preprocess(images(2)) - 0.5) / 0.5
    with torch.no_grad():
        tokens = enc.backbone.forward_features(pixels)
    assert torch.allclose(out.pooled, tokens[:, 0]) and torch.allclose(out.states, tokens[:, 1:])


def test_gap_model_pools_the_mean_of_its_patches():
    enc = encoder(model="vit_medium_patch16_gap_256")
    out = encode(enc, images(2))
    assert out.states.shape == (2, 16, 16)  # no class token to drop
    assert torch.allclose(out.pooled, enc.backbone.fc_norm(out.states.mean(1)), atol=1e-6)


def test_weights_depend_on_seed_and_stage_not_the_global_stream():
    torch.manual_seed(123)
    a = encoder(seed=1)
    torch.rand(10)
    b, c = encoder(seed=1), encoder(seed=2)
    weight = lambda e: e.backbone.patch_embed.proj.weight  # noqa: E731
    assert torch.equal(weight(a), weight(b)) and not torch.equal(weight(a), weight(c))


def test_report():
    enc = encoder()
    with pytest.warns(UserWarning, match="resized"):
        encode(enc, images(1, size=20))
    report = enc.report()
    assert report["parameters"] == sum(p.numel() for p in enc.parameters()) > 0
    assert report["image_size"] == 16 and report["weights"] == "random init" and report["resized_images"] == 1


def test_size_overrides_apply_to_plain_vits_only():
    assert is_plain_vit("vit_tiny_patch16_224") and is_plain_vit("vit_small_patch16_224.augreg_in21k")
    assert not is_plain_vit("vit_base_r50_s16_224") and not is_plain_vit("resnet18")


def test_plain_vit_names_match_timm():
    import timm

    plain = set(timm.list_models(module="vision_transformer"))
    for name in timm.list_models("vit_*"):
        assert is_plain_vit(name) == (name in plain), name


# ---------------------------------------------------------------- projection head


def test_embedding_is_unit_norm_and_port_dim_is_the_pooled_size():
    config = ViTEncoderConfig(**TINY, embed_dim=8)
    port = vit.output_port(config, BuildContext(inputs={"data": IMAGE_PORT}))
    assert port == Port("embeddings", frozenset({"image"}), dim=16)  # what the classifier reads: pooled
    enc = encoder(embed_dim=8)
    out = encode(enc, images(3))
    assert out.pooled.shape == (3, 16) and out.embedding.shape == (3, 8)
    assert torch.allclose(out.embedding.norm(dim=-1), torch.ones(3), atol=1e-5)
    enc.train()
    (enc(images(2)).embedding.sum() + enc(images(2)).pooled.sum()).backward()
    assert enc.proj.weight.grad is not None and enc.proj.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- checkpoints


def save_reference(tmp_path, suffix: str):
    """A tiny timm ViT with its own random weights, saved as a state dict the way timm users have them."""
    config = ViTEncoderConfig(**TINY)
    torch.manual_seed(7)
    model = create_backbone(config).eval()
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:  # a training checkpoint that still carries a classifier head, under timm's usual `state_dict` key
        state = dict(model.state_dict(), **{"head.weight": torch.zeros(5, 16), "head.bias": torch.zeros(5)})
        torch.save({"state_dict": state, "epoch": 3}, path)
    return model, path


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_checkpoint_gives_the_checkpoint_s_outputs(tmp_path, suffix):
    reference, path = save_reference(tmp_path, suffix)
    enc = encoder(pretrained=str(path), seed=3)
    assert enc.report()["weights"] == f"pretrained {path}"
    batch = images(2)
    pixels = (enc.preprocess(batch) - 0.5) / 0.5
    with torch.no_grad():
        expected = reference.forward_features(pixels)
    out = encode(enc, batch)
    assert torch.equal(out.states, expected[:, 1:]) and torch.equal(out.pooled, expected[:, 0])
    # an artifact stores the weights: a fresh, unfitted instance with them needs no checkpoint
    again = encoder(fit=False, seed=9)
    again.load_state_dict(enc.state_dict(), strict=True)
    assert torch.equal(encode(again, batch).pooled, out.pooled)


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(AutoGLMError, match="does not exist"):
        encoder(pretrained=str(tmp_path / "nope.safetensors"))
    _, path = save_reference(tmp_path, ".safetensors")
    with pytest.raises(AutoGLMError, match="does not fit") as info:
        encoder(pretrained=str(path), width=32)
    assert "width" in info.value.hint
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(AutoGLMError, match="cannot load"):
        encoder(pretrained=str(garbage))


def test_config_never_asks_the_hub():
    with pytest.raises(ValidationError, match="never"):
        ViTEncoderConfig(pretrained=True)
    with pytest.raises(ValidationError, match="heads"):
        ViTEncoderConfig(width=10, heads=3)
    with pytest.raises(ValidationError, match="patch_size"):
        ViTEncoderConfig(image_size=30, patch_size=4)
    assert ViTEncoderConfig.model_validate({"pretrained": False}).pretrained is False


# ------------------------------------------------------------------ inputs


def test_image_file_input(tmp_path):
    from PIL import Image

    pixels = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    path = tmp_path / "cat.png"
    Image.fromarray(pixels).save(path)
    enc = encoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # already the right size: no warning
        from_file = encode(enc, [{"image": str(path)}, {"image": path}])
    from_array = encode(enc, [pixels])
    assert torch.equal(from_file.pooled[:1], from_array.pooled) and torch.equal(from_file.pooled[1:], from_array.pooled)


def test_hwc_uint8_is_scaled_and_transposed():
    enc = encoder()
    chw = images(1)[0]
    hwc = np.round(chw * 255).astype(np.uint8).transpose(1, 2, 0)
    batch = enc.preprocess([hwc])
    assert batch.shape == (1, 3, 16, 16) and batch.dtype == torch.float32
    assert torch.allclose(batch[0], torch.from_numpy(chw), atol=1 / 255)
    assert torch.equal(enc.preprocess([torch.from_numpy(chw)]), enc.preprocess([chw]))


def test_grayscale_is_repeated_with_one_warning():
    enc = encoder()
    gray = np.random.default_rng(1).random((16, 16), dtype=np.float32)
    with pytest.warns(UserWarning, match="grayscale"):
        batch = enc.preprocess([{"image": gray}])
    assert batch.shape == (1, 3, 16, 16) and all(torch.equal(batch[0, c], torch.from_numpy(gray)) for c in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc.preprocess([gray[None], gray])  # [1, H, W] too, and no second warning


def test_resizing_warns_once():
    enc = encoder()
    with pytest.warns(UserWarning, match="resized to 16x16"):
        batch = enc.preprocess(images(2, size=24))
    assert batch.shape == (2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc.preprocess(images(1, size=20))
    assert enc.report()["resized_images"] == 3


def test_one_channel_model_reads_grayscale_as_is():
    enc = encoder(in_chans=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = encode(enc, [np.zeros((16, 16), dtype=np.float32)])
    assert out.pooled.shape == (1, 16)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "no samples"),
        (None, "expected a list of samples"),
        ({"image": np.zeros((3, 16, 16))}, "expected a list of samples"),
        ([{"label": 0}], "sample 1 has no `image` (its keys: label)"),
        (
            [{"image": np.zeros((3, 16, 16))}, {"image": np.zeros((4, 16, 16))}],
            "sample 2: image has 4 channels, expected 3",
        ),
        ([{"image": np.zeros((16, 16, 2), dtype=np.uint8)}], "sample 1: image has 2 channels"),
        ([{"image": np.zeros((2, 3, 16, 16))}], "got shape (2, 3, 16, 16)"),
        ([{"image": np.full((3, 16, 16), np.nan)}], "NaN"),
        ([{"image": np.array([["a"]])}], "dtype"),
        ([{"image": 3}], "expected an image array, tensor or file path, got int"),
    ],
)
def test_bad_inputs_raise_input_errors(bad, message):
    enc = encoder()
    with pytest.raises(InputError) as info:
        encode(enc, bad)
    assert message in info.value.message


def test_unreadable_file_names_the_sample_and_path(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    enc = encoder()
    for path in (broken, tmp_path / "missing.png"):
        with pytest.raises(InputError, match=rf"sample 2 \({path}\): cannot read the image file"):
            encode(enc, [{"image": images(1)[0]}, {"image": str(path)}])


# ------------------------------------------------------------------ signature


def test_signature():
    ctx = BuildContext(inputs={"data": IMAGE_PORT})
    assert vit.output_port(ViTEncoderConfig(), ctx) == Port("embeddings", frozenset({"image"}), dim=64)
    assert vit.output_port(ViTEncoderConfig(model="resnet18"), ctx).dim is None  # known once created
    with pytest.raises(PortMismatch, match="carry image.*got samples carrying text"):
        vit.output_port(ViTEncoderConfig(), BuildContext(inputs={"data": Port("samples", frozenset({"text"}))}))
    with pytest.raises(PortMismatch, match="got semantic graph"):
        vit.output_port(ViTEncoderConfig(), BuildContext(inputs={"g": Port("semantic_graph", dim=4)}))


def test_other_timm_models_give_flattened_feature_maps():
    enc = encoder(model="test_resnet")
    out = encode(enc, images(2))
    assert out.states.dim() == 3 and out.states.size(0) == 2 and out.states.size(2) == enc.num_features
    assert out.pooled.shape == (2, enc.num_features) and out.mask.all()
    with pytest.raises(AutoGLMError, match="no model named"):
        encoder(model="no_such_model_xyz")


def test_avg_pool_has_no_class_token_and_averages_patches():
    enc = encoder(pool="avg")
    out = encode(enc, images(2))
    assert out.states.shape == (2, 16, 16) and int(enc.backbone.num_prefix_tokens) == 0
    assert torch.allclose(
        out.pooled,
        enc.backbone.fc_norm(out.states.mean(1))
        if not isinstance(enc.backbone.fc_norm, torch.nn.Identity)
        else out.states.mean(1),
        atol=1e-5,
    )


def test_augmentation_jitters_training_images_only():
    enc = encoder(augment={"degrees": 20, "translate": 0.2, "scale": 0.2})
    batch = images(2)
    assert torch.allclose(encode(enc, batch).pooled, encode(enc, batch).pooled)  # eval: untouched
    enc.train()
    torch.manual_seed(0)
    first = enc(batch).pooled
    torch.manual_seed(1)
    assert not torch.allclose(first, enc(batch).pooled)
    pixels = enc.preprocess(batch)
    torch.manual_seed(0)
    jittered = enc._augment(pixels)
    assert jittered.shape == pixels.shape and not torch.allclose(jittered[0], pixels[0])


def test_erasing_blanks_a_rectangle_of_training_images():
    enc = encoder(augment={"degrees": 0, "translate": 0, "scale": 0, "erase": 1.0})
    pixels = torch.ones(4, 3, 16, 16)
    torch.manual_seed(0)
    erased = enc._augment(pixels)
    blank = (erased == 0).all(dim=1).flatten(1).sum(1)  # pixels zero in every channel, per image
    assert bool(((blank >= 1) & (blank <= 0.3 * 256)).all()), blank  # 2-20% of the area, up to rounding
