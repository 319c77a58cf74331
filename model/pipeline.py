"""Inference: prompt -> images (discriminator-gated), latent interpolation, and scoring.

All bounds are checked here, so the web UI and API callers are equally protected.
Every image k of a request is drawn from its own RNG seeded with (seed + k): a seed gives
the same image alone or inside any batch.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

from .batching import Batcher
from .checks import MAX_SEED, InputChecks
from .compose import Composer, Plan, compose, recolour
from .outputs import (GenerateRequest, Generation, Limits, Scored, ScoreResult, distinct_first,  # noqa: F401
                      round_robin)
from .device import cpu_has_fast_bf16, pick_device
from .hub import ModelInfo, load_model
from .image_tasks import ImageTasks
from .images import array_to_image, heatmap_overlay, open_image, square_on_white
from .latent_model import LatentModel
from .prior import Reading
from .upsample import Upsampler, resize
from .paths import UPSAMPLER_DIR
from .pixels import to_uint8, to_unit

OUTPUT_SIZE = 256  # what upscale=True returns: the super-resolution stage's output
# images per decoder / discriminator call: throughput is flat from 16 to 64 on this CPU, and
# batched requests at 64 per call raised the app's peak memory under load by ~600 MiB
CHUNK = 16
OTHER_PART_SEED = 7_919  # a composed prompt's second part is drawn from seed + this


@dataclass
class Pipeline(InputChecks, ImageTasks):
    model: LatentModel
    info: ModelInfo
    device: torch.device
    dtype: torch.dtype = torch.float32
    limits: Limits = field(default_factory=Limits)
    # the 64 -> 256 super-resolution stage; None: bicubic (said so by upsampler_name)
    upsampler: Upsampler | None = None
    encoder: object | None = None  # SentenceEncoder; built lazily
    _emb_cache: dict = field(default_factory=dict, repr=False)
    _encoder_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _batcher: Batcher | None = field(default=None, repr=False)
    max_batch: int = 8  # generate calls drawn together when they arrive while the model is busy
    on_idle: Callable[[], object] | None = None  # called after a generate batch when no call waits (the app: memory.trim)
    cpu_bf16: bool = False  # bf16 autocast + channels_last on a CPU with native bf16 (AMX / AVX512-BF16)
    compose: bool = True  # draw prompts that name two ideas or a colour from their parts (model.compose)
    distinct: bool = True  # show the best of each design before a second of any (judge_and_rank)
    _composer: Composer | None = field(default=None, repr=False)

    @classmethod
    def from_pretrained(cls, model_id: str | None = None, revision: str | None = None, *,
                        device: str | None = None, limits: Limits | None = None,
                        upsampler: str | Path | None = UPSAMPLER_DIR) -> "Pipeline":
        """upsampler: an Upsampler folder (default: the one shipped in assets/upsampler); None = bicubic."""
        model, info = load_model(model_id, revision)
        dev = torch.device(pick_device(device))
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
        model = model.to(dev, dtype).eval().requires_grad_(False)
        cpu_bf16 = dev.type == "cpu" and cpu_has_fast_bf16()
        if cpu_bf16:  # measured here: 1.8x the fp32 throughput at batch 16, mean abs diff 7e-4
            model = model.to(memory_format=torch.channels_last)
            # the prior's latent tables are data, not conv inputs: flat row views, no copy per read
            model.prior.to(memory_format=torch.contiguous_format)
        up = None if upsampler is None else Upsampler.from_folder(upsampler).to(dev, dtype)
        return cls(model=model, info=info, device=dev, dtype=dtype, limits=limits or Limits(), cpu_bf16=cpu_bf16,
                   upsampler=up)

    @property
    def upsampler_name(self) -> str:
        return self.upsampler.cfg.name if self.upsampler is not None else "bicubic (no upsampler loaded)"

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.cpu_bf16 else contextlib.nullcontext()

    @property
    def styles(self) -> list[str]:
        return ["any", *self.model.cfg.styles]

    @property
    def size(self) -> int:
        return self.model.cfg.image_size

    @property
    def default_gate(self) -> float:
        """The model's calibrated realism threshold (it keeps ~90 % of held-out real images)."""
        return float(self.model.cfg.gate)

    def read(self, prompt: str) -> Reading:
        """What the prior reads a prompt as: the nearest known emojis and their weights."""
        return self.model.prior.read(self.embed([self.check_prompt(prompt)]).float().cpu())[0]

    def similarity(self, texts: list[str]) -> torch.Tensor:
        """(P,) each text's best caption similarity in the prior (how well it names a known emoji)."""
        return self.model.prior.best_similarity(self.embed(texts).float().cpu())

    def plan(self, prompt: str) -> Plan | None:
        """The parts a prompt is drawn from (model.compose), or None: drawn whole by the prior."""
        if not self.compose:
            return None
        if self._composer is None:
            self._composer = Composer(self.similarity, self.model.prior.names)
        return self._composer.plan(prompt)

    def set_prior(self, prior) -> None:
        """Read prompts with another prior (an evaluation that takes emojis out of the tables)."""
        self.model.prior, self._composer = prior, None

    # --- building blocks ---
    def embed(self, prompts: list[str]) -> torch.Tensor:
        """(P,) prompts -> (P, text_dim) embeddings by the model's text encoder, on the device (cached per prompt)."""
        return torch.stack([self._embed_one(p) for p in prompts]).to(self.device, self.dtype)

    def set_embedding(self, prompt: str, e: torch.Tensor) -> None:
        """Use e (text_dim,) as the prompt's embedding (benchmarks without the sentence encoder)."""
        self._emb_cache[prompt] = e.detach().float().cpu()

    def clear_embeddings(self) -> None:
        """Forget cached prompt embeddings (a benchmark that times the text encoder each call)."""
        self._emb_cache.clear()

    def _embed_one(self, prompt: str) -> torch.Tensor:
        if prompt not in self._emb_cache:
            with self._encoder_lock:  # concurrent first requests must not build (or import) it twice
                if self.encoder is None:  # the encoder the model's config names (its folder's copy first)
                    from .text_encoder import MINILM, load_text_encoder
                    name = getattr(self.model.cfg, "text_encoder", MINILM)
                    self.encoder = load_text_encoder(name, self.info.folder).to(self.device)
            if len(self._emb_cache) >= 4096:
                self._emb_cache.clear()
            self._emb_cache[prompt] = self.encoder([prompt])[0].float().cpu()
        return self._emb_cache[prompt]

    def seed_styles(self, style: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """Style ids (N,) with "any" (id num_styles) replaced per seed: seed k draws named style
        k mod num_styles, so consecutive seeds show every style (the decoder knows named styles only)."""
        k = self.model.cfg.num_styles
        by_seed = torch.tensor([s % k for s in seeds], dtype=torch.long)
        return torch.where(style.cpu() == k, by_seed, style.cpu())

    def sample(self, e: torch.Tensor, style: torch.Tensor, seeds: list[int], truncation: float = 1.0,
               readings: list[Reading] | None = None) -> torch.Tensor:
        """e (N, text_dim) embeddings, style (N,) ids, one seed each -> (N, 3, S, S) float in [-1, 1].
        The raw samples behind generate (no gate); the evaluation samples through this too.
        readings: the prior's readings of e's rows, when the caller has them already."""
        style = self.seed_styles(style, seeds)
        if readings is None:  # each distinct prompt read once (a request repeats one prompt N times)
            uniq, inv = torch.unique(e.float().cpu(), dim=0, return_inverse=True)
            per_prompt = self.model.prior.read(uniq)
            readings = [per_prompt[i] for i in inv.tolist()]
        z = self.model.prior.sample(readings, style.tolist(), seeds, truncation)  # (N, C, h, w)
        return self.decode(z, style)

    def draw(self, reading: Reading, plan: Plan | None, style: torch.Tensor, seeds: list[int],
             truncation: float = 1.0) -> tuple[torch.Tensor, list]:
        """One prompt's candidates: named style ids (N,), seeds (N,) -> (N, 3, S, S) in [-1, 1]
        and each one's design (the stored latent row(s) it was drawn from). With a plan, each
        part is read and drawn from its own seed, then laid out and coloured (model.compose);
        else the prompt's reading is sampled and decoded."""
        st, prior = style.tolist(), self.model.prior
        if plan is None:
            z, rows = prior.sample_designs([reading] * len(seeds), st, seeds, truncation)
            return self.decode(z, style), rows
        parts = prior.read(self.embed(plan.parts).float().cpu())
        z, rows = prior.sample_designs([parts[0]] * len(seeds), st, seeds, truncation)
        x = self.decode(z, style)
        if plan.colour:
            x = torch.stack([recolour(xi, plan.colour) for xi in x])
        if plan.layout is None:
            return x, rows
        other_seeds = [(s + OTHER_PART_SEED) % (MAX_SEED + 1) for s in seeds]  # the second part: its own draw
        z, other_rows = prior.sample_designs([parts[-1]] * len(seeds), st, other_seeds, truncation)
        other = self.decode(z, style)
        if plan.layout == "two" and plan.colour:
            other = torch.stack([recolour(xi, plan.colour) for xi in other])
        return torch.stack([compose(a, b, plan.layout) for a, b in zip(x, other)]), list(zip(rows, other_rows))

    def decode(self, z: torch.Tensor, style: torch.Tensor, batch: int = CHUNK) -> torch.Tensor:
        """Latents (N, C, h, w), named style ids (N,) -> (N, 3, S, S) in [-1, 1]."""
        out = []
        for i in range(0, len(z), batch):
            with torch.inference_mode(), self.autocast():
                x = self.model.decoder(z[i:i + batch].to(self.device, self.dtype), style[i:i + batch].to(self.device))
            out.append(x.float().clamp(-1, 1))
        return torch.cat(out)

    def judge(self, x: torch.Tensor, e: torch.Tensor | None, style: torch.Tensor | None):
        """x (B, 3, S, S) in [-1, 1] -> (P(real) (B,), P(match) (B,) or None, patch map (B, 1, h, w)), on the CPU."""
        with torch.inference_mode(), self.autocast():
            realism, match, patch = self.model.discriminator(x.to(self.device, self.dtype), e, style)
        return (torch.sigmoid(realism.float()).cpu(),
                None if match is None else torch.sigmoid(match.float()).cpu(),
                torch.sigmoid(patch.float()).cpu())

    @staticmethod
    def to_pil(x: torch.Tensor) -> list[Image.Image]:
        """(B, 3, S, S) in [-1, 1] -> PIL images."""
        arr = to_uint8(x).permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a) for a in arr]

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
        upscale: a checked bool (each entry point validates its inputs once, before any work)."""
        return self.to_pil(self.super_resolve(x) if upscale else x)

    @staticmethod
    def image_tensor(img: Image.Image) -> torch.Tensor:
        """A model-size RGB PIL image -> (1, 3, S, S) in [-1, 1]."""
        return to_unit(torch.from_numpy(np.array(img)).permute(2, 0, 1)[None])

    def judge_and_rank(self, x: torch.Tensor, e: torch.Tensor, style_t: torch.Tensor, seeds: list[int], *,
                       n: int, gate: float, fill: bool, round_robin_styles: bool, upscale: bool = True,
                       order: str = "score", scores: tuple | None = None, designs: list | None = None) -> Generation:
        """The gate: D judges every candidate (at the model's size); those with P(real) >= gate pass.
        order "score": the best n by realism x match (with fill, rejected ones make up the count);
        "seed": those that passed in seed order, then (fill) rejected ones, so that D's taste does
        not pick the n least varied variations; "all": every candidate in candidate order. Only
        the returned images go through the super-resolution stage. scores: (realism, match) of x
        already judged (a batch judged together). designs: each candidate's design (what it was
        drawn from); with order "score", the best of each design comes before a second of any, so
        that n images show different drawings, not one drawing n times with noise."""
        realism, match = scores if scores is not None else self.judge(x, e, style_t.to(self.device))[:2]
        scored = [Scored(None, seeds[k], float(realism[k]), float(match[k]), bool(realism[k] >= gate),
                         self.model.cfg.styles[int(style_t[k])])
                  for k in range(len(seeds))]
        index = {id(s): k for k, s in enumerate(scored)}
        ranked = scored if order != "score" else sorted(scored, key=lambda s: (not s.kept, -(s.realism * s.match)))
        passed, rejected = [s for s in ranked if s.kept], [s for s in ranked if not s.kept]
        if designs is not None and order == "score" and self.distinct:
            key = {id(s): designs[k] for k, s in enumerate(scored)}
            passed, rejected = distinct_first(passed, key), distinct_first(rejected, key)
        if round_robin_styles:  # "any": take the styles in turns, not n of the one D likes best
            passed, rejected = round_robin(passed), round_robin(rejected)
        kept = ranked[:n] if order == "all" else passed[:n]
        if fill and len(kept) < n and order != "all":
            kept += rejected[: n - len(kept)]
        rows = [index[id(s)] for s in kept]
        for s, img in zip(kept, self.finish(x[rows], upscale) if rows else []):
            s.image = img
        return Generation(images=kept, candidates=len(seeds), discarded=sum(not s.kept for s in scored), gate=gate)

    # --- the three tasks ---
    def generate(self, prompt: str, n: int = 4, seed: int | None = 0, style: str = "any",
                 truncation: float = 1.0, candidates: int | None = None, gate: float | None = None,
                 fill: bool = True, upscale: bool = True) -> Generation:
        """Draw `candidates` images (seeds seed..seed+N-1), drop those the discriminator judges
        fake (P(real) < gate), return the best n by realism x match. With fill=True, rejected
        images make up the count when too few pass (marked kept=False). gate=None: the model's
        calibrated default. upscale: 256 px through the super-resolution stage (else the model's 64).

        Thread-safe: calls from several threads that arrive while the model is busy are drawn
        together in one batch (`model.batching.Batcher`, at most `max_batch` requests); each
        image depends only on its own seed, so a request's result does not depend on its batch."""
        prompt = self.check_prompt(prompt)
        n = self.check_int(n, "number of images", 1, self.limits.max_images)
        candidates = n if candidates is None else self.check_int(candidates, "candidates", n, self.limits.max_candidates)
        req = GenerateRequest(
            prompt=prompt, n=n, candidates=candidates, seed=self.check_seed(seed), style=self.check_style(style),
            truncation=self.check_truncation(truncation),
            gate=self.default_gate if gate is None else self.check_fraction(gate, "gate"),
            fill=bool(fill), upscale=self.check_bool(upscale, "upscale"))
        if self._batcher is None:
            with self._encoder_lock:
                if self._batcher is None:
                    self._batcher = Batcher(self.generate_batch, self.max_batch, on_idle=self.on_idle)
        return self._batcher(req)

    def generate_batch(self, requests: list["GenerateRequest"]) -> list[Generation]:
        """Validated requests -> one Generation each. The prompts are encoded together, every
        candidate of every request is decoded and judged in shared batches, and only the images
        each request shows are upscaled."""
        uniq = list(dict.fromkeys(r.prompt for r in requests))
        emb = self.embed(uniq)  # (U, text_dim)
        readings = self.model.prior.read(emb.float().cpu())
        plans = {p: self.plan(p) for p in uniq}
        parts = []  # per request: (seeds, style ids, embeddings (N, D), reading)
        for r in requests:
            seeds = [(r.seed + k) % (MAX_SEED + 1) for k in range(r.candidates)]
            u = uniq.index(r.prompt)
            style_t = self.seed_styles(torch.full((r.candidates,), r.style, dtype=torch.long), seeds)
            parts.append((seeds, style_t, emb[u:u + 1].expand(r.candidates, -1), readings[u]))
        drawn = [self.draw(rd, plans[r.prompt], st, seeds, r.truncation) for r, (seeds, st, _, rd) in zip(requests, parts)]
        x_all = torch.cat([x for x, _ in drawn])
        e_all, st_all = torch.cat([e for _, _, e, _ in parts]), torch.cat([st for _, st, _, _ in parts])
        chunks = [self.judge(x_all[i:i + CHUNK], e_all[i:i + CHUNK], st_all[i:i + CHUNK].to(self.device))
                  for i in range(0, len(x_all), CHUNK)]  # bounded activations, as decode's
        scores = tuple(None if c[0] is None else torch.cat(c) for c in zip(*(ch[:2] for ch in chunks)))
        out, start = [], 0
        for r, (seeds, st, e, rd), (_, designs) in zip(requests, parts, drawn):
            rows = slice(start, start + len(seeds))
            start += len(seeds)
            g = self.judge_and_rank(x_all[rows], e, st, seeds, n=r.n, gate=r.gate, fill=r.fill, upscale=r.upscale,
                                    round_robin_styles=r.style == self.model.cfg.num_styles, designs=designs,
                                    scores=tuple(None if s is None else s[rows] for s in scores[:2]))
            g.reading, g.plan = rd, plans[r.prompt]
            out.append(g)
        return out

    def interpolate(self, prompt_a: str, prompt_b: str | None = None, steps: int = 8,
                    seed_a: int | None = 0, seed_b: int | None = None, style: str = "any",
                    truncation: float = 1.0, upscale: bool = True) -> list[Image.Image]:
        """Frames from (prompt_a, seed_a) to (prompt_b, seed_b): the two ends' latents, each drawn
        by the prior from its seed (in seed_a's style), lerped. prompt_b=None keeps prompt_a;
        seed_b=None keeps seed_a."""
        prompt_a = self.check_prompt(prompt_a, name="first prompt")
        if prompt_b is not None and not isinstance(prompt_b, str):
            raise ValueError(f"The second prompt must be text, got {type(prompt_b).__name__}.")
        prompt_b = prompt_a if not (prompt_b or "").strip() else self.check_prompt(prompt_b, name="second prompt")
        steps = self.check_int(steps, "steps", 2, self.limits.max_steps)
        seed_a = self.check_seed(seed_a)
        seed_b = seed_a if seed_b is None or seed_b == "" else self.check_seed(seed_b)
        sid = self.check_style(style)
        truncation = self.check_truncation(truncation)
        upscale = self.check_bool(upscale, "upscale")
        if prompt_a == prompt_b and seed_a == seed_b:
            raise ValueError("Both ends are the same: change the second prompt or the second seed.")
        e = self.embed([prompt_a, prompt_b])
        sid_a = int(self.seed_styles(torch.tensor([sid]), [seed_a])[0])
        ra, rb = self.model.prior.read(e.float().cpu())
        za = self.model.prior.sample([ra], [sid_a], [seed_a], truncation)[0]
        zb = self.model.prior.sample([rb], [sid_a], [seed_b], truncation)[0]
        t = torch.linspace(0, 1, steps)[:, None, None, None]
        return self.finish(self.decode(torch.lerp(za[None], zb[None], t), torch.full((steps,), sid_a)), upscale)

    def prepare_image(self, image) -> Image.Image:
        """PIL image / path / HxWxC array -> square RGB model-size image (alpha onto white)."""
        if isinstance(image, (str, Path)):
            image = open_image(image, self.limits.max_upload_pixels)
        elif isinstance(image, np.ndarray):
            image = array_to_image(image)
        if not isinstance(image, Image.Image):
            raise ValueError("Please upload an image (PNG, JPEG, WebP, GIF...).")
        if image.width * image.height > self.limits.max_upload_pixels:
            raise ValueError(f"The image is {image.width}x{image.height}; the limit is "
                             f"{self.limits.max_upload_pixels / 1e6:.1f} megapixels: make it smaller.")
        return square_on_white(ImageOps.exif_transpose(image), self.size)

    def score(self, image, prompt: str | None = None, style: str = "any") -> ScoreResult:
        img = self.prepare_image(image)
        x = self.image_tensor(img)  # (1, 3, S, S)
        e = None
        if prompt is not None and not isinstance(prompt, str):
            raise ValueError(f"The prompt must be text, got {type(prompt).__name__}.")
        if prompt is not None and prompt.strip():
            e = self.embed([self.check_prompt(prompt)])
        sid = torch.tensor([self.check_style(style)], device=self.device)
        realism, match, patch = self.judge(x, e, sid)
        p = patch[0, 0].numpy()
        return ScoreResult(realism=float(realism[0]), match=None if match is None else float(match[0]),
                           patch=p, heatmap=heatmap_overlay(img, p), image=img)
