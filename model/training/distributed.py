"""Data parallelism for model.train: torch's DistributedDataParallel under ``torchrun``.

Two modules are what the trainer optimises and what DDP wraps, one per optimiser:
``Autoencoder`` (encoder + decoder, forward = encode, sample, decode) and ``DiscriminatorObjective``
(forward = D's whole loss, so one DDP forward precedes each D backward). Every parameter of each
is used in every step that forwards it, so neither needs ``find_unused_parameters``: D's module is
first forwarded at ``adv_start``, and before that its reducer simply never arms. In one process
(WORLD_SIZE unset or 1) nothing is wrapped and no process group exists.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .objective import discriminator_loss

SPLIT_ENV = "MODEL_TRAINING_SPLIT_BATCH"
"""Test-only: "1" makes every rank draw the same world x batch_size batch (the un-offset seed) and
train on its own slice of it, so N processes x B reproduce one process at N x B."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    split: bool = False  # SPLIT_ENV

    @property
    def on(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device_type: str) -> World:
    """World from torchrun's environment; starts the process group (nccl on CUDA, gloo on CPU)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), local, os.environ.get(SPLIT_ENV) == "1")


class Autoencoder(nn.Module):
    """Encoder + decoder as one module (the autoencoder optimiser's parameters)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor, eps: torch.Tensor, style: torch.Tensor):
        mu, logvar = self.encoder(x)
        z = mu + torch.exp(0.5 * logvar) * eps  # (B, C, h, w)
        return mu, logvar, self.decoder(z, style)  # (B, 3, S, S)


class DiscriminatorObjective(nn.Module):
    """D's loss as a forward (D itself is called through features / *_logit, which DDP does not see)."""

    def __init__(self, disc: nn.Module) -> None:
        super().__init__()
        self.disc = disc

    def forward(self, *args, **kw):
        return discriminator_loss(self.disc, *args, **kw)


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DDP(module) across the world (gradients averaged by its bucketed all-reduce), else module."""
    if not world.on:
        return module
    ids = [device.index if device.index is not None else world.local_rank] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)  # (neither module has buffers to broadcast)


def mean_stats(stats: dict[str, float], world: World, device: torch.device) -> dict[str, float]:
    """The logged numbers averaged over ranks (each rank's are means over its own batch)."""
    if not world.on:
        return stats
    keys = list(stats)  # the same order on every rank: the same code made them
    t = torch.tensor([float(stats[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / world.size for k, v in zip(keys, t.tolist())}


def gather(obj, world: World) -> list:
    """[obj of rank 0, obj of rank 1, ...] (a list of one in one process)."""
    if not world.on:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def agree(flag: bool, world: World) -> bool:
    """Rank 0's flag on every rank (e.g. its wall-clock timeout), so all ranks stop at the same step."""
    if not world.on:
        return flag
    box = [flag]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def barrier(world: World) -> None:
    if world.on:
        dist.barrier()  # rank 0 may still be exporting: leave together, or gloo aborts the late one


def finish(world: World) -> None:
    if world.on and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
