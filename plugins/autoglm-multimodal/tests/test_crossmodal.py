"""Cross-modal evaluation helpers: retrieval in the shared space, modality subsets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autoglm_multimodal.crossmodal import retrieval, subsets, without
from autoglm_multimodal.objectives import drop_modalities


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


def test_modality_dropout_keeps_at_least_one():
    generator = torch.Generator().manual_seed(0)
    samples = [{"image": 1, "audio": 2, "text": "t", "label": 0}] * 200
    dropped = drop_modalities(samples, ["audio", "image", "text"], 0.9, generator)
    assert all(any(m in s for m in ("audio", "image", "text")) and s["label"] == 0 for s in dropped)
    assert any(len([m for m in ("audio", "image", "text") if m in s]) == 1 for s in dropped)


def test_the_shared_space_plot_has_a_legend_for_modalities_and_one_for_classes(tmp_path, monkeypatch):
    import matplotlib.figure
    import torch

    from autoglm_multimodal.crossmodal import plot_shared_space

    seen = {}

    def record(fig, path, *args, **kwargs):
        (ax,) = [a for a in fig.axes if a.get_legend() is not None]
        legends = [a for a in ax.get_children() if isinstance(a, matplotlib.legend.Legend)]
        seen["titles"] = sorted(legend.get_title().get_text() for legend in legends)
        seen["entries"] = sorted(t.get_text() for legend in legends for t in legend.get_texts())

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    vectors = {"encoders.image": torch.randn(6, 4), "encoders.text": torch.randn(6, 4)}
    labels = torch.tensor([0, 1, 2, 0, 1, -1])
    plot_shared_space(vectors, labels, {"encoders.image": "image", "encoders.text": "text"}, ("a", "b", "c"), tmp_path)
    assert seen == {"titles": ["class", "modality"], "entries": ["a", "b", "c", "image", "text"]}
