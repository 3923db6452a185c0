"""The vit encoder passes the SDK's contract suite."""

from autoglm_sdk.testing import ModalityEncoderContract


class TestViT(ModalityEncoderContract):
    plugin = "vit"
    config = {"width": 16, "depth": 1, "heads": 2, "image_size": 32, "patch_size": 8}


class TestViTMeanPooling(ModalityEncoderContract):
    """A ViT without a class token pools by the mean of its patches (timm's global_pool='avg')."""

    plugin = "vit"
    config = {
        "model": "vit_medium_patch16_gap_256",
        "width": 16,
        "depth": 1,
        "heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
