"""A DF-GAN generator (Tao et al., "DF-GAN: A Simple and Effective Baseline for Text-to-Image
Synthesis", CVPR 2022), written here from the paper's description, as a speed peer for the
benchmark only: it is never trained and never loads weights.

noise (B, 100) -> fc -> (B, 8nf, 4, 4) -> G_Blocks (nearest upsample x2, then two fused
affine (DFBlock) + 3x3 conv layers, a residual shortcut) -> LeakyReLU + 3x3 conv + tanh.
Every affine layer predicts a per-channel scale and shift from [noise; sentence] with a
two-layer MLP. At 64x64 with nf=32 it has 4,868,867 parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DFAffine(nn.Module):
    """x: (B, C, H, W), y: (B, cond) -> gamma(y) * x + beta(y), each an MLP cond -> C -> C."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Sequential(nn.Linear(cond_dim, channels), nn.ReLU(), nn.Linear(channels, channels))
        self.beta = nn.Sequential(nn.Linear(cond_dim, channels), nn.ReLU(), nn.Linear(channels, channels))
        # DF-GAN starts each affine as the identity: gamma = 1, beta = 0
        nn.init.zeros_(self.gamma[2].weight)
        nn.init.ones_(self.gamma[2].bias)
        nn.init.zeros_(self.beta[2].weight)
        nn.init.zeros_(self.beta[2].bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.gamma(y)[:, :, None, None] * x + self.beta(y)[:, :, None, None]


class DFBlock(nn.Module):
    """Two stacked affine + LeakyReLU layers (the paper's deep fusion block)."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.affine0 = DFAffine(cond_dim, channels)
        self.affine1 = DFAffine(cond_dim, channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.affine0(x, y), 0.2)
        return F.leaky_relu(self.affine1(h, y), 0.2)


class GBlock(nn.Module):
    """(B, cin, H, W) -> (B, cout, 2H, 2W): upsample, fuse -> conv -> fuse -> conv, plus shortcut."""

    def __init__(self, cond_dim: int, cin: int, cout: int) -> None:
        super().__init__()
        self.fuse1, self.c1 = DFBlock(cond_dim, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.fuse2, self.c2 = DFBlock(cond_dim, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.c2(self.fuse2(self.c1(self.fuse1(x, y)), y))
        return self.shortcut(x) + h


class DFGANGenerator(nn.Module):
    """forward(noise (B, noise_dim), sentence (B, sentence_dim)) -> (B, 3, S, S) in [-1, 1]."""

    def __init__(self, *, nf: int = 32, noise_dim: int = 100, sentence_dim: int = 256,
                 image_size: int = 64) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
        self.nf, self.noise_dim, self.sentence_dim = nf, noise_dim, sentence_dim
        n = image_size.bit_length() - 2  # resolutions 4, 8, ..., image_size
        ch = [nf * min(2 ** i, 8) for i in range(n)][::-1]  # 64 px, nf=32: 256, 256, 128, 64, 32
        cond = noise_dim + sentence_dim
        self.fc = nn.Linear(noise_dim, ch[0] * 4 * 4)
        self.blocks = nn.ModuleList(GBlock(cond, a, b) for a, b in zip(ch[:-1], ch[1:]))
        self.to_rgb = nn.Conv2d(ch[-1], 3, 3, padding=1)

    def forward(self, noise: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        x = self.fc(noise).view(noise.shape[0], -1, 4, 4)  # (B, 8nf, 4, 4)
        y = torch.cat([noise, sentence], dim=1)  # (B, noise_dim + sentence_dim)
        for block in self.blocks:
            x = block(x, y)
        return torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2)))  # (B, 3, S, S)
