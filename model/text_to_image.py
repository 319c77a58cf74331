"""Text to image, DALL·E 2's way: check -> encode the prompt -> prior (a latent per seed) ->
decode -> gate -> upscale the images shown. And prompt interpolation: two ends drawn by the prior, lerped.

Every image k of a request is drawn from its own RNG seeded with (seed + k): a seed gives the
same image alone or inside any batch.
"""
from __future__ import annotations

import threading
from typing import Callable

import torch
from PIL import Image

from .batching import Batcher
from .checks import Checks, seed_run, wrap_seed
from .compose import Composer, Plan, arrangement, compose, recolour
from .gate import Gate
from .outputs import GenerateRequest, Generation
from .prior import Reading
from .stages import Stages

OTHER_PART_SEED = 7_919  # a composed prompt's second part is drawn from seed + this


def first_round(n: int, candidates: int) -> int:
    """Candidates drawn first: half of them, at least the n shown. Measured on the 236 held-out
    descriptions and their names at the app's default (4 of 16; model/EXPERIMENTS.md, 2026-12-07
    evening): two rounds are recognised as all 16 at once were (style any 0.639 / 0.476 against
    0.638 / 0.470; one style 0.638 / 0.457 against 0.639 / 0.454), and as many shown images passed
    the gate (1.0 / 0.858 against 1.0 / 0.858); 8 alone showed failed ones (0.962 in style any)."""
    return min(candidates, max(n, (candidates + 1) // 2))


def second_round(r: GenerateRequest, realism: torch.Tensor, style: torch.Tensor, any_style: int) -> list[int]:
    """Which of the request's remaining candidates to draw, given P(real) (k,) of the first k
    drawn and every candidate's style id (N,): none when n passed (and, for style "any", as many
    styles as n can show); the styles still missing when only they are short; else all the rest."""
    k = len(realism)
    passed = realism >= r.gate
    if int(passed.sum()) < r.n:
        return list(range(k, r.candidates))
    if r.style != any_style:
        return []
    have, seen = set(style[:k][passed].tolist()), set(style[:k].tolist())
    if len(have) >= min(r.n, len(seen)):
        return []
    return [j for j in range(k, r.candidates) if int(style[j]) not in have]


class TextToImage:
    def __init__(self, stages: Stages, checks: Checks, gate: Gate, *, compose: bool = True, max_batch: int = 8,
                 on_idle: Callable[[], object] | None = None):
        self.stages, self.checks, self.gate = stages, checks, gate
        self.compose = compose  # draw prompts that name two ideas or a colour from their parts (model.compose)
        # generate's other_designs when a call does not say: in a named style, seeds draw other sets'
        # designs moved into it too, gated (RetrievalPrior.row_for, Gate.rank). Off: the moved designs
        # keep some of their set's look (model/EXPERIMENTS.md, 2026-12-07, "other sets' designs")
        self.variety = False
        self.max_batch = max_batch  # generate calls drawn together when they arrive while the model is busy
        self.on_idle = on_idle  # called after a generate batch when no call waits (the app: memory.trim)
        self._batcher: Batcher | None = None
        self._composer: tuple[object, Composer] | None = None  # (the prior it was built on, the composer)
        self._lock = threading.Lock()

    @property
    def prior(self):
        return self.stages.model.prior

    # --- reading a prompt ---
    def read(self, prompt: str) -> Reading:
        """What the prior reads a prompt as: the nearest known emojis and their weights."""
        return self.prior.read(self.stages.embed([self.checks.prompt(prompt)]).float().cpu())[0]

    def similarity(self, texts: list[str]) -> torch.Tensor:
        """(P,) each text's best caption similarity in the prior (how well it names a known emoji)."""
        return self.prior.best_similarity(self.stages.embed(texts).float().cpu())

    def plan(self, prompt: str) -> Plan | None:
        """The parts a prompt is drawn from (model.compose), or None: drawn whole by the prior.
        The composer reads the model's current prior (an evaluation may swap it)."""
        if not self.compose:
            return None
        if self._composer is None or self._composer[0] is not self.prior:
            self._composer = (self.prior, Composer(self.similarity, self.prior.names))
        return self._composer[1].plan(prompt)

    def seed_styles(self, style: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """Style ids (N,) with "any" (id num_styles) replaced per seed: seed k draws named style
        k mod num_styles, so consecutive seeds show every style (the decoder knows named styles only)."""
        k = self.checks.any_style
        by_seed = torch.tensor([s % k for s in seeds], dtype=torch.long)
        return torch.where(style.cpu() == k, by_seed, style.cpu())

    # --- drawing ---
    def sample(self, e: torch.Tensor, style: torch.Tensor, seeds: list[int], truncation: float = 1.0,
               readings: list[Reading] | None = None) -> torch.Tensor:
        """e (N, text_dim) embeddings, style (N,) ids, one seed each -> (N, 3, S, S) float in [-1, 1].
        The raw samples behind generate (no gate); the evaluation samples through this too.
        readings: the prior's readings of e's rows, when the caller has them already."""
        style = self.seed_styles(style, seeds)
        if readings is None:  # each distinct prompt read once (a request repeats one prompt N times)
            uniq, inv = torch.unique(e.float().cpu(), dim=0, return_inverse=True)
            per_prompt = self.prior.read(uniq)
            readings = [per_prompt[i] for i in inv.tolist()]
        z = self.prior.sample(readings, style.tolist(), seeds, truncation)  # (N, C, h, w)
        return self.stages.decode(z, style)

    def draw(self, reading: Reading, plan: Plan | None, style: torch.Tensor, seeds: list[int],
             truncation: float = 1.0, parts: list[Reading] | None = None) -> tuple[torch.Tensor, list]:
        """One prompt's candidates: named style ids (N,), seeds (N,) -> (N, 3, S, S) in [-1, 1]
        and each one's design (the stored latent row(s) it was drawn from). With a plan, each
        part is read (or given, `parts`) and drawn from its own seed (a count: the subject's drawing
        twice), then laid out and coloured (model.compose); else the prompt's reading is sampled
        and decoded."""
        st, prior, decode = style.tolist(), self.prior, self.stages.decode
        if plan is None:
            z, rows = prior.sample_designs([reading] * len(seeds), st, seeds, truncation)
            return decode(z, style), rows
        parts = parts or self.part_readings(plan)
        z, rows = prior.sample_designs([parts[0]] * len(seeds), st, seeds, truncation)
        x = decode(z, style)
        if plan.colour:
            x = torch.stack([recolour(xi, plan.colour) for xi in x])
        if plan.layout is None:
            return x, rows
        if plan.layout == "two":  # the same drawing twice ("two mice": not a mouse and a computer mouse)
            other, other_rows = x, rows
        else:  # the second part: its own draw
            other_seeds = [wrap_seed(s + OTHER_PART_SEED) for s in seeds]
            z, other_rows = prior.sample_designs([parts[-1]] * len(seeds), st, other_seeds, truncation)
            other = decode(z, style)
        which = [arrangement(plan.layout, s) for s in seeds]  # seeds in a row: the parts arranged anew
        return (torch.stack([compose(a, b, plan.layout, k) for a, b, k in zip(x, other, which)]),
                list(zip(rows, other_rows, which)))

    def part_readings(self, plan: Plan) -> list[Reading]:
        """The prior's readings of a plan's parts."""
        return self.prior.read(self.stages.embed(plan.parts).float().cpu())

    # --- the tasks ---
    def generate(self, prompt: str, n: int = 4, seed: int | None = 0, style: str = "any",
                 truncation: float = 1.0, candidates: int | None = None, gate: float | None = None,
                 fill: bool = True, upscale: bool = True, other_designs: bool | None = None) -> Generation:
        """Draw `candidates` images (seeds seed..seed+N-1), drop those the discriminator judges
        fake (P(real) < gate), return the best n by realism x match. With fill=True, rejected
        images make up the count when too few pass (marked kept=False). gate=None: the model's
        calibrated default. upscale: 256 px through the super-resolution stage (else the model's 64).
        other_designs: in a named style, seeds also draw the other sets' designs of the emoji moved
        into it, each shown once when the gate finds it about as good as the set's own (Gate.rank;
        Scored.redrawn_from names the set); None: `self.variety`. They keep some of their set's look.

        Thread-safe: calls from several threads that arrive while the model is busy are drawn
        together in one batch (`model.batching.Batcher`, at most `max_batch` requests); each
        image depends only on its own seed, so a request's result does not depend on its batch."""
        c = self.checks
        prompt = c.prompt(prompt)
        n, candidates = c.count(n, candidates)
        req = GenerateRequest(prompt=prompt, n=n, candidates=candidates, seed=c.seed(seed), style=c.style(style),
                              truncation=c.truncation(truncation), gate=c.gate(gate, self.gate.default),
                              fill=bool(fill), upscale=c.boolean(upscale, "upscale"),
                              variety=self.variety if other_designs is None
                              else c.boolean(other_designs, "other designs"))
        with self._lock:
            if self._batcher is None:  # late-bound: the batch function may be swapped (tests, benchmarks)
                self._batcher = Batcher(lambda rs: self.generate_batch(rs), self.max_batch, on_idle=self.on_idle)
        return self._batcher(req)

    def generate_batch(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Checked requests -> one Generation each. The prompts (and a composed prompt's parts) are
        encoded and read once. Candidates come in two rounds: every request's first half
        (`first_round`) is decoded and judged in shared batches, then what that half left short
        (`second_round`). Each request ranks what it drew; only the images it shows are upscaled."""
        uniq = list(dict.fromkeys(r.prompt for r in requests))  # encode and read each prompt once
        emb = self.stages.embed(uniq)  # (U, text_dim)
        readings = self.prior.read(emb.float().cpu())
        plans = {p: self.plan(p) for p in uniq}
        parts = {p: self.part_readings(plan) for p, plan in plans.items() if plan is not None}  # read once, both rounds
        todo = []  # per request: (seeds, style ids (N,), embedding (1, D), reading), all N candidates
        for r in requests:
            seeds, u = seed_run(r.seed, r.candidates), uniq.index(r.prompt)
            style_t = self.seed_styles(torch.full((r.candidates,), r.style, dtype=torch.long), seeds)
            todo.append((seeds, style_t, emb[u:u + 1], readings[u]))
        first = {i: list(range(first_round(r.n, r.candidates))) for i, r in enumerate(requests)}
        got = self.draw_and_judge(requests, plans, parts, todo, first)
        rest = {i: second_round(r, got[i][3], todo[i][1], self.checks.any_style) for i, r in enumerate(requests)}
        for i, more in self.draw_and_judge(requests, plans, parts, todo, {i: j for i, j in rest.items() if j}).items():
            got[i] = tuple(a + b if isinstance(a, list) else torch.cat([a, b]) for a, b in zip(got[i], more))
        out = []
        for i, (r, (seeds, st, e, rd)) in enumerate(zip(requests, todo)):
            idx, x, designs, realism, match = got[i]  # the candidates this request drew
            variety = [self.moved_from(d, int(st[j])) for d, j in zip(designs, idx)]
            g = self.gate.rank(x, e.expand(len(idx), -1), st[idx], [seeds[j] for j in idx], n=r.n, gate=r.gate,
                               fill=r.fill, upscale=r.upscale, round_robin_styles=self.any_style(r),
                               designs=designs, scores=(realism, match), variety=variety)
            g.reading, g.plan = rd, plans[r.prompt]
            out.append(g)
        return out

    def any_style(self, r: GenerateRequest) -> bool:
        return r.style == self.checks.any_style

    def moved_from(self, design, style: int) -> str | None:
        """The set whose design a candidate (its stored latent row) is, when that design was moved
        into `style` for variety (`RetrievalPrior.is_variety`); None otherwise (a composed
        candidate's design is a pair of rows)."""
        if isinstance(design, int) and self.prior.is_variety(design, style):
            return self.stages.model.cfg.styles[int(self.prior.lat_style[design])]
        return None

    def draw_and_judge(self, requests: list[GenerateRequest], plans: dict, parts: dict, todo: list,
                       which: dict) -> dict:
        """The candidates which[i] (indices into request i's seeds) of each request i: prior ->
        decode, the latents of every request drawn whole decoded together, then the gate judges
        them all in shared batches -> {i: (indices, x (k, 3, S, S), designs, realism (k,), match (k,))}."""
        if not which:
            return {}
        whole, drawn = [], {}
        for i, idx in which.items():
            prompt, st, seeds = requests[i].prompt, todo[i][1][idx], [todo[i][0][j] for j in idx]
            if plans[prompt] is None:
                z, rows = self.prior.sample_designs([todo[i][3]] * len(idx), st.tolist(), seeds, requests[i].truncation,
                                                    variety=requests[i].variety and not self.any_style(requests[i]))
                whole.append((i, z, st, rows))
            else:
                drawn[i] = self.draw(todo[i][3], plans[prompt], st, seeds, requests[i].truncation, parts[prompt])
        if whole:  # one decoder pass (in CHUNKs) for every request drawn whole
            x = self.stages.decode(torch.cat([z for _, z, _, _ in whole]), torch.cat([st for _, _, st, _ in whole]))
            for (i, z, _, rows), xi in zip(whole, x.split([len(z) for _, z, _, _ in whole])):
                drawn[i] = (xi, rows)
        drawn = {i: drawn[i] for i in which}  # request order
        realism, match = self.gate.judge_all(torch.cat([x for x, _ in drawn.values()]),
                                             torch.cat([todo[i][2].expand(len(idx), -1) for i, idx in which.items()]),
                                             torch.cat([todo[i][1][idx] for i, idx in which.items()]))
        out, start = {}, 0
        for i, (x, designs) in drawn.items():
            rows = slice(start, start + len(x))
            start += len(x)
            out[i] = (list(which[i]), x, list(designs), realism[rows], match[rows])
        return out

    def interpolate(self, prompt_a: str, prompt_b: str | None = None, steps: int = 8,
                    seed_a: int | None = 0, seed_b: int | None = None, style: str = "any",
                    truncation: float = 1.0, upscale: bool = True) -> list[Image.Image]:
        """Frames from (prompt_a, seed_a) to (prompt_b, seed_b): the two ends' latents, each drawn
        by the prior from its seed (in seed_a's style), lerped. prompt_b=None keeps prompt_a;
        seed_b=None keeps seed_a."""
        c = self.checks
        prompt_a = c.prompt(prompt_a, name="first prompt")
        prompt_b = c.optional_prompt(prompt_b, name="second prompt") or prompt_a
        steps = c.steps(steps)
        seed_a = c.seed(seed_a)
        seed_b = seed_a if seed_b is None or seed_b == "" else c.seed(seed_b)
        sid = c.style(style)
        truncation = c.truncation(truncation)
        upscale = c.boolean(upscale, "upscale")
        if prompt_a == prompt_b and seed_a == seed_b:
            raise ValueError("Both ends are the same: change the second prompt or the second seed.")
        ra, rb = self.prior.read(self.stages.embed([prompt_a, prompt_b]).float().cpu())
        sid_a = int(self.seed_styles(torch.tensor([sid]), [seed_a])[0])
        za = self.prior.sample([ra], [sid_a], [seed_a], truncation)[0]
        zb = self.prior.sample([rb], [sid_a], [seed_b], truncation)[0]
        t = torch.linspace(0, 1, steps)[:, None, None, None]
        x = self.stages.decode(torch.lerp(za[None], zb[None], t), torch.full((steps,), sid_a))
        return self.stages.finish(x, upscale)
