"""Rebuild the text side of an exported model's prior, keeping its networks and latent tables.

    python -m model.training.reprior --model runs/vae/export --prior-data data/emoji/64 --out runs/vae/export

The prior's caption table and query map come from the data's captions (names, keywords, the
project's plain-word descriptions in model/data/descriptions.jsonl). When only those change,
the networks and the image latents (the slow part of an export: every image encoded and refined
through the decoder) stay valid, so this rebuilds just the caption table and refits the query
map, in a few minutes on a CPU, exactly as the training export does (text_tables.text_tables). The
data must hold the same emojis as the model (same names); otherwise retrain or re-export.

The config's training record keeps the run that trained the networks and gains
``prior_rebuilt``: which data the text side now comes from (with its metadata's hash).

--text-encoder moves the model to another sentence encoder (model.text_encoder.TEXT_ENCODERS):
the caption table and query map are rebuilt in its space, and the discriminator's text-match
head, which reads the embedding too, is refitted on frozen image features
(model.training.match_head) on the images the training run let D see (--match-data, default
the run's --data), with their names, keywords and descriptions; its accuracy on the images it held out, before and after, goes to the
record as ``match_head``. --refit-match refits the head with the same encoder (a control).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from ..dataset import image_names, load_dataset
from ..latent import LatentConfig
from ..latent_model import LatentModel
from . import match_head
from .card import write_card
from .text_tables import text_tables
from .trainer import TrainConfig, held_out


def refit_match(old: LatentModel, new: LatentModel, match_data: str | Path, *, holdout: float, seed: int,
                steps: int = 3000, known=None) -> dict:
    """Fit new's discriminator text-match head on match_data's images outside the run's holdout
    (features through the frozen trunk); the held-out images' accuracy of old's head and new's.
    known: a pack in new's encoder space whose caption embeddings are reused."""
    pack_old = load_dataset(match_data, size=new.cfg.image_size, text_encoder=old.cfg.text_encoder, templates=False)
    pack_new = load_dataset(match_data, size=new.cfg.image_size, text_encoder=new.cfg.text_encoder, templates=False,
                            known=known)
    feats = match_head.image_features(old, pack_old)
    test = held_out(len(pack_old), holdout, seed)
    fit = match_head.fit_match_head(new, pack_new, feats, ~test, steps=steps, seed=seed)
    before = match_head.match_accuracy(old, pack_old, feats, test)
    after = match_head.match_accuracy(new, pack_new, feats, test)
    diff = torch.tensor(after.pop("pair_hits")) - torch.tensor(before.pop("pair_hits"))
    se = float(diff.std() / len(diff) ** 0.5) if len(diff) > 1 else 0.0
    return {"data": str(match_data), "fit": fit, "held_out_before": {"text_encoder": old.cfg.text_encoder, **before},
            "held_out_after": {"text_encoder": new.cfg.text_encoder, **after},
            "pair_after_minus_before": {"diff": round(float(diff.mean()), 4), "se": round(se, 4)}}


def rebuild_text_side(model_dir: str | Path, prior_data: str | Path, out: str | Path, *,
                      query_map_steps: int | None = None, card_notes: str | Path | None = None,
                      text_encoder: str | None = None, match_data: str | Path | None = None,
                      refit_match_head: bool = False, match_steps: int = 3000) -> Path:
    """Load model_dir, replace its prior's caption table and query map with ones built from
    prior_data (in text_encoder's space: default the model's own), save the folder to out (which
    may be model_dir) and rewrite its card. A new encoder refits the discriminator's text-match head."""
    model_dir, out = Path(model_dir), Path(out)
    config = json.loads((model_dir / "config.json").read_text())
    training = dict(config.get("training") or {})
    run = training.get("config", {})
    steps = int(query_map_steps if query_map_steps is not None
                else run.get("query_map_steps", TrainConfig.query_map_steps))
    m = LatentModel.from_folder(model_dir)
    name = text_encoder or m.cfg.text_encoder
    # only the captions the prior reads are embedded (the same tables; cached beside the data)
    pack = load_dataset(prior_data, size=m.cfg.image_size, skin_tones="all", text_encoder=name, templates=False)
    if name != m.cfg.text_encoder or refit_match_head:
        new = match_head.swap_text_encoder(m, dataclasses.replace(m.cfg, text_encoder=name, text_dim=0))
        training["match_head"] = refit_match(m, new, match_data or run.get("data", TrainConfig.data),
                                             holdout=float(run.get("holdout", TrainConfig.holdout)),
                                             seed=int(run.get("seed", TrainConfig.seed)), known=pack,
                                             steps=match_steps)
        new.prior.fill(names=m.prior.names, cap_emb=torch.zeros(0, new.cfg.text_dim), cap_entry=m.prior.cap_entry[:0],
                       latents=m.prior.latents, sigmas=m.prior.sigmas, lat_entry=m.prior.lat_entry,
                       lat_style=m.prior.lat_style)
        m = new
    if pack.style_names != list(m.cfg.styles):
        raise ValueError(f"{prior_data} has styles {pack.style_names}, the model {list(m.cfg.styles)}")
    names = image_names(pack)
    text = text_tables(pack, names, steps)
    if text.names != m.prior.names:
        gone, new = sorted(set(m.prior.names) - set(text.names)), sorted(set(text.names) - set(m.prior.names))
        raise ValueError(f"{prior_data} does not hold the model's emojis (missing {gone[:5]}, new {new[:5]}): "
                         "the latent tables would not match; export from the training run instead")
    p = m.prior
    with torch.no_grad():
        p.fill(names=text.names, cap_emb=text.cap_emb, cap_entry=text.cap_entry, query_map=text.query_map,
               latents=p.latents, sigmas=p.sigmas, lat_entry=p.lat_entry, lat_style=p.lat_style)
    meta = Path(prior_data) / "metadata.jsonl"
    training["query_map_descriptions"] = text.described
    training["prior_rebuilt"] = {"prior_data": str(prior_data), "query_map_steps": steps, "captions": len(text.cap_emb),
                                 "metadata_md5": hashlib.md5(meta.read_bytes()).hexdigest()[:12] if meta.is_file() else None}
    m.save_pretrained(out, extra_config={"training": training})
    if out != model_dir and (model_dir / "samples.png").is_file():
        (out / "samples.png").write_bytes((model_dir / "samples.png").read_bytes())
    notes = Path(card_notes).read_text() if card_notes else ""
    write_card(out, LatentConfig.load(out / "config.json"), training, TrainConfig, notes=notes)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Rebuild an exported model's caption table and query map "
                                             "from a data folder (networks and latents kept).")
    ap.add_argument("--model", required=True, help="an exported model folder")
    ap.add_argument("--prior-data", required=True, help="imagefolder (or pack) with every skin tone, e.g. data/emoji/64")
    ap.add_argument("--out", required=True, help="where to write the model folder (may be --model)")
    ap.add_argument("--query-map-steps", type=int, default=None, help="default: the training run's")
    ap.add_argument("--card-notes", default=None, help="markdown appended to the model card")
    ap.add_argument("--text-encoder", default=None,
                    help="move the model to this sentence encoder (model.text_encoder.TEXT_ENCODERS); default: its own")
    ap.add_argument("--match-data", default=None,
                    help="pack or imagefolder the text-match head is refitted on (default: the training run's --data)")
    ap.add_argument("--refit-match", action="store_true", help="refit the text-match head with the same encoder (a control)")
    a = ap.parse_args(argv)
    print(rebuild_text_side(a.model, a.prior_data, a.out, query_map_steps=a.query_map_steps, card_notes=a.card_notes,
                            text_encoder=a.text_encoder, match_data=a.match_data, refit_match_head=a.refit_match))


if __name__ == "__main__":
    main()
