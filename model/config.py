"""What every config dataclass that travels as config.json shares, and the default art styles."""
from __future__ import annotations

import dataclasses

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


__all__ = ["DictConfig", "DEFAULT_STYLES"]
