"""Small single-purpose blocks shared by the generator and the discriminator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class Affine(nn.Module):
    """Text/style-conditioned per-channel affine transform (DF-GAN's fusion, StyleGAN's modulation).

    x: (B, C, H, W), w: (B, w_dim) -> (1 + gamma(w)) * x + beta(w).
    Starts as the identity so early training sees an unconditioned network.
    """

    def __init__(self, w_dim: int, channels: int) -> None:
        super().__init__()
        self.lin = nn.Linear(w_dim, 2 * channels)
        nn.init.zeros_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.lin(w).chunk(2, dim=1)  # (B, C) each
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class UpBlock(nn.Module):
    """(B, cin, H, W) -> (B, cout, 2H, 2W) (or same size when up=False), modulated by w."""

    def __init__(self, cin: int, cout: int, w_dim: int, *, up: bool, mode: str = "nearest") -> None:
        super().__init__()
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"mode must be nearest or bilinear, got {mode!r}")
        self.up, self.mode = up, mode
        self.aff1, self.conv1 = Affine(w_dim, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.aff2, self.conv2 = Affine(w_dim, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()
        self.gain = nn.Parameter(torch.zeros(1))  # residual branch starts closed (DF-GAN)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode=self.mode,
                              align_corners=False if self.mode == "bilinear" else None)
        h = self.conv1(lrelu(self.aff1(x, w)))
        h = self.conv2(lrelu(self.aff2(h, w)))
        return self.skip(x) + self.gain * h


class DownBlock(nn.Module):
    """(B, cin, H, W) -> (B, cout, H/2, W/2); residual, no normalisation."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(lrelu(self.conv1(lrelu(x))))
        h = F.avg_pool2d(h, 2)
        return self.skip(F.avg_pool2d(x, 2)) + self.gain * h
