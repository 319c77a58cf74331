"""The super-resolution stage: 64-px images -> 256 px (DALL·E 2's 64 -> 256 upsampler).

A compact plain conv net (the SRVGGNetCompact shape of Real-ESRGAN's animevideov3 model):
conv3x3 + PReLU blocks at the input resolution, a conv to 3 * scale^2 channels, a pixel
shuffle, plus the nearest-neighbour upscaled input (the net learns only the residual).
The same class runs the converted third-party weights and ones trained here; a folder holds
config.json (UpsamplerConfig + provenance) and upsampler.safetensors. Images are [0, 1] RGB.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .paths import UPSAMPLER_DIR
from .weights import load_checked, read_safetensors, save_weights


MODEL_TYPE = "emoji-upsampler"


@dataclass(frozen=True, kw_only=True)
class UpsamplerConfig:
    scale: int = 4
    features: int = 64  # channels of every body conv
    convs: int = 16  # body convs after the first one (the output conv not counted)
    name: str = "upsampler"  # shown in the app and the benchmark
    source: str = ""  # where the weights come from (license, URL)

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4) or self.features < 1 or self.convs < 0:
            raise ValueError(f"unsupported upsampler: scale {self.scale}, features {self.features}, "
                             f"convs {self.convs}")

    @classmethod
    def load(cls, path: str | Path) -> "UpsamplerConfig":
        d = json.loads(Path(path).read_text())
        if d.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ValueError(f"{path}: model_type {d.get('model_type')!r} is not {MODEL_TYPE!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Upsampler(nn.Module):
    def __init__(self, cfg: UpsamplerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        f = cfg.features
        layers: list[nn.Module] = [nn.Conv2d(3, f, 3, padding=1), nn.PReLU(f)]
        for _ in range(cfg.convs):
            layers += [nn.Conv2d(f, f, 3, padding=1), nn.PReLU(f)]
        layers += [nn.Conv2d(f, 3 * cfg.scale ** 2, 3, padding=1), nn.PixelShuffle(cfg.scale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> (B, 3, sH, sW), not clamped."""
        return self.body(x) + F.interpolate(x, scale_factor=self.cfg.scale, mode="nearest")

    @torch.inference_mode()
    def upscale(self, x: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] (the decoder's range) -> (B, 3, size, size) in [-1, 1].
        A size other than scale x H is reached by an antialiased resize of the net's output."""
        p = next(self.parameters())
        y = self((x.to(p.device, p.dtype) + 1) / 2).float().clamp(0, 1)
        if size is not None and size != y.shape[-1]:
            y = F.interpolate(y, size=(size, size), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        return y * 2 - 1

    def save_pretrained(self, folder: str | Path, extra_config: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {"model_type": MODEL_TYPE, **dataclasses.asdict(self.cfg), **(extra_config or {})}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        save_weights(self, folder / "upsampler.safetensors")
        return folder

    @classmethod
    def from_folder(cls, folder: str | Path = UPSAMPLER_DIR) -> "Upsampler":
        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"no upsampler config at {cfg_path}")
        model = cls(UpsamplerConfig.load(cfg_path))
        path = folder / "upsampler.safetensors"
        load_checked(model, read_safetensors(path), path, cfg_path)
        return model.eval().requires_grad_(False)


def resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """The plain baselines: (B, 3, H, W) in [-1, 1] -> size px by "nearest" or "bicubic"."""
    if mode == "nearest":
        return F.interpolate(x, size=(size, size), mode="nearest")
    return F.interpolate(x, size=(size, size), mode=mode, align_corners=False).clamp(-1, 1)
