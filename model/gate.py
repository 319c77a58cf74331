"""The article's discriminator gate: which of a task's candidates are shown, and an upload's score.

D judges every candidate at the model's size; those with P(real) >= gate pass. Only the images
that are shown go through the super-resolution stage.
"""
from __future__ import annotations

import torch

from .checks import Checks
from .images import heatmap_overlay
from .outputs import Generation, Scored, ScoreResult, distinct_first, round_robin
from .stages import CHUNK, Stages, image_tensor


class Gate:
    def __init__(self, stages: Stages, checks: Checks, *, distinct: bool = True):
        self.stages, self.checks = stages, checks
        self.distinct = distinct  # show the best of each design before a second of any (rank)

    @property
    def default(self) -> float:
        """The model's calibrated realism threshold (it keeps ~90 % of held-out real images)."""
        return float(self.stages.model.cfg.gate)

    def judge_all(self, x: torch.Tensor, e: torch.Tensor, style: torch.Tensor) -> tuple:
        """(N, 3, S, S) candidates of many requests with their text embeddings e (N, D) -> (realism (N,),
        match (N,)), judged CHUNK at a time (bounded activations, as decode's)."""
        chunks = [self.stages.judge(x[i:i + CHUNK], e[i:i + CHUNK], style[i:i + CHUNK])[:2]
                  for i in range(0, len(x), CHUNK)]
        return tuple(torch.cat(c) for c in zip(*chunks))

    def rank(self, x: torch.Tensor, e: torch.Tensor, style_t: torch.Tensor, seeds: list[int], *,
             n: int, gate: float, fill: bool, round_robin_styles: bool, upscale: bool = True,
             order: str = "score", scores: tuple | None = None, designs: list | None = None,
             variety: list[str | None] | None = None) -> Generation:
        """Candidates x (N, 3, S, S) with their text embeddings e (N, D), style ids (N,) and seeds
        -> the Generation shown. order "score": the best n by realism x match (with fill, rejected
        ones make up the count); "seed": those that passed in seed order, then (fill) rejected ones,
        so that D's taste does not pick the n least varied variations; "all": every candidate in
        candidate order. scores: (realism, match) of x already judged (a batch judged together).
        designs: each candidate's design (what it was drawn from); with order "score", the best of
        each design comes before a second of any, so that n images show different drawings, not
        one drawing n times with noise. variety: per candidate, the set whose design was moved in
        for variety (`RetrievalPrior.row_for`; None: the asked set's own; Scored.redrawn_from); with
        order "score", `variety_last` decides which of them are shown first."""
        realism, match = scores if scores is not None else self.stages.judge(x, e, style_t)[:2]
        names = self.stages.model.cfg.styles
        scored = [Scored(None, seeds[k], float(realism[k]), float(match[k]), bool(realism[k] >= gate),
                         names[int(style_t[k])], None if variety is None else variety[k])
                  for k in range(len(seeds))]
        index = {id(s): k for k, s in enumerate(scored)}
        ranked = scored if order != "score" else sorted(scored, key=lambda s: (not s.kept, -(s.realism * s.match)))
        passed, rejected = [s for s in ranked if s.kept], [s for s in ranked if not s.kept]
        if designs is not None and order == "score" and self.distinct:
            key = {id(s): designs[k] for k, s in enumerate(scored)}
            passed, rejected = distinct_first(passed, key), distinct_first(rejected, key)
        if variety is not None and any(variety) and order == "score":
            passed, later = self.variety_last(passed, [s for k, s in enumerate(scored) if not variety[k]],
                                              {id(s): designs[k] if designs is not None else k
                                               for k, s in enumerate(scored) if variety[k]})
            rejected = rejected + later
        if round_robin_styles:  # "any": take the styles in turns, not n of the one D likes best
            passed, rejected = round_robin(passed), round_robin(rejected)
        kept = ranked[:n] if order == "all" else passed[:n]
        if fill and len(kept) < n and order != "all":
            kept += rejected[: n - len(kept)]
        rows = [index[id(s)] for s in kept]
        for s, img in zip(kept, self.stages.finish(x[rows], upscale) if rows else []):
            s.image = img
        return Generation(images=kept, candidates=len(seeds), discarded=sum(not s.kept for s in scored), gate=gate)

    def variety_last(self, passed: list[Scored], own: list[Scored],
                     moved: dict[int, object]) -> tuple[list[Scored], list[Scored]]:
        """The passed images (best first) -> (those still shown first, those put after every
        rejected one). A moved-in image (id -> its design in `moved`) stays only when it is the first
        of its design and scores >= variety_gate x the best of `own` (the asked set's own designs,
        passed or not): a moved design is shown once, when it is about as good as the set's own
        drawing; else the set's own drawing is shown again, even below the gate. The set's own
        drawing comes first when one passed. As it is when no own design was drawn."""
        if not own or not passed:
            return passed, []
        bar = float(self.stages.model.cfg.variety_gate) * max(s.realism * s.match for s in own)
        shown, later = set(), set()
        for s in passed:
            if id(s) in moved:
                if moved[id(s)] in shown or s.realism * s.match < bar:
                    later.add(id(s))
                shown.add(moved[id(s)])
        out = [s for s in passed if id(s) not in later]
        first = next((k for k, s in enumerate(out) if id(s) not in moved), 0)
        out = out[first:first + 1] + out[:first] + out[first + 1:]
        return out, [s for s in passed if id(s) in later]

    def score(self, image, prompt: str | None = None, style: str = "any") -> ScoreResult:
        """Any image (path, PIL, array), optional prompt -> D's realism, text match and patch map."""
        img = self.checks.image(image)
        prompt = self.checks.optional_prompt(prompt, name="prompt")
        sid = torch.tensor([self.checks.style(style)])
        e = None if prompt is None else self.stages.embed([prompt])
        realism, match, patch = self.stages.judge(image_tensor(img), e, sid)
        p = patch[0, 0].numpy()
        return ScoreResult(realism=float(realism[0]), match=None if match is None else float(match[0]),
                           patch=p, heatmap=heatmap_overlay(img, p), image=img)
