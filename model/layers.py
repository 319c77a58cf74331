"""Small single-purpose blocks shared by the decoder and the discriminator."""
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
