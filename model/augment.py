"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image the
discriminator sees, real and fake, so a small dataset does not let D memorise it.

Colour is left alone on purpose: captions name colours ("red heart", "green apple").
"""
from __future__ import annotations

import torch

POLICIES = ("translation", "cutout")


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a whole number of pixels, up to ratio*size; the border (white for
    emoji) fills the gap.

    Whole pixels, as in DiffAugment: a fractional shift resamples bilinearly, which blurs
    real and fake alike and hides the finest pixel pattern from D -- a 2-px crosshatch on
    generated images is invisible at a half-pixel shift, so G could add it unpunished.
    """
    b, c, h, w = x.shape
    sy, sx = round(h * ratio), round(w * ratio)
    ty = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
    tx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
    ys = (torch.arange(h, device=x.device).view(1, h, 1) + ty).clamp_(0, h - 1)  # (B, H, 1)
    xs = (torch.arange(w, device=x.device).view(1, 1, w) + tx).clamp_(0, w - 1)  # (B, 1, W)
    idx = (ys * w + xs).view(b, 1, h * w).expand(b, c, h * w)  # source pixel of each pixel
    return x.reshape(b, c, h * w).gather(2, idx).view(b, c, h, w)


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
