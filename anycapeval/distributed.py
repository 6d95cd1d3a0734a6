"""Data-parallel generation under `torchrun` or `accelerate launch`: every process (rank) captions its
slice of each task, the captions are gathered on rank 0 with `torch.distributed`, and rank 0 alone
judges, scores and writes the run directory, which is the one a single process would write.

The launch is read from the variables both launchers set (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT). torch is imported only when WORLD_SIZE > 1, so a plain run never loads it here.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .types import AnyCapError

# How long a rank waits for the others at the gather. Long on purpose: a resumed run may find every
# caption of rank 0's slice in the cache and none of rank 1's, so rank 0 waits out a whole slice.
# A rank that dies does not leave the others waiting: the launcher stops them all.
TIMEOUT = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Launch:
    world_size: int
    rank: int
    local_rank: int  # the rank on this node: which GPU this process uses


def launch_from_env(env: Mapping[str, str] | None = None) -> Launch | None:
    """The multi-process launch this process belongs to, or None for a single process."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE") or 1)
        if world <= 1:
            return None
        rank = int(env["RANK"])
        local = int(env.get("LOCAL_RANK") or rank)
    except (KeyError, ValueError):
        raise AnyCapError("WORLD_SIZE is set but RANK/LOCAL_RANK are missing or not integers: start a "
                          "multi-process run with torchrun or accelerate launch") from None
    if not 0 <= rank < world:
        raise AnyCapError(f"RANK={rank} is not below WORLD_SIZE={world}")
    return Launch(world, rank, local)


def local_device(device: str | None) -> str:
    """The torch device a model loads on. 'auto' (or None): cuda when there is a GPU, else cpu. Under
    a multi-process launch, 'auto' and 'cuda' mean this process's own GPU, cuda:LOCAL_RANK; an explicit
    index (cuda:1) is kept as given."""
    if device in (None, "auto"):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    launch = launch_from_env()
    if device == "cuda" and launch is not None:
        return f"cuda:{launch.local_rank}"
    return str(device)


def backend_for(settings: Mapping[str, Any] | None) -> str:
    """nccl when the system's model runs on this process's GPU, gloo otherwise (a CPU model, or a
    system without a local model, e.g. an API server). `settings`: the system's settings()."""
    if not settings or "device" not in settings:
        return "gloo"
    return "nccl" if local_device(settings["device"]).startswith("cuda") else "gloo"


def rank_slice(total: int, batch_size: int, launch: Launch, chunk_items: int = 0) -> tuple[int, int]:
    """(start, stop) of this rank's contiguous block of a task's `total` items. A single process decodes
    a task in chunks of `chunk_items` (0: one chunk), each in batches of `batch_size`; the blocks are cut
    only where one of those batches starts, so every batch a rank decodes is exactly a batch the single
    process decodes (same items, same padding). A batched greedy decoder then writes the same captions,
    and the gathered predictions equal a one-process run's. Ranks past the last batch get nothing."""
    size, step = max(1, batch_size), chunk_items or total or 1
    starts = [s for c in range(0, total, step) for s in range(c, min(c + step, total), size)] + [total]
    batches = len(starts) - 1
    return starts[launch.rank * batches // launch.world_size], starts[(launch.rank + 1) * batches // launch.world_size]


def gather(launch: Launch, payload: Any, backend: str) -> list[Any] | None:
    """Every rank's `payload`, in rank order, on rank 0; None on the other ranks. Joins the process
    group (env://, as torchrun and accelerate launch set it up) for this one collective and leaves
    it, so no group is alive while rank 0 judges alone."""
    import torch
    import torch.distributed as dist

    own = not dist.is_initialized()  # a caller that set up the group itself keeps it
    if own:
        if backend == "nccl":
            torch.cuda.set_device(launch.local_rank)
        try:
            dist.init_process_group(backend, timeout=TIMEOUT)
        except (RuntimeError, ValueError) as exc:
            raise AnyCapError(f"cannot join the torch.distributed group (rank {launch.rank} of "
                              f"{launch.world_size}, {backend}): {exc}") from None
    parts: list[Any] | None = [None] * launch.world_size if launch.rank == 0 else None
    try:
        dist.gather_object(payload, parts, dst=0)
    finally:
        if own:
            dist.destroy_process_group()
    return parts
