"""The decoder of a VQGAN / latent-diffusion KL autoencoder (Esser et al., "Taming Transformers
for High-Resolution Image Synthesis", CVPR 2021; Rombach et al., "High-Resolution Image
Synthesis with Latent Diffusion Models", CVPR 2022), written here from the papers' description,
as a speed peer for the benchmark only: it is never trained and never loads weights.

latent (B, z, s, s) -> conv_in (3x3) -> middle (ResNet block, single-head self-attention block,
ResNet block) -> up levels, from the latent's resolution to the image's: (num_res_blocks + 1)
ResNet blocks each, then (except at the last) nearest x2 upsampling + 3x3 conv -> GroupNorm +
SiLU + conv_out (3x3) -> (B, 3, S, S). A ResNet block is GroupNorm + SiLU + 3x3 conv, twice,
with a residual (a 1x1 conv where the width changes); the attention block is GroupNorm, 1x1
q/k/v, softmax(q k^T / sqrt(C)) over all s*s positions, a 1x1 output projection, residual.

The defaults are the latent-diffusion f=8 autoencoder's layout (ch_mult 1, 2, 4, 4 and
num_res_blocks 2, so three ResNet blocks per up level; no attention outside the middle) at a base
width of 32 instead of 128: widths 32, 64, 128, 128 from 64 px down to the 8x8x16 latent. That is
3,118,147 parameters, 4.7% fewer than our shipped decoder's 3,270,408 (model/latent.py, channels
32, 64, 128, 256), and 2.43 GFLOP per image against our 1.22 (the peer spends more of its
parameters at the higher resolutions). Its output is linear, as in the papers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    # the papers' GroupNorm with 32 groups (fewer where a width is not a multiple of 32)
    return nn.GroupNorm(math.gcd(32, channels), channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """(B, cin, H, W) -> (B, cout, H, W): norm, SiLU, conv3x3, norm, SiLU, conv3x3, plus shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.shortcut(x) + h


class AttnBlock(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): one head of self-attention over the H*W positions, residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v = (nn.Conv2d(channels, channels, 1) for _ in range(3))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        h = self.norm(x)
        q = self.q(h).flatten(2).transpose(1, 2)  # (B, HW, C)
        k = self.k(h).flatten(2)  # (B, C, HW)
        v = self.v(h).flatten(2).transpose(1, 2)  # (B, HW, C)
        attn = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=-1)  # (B, HW, HW)
        out = torch.bmm(attn, v).transpose(1, 2).reshape(b, c, hh, ww)
        return x + self.proj_out(out)

    @staticmethod
    def matmul_macs(batch: int, channels: int, positions: int) -> int:
        """MACs of the two attention matmuls (q k^T and attn v), which count_macs's hooks do not see."""
        return 2 * batch * positions * positions * channels


class Upsample(nn.Module):
    """(B, C, H, W) -> (B, C, 2H, 2W): nearest x2, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class LDMDecoder(nn.Module):
    """forward(z (B, z_channels, s, s)) -> (B, 3, s * 2 ** (len(channels) - 1), ...).

    channels: widths per level from the image's resolution down to the latent's (the papers'
    ch * ch_mult); num_res_blocks: the papers' setting, each up level has num_res_blocks + 1."""

    def __init__(self, *, z_channels: int = 16, channels: tuple[int, ...] = (32, 64, 128, 128),
                 num_res_blocks: int = 2, out_channels: int = 3) -> None:
        super().__init__()
        if len(channels) < 1 or num_res_blocks < 0:
            raise ValueError(f"need >= 1 level and num_res_blocks >= 0, got {channels}, {num_res_blocks}")
        self.z_channels, self.channels = z_channels, tuple(channels)
        c = channels[-1]
        self.conv_in = nn.Conv2d(z_channels, c, 3, padding=1)
        self.mid = nn.ModuleList([ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)])
        self.up = nn.ModuleList()
        for level in reversed(range(len(channels))):  # latent resolution first
            blocks = []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(c, channels[level]))
                c = channels[level]
            if level:
                blocks.append(Upsample(c))
            self.up.append(nn.Sequential(*blocks))
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)  # (B, C_last, s, s)
        for block in self.mid:
            h = block(h)
        for level in self.up:
            h = level(h)  # (B, C, 2H, 2W) after each level but the last
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 3, S, S)

    def attention_macs(self, batch: int, latent_size: int) -> int:
        """MACs of the middle attention's matmuls for `batch` latents of latent_size x latent_size."""
        return AttnBlock.matmul_macs(batch, self.channels[-1], latent_size * latent_size)


__all__ = ["AttnBlock", "LDMDecoder", "ResnetBlock", "Upsample"]
