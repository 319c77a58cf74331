"""The prior's text side built from a pack: its caption table and the query map fitted on the
emojis' descriptions. The training export and model.training.reprior both build it here."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.records import caption_templates, is_description
from ..dataset import Pack
from .query_map import fit_query_map


def prior_captions(pack: Pack, names: list[str]) -> tuple[list[str], list[tuple[int, int]]]:
    """Entry names and (caption id, entry id) pairs for the prior: each emoji's name, keyword and
    description captions; the style and 'emoji' templates of its name add nothing to a search and
    are left out (only those: a description may end in "... japanese style")."""
    entries = sorted(set(names))
    eid = {n: i for i, n in enumerate(entries)}
    pairs = set()
    off = pack.cap_offsets.tolist()
    for i, n in enumerate(names):
        templates = set(caption_templates(n, pack.style_names[int(pack.styles[i])]))
        for c in pack.cap_index[off[i]:off[i + 1]].tolist():
            if pack.captions[c] not in templates:
                pairs.add((c, eid[n]))
    return entries, sorted(pairs)


@dataclass
class TextTables:
    """The prior's text side: entry names, caption table (K, D) unit, each caption's entry (K,),
    the query map (D, D) and how many descriptions it was fitted on."""
    names: list[str]
    cap_emb: torch.Tensor
    cap_entry: torch.Tensor
    query_map: torch.Tensor
    described: int


def text_tables(pack: Pack, names: list[str], query_map_steps: int) -> TextTables:
    """The prior's caption table from a pack's captions, and the query map fitted on its
    descriptions (the export's text side; model.training.reprior rebuilds only this)."""
    entries, pairs = prior_captions(pack, names)
    caps = torch.tensor([c for c, _ in pairs])
    cap_emb, cap_entry = pack.cap_emb[caps].float(), torch.tensor([e for _, e in pairs])
    queries = torch.tensor([k for k, (c, e) in enumerate(pairs) if is_description(pack.captions[c], entries[e])],
                           dtype=torch.long)
    query_map = fit_query_map(cap_emb, cap_entry, caps, queries, steps=query_map_steps)
    return TextTables(entries, cap_emb, cap_entry, query_map, len(queries))
