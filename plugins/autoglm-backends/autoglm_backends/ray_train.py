"""Data-parallel builds on a Ray cluster: Ray Train's ``TorchTrainer`` runs ``autoglm build`` in every worker.

    python -m autoglm_backends.ray_train MANIFEST -o OUTPUT [--workers 4] [--gpus] [--address auto] [--set K=V]

Ray starts the workers and their process group (gloo, or NCCL with ``--gpus``); each worker runs the same build
as ``autoglm build --nproc``, which trains through DDP when it finds the group up (:mod:`autoglm_sdk.distributed`):
rank 0 writes the checkpoint and the artifact. On several machines OUTPUT must be on storage every node sees.
When a worker fails Ray restarts the group (``--max-failures``) and the build resumes from its last checkpoint.
Needs ``ray[train]`` (extra ``autoglm-backends[ray]``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the build, resuming from the checkpoint when one exists (a restarted group)."""
    from autoglm_sdk import build, load_manifest

    manifest = load_manifest(config["manifest"], config["overrides"])
    build(manifest, config["output"], overwrite=True, resume=True, progress=None)


def build_on_ray(
    manifest: str | Path,
    output: str | Path,
    *,
    workers: int = 2,
    gpus: bool = False,
    overrides: list[str] | None = None,
    resume: bool = False,
    max_failures: int = 0,
    address: str | None = None,
) -> Path:
    """Build ``manifest`` into ``output`` with ``workers`` Ray Train workers; returns the artifact's path."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from autoglm_sdk import load_manifest
    from autoglm_sdk.plugin import checkpoint_dir

    manifest, output = Path(manifest).resolve(), Path(output).resolve()
    load_manifest(manifest, overrides or [])  # mistakes are reported here, before any worker starts
    checkpoint = checkpoint_dir(output)
    if not resume:  # the workers always resume: only a checkpoint of this run may be there
        shutil.rmtree(checkpoint, ignore_errors=True)
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"manifest": str(manifest), "overrides": list(overrides or []), "output": str(output)},
        torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus),
        run_config=RunConfig(
            name=output.name,
            storage_path=str(output.parent / f".{output.name}.ray"),
            failure_config=FailureConfig(max_failures=max_failures),
        ),
    )
    trainer.fit()
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gpus", action="store_true", help="one GPU per worker, NCCL")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override a manifest key")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT.checkpoint")
    parser.add_argument("--max-failures", type=int, default=0, help="restart the workers this often after a failure")
    parser.add_argument("--address", default=None, help="the Ray cluster (default: a local instance)")
    args = parser.parse_args(argv)
    from autoglm_sdk.plugin import AutoGLMError

    try:
        path = build_on_ray(
            args.manifest,
            args.output,
            workers=args.workers,
            gpus=args.gpus,
            overrides=args.overrides,
            resume=args.resume,
            max_failures=args.max_failures,
            address=args.address,
        )
    except AutoGLMError as exc:  # a mistake the user can fix: one line, as `autoglm` prints it
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        raise SystemExit(2) from None
    print(f"built {path}")


if __name__ == "__main__":
    main()
