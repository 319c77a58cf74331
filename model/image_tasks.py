"""DALL·E 2's image features on the latent model: variations, restyling, image-to-image
interpolation and text edits. Mixed into `Pipeline` (which owns the checks, the gate and the
upsampler); every image is still drawn by the decoder and every bound is checked here.

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

from .checks import MAX_SEED
from .prior import Reading
from .refine import refine_latents

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
    """Mixin for Pipeline: needs prepare_image, check_*, decode, judge_and_rank, finish, embed."""

    def encode_image(self, image) -> torch.Tensor:
        """Any image (path, PIL, array) -> its latent (C, h, w) on the CPU: the encoder's mean, then
        (when the model says refine_steps) fitted through the decoder in the style it looks like,
        as the prior's tables were at export, so an upload is drawn as well as a generation."""
        img = self.prepare_image(image)
        x = self.image_tensor(img).to(self.device, self.dtype)
        with torch.inference_mode(), self.autocast():
            mu, _ = self.model.encoder(x)
        mu = mu.float()
        steps = self.model.cfg.refine_steps
        if steps and len(self.model.prior):
            sid = self.model.cfg.styles.index(self.read_latent(mu[0].cpu()).style)
            mu = refine_latents(self.model.decoder, x, torch.tensor([sid], device=self.device), mu,
                                steps=steps, lr=self.model.cfg.refine_lr, autocast=self.autocast)
        return mu[0].float().cpu()

    def read_latent(self, mu: torch.Tensor) -> ImageReading:
        p = self.model.prior
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
        return ImageReading(reading, self.model.cfg.styles[int(p.lat_style[nearest])], exact)

    def read_image(self, image) -> ImageReading:
        return self.read_latent(self.encode_image(image))

    def _image_style(self, sid: int, looks: ImageReading) -> int:
        """A checked style id (check_style, before the image is encoded); "any" (num_styles) means
        the style the image looks like."""
        return self.model.cfg.styles.index(looks.style) if sid == self.model.cfg.num_styles else sid

    def _in_style(self, mu: torch.Tensor, looks: ImageReading, sid: int) -> torch.Tensor:
        """mu moved from the style the image looks like into style sid."""
        return self.model.prior.restyle(mu, self.model.cfg.styles.index(looks.style), sid)

    def variation_latents(self, mu: torch.Tensor, looks: ImageReading, seeds: list[int], strength: float) -> torch.Tensor:
        """(N, C, h, w): per seed, mu moved part of the way toward another design of the emoji it
        looks like (weight 3 in the pick) or toward one of its nearest relatives (weight 1, moved
        half as far), plus the posterior's own noise. strength 0 gives mu itself."""
        p = self.model.prior
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

    def variations(self, image, n: int = 4, seed: int | None = 0, strength: float = 1.0, style: str = "any",
                   candidates: int | None = None, gate: float | None = None, upscale: bool = True):
        """Upload -> n variations (seeds seed..): those that pass the gate, in seed order (then the
        rejected ones, marked). -> (Generation, ImageReading)."""
        n = self.check_int(n, "number of images", 1, self.limits.max_images)
        candidates = n if candidates is None else self.check_int(candidates, "candidates", n, self.limits.max_candidates)
        seed = self.check_seed(seed)
        strength = self.check_truncation(strength, "strength")
        gate = self.default_gate if gate is None else self.check_fraction(gate, "gate")
        sid = self.check_style(style)
        upscale = self.check_bool(upscale, "upscale")  # every check before the image is encoded
        mu = self.encode_image(image)
        looks = self.read_latent(mu)
        sid = self._image_style(sid, looks)
        seeds = [(seed + k) % (MAX_SEED + 1) for k in range(candidates)]
        shift = self._in_style(mu, looks, sid) - mu  # the image's own move into the style, for every variation
        z = self.variation_latents(mu, looks, seeds, strength) + shift[None]  # (N, C, h, w)
        style_t = torch.full((candidates,), sid, dtype=torch.long)
        x = self.decode(z, style_t)
        e = self.embed([looks.reading.names[0]]).expand(candidates, -1)  # D's text match: what it looks like
        out = self.judge_and_rank(x, e, style_t, seeds, n=n, gate=gate, fill=True, round_robin_styles=False,
                                  upscale=upscale, order="seed")
        return out, looks

    def restyle(self, image, upscale: bool = True):
        """Upload -> the same latent decoded in every style. -> (list[Scored], ImageReading)."""
        upscale = self.check_bool(upscale, "upscale")
        mu = self.encode_image(image)
        looks = self.read_latent(mu)
        k = self.model.cfg.num_styles
        style_t = torch.arange(k)
        source = self.model.cfg.styles.index(looks.style)
        z = torch.stack([self.model.prior.restyle(mu, source, t) for t in range(k)])
        x = self.decode(z, style_t)
        e = self.embed([looks.reading.names[0]]).expand(k, -1)
        out = self.judge_and_rank(x, e, style_t, [0] * k, n=k, gate=self.default_gate, fill=True,
                                  round_robin_styles=False, upscale=upscale, order="all")
        return out.images, looks

    def interpolate_images(self, image_a, image_b, steps: int = 8, style: str = "any", upscale: bool = True):
        """Two uploads -> frames from the first's latent to the second's (lerp), in one style
        ("any": the style the first image looks like)."""
        steps = self.check_int(steps, "steps", 2, self.limits.max_steps)
        sid = self.check_style(style)
        upscale = self.check_bool(upscale, "upscale")
        za, zb = self.encode_image(image_a), self.encode_image(image_b)
        looks_a, looks_b = self.read_latent(za), self.read_latent(zb)
        sid = self._image_style(sid, looks_a)
        za, zb = self._in_style(za, looks_a, sid), self._in_style(zb, looks_b, sid)
        t = torch.linspace(0, 1, steps)[:, None, None, None]
        x = self.decode(torch.lerp(za[None], zb[None], t), torch.full((steps,), sid))
        return self.finish(x, upscale)

    def edit(self, image, prompt: str, source: str | None = None, strength: float = 1.0, steps: int = 6,
             style: str = "any", upscale: bool = True):
        """Text diff: frames from the image (strength 0) to mu + strength x (prior latent of
        `prompt` - prior latent of `source`); source empty = the emoji the image looks like.
        -> (frames, the source used, ImageReading of the image)."""
        prompt = self.check_prompt(prompt, name="edit prompt")
        source = None if source is None or not str(source).strip() else self.check_prompt(source, name="source caption")
        strength = self.check_truncation(strength, "strength")
        steps = self.check_int(steps, "steps", 2, self.limits.max_steps)
        sid = self.check_style(style)
        upscale = self.check_bool(upscale, "upscale")
        mu = self.encode_image(image)
        looks = self.read_latent(mu)
        sid = self._image_style(sid, looks)
        source = source or looks.reading.names[0]
        p = self.model.prior
        r_new, r_src = p.read(self.embed([prompt, source]).float().cpu())
        diff = p.mean_latent(r_new, sid) - p.mean_latent(r_src, sid)
        t = torch.linspace(0, strength, steps)[:, None, None, None]
        x = self.decode(self._in_style(mu, looks, sid)[None] + t * diff[None], torch.full((steps,), sid))
        return self.finish(x, upscale), source, looks
