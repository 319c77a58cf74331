"""GAN losses, one small function each (hinge form of the article's real/fake objective)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: real logits pushed above +1, fake below -1."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    """Generator loss: raise the discriminator's logit on generated images."""
    return -fake.mean()


def matching_aware(match_real: torch.Tensor, match_fake: torch.Tensor,
                   match_wrong: torch.Tensor) -> torch.Tensor:
    """Text-match head: (real image, its text) is a match; (fake, text) and
    (real image, someone else's text) are not (GAN-INT-CLS / DF-GAN)."""
    return F.relu(1.0 - match_real).mean() + 0.5 * (F.relu(1.0 + match_fake).mean()
                                                    + F.relu(1.0 + match_wrong).mean())


def r1_penalty(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean squared gradient norm of D on real images."""
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    return grad.float().pow(2).sum(dim=(1, 2, 3)).mean()
