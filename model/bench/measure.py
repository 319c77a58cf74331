"""The bench's instruments: MACs and parameters of a module, timing calls, the machine's matmul
FLOP/s, percentiles, RSS, torch's thread count."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import resource
import statistics
import time
from pathlib import Path

import torch
from torch import nn


# --- counting ---

def count_macs(module: nn.Module, *args, **kwargs) -> int:
    """Multiply-accumulates of every Conv1d/2d/3d, ConvTranspose and Linear in one forward call
    (for the whole batch given). Elementwise ops, norms and attention matmuls are not counted."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            total[0] += out.numel() * (m.in_channels // m.groups) * int(torch.tensor(m.kernel_size).prod())
        elif isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            total[0] += inp[0].numel() * (m.out_channels // m.groups) * int(torch.tensor(m.kernel_size).prod())

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, kinds)]
    try:
        with torch.inference_mode():
            module(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- timing ---

def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, seconds: float, device: torch.device, *, warmup: int = 2, min_calls: int = 3) -> list[float]:
    """Seconds of each fn() call, after warm-up, over >= min_calls calls and ~seconds."""
    for _ in range(warmup):
        fn()
    sync_device(device)
    times, t_end = [], time.perf_counter() + seconds
    while len(times) < min_calls or time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        sync_device(device)
        times.append(time.perf_counter() - t)
    return times


def matmul_flops(dtype: torch.dtype, device: torch.device, seconds: float, n: int = 2048) -> float:
    """Measured GFLOP/s of an n x n matmul (2 n^3 FLOPs) on this device and thread count."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    dt = min(time_call(lambda: torch.mm(a, b), seconds, device))  # the fastest call: least disturbed
    return 2 * n ** 3 / dt / 1e9


def percentiles(xs: list[float]) -> dict:
    s = sorted(xs)
    q = lambda p: s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]  # noqa: E731
    return {"p50_ms": 1e3 * q(50), "p95_ms": 1e3 * q(95), "mean_ms": 1e3 * statistics.fmean(s), "calls": len(s)}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def proc_rss_mib(pid: int) -> dict:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[{"VmRSS": "rss_mib", "VmHWM": "peak_rss_mib"}[key]] = int(val.split()[0]) / 1024
    return out


def proc_cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) a process has used so far; pid None: this process, its threads included."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    # /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks, counted after the ")" that ends
    # the command name (which may itself hold spaces)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def has_text_encoder(name: str | None = None, model_folder=None) -> bool:
    """Whether the named sentence encoder (default MiniLM) can be loaded here, without loading it."""
    from ..text_encoder import MINILM, TextEncoderMissing, text_encoder_path

    if importlib.util.find_spec("transformers") is None:
        return False
    try:
        text_encoder_path(name or MINILM, model_folder)
    except TextEncoderMissing:
        return False
    return True


@contextlib.contextmanager
def num_threads(n: int):
    """torch's CPU thread count set to n inside, restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
