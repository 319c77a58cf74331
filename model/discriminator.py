"""Discriminator: image (+ text condition) -> realism logit, text-match logit, patch map.

- realism: unconditional "is this a real image" logit (the article's gate);
- match: projection logit <phi(x), W [e; style]> -- does the image fit the text (and style);
- patch: (B, 1, S/8, S/8) map of per-region realism logits from a 1x1 conv (the article's
  validity map), averaged into the realism logit so it is trained, shown as a heatmap.
"""
from __future__ import annotations

import torch
from torch import nn

from .latent import LatentConfig
from .layers import DownBlock, lrelu


class Discriminator(nn.Module):
    def __init__(self, cfg: LatentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.d_channels
        self.from_rgb = nn.Conv2d(3, ch[0], 3, padding=1)
        self.blocks = nn.ModuleList(DownBlock(ch[i], ch[i + 1]) for i in range(len(ch) - 1))
        self.patch = nn.Conv2d(ch[-2], 1, 1)  # on the 8x8 features
        self.realism = nn.Linear(ch[-1], 1)
        self.proj = nn.Linear(cfg.text_dim + cfg.num_styles, ch[-1])
        self.match_bias = nn.Linear(cfg.text_dim + cfg.num_styles, 1)

    def condition(self, e: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """e: (B, text_dim), style: (B,) long; index num_styles ("any"/unknown) gives zeros."""
        onehot = torch.zeros(e.shape[0], self.cfg.num_styles + 1, device=e.device, dtype=e.dtype)
        onehot.scatter_(1, style.view(-1, 1), 1.0)
        return torch.cat([e, onehot[:, :-1]], dim=1)  # (B, text_dim + num_styles)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, S, S) in [-1, 1] -> phi (B, C), patch logits (B, 1, S/8, S/8)."""
        h = self.from_rgb(x)
        for i, block in enumerate(self.blocks):
            if i == len(self.blocks) - 1:
                patch = self.patch(lrelu(h))  # (B, 1, 8, 8) at 64 px
            h = block(h)
        phi = lrelu(h).sum(dim=(2, 3))  # (B, C)
        return phi, patch

    def realism_logit(self, phi: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        """(B, C), (B, 1, h, w) -> (B,) unconditional realism logit."""
        return self.realism(phi).squeeze(1) + patch.mean(dim=(1, 2, 3))

    def match_logit(self, phi: torch.Tensor, e: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C), text (B, text_dim), style (B,) or None (unknown) -> (B,) text-match logit."""
        if style is None:
            style = torch.full((phi.shape[0],), self.cfg.num_styles, device=phi.device, dtype=torch.long)
        cond = self.condition(e.to(phi.dtype), style)  # (B, text_dim + num_styles)
        return (phi * self.proj(cond)).sum(1) / phi.shape[1] ** 0.5 + self.match_bias(cond).squeeze(1)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None = None,
                style: torch.Tensor | None = None):
        """Returns realism (B,), match (B,) or None when e is None, patch (B, 1, h, w)."""
        phi, patch = self.features(x)
        match = None if e is None else self.match_logit(phi, e, style)
        return self.realism_logit(phi, patch), match, patch
