"""The model as one object: VAE text head + generator + discriminator, saved as a folder.

Folder layout (local or a Hub repo): config.json, text_head.safetensors,
generator.safetensors, discriminator.safetensors (fp16 storage, each <= 10 MB), README.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .config import ModelConfig
from .discriminator import Discriminator
from .generator import Generator
from .text_encoder import VAEHead
from .weights import load_networks, read_config, save_networks

WEIGHT_FILES = ("text_head", "generator", "discriminator")


class TextToImageGAN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.text_head = VAEHead(text_dim=cfg.text_dim, cond_dim=cfg.cond_dim, gain=cfg.text_gain)
        self.generator = Generator(cfg)
        self.discriminator = Discriminator(cfg)

    def save_pretrained(self, folder: str | Path, *, dtype: torch.dtype = torch.float16,
                        extra_config: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {"model_type": "emoji-vae-gan", **self.cfg.to_dict()}
        if extra_config:
            cfg.update(extra_config)
        (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        save_networks(self, WEIGHT_FILES, folder, dtype)
        return folder

    @classmethod
    def from_folder(cls, folder: str | Path) -> "TextToImageGAN":
        """Load a model folder. Raises FileNotFoundError / ValueError naming the bad file."""
        folder = Path(folder)
        cfg, cfg_path = read_config(folder, ModelConfig.load)
        model = cls(cfg)
        load_networks(model, WEIGHT_FILES, folder, cfg_path)
        return model.eval()
