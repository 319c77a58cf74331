"""Every loss term of the latent model and its weight, in one place.

The autoencoder (ImageEncoder + Decoder) is trained on reconstruction first; after
``adv_start`` steps the discriminator joins, as in VQGAN / latent-diffusion autoencoders:
its hinge realism term and a matching-aware text term train D, and G (the decoder) adds
the adversarial term. No ImageNet network and no evaluator enters any term here: they
stay independent measuring instruments.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..augment import diff_augment
from ..latent import kl_map
from ..losses import d_hinge, g_hinge, matching_aware, r1_penalty
from ..refine import reconstruction


@dataclass(frozen=True, kw_only=True)
class Weights:
    recon: float = 1.0  # L1 on [-1, 1] pixels between the decoded and the target image
    edge: float = 1.0  # L1 between their x/y finite differences: punishes blurred outlines that plain L1 tolerates
    kl: float = 1e-3  # KL of the latent posterior to N(0, I): small, so the latent keeps detail
    adv: float = 0.05  # adversarial term on the decoder, once D has started
    match: float = 1.0  # D's text-match head (matching-aware, on real images only: D's own training)
    r1_gamma: float = 0.1  # R1 on real images, lazily every r1_interval D steps
    r1_interval: int = 4


def generator_loss(y, target, mu, logvar, d_fake_realism, w: Weights) -> tuple[torch.Tensor, dict]:
    """Total decoder + encoder loss and its parts (floats for the log).
    d_fake_realism: D's realism logits on the decoded images, or None before D starts."""
    parts = reconstruction(y, target)
    parts["kl"] = kl_map(mu, logvar)
    total = w.recon * parts["l1"] + w.edge * parts["edge"] + w.kl * parts["kl"]
    if d_fake_realism is not None:
        parts["g_adv"] = g_hinge(d_fake_realism.float())
        total = total + w.adv * parts["g_adv"]
    return total, {k: float(v.detach()) for k, v in parts.items()}


def discriminator_loss(disc, real, fake, e, e_wrong, style, step: int, w: Weights,
                       augment: str) -> tuple[torch.Tensor, dict]:
    """D's hinge realism loss on (augmented) real vs decoded images, its matching-aware text
    term on real images with their own vs another image's caption, and lazy R1."""
    real_a, fake_a = diff_augment(real, augment), diff_augment(fake.detach(), augment)
    r1_now = w.r1_gamma > 0 and step % w.r1_interval == 0
    if r1_now:
        real_a = real_a.detach().requires_grad_(True)
    phi_r, patch_r = disc.features(real_a)
    phi_f, patch_f = disc.features(fake_a)
    real_logit, fake_logit = disc.realism_logit(phi_r, patch_r), disc.realism_logit(phi_f, patch_f)
    parts = {"d_real": real_logit.float().mean(), "d_fake": fake_logit.float().mean()}
    adv = d_hinge(real_logit.float(), fake_logit.float())
    m_real = disc.match_logit(phi_r, e, style).float()
    m_fake = disc.match_logit(phi_f, e, style).float()
    m_wrong = disc.match_logit(phi_r, e_wrong, style).float()
    match = matching_aware(m_real, m_fake, m_wrong)
    total = adv + w.match * match
    if r1_now:
        r1 = r1_penalty(real_logit, real_a)
        parts["r1"] = r1
        total = total + w.r1_gamma * w.r1_interval * r1
    parts.update(d_adv=adv, d_match=match)
    return total, {k: float(v.detach()) for k, v in parts.items()}
