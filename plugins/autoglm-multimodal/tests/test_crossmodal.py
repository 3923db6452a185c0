"""Cross-modal evaluation helpers: retrieval in the shared space, modality subsets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autoglm_multimodal.crossmodal import retrieval, subsets, without


def test_retrieval_counts_same_class_hits():
    labels = torch.tensor([0, 1, 2, 0])
    a = F.normalize(torch.eye(4)[[0, 1, 2, 3]], dim=-1)
    perfect = retrieval({"x": a, "y": a}, labels, {"x": "image", "y": "audio"})
    assert perfect["image→audio"]["recall@1"] == 1.0
    shuffled = retrieval({"x": a, "y": a[[1, 2, 0, 3]]}, labels, {"x": "image", "y": "audio"}, ks=(1,))
    assert shuffled["image→audio"]["recall@1"] < 1.0


def test_subsets_and_without():
    assert subsets(["text", "image"]) == [("image",), ("text",), ("image", "text")]
    assert without([{"image": 1, "text": "t", "label": 0}], {"text"}) == [{"image": 1, "label": 0}]
