"""``answer-pretraining``: the reasoner learns composition alone, through the decoder's answer head, before the
language model trains.

A generator's answer is only as good as the query states its graph tokens are read from. Trained jointly with the
language model, the reasoner gets a classifier's signal (the answer head) but a language model's budget: few
epochs, and one initialisation per [train] restart. Here it gets a classifier's budget instead: each try
re-draws the stages and the head, trains them on the labels for ``epochs`` with the language model left out
(:meth:`~autoglm_lm.causal_lm.CausalLMDecoder.answer_logits`), and the best try on validation accuracy is kept.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F

from autoglm_sdk.plugin import AutoGLMError, DataError, fit_alone, snapshot


def _redraw(modules: list[torch.nn.Module], seed: int) -> None:
    """Fresh initial weights for every submodule that knows how to draw them (``reset_parameters``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in modules:
            for part in module.modules():
                if callable(getattr(part, "reset_parameters", None)):
                    part.reset_parameters()


class AnswerPretraining:
    name = "answer-pretraining"
    kind = "objective"
    weight = 0.0  # no term in the pipeline's loss: its work is done before training

    def __init__(self, config: Any, ctx: Any) -> None:
        self.config = config
        self.name = ctx.stage or self.name
        self.lr_scales = {stage: config.lr_scale_after for stage in config.stages}

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> None:
        return None

    def pretrain(self, model: Any, session: Any, *, seed: int = 0, progress: Any = None) -> dict[str, Any]:
        """Per try: its seed and best validation accuracy; which try was kept; the kept try's history."""
        decoder = model.stage_objects["decoder"]
        head = getattr(decoder, "answer_head", None)
        if head is None or not callable(getattr(decoder, "answer_logits", None)):
            raise AutoGLMError(
                f"{self.name}: the decoder has no answer head to train the reasoner through",
                hint="give decoder.answer_weight a value above 0 (and graph_tokens above 0, with a graph input)",
            )
        splits = session.dataset.splits
        train = [s for s in splits.get("train") or [] if isinstance(s.get("label"), int)]
        val = [s for s in splits.get("val") or [] if isinstance(s.get("label"), int)]
        if not train:
            raise DataError(f"{self.name}: no training sample carries a `label`")
        modules = [model.stage_objects[s] for s in self.config.stages] + [head]
        autocast = session.backend.autocast

        def step(chunk: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
            device = head.weight.device
            labels = torch.tensor([s["label"] for s in chunk], device=device)
            with autocast() if autocast else contextlib.nullcontext():
                logits = model.run_sink(chunk, lambda module, inputs: module.answer_logits(inputs)).float()
            return F.cross_entropy(logits, labels), logits.argmax(-1) == labels

        lr = self.config.lr or session.manifest.train.lr
        tries: list[dict[str, Any]] = []
        best: tuple[float, list[dict[str, torch.Tensor]], dict[str, Any], int] | None = None
        for attempt in range(self.config.tries):
            if attempt:  # the first try keeps the weights the pipeline was made with
                _redraw(modules, seed * 1009 + attempt)
            figures = fit_alone(
                modules, step, train, val, session.manifest.train, epochs=self.config.epochs, lr=lr,
                seed=seed + attempt, progress=progress, label=f"{self.name} try {attempt + 1} of {self.config.tries}",
            )  # fmt: skip
            score = figures["best_val_accuracy"]
            if score != score:  # no validation split: the last training loss
                score = -figures["history"][-1]["train_loss"]
            session.log(
                f"{self.name}: try {attempt + 1} of {self.config.tries}, answer-head val accuracy "
                f"{figures['best_val_accuracy']:.3f} (epoch {figures['best_epoch']})"
            )
            tries.append(
                {"try": attempt, "best_val_accuracy": figures["best_val_accuracy"], "seconds": figures["seconds"]}
            )
            if best is None or score > best[0]:  # ties keep the earlier try
                best = (score, [snapshot(m) for m in modules], figures, attempt)
        for module, state in zip(modules, best[1]):
            module.load_state_dict(state)
        return {**best[2], "tries": tries, "kept_try": best[3]}
