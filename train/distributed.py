"""Data parallel under torchrun: joining the process group, checking the replicas agree."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed(device: str) -> tuple[int, int, int, bool]:
    """(rank, local_rank, world_size, created) from torchrun's environment; (0, 0, 1, False)
    for a plain run. Joins the process group unless the caller already did."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1, False
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    created = not dist.is_initialized()
    if created:
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), local_rank, dist.get_world_size(), created


def replicas_in_sync(model: torch.nn.Module) -> bool:
    """Whether every rank holds the same parameters (per-tensor float64 sums compared)."""
    digest = torch.stack([p.detach().double().sum() for p in model.parameters()])
    gathered = [torch.empty_like(digest) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, digest)
    return all(torch.equal(g, digest) for g in gathered)
