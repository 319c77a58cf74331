"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image the
discriminator sees, real and fake, so a small dataset does not let D memorise it.

Colour is left alone on purpose: captions name colours ("red heart", "green apple").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout")


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio*size pixels; the border (white for emoji) fills the gap."""
    b = x.shape[0]
    shift = (torch.rand(b, 2, device=x.device) * 2 - 1) * ratio * 2  # in [-1, 1] grid units
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift.to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def cutout(x: torch.Tensor, ratio: float = 0.25) -> torch.Tensor:
    """Blank one random square of side ratio*size in each image (to 0, mid-grey)."""
    b, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio)), max(1, int(w * ratio))
    cy = torch.randint(0, h - ch + 1, (b, 1, 1), device=x.device)
    cx = torch.randint(0, w - cw + 1, (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= cy) & (ys < cy + ch) & (xs >= cx) & (xs < cx + cw)  # (B, H, W)
    return x * (~hole).unsqueeze(1).to(x.dtype)


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """policy: comma-separated names from POLICIES, or "" for none."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in POLICIES:
            raise ValueError(f"unknown augmentation {name!r}; expected some of {POLICIES}")
        x = {"translation": translation, "cutout": cutout}[name](x)
    return x
