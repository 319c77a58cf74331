"""The model's networks on their device, one call each: text encoder (embed), image encoder
(encode), decoder (decode), discriminator (judge), upsampler (super_resolve). Every task is made
of these calls; the device, dtype and bf16 policy are decided once, here.

Inputs may be on any device; outputs are float32, on the device unless a docstring says the CPU.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .hub import ModelInfo
from .latent_model import LatentModel
from .pixels import to_uint8, to_unit
from .upsample import Upsampler, resize

OUTPUT_SIZE = 256  # what upscale=True returns: the super-resolution stage's output
# images per decoder / discriminator call: throughput is flat from 16 to 64 on this CPU, and
# batched requests at 64 per call raised the app's peak memory under load by ~600 MiB
CHUNK = 16
EMBEDDING_CACHE = 4096  # prompts whose embeddings are kept (cleared whole when full)


@dataclass
class Stages:
    model: LatentModel
    info: ModelInfo
    device: torch.device
    dtype: torch.dtype = torch.float32
    # the 64 -> 256 super-resolution stage; None: bicubic (said so by upsampler_name)
    upsampler: Upsampler | None = None
    encoder: object | None = None  # SentenceEncoder; built on the first prompt
    cpu_bf16: bool = False  # bf16 autocast + channels_last on a CPU with native bf16 (AMX / AVX512-BF16)
    embeddings: dict = field(default_factory=dict, repr=False)  # prompt -> (text_dim,) float32 on the CPU
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def upsampler_name(self) -> str:
        return self.upsampler.cfg.name if self.upsampler is not None else "bicubic (no upsampler loaded)"

    @property
    def size(self) -> int:
        return self.model.cfg.image_size

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.cpu_bf16 else contextlib.nullcontext()

    # --- text encoder ---
    def embed(self, prompts: list[str]) -> torch.Tensor:
        """(P,) prompts -> (P, text_dim) embeddings by the model's text encoder, on the device (cached per prompt)."""
        return torch.stack([self._embed_one(p) for p in prompts]).to(self.device, self.dtype)

    def _embed_one(self, prompt: str) -> torch.Tensor:
        if prompt not in self.embeddings:
            with self.lock:  # concurrent first requests must not build (or import) it twice
                if self.encoder is None:  # the encoder the model's config names (its folder's copy first)
                    from .text_encoder import MINILM, load_text_encoder
                    name = getattr(self.model.cfg, "text_encoder", MINILM)
                    self.encoder = load_text_encoder(name, self.info.folder).to(self.device)
            if len(self.embeddings) >= EMBEDDING_CACHE:
                self.embeddings.clear()
            self.embeddings[prompt] = self.encoder([prompt])[0].float().cpu()
        return self.embeddings[prompt]

    def set_embedding(self, prompt: str, e: torch.Tensor) -> None:
        """Use e (text_dim,) as the prompt's embedding (benchmarks and tests without the sentence encoder)."""
        self.embeddings[prompt] = e.detach().float().cpu()

    # --- image encoder, decoder, discriminator ---
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> the image encoder's mean (B, C, h, w), float32 on the device."""
        with torch.inference_mode(), self.autocast():
            mu, _ = self.model.encoder(x.to(self.device, self.dtype))
        return mu.float()

    def decode(self, z: torch.Tensor, style: torch.Tensor, batch: int = CHUNK) -> torch.Tensor:
        """Latents (N, C, h, w), named style ids (N,) -> (N, 3, S, S) in [-1, 1]."""
        out = []
        for i in range(0, len(z), batch):
            with torch.inference_mode(), self.autocast():
                x = self.model.decoder(z[i:i + batch].to(self.device, self.dtype), style[i:i + batch].to(self.device))
            out.append(x.float().clamp(-1, 1))
        return torch.cat(out)

    def judge(self, x: torch.Tensor, e: torch.Tensor | None, style: torch.Tensor | None):
        """x (B, 3, S, S) in [-1, 1] -> (P(real) (B,), P(match) (B,) or None, patch map (B, 1, h, w))."""
        with torch.inference_mode(), self.autocast():
            realism, match, patch = self.model.discriminator(
                x.to(self.device, self.dtype), e, None if style is None else style.to(self.device))
        return (torch.sigmoid(realism.float()).cpu(),
                None if match is None else torch.sigmoid(match.float()).cpu(),
                torch.sigmoid(patch.float()).cpu())

    # --- upsampler, and out to PIL ---
    def super_resolve(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 3, 256, 256) by the upsampler (bicubic without one).
        The input is first quantised to the 8-bit image the model's size shows, and images go
        through one at a time: the 256-px image is a function of that 64-px image alone (a seed
        gives the same image alone or in any batch; conv kernels may pick per-batch algorithms)."""
        x = to_unit(to_uint8(x))
        if self.upsampler is None:
            return resize(x, OUTPUT_SIZE, "bicubic")
        with self.autocast():
            return torch.cat([self.upsampler.upscale(x[i:i + 1], OUTPUT_SIZE).float().cpu() for i in range(len(x))])

    def finish(self, x: torch.Tensor, upscale: bool) -> list[Image.Image]:
        """Decoded images -> PIL, at 256 px through the super-resolution stage or at the model's size.
        upscale: a checked bool."""
        return to_pil(self.super_resolve(x) if upscale else x)


def to_pil(x: torch.Tensor) -> list[Image.Image]:
    """(B, 3, S, S) in [-1, 1] -> PIL images."""
    arr = to_uint8(x).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


def image_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image -> (1, 3, S, S) in [-1, 1]."""
    return to_unit(torch.from_numpy(np.array(img)).permute(2, 0, 1)[None])
