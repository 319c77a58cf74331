"""Which device to run on and in which precision: one home for the policy that serving,
training, evaluation and the benchmarks share."""
from __future__ import annotations

import torch


def pick_device(name: str | None = "auto") -> str:
    """"auto" / None / "" -> "cuda" when a GPU is there, else "cpu"; any other name as given."""
    if name in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN runs bf16 natively on this CPU (else bf16 autocast would be slower)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
