"""The command line of the evaluation: ``python -m model.evaluate --help``."""
from __future__ import annotations

import argparse
import dataclasses

from .config import EvalConfig
from .protocol import run


def _field_help() -> dict[str, str]:
    import inspect
    import re

    return {m.group(1): m.group(2) for m in (re.match(r"\s+(\w+): \w+ = .*?#\s*(.*)$", line)
                                             for line in inspect.getsource(EvalConfig).splitlines()) if m}


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    helps = _field_help()
    ap = argparse.ArgumentParser(description="Measure quality (R-precision, FD-eval, FD-ENL0, diversity) "
                                             "and speed of a model; writes results.json/.md and quality.png.")
    for f in dataclasses.fields(EvalConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f"{helps.get(f.name, '')} (default: {f.default})")
        else:
            kind = {"int": int, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            ap.add_argument(flag, type=kind, default=f.default, help=f"{helps.get(f.name, '')} (default: {f.default!r})")
    return EvalConfig(**vars(ap.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))

