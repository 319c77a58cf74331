"""The discriminator's text-match head, refitted on frozen image features.

The head reads the sentence embedding (Discriminator.proj and .match_bias take text_dim + the
style one-hot), so a model moved to another text encoder needs a new one. Only the head is
fitted: the trunk's features phi of the real images and of their reconstructions are computed
once through the frozen networks, then the head is trained with the training's own
matching-aware loss (real image + a caption of it: a match; its reconstruction, or the real
image with another image's caption: not), on the images the training run let D see. The images
it held out measure the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..dataset import Pack
from ..evaluator import image_names
from ..latent_model import LatentModel
from ..losses import matching_aware
from ..pixels import to_unit

HEAD = ("proj", "match_bias")  # the discriminator's modules that read the text


@dataclass
class Features:
    real: torch.Tensor  # (N, C) phi of the real images
    fake: torch.Tensor  # (N, C) phi of their reconstructions (encoder mean -> decoder, own style)
    style: torch.Tensor  # (N,) style ids


@torch.no_grad()
def image_features(model: LatentModel, pack: Pack, *, batch: int = 128) -> Features:
    """phi of every image of the pack and of its reconstruction, through the frozen networks (CPU, float32)."""
    model = model.eval()
    real, fake = [], []
    for i in range(0, len(pack), batch):
        x = to_unit(pack.images[i:i + batch])  # (B, 3, S, S) in [-1, 1]
        s = pack.styles[i:i + batch]
        mu, _ = model.encoder(x)
        recon = model.decoder(mu, s).clamp(-1, 1)
        real.append(model.discriminator.features(x)[0])
        fake.append(model.discriminator.features(recon)[0])
    return Features(torch.cat(real).float(), torch.cat(fake).float(), pack.styles.clone())


def fit_match_head(model: LatentModel, pack: Pack, feats: Features, train: torch.Tensor, *, steps: int = 3000,
                   batch: int = 512, lr: float = 1e-3, seed: int = 0) -> dict:
    """Re-initialise and train the discriminator's text-match head on the rows `train` (bool (N,)),
    in place; returns the last loss. pack.cap_emb must be the model's encoder's."""
    disc = model.discriminator
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    for name in HEAD:
        getattr(disc, name).reset_parameters()
    params = [p for name in HEAD for p in getattr(disc, name).parameters()]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9))
    off, cap_index = pack.cap_offsets, pack.cap_index
    pool = torch.nonzero(train)[:, 0]
    emb = pack.cap_emb.float()
    loss = torch.tensor(0.0)
    with torch.enable_grad():
        for p in params:
            p.requires_grad_(True)
        for _ in range(steps):
            idx = pool[torch.randint(len(pool), (batch,), generator=g)]
            k = off[idx] + (torch.rand(batch, generator=g) * (off[idx + 1] - off[idx])).long()
            e = emb[cap_index[k]]  # (B, text_dim): a caption of each image, as the training's batches
            s = feats.style[idx]
            m_real = disc.match_logit(feats.real[idx], e, s)
            m_fake = disc.match_logit(feats.fake[idx], e, s)
            m_wrong = disc.match_logit(feats.real[idx], e.roll(1, 0), s)
            loss = matching_aware(m_real, m_fake, m_wrong)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for p in params:
        p.requires_grad_(False)
    return {"steps": steps, "loss": round(float(loss.detach()), 4)}


@torch.no_grad()
def match_accuracy(model: LatentModel, pack: Pack, feats: Features, rows: torch.Tensor, *, seed: int = 0) -> dict:
    """On the images `rows` (bool (N,)), with their exact names (embedded by pack's encoder) and
    another emoji's name: `pair` = share of images whose own name scores above the other name;
    `balanced` = accuracy of P(match) > 0.5 over (image, own name) vs (image, other name);
    `vs_recon` = share whose own name scores the real image above its reconstruction.
    Also the per-image pair hits (for paired comparisons)."""
    disc = model.discriminator
    names = image_names(pack)
    distinct = sorted(set(names))
    if len(distinct) < 2:
        raise ValueError("the pack needs at least two emojis to tell a caption from another's")
    idx = torch.nonzero(rows)[:, 0]
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(distinct) - 1, (len(idx),), generator=g).tolist()
    # another emoji's name, never the image's own: a random one of the others
    other = [[n for n in distinct if n != names[i]][k] for i, k in zip(idx.tolist(), pick)]
    row_of = {c: i for i, c in enumerate(pack.captions)}
    own = pack.cap_emb[torch.tensor([row_of[names[i]] for i in idx.tolist()])].float()
    wrong = pack.cap_emb[torch.tensor([row_of[n] for n in other])].float()
    s = feats.style[idx]
    m_own = disc.match_logit(feats.real[idx], own, s)
    m_wrong = disc.match_logit(feats.real[idx], wrong, s)
    m_fake = disc.match_logit(feats.fake[idx], own, s)
    pair = (m_own > m_wrong).float()
    balanced = 0.5 * ((m_own > 0).float().mean() + (m_wrong <= 0).float().mean())
    return {"images": len(idx), "pair": round(float(pair.mean()), 4), "balanced": round(float(balanced), 4),
            "vs_recon": round(float((m_own > m_fake).float().mean()), 4), "pair_hits": pair.tolist()}


def swap_text_encoder(model: LatentModel, cfg) -> LatentModel:
    """A model with cfg (another text encoder) holding `model`'s networks and latent tables; the
    discriminator's text-match head is left freshly initialised (fit it) and the prior's caption
    table and query map empty (fill them)."""
    new = LatentModel(cfg)
    new.encoder.load_state_dict(model.encoder.state_dict())
    new.decoder.load_state_dict(model.decoder.state_dict())
    keep = {k: v for k, v in model.discriminator.state_dict().items() if k.split(".")[0] not in HEAD}
    missing, unexpected = new.discriminator.load_state_dict(keep, strict=False)
    if unexpected or {k.split(".")[0] for k in missing} - set(HEAD):
        raise ValueError(f"discriminator keys do not match: missing {missing}, unexpected {unexpected}")
    return new.eval()

