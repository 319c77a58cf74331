"""Pixels <-> the networks' range: uint8 images in [0, 255] and float tensors in [-1, 1]."""
from __future__ import annotations

import torch


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 (or 0-255 valued) images -> float32 in [-1, 1]."""
    return x.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images (clamped) -> uint8 in [0, 255], rounded to the nearest level."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
