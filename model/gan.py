"""The model as one object: VAE text head + generator + discriminator, saved as a folder.

Folder layout (local or a Hub repo): config.json, text_head.safetensors,
generator.safetensors, discriminator.safetensors (fp16 storage, each <= 10 MB), README.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ModelConfig
from .discriminator import Discriminator
from .generator import Generator
from .text_encoder import VAEHead

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
        for name in WEIGHT_FILES:
            sd = {k: v.detach().to("cpu", dtype).contiguous() for k, v in getattr(self, name).state_dict().items()}
            save_file(sd, str(folder / f"{name}.safetensors"), metadata={"format": "pt"})
        return folder

    @classmethod
    def from_folder(cls, folder: str | Path) -> "TextToImageGAN":
        """Load a model folder. Raises FileNotFoundError / ValueError naming the bad file."""
        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{cfg_path} is missing: not a model folder")
        try:
            cfg = ModelConfig.load(cfg_path)
        except (ValueError, TypeError, AttributeError) as e:  # bad JSON, unknown key, bad value or type
            raise ValueError(f"{cfg_path} is not a valid model config: {e}") from e
        model = cls(cfg)
        for name in WEIGHT_FILES:
            path = folder / f"{name}.safetensors"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing")
            try:
                sd = load_file(str(path))
            except (SafetensorError, OSError, ValueError) as e:
                raise ValueError(f"{path} is not a readable safetensors file: {e}") from e
            module = getattr(model, name)
            own = module.state_dict()
            missing, unexpected = set(own) - set(sd), set(sd) - set(own)
            bad_shapes = [f"{k} {tuple(sd[k].shape)} (config wants {tuple(own[k].shape)})"
                          for k in sorted(set(own) & set(sd)) if own[k].shape != sd[k].shape]
            if missing or unexpected or bad_shapes:
                raise ValueError(
                    f"{path} does not match {cfg_path}: missing={sorted(missing)[:5]} "
                    f"unexpected={sorted(unexpected)[:5]} wrong_shape={bad_shapes[:5]}")
            not_finite = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all()]
            if not_finite:
                raise ValueError(f"{path} is corrupt: NaN/inf values in {sorted(not_finite)[:5]}")
            module.load_state_dict({k: v.float() for k, v in sd.items()})
        return model.eval()
