"""Pixels <-> the networks' range: uint8 images in [0, 255] and float tensors in [-1, 1]."""
from __future__ import annotations

import torch


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 (or 0-255 valued) images -> float32 in [-1, 1]."""
    return x.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images (clamped) -> uint8 in [0, 255], rounded to the nearest level."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., 3, H, W) float RGB in [0, 1] -> hue in degrees [0, 360), saturation, value (..., H, W)."""
    r, g, b = x.unbind(-3)
    mx, mn = x.max(-3).values, x.min(-3).values
    d = (mx - mn).clamp_min(1e-6)
    h = torch.where(mx == r, ((g - b) / d) % 6, torch.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) * 60
    h = torch.where(mx - mn > 1e-6, h, torch.zeros_like(h)) % 360
    s = torch.where(mx > 0, (mx - mn) / mx.clamp_min(1e-6), torch.zeros_like(mx))
    return h, s, mx


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hue in degrees, saturation, value (..., H, W) -> (..., 3, H, W) RGB in [0, 1]."""
    k = lambda n: (n + h / 60) % 6  # noqa: E731  (the standard closed form)
    f = lambda n: v - v * s * (torch.minimum(k(n), 4 - k(n)).clamp(0, 1))  # noqa: E731
    return torch.stack([f(5), f(3), f(1)], -3)
