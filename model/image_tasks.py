"""DALL·E 2's image features on the latent model: variations, restyling, image-to-image
interpolation and text edits. Each task reads top to bottom: check -> encode the upload ->
read it -> move its latent -> decode -> gate (variations, restyle) -> upscale.

The image encoder maps an upload to its latent mu (8x8x16 at 64 px). What the image "looks
like" is read from the prior's latent tables: the known emoji latents nearest to mu.
- variations: mu blended part of the way toward other designs of the emoji it looks like
  (the same emoji in the other sets, encoded) and, less, toward its nearest relatives, per
  seed; decoded, gated by the discriminator like any generation.
- restyle: mu moved by the style difference of its nearest shared emojis (prior.restyle), decoded in each style.
- interpolation: two images' latents, lerped.
- text edit (DALL·E 2's text diff): mu + strength x (prior(new prompt) - prior(what it is)).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .checks import Checks, seed_run
from .gate import Gate
from .prior import Reading
from .refine import refine_latents
from .stages import Stages, image_tensor

READ_TOP = 8  # entries an image is read as
READ_TEMPERATURE = 2.0  # softmax over negative latent distances (nearest distinct emojis are ~8-20 apart)


@dataclass
class ImageReading:
    """What an image looks like to the model: the nearest known emojis (weights sum to 1) and
    the style of the nearest stored latent."""
    reading: Reading
    style: str
    distance: float  # latent L2 distance to the nearest known emoji (0 for a training image)

    def __str__(self) -> str:
        return f"{self.reading} (looks {self.style})"


class ImageTasks:
    def __init__(self, stages: Stages, checks: Checks, gate: Gate):
        self.stages, self.checks, self.gate = stages, checks, gate

    @property
    def prior(self):
        return self.stages.model.prior

    @property
    def style_names(self) -> tuple[str, ...]:
        return self.stages.model.cfg.styles

    # --- reading an image ---
    def encode_image(self, image) -> torch.Tensor:
        """Any image (path, PIL, array) -> its latent (C, h, w) on the CPU: the encoder's mean, then
        (when the model says refine_steps) fitted through the decoder in the style it looks like,
        as the prior's tables were at export, so an upload is drawn as well as a generation."""
        st = self.stages
        x = image_tensor(self.checks.image(image)).to(st.device, st.dtype)
        mu = st.encode(x)
        steps = st.model.cfg.refine_steps
        if steps and len(self.prior):
            sid = self.style_names.index(self.read_latent(mu[0].cpu()).style)
            mu = refine_latents(st.model.decoder, x, torch.tensor([sid], device=st.device), mu,
                                steps=steps, lr=st.model.cfg.refine_lr, autocast=st.autocast)
        return mu[0].float().cpu()

    def read_latent(self, mu: torch.Tensor) -> ImageReading:
        p = self.prior
        d = p.distances(mu).sqrt()  # (N,)
        per_entry = torch.full((len(p.names),), float("inf"))
        per_entry.scatter_reduce_(0, p.lat_entry, d, "amin")
        top = (-per_entry).topk(min(READ_TOP, len(p.names)))
        dist = -top.values
        w = torch.softmax(-(dist - dist[0]) / READ_TEMPERATURE, dim=0)
        reading = Reading([p.names[i] for i in top.indices.tolist()], [round(float(x), 4) for x in w],
                          top.indices.tolist())
        nearest = int(d.argmin())
        exact = float((p.latents[nearest].float() - mu).norm())  # the expanded form rounds ~0.01 off near 0
        return ImageReading(reading, self.style_names[int(p.lat_style[nearest])], exact)

    def read_image(self, image) -> ImageReading:
        return self.read_latent(self.encode_image(image))

    def image_style(self, sid: int, looks: ImageReading) -> int:
        """A checked style id; "any" means the style the image looks like."""
        return self.style_names.index(looks.style) if sid == self.checks.any_style else sid

    def in_style(self, mu: torch.Tensor, looks: ImageReading, sid: int) -> torch.Tensor:
        """mu moved from the style the image looks like into style sid."""
        return self.prior.restyle(mu, self.style_names.index(looks.style), sid)

    def variation_latents(self, mu: torch.Tensor, looks: ImageReading, seeds: list[int], strength: float) -> torch.Tensor:
        """(N, C, h, w): per seed, mu moved part of the way toward another design of the emoji it
        looks like (weight 3 in the pick) or toward one of its nearest relatives (weight 1, moved
        half as far), plus the posterior's own noise. strength 0 gives mu itself."""
        p = self.prior
        ents = looks.reading.entries
        pool = [(row, 1.0) for row in p.rows_of(ents[0]).values()
                if float((p.latents[row].float() - mu).norm()) > 0.5]  # not the image itself
        pool += [(row, 0.5) for e in ents[1:4] for row in list(p.rows_of(e).values())[:2]]
        out = []
        for seed in seeds:
            g = torch.Generator().manual_seed(int(seed))
            z = mu.clone()
            if pool and strength > 0:
                weights = torch.tensor([3.0 if reach == 1.0 else 1.0 for _, reach in pool])
                row, reach = pool[int(torch.multinomial(weights, 1, generator=g))]
                u = strength * reach * (0.35 + 0.35 * float(torch.rand((), generator=g)))
                z = torch.lerp(mu, p.latents[row].float(), u)
                z = z + strength * p.sigmas[row].float()[:, None, None] * torch.randn(mu.shape, generator=g)
            out.append(z)
        return torch.stack(out)

    # --- the tasks ---
    def variations(self, image, n: int = 4, seed: int | None = 0, strength: float = 1.0, style: str = "any",
                   candidates: int | None = None, gate: float | None = None, upscale: bool = True):
        """Upload -> n variations (seeds seed..): those that pass the gate, in seed order (then the
        rejected ones, marked). -> (Generation, ImageReading)."""
        c = self.checks
        n, candidates = c.count(n, candidates)
        seed = c.seed(seed)
        strength = c.truncation(strength, "strength")
        gate = c.gate(gate, self.gate.default)
        sid = c.style(style)
        upscale = c.boolean(upscale, "upscale")  # every check before the image is encoded
        mu = self.encode_image(image)
        looks = self.read_latent(mu)
        sid = self.image_style(sid, looks)
        seeds = seed_run(seed, candidates)
        shift = self.in_style(mu, looks, sid) - mu  # the image's own move into the style, for every variation
        z = self.variation_latents(mu, looks, seeds, strength) + shift[None]  # (N, C, h, w)
        style_t = torch.full((candidates,), sid, dtype=torch.long)
        x = self.stages.decode(z, style_t)
        e = self.stages.embed([looks.reading.names[0]]).expand(candidates, -1)  # D's text match: what it looks like
        out = self.gate.rank(x, e, style_t, seeds, n=n, gate=gate, fill=True, round_robin_styles=False,
                             upscale=upscale, order="seed")
        return out, looks

    def restyle(self, image, upscale: bool = True):
        """Upload -> the same latent decoded in every style. -> (list[Scored], ImageReading)."""
        upscale = self.checks.boolean(upscale, "upscale")
        mu = self.encode_image(image)
        looks = self.read_latent(mu)
        k = len(self.style_names)
        style_t = torch.arange(k)
        source = self.style_names.index(looks.style)
        z = torch.stack([self.prior.restyle(mu, source, t) for t in range(k)])
        x = self.stages.decode(z, style_t)
        e = self.stages.embed([looks.reading.names[0]]).expand(k, -1)
        out = self.gate.rank(x, e, style_t, [0] * k, n=k, gate=self.gate.default, fill=True,
                             round_robin_styles=False, upscale=upscale, order="all")
        return out.images, looks

    def interpolate_images(self, image_a, image_b, steps: int = 8, style: str = "any", upscale: bool = True):
        """Two uploads -> frames from the first's latent to the second's (lerp), in one style
        ("any": the style the first image looks like)."""
        c = self.checks
        steps = c.steps(steps)
        sid = c.style(style)
        upscale = c.boolean(upscale, "upscale")
        za, zb = self.encode_image(image_a), self.encode_image(image_b)
        looks_a, looks_b = self.read_latent(za), self.read_latent(zb)
        sid = self.image_style(sid, looks_a)
        za, zb = self.in_style(za, looks_a, sid), self.in_style(zb, looks_b, sid)
        t = torch.linspace(0, 1, steps)[:, None, None, None]
        x = self.stages.decode(torch.lerp(za[None], zb[None], t), torch.full((steps,), sid))
        return self.stages.finish(x, upscale)

    def edit(self, image, prompt: str, source: str | None = None, strength: float = 1.0, steps: int = 6,
             style: str = "any", upscale: bool = True):
        """Text diff: frames from the image (strength 0) to mu + strength x (prior latent of
        `prompt` - prior latent of `source`); source empty = the emoji the image looks like.
        -> (frames, the source used, ImageReading of the image)."""
        c = self.checks
        prompt = c.prompt(prompt, name="edit prompt")
        source = c.optional_prompt(source, name="source caption")
        strength = c.truncation(strength, "strength")
        steps = c.steps(steps)
        sid = c.style(style)
        upscale = c.boolean(upscale, "upscale")
        mu = self.encode_image(image)
        looks = self.read_latent(mu)
        sid = self.image_style(sid, looks)
        source = source or looks.reading.names[0]
        p = self.prior
        r_new, r_src = p.read(self.stages.embed([prompt, source]).float().cpu())
        diff = p.mean_latent(r_new, sid) - p.mean_latent(r_src, sid)
        t = torch.linspace(0, strength, steps)[:, None, None, None]
        x = self.stages.decode(self.in_style(mu, looks, sid)[None] + t * diff[None], torch.full((steps,), sid))
        return self.stages.finish(x, upscale), source, looks
