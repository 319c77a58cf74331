"""The art styles of the default data, and how a frozen config dataclass travels as JSON."""
from __future__ import annotations

import dataclasses

# the four emoji sets the data builder knows (model/data/packages.py), in the order a model's
# style ids take them when a data set does not say otherwise
STYLES: tuple[str, ...] = ("google", "twitter", "fluent3d", "openmoji")


def config_dict(cfg) -> dict:
    """A config dataclass -> a JSON-ready dict (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def config_from_dict(cls, d: dict):
    """config_dict's inverse: lists back to tuples; unknown keys are a ValueError naming the class."""
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
