"""The image VAE: the latent space the prior, the decoder and the user features share.

    ImageEncoder: image (B, 3, S, S) in [-1, 1] -> mu, logvar, each (B, C, S/f, S/f)
    Decoder (the generator): latent (B, C, S/f, S/f), style (B,) -> image (B, 3, S, S)

Residual conv blocks without normalisation (no batch statistics: an image never depends on
its batch mates). The decoder's blocks are modulated by a learned style embedding, so a
latent encoded from one art style can be drawn in another. The output layer is linear, not
tanh: under bf16 autocast a tanh saturates to exactly +-1 and its gradient dies; callers
clamp to [-1, 1].
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import STYLES, config_from_dict
from .layers import Affine, lrelu
from .text_encoder import MINILM, text_encoder_spec


MODEL_TYPE = "emoji-latent-vae"  # config.json's model_type: the one model kind there is


@dataclass(frozen=True, kw_only=True)
class LatentConfig:
    """Architecture of the latent model (image VAE + retrieval prior + discriminator)."""

    # the frozen sentence encoder, by name (model.text_encoder.TEXT_ENCODERS says where its files
    # are); a config.json without the field was written with MiniLM and still loads as MiniLM
    text_encoder: str = MINILM
    text_dim: int = 0  # its sentence embedding width; 0 = the named encoder's (384 MiniLM, 768 mpnet)
    styles: tuple[str, ...] = STYLES
    image_size: int = 64
    latent_channels: int = 16  # 8x8x16 = 1,024 numbers per image at 64 px
    # channels per resolution, from image_size down to the latent's (64, 32, 16, 8 at 64 px):
    # len = downsamplings + 1, so 4 entries -> a latent at 1/8 of the image size
    channels: tuple[int, ...] = (32, 64, 128, 256)
    style_dim: int = 32
    d_channels: tuple[int, ...] = (32, 64, 128, 192, 256)  # discriminator: image_size ... 4
    prior_top_k: int = 8  # neighbours the retrieval prior reads a prompt as
    # softmax temperature over MiniLM cosine similarities: 0.02 puts ~0.7 of the weight on a
    # neighbour 0.02 closer than the next; seeds sample among neighbours with these weights
    prior_temperature: float = 0.02
    # when the asked style lacks an emoji, another style's design of it is moved in; these styles'
    # designs only when no other style draws it: OpenMoji's outlined designs move worst into the
    # filled sets (emojis fluent3d lacks: recognised 0.757 -> 0.805, judged fluent3d 0.922 -> 0.953;
    # model/EXPERIMENTS.md, 2026-12-07 evening). Names not in `styles` are ignored.
    prior_moved_last: tuple[str, ...] = ("openmoji",)
    # a set draws an emoji once, so an exact name's seeds in one style show one drawing; these sets'
    # designs of it, moved into the asked style, are its other drawings (their moves keep the most:
    # OpenMoji's outlines and fluent3d's shading move worst), shown only when the gate scores them
    # (realism x match) >= variety_gate x the best of the set's own design (Gate.rank). Chosen on
    # 236 other emojis' names (model/EXPERIMENTS.md, 2026-12-07, "variety for an exact name").
    prior_variety_from: tuple[str, ...] = ("google", "twitter")
    variety_gate: float = 0.8
    gate: float = 0.5  # default realism threshold (P(real)); training sets it from held-out real images
    # an encoded image's latent is fitted through the decoder by this many Adam steps (semi-amortised
    # inference): the prior's tables at export and uploaded images alike; 0 = the encoder's mean
    refine_steps: int = 0
    refine_lr: float = 0.1

    def __post_init__(self) -> None:
        width = text_encoder_spec(self.text_encoder).dim  # ValueError for a name not in the registry
        if self.text_dim == 0:
            object.__setattr__(self, "text_dim", width)
        if self.text_dim != width:
            raise ValueError(f"text_dim {self.text_dim} does not match {self.text_encoder} ({width}-d)")
        n = len(self.channels) - 1
        if self.image_size < 8 or self.image_size & (self.image_size - 1) or self.image_size >> n < 2:
            raise ValueError(f"image_size must be a power of two >= 8 with a latent of >= 2 px; got "
                             f"{self.image_size} with {len(self.channels)} channel stages")
        if len(self.d_channels) != self.image_size.bit_length() - 2:
            raise ValueError(f"d_channels needs {self.image_size.bit_length() - 2} entries for "
                             f"image_size={self.image_size}, got {len(self.d_channels)}")
        if not self.styles or len(set(self.styles)) != len(self.styles):
            raise ValueError(f"styles must be unique and non-empty, got {self.styles}")
        for name in ("latent_channels", "style_dim", "prior_top_k", "prior_temperature"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.refine_steps < 0 or self.refine_lr <= 0:
            raise ValueError(f"refine_steps must be >= 0 and refine_lr > 0, got {self.refine_steps}, {self.refine_lr}")
        if self.variety_gate < 0:
            raise ValueError(f"variety_gate must be >= 0, got {self.variety_gate}")
        if not 0.0 <= self.gate <= 1.0:
            raise ValueError(f"gate must be in [0, 1], got {self.gate}")

    @property
    def num_styles(self) -> int:
        return len(self.styles)

    @property
    def latent_size(self) -> int:
        return self.image_size >> (len(self.channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_size, self.latent_size)

    @classmethod
    def load(cls, path: str | Path) -> "LatentConfig":
        """A model folder's config.json; a model_type other than MODEL_TYPE (e.g. the retired GAN's
        "emoji-vae-gan") is a ValueError that names it."""
        try:
            d = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        kind = d.pop("model_type", MODEL_TYPE)
        if kind != MODEL_TYPE:
            raise ValueError(f"model_type {kind!r} is not a kind this code loads (only {MODEL_TYPE!r}; "
                             "the VAE-GAN of before 2026-12 was retired, git history keeps its code)")
        d.pop("training", None)
        return config_from_dict(cls, d)


TINY_LATENT = dict(image_size=16, latent_channels=4, channels=(8, 16), style_dim=4, d_channels=(8, 8, 16))
"""A tiny latent model for tests (16 px images, 8 px latent)."""


# --- blocks ---

class ResBlock(nn.Module):
    """(B, C, H, W) -> (B, C, H, W); two 3x3 convs, optionally modulated by w; the residual
    branch starts closed, so a fresh network is close to its skip path."""

    def __init__(self, channels: int, w_dim: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.aff1 = Affine(w_dim, channels) if w_dim else None
        self.aff2 = Affine(w_dim, channels) if w_dim else None
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        h = x if self.aff1 is None else self.aff1(x, w)
        h = self.conv1(lrelu(h))
        h = h if self.aff2 is None else self.aff2(h, w)
        h = self.conv2(lrelu(h))
        return x + self.gain * h


class ImageEncoder(nn.Module):
    """image (B, 3, S, S) in [-1, 1] -> mu, logvar (B, C, S/f, S/f), f = 2 ** (len(channels) - 1)."""

    def __init__(self, cfg: LatentConfig) -> None:
        super().__init__()
        ch = cfg.channels
        self.stem = nn.Conv2d(3, ch[0], 3, padding=1)
        self.blocks = nn.ModuleList(ResBlock(c) for c in ch)
        self.downs = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 4, stride=2, padding=1) for i in range(len(ch) - 1))
        self.mid = ResBlock(ch[-1])
        self.head = nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.stem(x)  # (B, ch0, S, S)
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i < len(self.downs):
                h = self.downs[i](lrelu(h))  # (B, ch[i+1], H/2, W/2)
        mu, logvar = self.head(lrelu(self.mid(h))).float().chunk(2, dim=1)  # (B, C, s, s) each
        return mu, logvar.clamp(-12.0, 4.0)


class Decoder(nn.Module):
    """The generator: latent (B, C, s, s), style (B,) long in [0, num_styles) -> (B, 3, S, S),
    roughly in [-1, 1] (linear output; clamp for display)."""

    def __init__(self, cfg: LatentConfig) -> None:
        super().__init__()
        ch = cfg.channels[::-1]  # latent resolution first
        self.style_emb = nn.Embedding(cfg.num_styles, cfg.style_dim)
        self.stem = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        self.mid = ResBlock(ch[0], cfg.style_dim)
        self.blocks = nn.ModuleList(ResBlock(c, cfg.style_dim) for c in ch)
        self.ups = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 3, padding=1) for i in range(len(ch) - 1))
        self.out = nn.Conv2d(ch[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        w = self.style_emb(style)  # (B, style_dim)
        h = self.mid(self.stem(z), w)  # (B, ch0, s, s)
        for i, block in enumerate(self.blocks):
            h = block(h, w)
            if i < len(self.ups):
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                h = self.ups[i](lrelu(h))  # (B, ch[i+1], 2H, 2W)
        return self.out(lrelu(h))  # (B, 3, S, S)


def kl_map(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) averaged over every latent number: a scalar."""
    return 0.5 * torch.mean(mu.float().pow(2) + logvar.float().exp() - 1.0 - logvar.float())


__all__ = ["MODEL_TYPE", "LatentConfig", "TINY_LATENT", "ImageEncoder", "Decoder", "ResBlock", "kl_map"]
