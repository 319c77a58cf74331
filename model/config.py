"""Configuration dataclasses. ``ModelConfig`` travels with the weights as config.json."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STYLES = ("google", "twitter", "fluent3d", "openmoji")


class DictConfig:
    """Mixin for the frozen config dataclasses that travel as config.json: tuples are JSON lists,
    and unknown keys are an error naming the class."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True, kw_only=True)
class ModelConfig(DictConfig):
    """Architecture of the text encoder head, generator and discriminator."""

    text_encoder: str = "sentence-transformers/all-MiniLM-L6-v2"  # frozen; only its name travels
    text_dim: int = 384  # MiniLM sentence embedding width
    # MiniLM vectors are unit-norm (per-dim std ~0.05): the VAE head reads e * text_gain so mu
    # starts O(1) instead of ~0.05, and the generator cannot learn to ignore the text
    text_gain: float = 20.0
    cond_dim: int = 128  # VAE (conditioning augmentation) latent c, as in StackGAN
    z_dim: int = 64  # per-image noise
    styles: tuple[str, ...] = DEFAULT_STYLES  # index len(styles) is the learned "any" style
    style_dim: int = 32
    w_dim: int = 256  # mapping-network output that modulates every generator block
    image_size: int = 64
    # channels per resolution 4, 8, 16, ..., image_size (len = log2(size) - 1)
    g_channels: tuple[int, ...] = (256, 192, 128, 64, 32)
    # channels per resolution image_size, ..., 8, 4 (mirror of the generator)
    d_channels: tuple[int, ...] = (32, 64, 128, 192, 256)
    # the last N upsampling blocks of the generator upsample bilinearly instead of by nearest
    # neighbour: a smoother input to their convolutions, less one-pixel crosshatch; the weights
    # are the same shape either way, so a model can be fine-tuned from one setting to the other
    g_bilinear_blocks: int = 0

    def __post_init__(self) -> None:
        n = self.image_size.bit_length() - 2  # 64 -> 5 resolutions: 4..64
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {self.image_size}")
        for name in ("g_channels", "d_channels"):
            ch = getattr(self, name)
            if len(ch) != n:
                raise ValueError(f"{name} needs {n} entries for image_size={self.image_size}, got {len(ch)}")
        if not 0 <= self.g_bilinear_blocks <= n - 1:
            raise ValueError(f"g_bilinear_blocks must be in [0, {n - 1}] (the upsampling blocks), "
                             f"got {self.g_bilinear_blocks}")
        if not self.styles or len(set(self.styles)) != len(self.styles):
            raise ValueError(f"styles must be unique and non-empty, got {self.styles}")
        for name in ("text_dim", "cond_dim", "z_dim", "style_dim", "w_dim", "text_gain"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def num_styles(self) -> int:
        return len(self.styles)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        try:
            d = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        d.pop("model_type", None)
        d.pop("training", None)
        d.setdefault("text_gain", 1.0)  # config.json written before the field existed: e read as is
        return cls.from_dict(d)


TINY = dict(cond_dim=16, z_dim=8, style_dim=4, w_dim=32, image_size=16,
            g_channels=(16, 8, 8), d_channels=(8, 8, 16))
"""A tiny architecture for tests (16x16 images)."""

__all__ = ["DictConfig", "ModelConfig", "DEFAULT_STYLES", "TINY"]
