"""Command lines built from config dataclasses: one flag per field, its comment as --help."""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re


def field_help(cls) -> dict[str, str]:
    """The comment after each field of a dataclass (``name: type = default  # help``)."""
    pattern = re.compile(r"\s+(\w+): \w+ = .*?#\s*(.*)$")
    return {m.group(1): m.group(2) for m in map(pattern.match, inspect.getsource(cls).splitlines()) if m}


def dataclass_parser(cls, description: str) -> argparse.ArgumentParser:
    """--a-field for every field of cls (bool fields get --x / --no-x); unknown flags are errors."""
    ap = argparse.ArgumentParser(description=description)
    helps = field_help(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        h = f"{helps.get(f.name, f.name)} (default: {f.default!r})"
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind == "bool":
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=h)
        else:
            ap.add_argument(flag, type={"int": int, "float": float, "str": str}[kind], default=f.default, help=h)
    return ap


def parse_dataclass(cls, argv: list[str] | None, description: str):
    return cls(**vars(dataclass_parser(cls, description).parse_args(argv)))
