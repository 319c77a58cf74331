"""Rebuild the text side of an exported model's prior, keeping its networks and latent tables.

    python -m model.training.reprior --model runs/vae/export --prior-data data/emoji/64 --out runs/vae/export

The prior's caption table and query map come from the data's captions (names, keywords, the
project's plain-word descriptions in model/data/descriptions.jsonl). When only those change,
the networks and the image latents (the slow part of an export: every image encoded and refined
through the decoder) stay valid, so this rebuilds just the caption table and refits the query
map, in a few minutes on a CPU, exactly as the training export does (trainer.text_tables). The
data must hold the same emojis as the model (same names); otherwise retrain or re-export.

The config's training record keeps the run that trained the networks and gains
``prior_rebuilt``: which data the text side now comes from (with its metadata's hash).
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from ..dataset import image_names, load_dataset
from ..latent import LatentConfig
from ..latent_model import LatentModel
from .card import write_card
from .trainer import TrainConfig, text_tables


def rebuild_text_side(model_dir: str | Path, prior_data: str | Path, out: str | Path, *,
                      query_map_steps: int | None = None, card_notes: str | Path | None = None) -> Path:
    """Load model_dir, replace its prior's caption table and query map with ones built from
    prior_data, save the folder to out (which may be model_dir) and rewrite its card."""
    model_dir, out = Path(model_dir), Path(out)
    config = json.loads((model_dir / "config.json").read_text())
    training = dict(config.get("training") or {})
    steps = int(query_map_steps if query_map_steps is not None
                else training.get("config", {}).get("query_map_steps", TrainConfig.query_map_steps))
    m = LatentModel.from_folder(model_dir)
    pack = load_dataset(prior_data, size=m.cfg.image_size, skin_tones="all")
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
    a = ap.parse_args(argv)
    print(rebuild_text_side(a.model, a.prior_data, a.out, query_map_steps=a.query_map_steps, card_notes=a.card_notes))


if __name__ == "__main__":
    main()
