"""The latent model as one object, saved as a folder (local or a Hub repo):

    config.json                  LatentConfig + model_type "emoji-latent-vae" (+ training record)
    encoder.safetensors          ImageEncoder (image -> latent): variations, restyling, edits
    decoder.safetensors          Decoder = the generator (latent, style -> image)
    discriminator.safetensors    realism / text-match / patch map: the gate
    prior.safetensors            caption embeddings of the known emojis, the query map
                                 (+ names in its metadata)
    latents-<style>.safetensors  the prior's latents of that style's images (one file per style,
                                 so each stays under 10 MB at fp16)
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .config import config_dict
from .discriminator import Discriminator
from .latent import MODEL_TYPE, Decoder, ImageEncoder, LatentConfig
from .prior import RetrievalPrior
from .weights import load_networks, read_config, read_safetensors, save_networks

NETWORKS = ("encoder", "decoder", "discriminator")
LATENT_KEYS = ("latents", "sigmas", "lat_entry", "lat_style")


class LatentModel(nn.Module):
    def __init__(self, cfg: LatentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ImageEncoder(cfg)
        self.decoder = Decoder(cfg)
        self.discriminator = Discriminator(cfg)

        def ids(names: tuple[str, ...]) -> tuple[int, ...]:  # style names -> ids (names it lacks dropped)
            return tuple(cfg.styles.index(s) for s in names if s in cfg.styles)

        self.prior = RetrievalPrior(text_dim=cfg.text_dim, latent_shape=cfg.latent_shape, num_styles=cfg.num_styles,
                                    top_k=cfg.prior_top_k, temperature=cfg.prior_temperature,
                                    moved_last=ids(cfg.prior_moved_last), variety_from=ids(cfg.prior_variety_from))

    @staticmethod
    def weight_files(styles) -> list[str]:
        return [f"{n}.safetensors" for n in (*NETWORKS, "prior")] + [f"latents-{s}.safetensors" for s in styles]

    def save_pretrained(self, folder: str | Path, *, dtype: torch.dtype = torch.float16,
                        extra_config: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {"model_type": MODEL_TYPE, **config_dict(self.cfg), **(extra_config or {})}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

        def cast(v: torch.Tensor) -> torch.Tensor:
            return v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()

        save_networks(self, NETWORKS, folder, dtype)
        p = self.prior
        q, scale = quantize_rows(p.cap_emb)
        save_file({"cap_emb_q": q, "cap_emb_scale": scale, "cap_entry": cast(p.cap_entry),
                   "query_map": cast(p.query_map)}, str(folder / "prior.safetensors"),
                  metadata={"format": "pt", "names": json.dumps(p.names)})
        for s, style in enumerate(self.cfg.styles):
            rows = p.lat_style == s
            save_file({k: cast(getattr(p, k)[rows]) for k in LATENT_KEYS},
                      str(folder / f"latents-{style}.safetensors"), metadata={"format": "pt"})
        return folder

    @classmethod
    def from_folder(cls, folder: str | Path) -> "LatentModel":
        """Load a model folder. Raises FileNotFoundError / ValueError naming the bad file."""
        folder = Path(folder)
        cfg, cfg_path = read_config(folder, LatentConfig.load)
        model = cls(cfg)
        load_networks(model, NETWORKS, folder, cfg_path)
        prior_path = folder / "prior.safetensors"
        prior = read_safetensors(prior_path)
        with safe_open(str(prior_path), "pt") as f:
            names = json.loads((f.metadata() or {}).get("names", "[]"))
        parts = {k: [] for k in LATENT_KEYS}
        for style in cfg.styles:
            t = read_safetensors(folder / f"latents-{style}.safetensors")
            for k in LATENT_KEYS:
                if k not in t:
                    raise ValueError(f"{folder / f'latents-{style}.safetensors'} lacks {k!r}")
                parts[k].append(t[k])
        tables = {k: torch.cat(v) for k, v in parts.items()}
        if "cap_emb_q" in prior and "cap_emb_scale" in prior:
            prior["cap_emb"] = prior["cap_emb_q"].float() * prior["cap_emb_scale"].float()
        if tables["latents"].shape[1:] != cfg.latent_shape or "cap_emb" not in prior or "cap_entry" not in prior:
            raise ValueError(f"the prior files in {folder} do not match {cfg_path} (latent shape "
                             f"{tuple(tables['latents'].shape[1:])}, config wants {cfg.latent_shape})")
        qmap = prior.get("query_map")
        if qmap is not None and tuple(qmap.shape) != (cfg.text_dim, cfg.text_dim):
            raise ValueError(f"{prior_path}: query_map is {tuple(qmap.shape)}, the config's text_dim wants "
                             f"{(cfg.text_dim, cfg.text_dim)}")
        n = len(names)
        top = max(int(t.max()) if t.numel() else -1 for t in (prior["cap_entry"], tables["lat_entry"]))
        if n == 0 or top >= n:
            raise ValueError(f"{prior_path}: the caption/latent tables name entries its {n} names do not have")
        model.prior.fill(names=names, cap_emb=prior["cap_emb"].float(), cap_entry=prior["cap_entry"],
                         latents=tables["latents"].float(), sigmas=tables["sigmas"].float(),
                         lat_entry=tables["lat_entry"], lat_style=tables["lat_style"],
                         query_map=qmap)  # absent in folders from before it: plain MiniLM
        return model.eval()


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, D) float -> int8 (K, D) and a float16 scale (K, 1) per row (symmetric): the caption
    table at a quarter of float32, under the 10 MB a shipped file may hold (30k keyword captions
    in float16 were 24 MB). On the natural descriptions the prior's first readings are the same."""
    x = x.detach().float().cpu()
    scale = (x.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12)
    return (x / scale).round().clamp(-127, 127).to(torch.int8).contiguous(), scale.half().contiguous()

