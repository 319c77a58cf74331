"""What the pipeline takes and returns (its limits, one request, the scored images and a
generation), and how shown images are ordered: the best of each design first, styles in turn."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .compose import Plan
from .prior import Reading


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int = 300  # emoji names are a few words; MiniLM reads 128 tokens at most
    max_images: int = 16  # images returned per request
    max_candidates: int = 64  # images drawn for the discriminator gate per request
    max_steps: int = 32  # interpolation frames
    max_upload_pixels: int = 4096 * 4096  # larger uploads are refused from their header, before decoding
    max_truncation: float = 2.0


@dataclass
class Scored:
    image: Image.Image | None  # set once chosen: only the shown images are upscaled
    seed: int
    realism: float  # P(real) from the discriminator, in [0, 1]
    match: float  # P(image fits the prompt), in [0, 1]
    kept: bool  # passed the gate
    style: str  # the art style it was drawn in ("any" resolves per seed)
    redrawn_from: str | None = None  # another set's design of it, moved into `style` (for variety); None: style's own


@dataclass
class Generation:
    images: list[Scored]  # best first: the kept ones, then (if asked) the best rejected ones
    candidates: int
    discarded: int
    gate: float = 0.5  # the realism threshold that was applied
    reading: Reading | None = None  # what the prior read the prompt as
    plan: Plan | None = None  # the parts it was drawn from, when it names two ideas or a colour (model.compose)


@dataclass
class GenerateRequest:
    """One checked `TextToImage.generate` call (style: a style id; num_styles means "any")."""
    prompt: str
    n: int
    candidates: int
    seed: int
    style: int
    truncation: float
    gate: float
    fill: bool
    upscale: bool
    variety: bool = False  # in a named style, other sets' designs moved into it too (TextToImage.generate)


@dataclass
class ScoreResult:
    realism: float
    match: float | None
    patch: np.ndarray  # (h, w) P(real) per region
    heatmap: Image.Image  # the image with the patch map overlaid
    image: Image.Image  # the model-size input the discriminator saw


def distinct_first(ranked: list[Scored], key: dict[int, object]) -> list[Scored]:
    """Best-first images -> the best image of each design (key[id(image)]), then the rest, each
    part in rank order."""
    seen, first, rest = set(), [], []
    for s in ranked:
        (rest if key[id(s)] in seen else first).append(s)
        seen.add(key[id(s)])
    return first + rest


def round_robin(ranked: list[Scored]) -> list[Scored]:
    """Best-first images -> the best of each style, then the second best of each, and so on
    (styles in the order their best image ranks)."""
    by_style: dict[str, list[Scored]] = {}
    for s in ranked:
        by_style.setdefault(s.style, []).append(s)
    queues = list(by_style.values())
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
