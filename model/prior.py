"""The prior: a prompt's MiniLM embedding -> a distribution over latents of the image VAE.

A retrieval prior (RDM / KNN-Diffusion style): the prompt is compared with the captions of
every known emoji (cosine of unit MiniLM vectors), the top-k emojis get softmax weights at a
temperature, and a sample picks one neighbour by those weights (Gumbel-max, seeded) and adds
the image encoder's own posterior noise around its latent. Before the comparison the prompt
passes a learned linear map (e + e W, renormalised; W = 0 is plain MiniLM), trained at export on
the emojis' own plain-word descriptions (model/training/query_map.py): it learns how a person's
wording sits in MiniLM space relative to the captions, which MiniLM alone gets wrong. The
weights are what the model "read" the prompt as, and are shown to the user. Every image is still
drawn by the decoder: the prior holds latents (8x8x16 numbers per image), never pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

RESTYLE_NEIGHBOURS = 16  # emojis whose style difference moves a latent into another style


def best_per_entry(sim: torch.Tensor, cap_entry: torch.Tensor, num_entries: int) -> torch.Tensor:
    """(P, K) query-caption similarities -> (P, U): each entry's best caption."""
    out = torch.full((sim.shape[0], num_entries), -2.0, device=sim.device, dtype=sim.dtype)
    return out.scatter_reduce(1, cap_entry.expand(sim.shape[0], -1), sim, "amax")


@dataclass
class Reading:
    """What the prior read one prompt as: the top-k emoji names and their weights (sum to 1)."""
    names: list[str]
    weights: list[float]
    entries: list[int]

    def __str__(self) -> str:
        return " · ".join(f"{n} {w:.2f}" for n, w in zip(self.names, self.weights) if w >= 0.01)


class RetrievalPrior(nn.Module):
    """Buffers (K captions, U emoji entries, N latents, S styles):
    cap_emb (K, text_dim) unit, cap_entry (K,) entry of each caption,
    latents (N, C, h, w) posterior means, sigmas (N, C) posterior std (mean over positions),
    lat_entry (N,), lat_style (N,); names: U entry names."""

    def __init__(self, *, text_dim: int, latent_shape: tuple[int, int, int], num_styles: int,
                 top_k: int, temperature: float, names: list[str] | None = None,
                 moved_last: tuple[int, ...] = (), variety_from: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.top_k, self.temperature, self.num_styles = top_k, temperature, num_styles
        self.moved_last = tuple(moved_last)  # styles whose designs are moved in only when no other has one
        self.variety_from = tuple(variety_from)  # styles whose designs are moved in for variety (row_for)
        self.names = list(names or [])
        self.register_buffer("cap_emb", torch.zeros(0, text_dim))
        self.register_buffer("query_map", torch.zeros(text_dim, text_dim))  # W of e + e W (0: plain MiniLM)
        self.register_buffer("cap_entry", torch.zeros(0, dtype=torch.long))
        self.register_buffer("latents", torch.zeros(0, *latent_shape))
        self.register_buffer("sigmas", torch.zeros(0, latent_shape[0]))
        self.register_buffer("lat_entry", torch.zeros(0, dtype=torch.long))
        self.register_buffer("lat_style", torch.zeros(0, dtype=torch.long))

    def fill(self, *, names, cap_emb, cap_entry, latents, sigmas, lat_entry, lat_style,
             query_map: torch.Tensor | None = None) -> "RetrievalPrior":
        self.names = list(names)
        self.query_map = torch.zeros_like(self.query_map) if query_map is None else query_map.to(self.query_map.dtype)
        for k, v in dict(cap_emb=cap_emb, cap_entry=cap_entry, latents=latents, sigmas=sigmas,
                         lat_entry=lat_entry, lat_style=lat_style).items():
            setattr(self, k, v.to(getattr(self, k).dtype))
        self._index = None
        self._pairs = None
        self._sq_norms = None
        return self

    def __len__(self) -> int:
        return len(self.names)

    # --- reading a prompt ---
    def query(self, e: torch.Tensor) -> torch.Tensor:
        """(P, text_dim) unit MiniLM embeddings -> the unit vectors compared with the captions."""
        e = e.float()
        return nn.functional.normalize(e + e @ self.query_map.float().to(e.device), dim=-1)

    def best_similarity(self, e: torch.Tensor) -> torch.Tensor:
        """e (P, text_dim) unit MiniLM embeddings -> (P,) the cosine of each to its nearest caption."""
        return (self.query(e) @ self.cap_emb.float().t()).max(1).values

    def read(self, e: torch.Tensor) -> list[Reading]:
        """e (P, text_dim) unit MiniLM embeddings -> one Reading per prompt."""
        if not len(self.names):
            raise ValueError("the prior is empty: the model folder holds no latents")
        sim = self.query(e) @ self.cap_emb.float().t()  # (P, K)
        per_entry = best_per_entry(sim, self.cap_entry, len(self.names))  # (P, U): best caption each
        top = per_entry.topk(min(self.top_k, len(self.names)), dim=1)
        w = torch.softmax(top.values / self.temperature, dim=1)  # (P, k)
        return [Reading([self.names[i] for i in idx.tolist()], [round(float(x), 4) for x in wi], idx.tolist())
                for idx, wi in zip(top.indices, w)]

    def _by_entry(self) -> dict[int, dict[int, int]]:
        """entry -> {style -> latent row} (built once)."""
        if getattr(self, "_index", None) is None:
            idx: dict[int, dict[int, int]] = {}
            for row, (ent, st) in enumerate(zip(self.lat_entry.tolist(), self.lat_style.tolist())):
                idx.setdefault(ent, {}).setdefault(st, row)
            self._index = idx
        return self._index

    def rows_of(self, entry: int) -> dict[int, int]:
        """{style: latent row} of one emoji entry (the styles that have it)."""
        return self._by_entry()[entry]

    def row_for(self, entry: int, style: int, choice: int = 0, variety: bool = False) -> tuple[int, bool]:
        """The latent row of `entry` drawn in `style`, and whether that style has it. When it
        does not (fluent3d lacks newer emojis), another style's latent of the same emoji is
        used (picked by `choice`; the `moved_last` styles' only when no other style has it);
        `latent_in` moves it into the asked style. variety: when the style has it, an odd `choice`
        picks one of the `variety_from` styles' designs of it in turn (a set draws an emoji once,
        so these are the only other designs of an exact name), an even one its own: half of a
        request's seeds keep the set's own drawing, to show when a moved one is not as good."""
        rows = self._by_entry()[entry]
        if style in rows:
            others = [rows[s] for s in self.variety_from if s in rows and s != style] if variety else []
            if not others or choice % 2 == 0:
                return rows[style], True
            return others[(choice // 2) % len(others)], False
        others = [rows[s] for s in sorted(rows) if s not in self.moved_last] or [rows[s] for s in sorted(rows)]
        return others[choice % len(others)], False

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared L2 distance of one latent (C, h, w) to every stored latent: (N,). Computed as
        |a|^2 - 2 a.z + |z|^2 over a view of the table (row norms cached), so no (N, C*h*w)
        difference is ever materialised (61 MB at the shipped model's 15k latents)."""
        flat = self.latents.flatten(1)
        if getattr(self, "_sq_norms", None) is None:
            self._sq_norms = flat.float().pow(2).sum(1)
        zf = z.float().flatten().to(flat.device)
        return (self._sq_norms - 2 * (flat.float() @ zf) + zf.pow(2).sum()).clamp_min(0)

    def pair_rows(self, source: int, target: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent rows (F,) of the emojis both styles have, in source and in target (built once per pair)."""
        if getattr(self, "_pairs", None) is None:
            self._pairs = {}
        if (source, target) not in self._pairs:
            both = [rows for rows in self._by_entry().values() if source in rows and target in rows]
            self._pairs[(source, target)] = (torch.tensor([r[source] for r in both], dtype=torch.long),
                                             torch.tensor([r[target] for r in both], dtype=torch.long))
        return self._pairs[(source, target)]

    def restyle(self, z: torch.Tensor, source: int, target: int, k: int = RESTYLE_NEIGHBOURS) -> torch.Tensor:
        """A latent (C, h, w) of an image in style `source`, moved into style `target` by analogy:
        the mean (target - source) latent difference of the k emojis nearest to it that both
        styles have. The latent holds style as well as content, so decoding an OpenMoji latent as
        Twemoji alone gives a blur; measured on 120 real images (model/EXPERIMENTS.md), this local
        shift is judged the asked style 0.62 of the time against 0.36 for one global mean shift."""
        if source == target:
            return z
        rows_s, rows_t = self.pair_rows(source, target)
        if not len(rows_s):
            return z
        near = self.distances(z)[rows_s].topk(min(k, len(rows_s)), largest=False).indices
        shift = (self.latents[rows_t[near]].float() - self.latents[rows_s[near]].float()).mean(0)
        return z + shift.to(z.device, z.dtype)

    def is_variety(self, row: int, style: int) -> bool:
        """Whether latent row `row`, drawn in `style`, is another set's design moved in for variety
        (the asked style has its own design of that emoji), not one moved in because it lacks it."""
        return int(self.lat_style[row]) != style and style in self._by_entry()[int(self.lat_entry[row])]

    def latent_in(self, entry: int, style: int, choice: int = 0, memo: dict | None = None,
                  variety: bool = False) -> torch.Tensor:
        """The latent (C, h, w) of `entry` in `style`: stored, or restyled from another style's
        (memo: restyles already made in this call, keyed by (row, style)); variety: row_for's."""
        row, has = self.row_for(entry, style, choice, variety)
        z = self.latents[row].float().cpu()
        if has:
            return z
        if memo is None:
            return self.restyle(z, int(self.lat_style[row]), style)
        if (row, style) not in memo:
            memo[(row, style)] = self.restyle(z, int(self.lat_style[row]), style)
        return memo[(row, style)]

    # --- sampling ---
    def sample(self, readings: list[Reading], styles: list[int], seeds: list[int],
               truncation: float = 1.0) -> torch.Tensor:
        """One latent per (reading, style, seed) -> (N, C, h, w). Seed k picks a neighbour by the
        reading's weights (truncation 0: always the best) and adds truncation x the posterior
        std of noise; each sample has its own RNG, so it does not depend on its batch mates."""
        return self.sample_designs(readings, styles, seeds, truncation)[0]

    def sample_designs(self, readings: list[Reading], styles: list[int], seeds: list[int],
                       truncation: float = 1.0, variety: bool = False) -> tuple[torch.Tensor, list[int]]:
        """`sample`, and the stored latent row each sample was drawn from (its design: one emoji
        as one set drew it), so that a caller can show different designs rather than one twice.
        variety: seeds also draw the `variety_from` sets' designs moved into the asked style
        (`row_for`); the caller must judge them (the gate: `Gate.rank`'s variety rule)."""
        out, rows, memo = [], [], {}  # a restyle depends only on (row, style): made once per call
        for rd, st, seed in zip(readings, styles, seeds):
            g = torch.Generator().manual_seed(int(seed))
            w = torch.tensor(rd.weights, dtype=torch.float64)
            gumbel = -torch.log(-torch.log(torch.rand(len(w), generator=g, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)))
            pick = int(torch.argmax(torch.log(w.clamp(min=1e-12)) + truncation * gumbel))
            eps = torch.randn(self.latents.shape[1:], generator=g)  # (C, h, w)
            row, _ = self.row_for(rd.entries[pick], int(st), choice=int(seed), variety=variety)
            z = self.latent_in(rd.entries[pick], int(st), choice=int(seed), memo=memo, variety=variety)
            out.append(z + truncation * self.sigmas[row].float().cpu()[:, None, None] * eps)
            rows.append(row)
        return torch.stack(out), rows  # (N, C, h, w), (N,)

    def mean_latent(self, reading: Reading, style: int) -> torch.Tensor:
        """The weight-averaged latent of a reading's neighbours in `style`: (C, h, w)."""
        z = torch.stack([self.latent_in(ent, style) for ent in reading.entries])
        w = torch.tensor(reading.weights)[:, None, None, None]
        return (z * w).sum(0)
