"""Progress of long work, for people: a rich bar with an ETA (what the CLI shows), or a callback.

Training reports through an object with ``start(total, label)``, ``advance(metrics)`` and ``stop()``;
:func:`progress_for` turns what a caller passed to :func:`autoglm_sdk.build` into one. Light: rich only.
"""

from __future__ import annotations

import sys
from typing import Any, Callable


class EpochBar:
    """A rich progress bar on ``console`` (stderr by default): epochs done, loss, validation accuracy, ETA.
    Plugins' own commands use it too (``from autoglm_sdk.progress import EpochBar``)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.progress: Any = None

    def start(self, total: int, label: str = "training") -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, metrics="")

    def advance(self, metrics: dict[str, float]) -> None:
        text = f"loss {metrics['train_loss']:.3f}"
        if "val_accuracy" in metrics:
            text += f"  val acc {metrics['val_accuracy']:.3f}"
        if "val_score" in metrics:
            text += f"  (selection score {metrics['val_score']:.3f})"
        self.progress.update(self.task, advance=1, metrics=text)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


class CallbackProgress:
    """Calls ``callback(metrics)`` after every epoch; ``metrics`` carries ``epoch`` and ``epochs`` too."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self.callback, self.total, self.done = callback, 0, 0

    def start(self, total: int, label: str = "training") -> None:
        self.total, self.done = total, 0

    def advance(self, metrics: dict[str, float]) -> None:
        self.done += 1
        self.callback({**metrics, "epoch": self.done, "epochs": self.total})

    def stop(self) -> None:
        pass


def progress_for(progress: Any) -> Any:
    """``"auto"``: a bar when stderr is a terminal, else nothing; None or False: nothing; a callable: called
    after each epoch; an object with ``start``/``advance``/``stop``: used as it is."""
    if progress == "auto":
        return EpochBar() if sys.stderr.isatty() else None
    if progress is None or progress is False:
        return None
    if hasattr(progress, "advance"):
        return progress
    if callable(progress):
        return CallbackProgress(progress)
    raise TypeError(f"progress must be 'auto', None, a callable or a progress object, got {type(progress).__name__}")
