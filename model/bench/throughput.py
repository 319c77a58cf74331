"""Generator images/s at several batch sizes, for each precision / memory-format variant (several
networks timed in turn in one call: throughput_many)."""
from __future__ import annotations

import contextlib
import statistics

import torch

from .measure import time_call


def _variants(device: torch.device) -> dict[str, tuple[torch.dtype, bool, torch.dtype | None]]:
    """name -> (weight dtype, channels_last, autocast dtype)."""
    v = {"fp32": (torch.float32, False, None), "bf16_autocast": (torch.float32, False, torch.bfloat16),
         "channels_last": (torch.float32, True, None), "channels_last_bf16": (torch.float32, True, torch.bfloat16)}
    if device.type == "cuda":
        v.update({"fp16": (torch.float16, False, None), "channels_last_fp16": (torch.float16, True, None)})
    return v


def throughput(make_net, make_inputs, batch_sizes: list[int], device: torch.device, seconds: float,
               rounds: int = 3) -> dict:
    """{variant: {"B": images/s of the fastest call, "B_median": of the median call}} at each batch
    size B, plus each variant's mean and max |diff| from fp32 at the largest batch (one network)."""
    return throughput_many({"net": (make_net, make_inputs)}, batch_sizes, device, seconds, rounds)["net"]


def throughput_many(nets: dict, batch_sizes: list[int], device: torch.device, seconds: float,
                    rounds: int = 3) -> dict:
    """nets: {name: (make_net, make_inputs)} -> {name: throughput(...) of that network}. Every
    (network, variant, batch size) is timed in turn, `rounds` times over, so a burst of load from
    other processes falls on all the networks and variants alike and their ratios stay fair."""
    torch.manual_seed(0)
    calls, outs = {}, {}
    for who, (make_net, make_inputs) in nets.items():
        fixed = {b: make_inputs(b) for b in batch_sizes}  # the same inputs for every variant
        for name, (wdt, cl, ac) in _variants(device).items():
            net = make_net().to(device, wdt).eval().requires_grad_(False)
            # explicit either way: the pipeline may hold its model channels_last already
            net = net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            ctx = (lambda ac=ac: torch.autocast(device.type, dtype=ac)) if ac else contextlib.nullcontext
            for b in batch_sizes:
                inputs = [x.to(device, wdt) if x.is_floating_point() else x.to(device) for x in fixed[b]]

                def fn(net=net, inputs=inputs, ctx=ctx):
                    with torch.inference_mode(), ctx():
                        return net(*inputs)
                calls[who, name, b] = fn
            outs[who, name] = calls[who, name, max(batch_sizes)]().float().cpu()
    times: dict = {k: [] for k in calls}
    for r in range(rounds):
        for k, fn in calls.items():
            times[k] += time_call(fn, seconds / rounds, device, warmup=2 if r == 0 else 0, min_calls=1)
    out: dict = {}
    for who, name in outs:
        ref, row = outs[who, "fp32"], {}
        for b in batch_sizes:
            row[str(b)] = b / min(times[who, name, b])  # the fastest call: the least disturbed by other processes
            row[f"{b}_median"] = b / statistics.median(times[who, name, b])
        row["max_abs_diff_vs_fp32"] = float((outs[who, name] - ref).abs().max())  # outputs in [-1, 1]
        row["mean_abs_diff_vs_fp32"] = float((outs[who, name] - ref).abs().mean())
        out.setdefault(who, {})[name] = row
    return out
