"""Data-parallel training over several processes: torch DistributedDataParallel, launched by torchrun.

``autoglm build --nproc N`` runs the same command again under ``torchrun``. Every worker opens the same session
and makes the same model from the same seed; the trainer cuts each global batch into one contiguous share per
rank and trains through :class:`~torch.nn.parallel.DistributedDataParallel`, which averages the gradients. Each
share's loss is weighted by its size, so N processes take the same optimiser steps as one process given the same
global batch. Rank 0 alone writes checkpoints, the report and the artifact; every rank reads the checkpoint when
it resumes. A process group made by someone else (Ray Train's ``TorchTrainer``) is used as it is.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any

#: the launcher's options that are not the build's own (the command line torchrun re-runs leaves them out)
LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--node-rank", "--master-addr", "--master-port", "--max-restarts")
#: what a user does when a worker of a data-parallel build stops
RESUME_HINT = (
    "find its error above; rerun with --resume to continue from the last checkpoint, or pass --max-restarts N to "
    "restart the workers by themselves"
)


def world() -> tuple[int, int]:
    """(rank, world size) of this process: the process group's, else torchrun's environment, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def active() -> bool:
    """Whether this process trains with others (a process group of two or more is up)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main() -> bool:
    return world()[0] == 0


def restarted() -> bool:
    """Whether torchrun restarted this worker after a failure (``--max-restarts``): it then resumes."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)) > 0


def init(device: str, timeout_minutes: float = 30.0) -> bool:
    """Join the process group torchrun's environment describes (gloo for the CPU, NCCL for CUDA devices); returns
    whether this process trains with others. Nothing to do outside torchrun or when a group is already up."""
    import torch.distributed as dist

    if dist.is_initialized():
        return active()
    if int(os.environ.get("WORLD_SIZE", 1)) < 2:
        return False
    backend = "nccl" if str(device).startswith("cuda") else "gloo"  # the cuda backend gives each local rank a GPU
    timeout = timedelta(minutes=timeout_minutes)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None:
        dist.init_process_group(backend, timeout=timeout)
        return True
    # Under torchrun the store outlives a restart of the workers: the group that replaces a failed one could read
    # the failed group's addresses (its keys) and connect to a dead peer. A key prefix per attempt keeps them apart.
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), size, not agent_hosts and rank == 0, timeout
    )
    prefixed = dist.PrefixStore(f"autoglm/attempt-{attempt}", store)
    dist.init_process_group(backend, store=prefixed, rank=rank, world_size=size, timeout=timeout)
    return True


def backend_name() -> str:
    import torch.distributed as dist

    return str(dist.get_backend()) if active() else "none"


def peer_failure(exc: BaseException) -> Any:
    """The user's error for a collective that failed because another rank stopped (killed, out of memory), or None
    when ``exc`` is something else."""
    from autoglm_sdk.errors import AutoGLMError

    text = str(exc)
    if not active() or not any(word in text for word in ("gloo", "NCCL", "Connection reset", "Connection closed")):
        return None
    return AutoGLMError(
        f"another process of this data-parallel build stopped ({text.split('. ')[0][-160:]})", hint=RESUME_HINT
    )


def barrier() -> None:
    import torch.distributed as dist

    if active():
        dist.barrier()


def finish() -> None:
    """Leave the process group (after training: what follows, evaluation and writing, is rank 0's alone)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def share(batch: list[Any]) -> tuple[list[Any], float]:
    """This rank's contiguous share of a global ``batch`` and the weight of its mean loss (share size * world /
    batch size), so that the gradients DDP averages are those of the global batch's mean loss. A rank left without
    a sample (a batch smaller than the world) runs the first one with weight 0: every rank must join each step."""
    rank, size = world()
    base, extra = divmod(len(batch), size)
    start = rank * base + min(rank, extra)
    mine = batch[start : start + base + (rank < extra)]
    if not mine:
        return batch[:1], 0.0
    return mine, len(mine) * size / len(batch)


def all_sum(values: list[float]) -> list[float]:
    """Each value summed over the ranks (for figures such as the epoch's mean training loss)."""
    import torch
    import torch.distributed as dist

    if not active():
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def wrap(module: Any) -> Any:
    """``module`` in DistributedDataParallel. Unused parameters are looked for: which stages a step reaches can
    vary (frozen stages, objectives that speak only on some batches)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, find_unused_parameters=True)


def launch_command(
    argv: list[str],
    nproc: int,
    *,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int = 29500,
    max_restarts: int = 0,
) -> list[str]:
    """The torchrun command (through :func:`torchrun`) that runs ``autoglm`` with ``argv`` (the launcher's own
    options left out) in ``nproc`` processes on this node. One node with no master address runs standalone (torchrun
    picks a free port)."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_OPTIONS:
            skip = "=" not in arg
            continue
        rest.append(arg)
    command = [sys.executable, "-m", "autoglm_sdk.distributed", f"--nproc-per-node={nproc}"]
    if nnodes == 1 and master_addr is None:
        command.append("--standalone")
    else:
        command += [f"--nnodes={nnodes}", f"--node-rank={node_rank}", f"--master-addr={master_addr or '127.0.0.1'}"]
        command.append(f"--master-port={master_port}")
    command += [f"--max-restarts={max_restarts}", "-m", "autoglm_cli", *rest]
    return command


def torchrun(args: list[str]) -> int:
    """torchrun with ``args``; its exit status. A failed worker group ends in one line naming the rank that stopped
    first and how, where torchrun alone would end in its own traceback."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(args))
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = f"was killed by {failure.signal_name()}" if failure.exitcode < 0 else f"exited with {failure.exitcode}"
        print(f"error: the data-parallel build stopped: rank {rank} {how}", file=sys.stderr)
        print(f"hint: {RESUME_HINT}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # the launcher's command (launch_command): torchrun without a traceback at its end
    sys.exit(torchrun(sys.argv[1:]))
