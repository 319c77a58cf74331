"""Generator: (z, c, style) -> RGB image in [-1, 1].

A mapping MLP turns (z, c, style embedding) into w; a 4x4 start is projected from w
and every block is modulated by w (DF-GAN deep fusion / StyleGAN modulation).
No batch statistics anywhere, so a sample does not depend on its batch mates.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import UpBlock, lrelu


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.g_channels
        # one extra row: the learned "any style" embedding (index num_styles)
        self.style_emb = nn.Embedding(cfg.num_styles + 1, cfg.style_dim)
        self.mapping = nn.Sequential(
            nn.Linear(cfg.z_dim + cfg.cond_dim + cfg.style_dim, cfg.w_dim), nn.LeakyReLU(0.2),
            nn.Linear(cfg.w_dim, cfg.w_dim), nn.LeakyReLU(0.2),
        )
        # z's columns start at zero: noise enters only as far as the adversarial loss asks for it,
        # and a reconstruction-only phase (z = 0, no gradient on them) leaves sampling with z unharmed
        nn.init.zeros_(self.mapping[0].weight[:, :cfg.z_dim])
        self.fc = nn.Linear(cfg.w_dim, ch[0] * 4 * 4)
        blocks = [UpBlock(ch[0], ch[0], cfg.w_dim, up=False)]
        first_bilinear = len(ch) - cfg.g_bilinear_blocks  # blocks from this index on upsample bilinearly
        blocks += [UpBlock(ch[i - 1], ch[i], cfg.w_dim, up=True,
                           mode="bilinear" if i >= first_bilinear else "nearest") for i in range(1, len(ch))]
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.Conv2d(ch[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, c: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """z: (B, z_dim), c: (B, cond_dim), style: (B,) long in [0, num_styles] -> (B, 3, S, S)."""
        s = self.style_emb(style)  # (B, style_dim)
        w = self.mapping(torch.cat([z, c, s], dim=1))  # (B, w_dim)
        x = self.fc(w).view(-1, self.cfg.g_channels[0], 4, 4)  # (B, C0, 4, 4)
        for block in self.blocks:
            x = block(x, w)
        return torch.tanh(self.to_rgb(lrelu(x)))  # (B, 3, S, S)
