"""Speed and cost of the model, with two published peers of similar size in the same run.

    python -m model.bench [--quick] [--device cpu|cuda] [--app-url URL | --start-app] [--out DIR]

Measures images/s at several batch sizes (fp32, bf16 autocast, channels_last, both; fp16 too on
CUDA) for our generator -- the latent model's decoder (model.latent.Decoder) -- and for two peers written here from their papers, with
random weights (only speed is compared, on the same batch sizes, threads and device): a DF-GAN
generator (dfgan.py) and a VQGAN / latent-diffusion autoencoder's decoder (ldm_decoder.py, from
the same 8x8x16 latent, parameters within 20% of our decoder's); prompt -> 4 images latency
through TextToImage.generate (text encoding included: the embedding cache is cleared before each call)
and, separately, each stage of one request (text encoding, the retrieval prior's read and
sample, the decoder, the discriminator gate, the upsampler); with --app-url or --start-app, the
app's default /generate call (4 of 16 candidates, the calibrated gate, 256 px: model/serving/api.py)
through TextToImage.generate, the app's event function and the API (gradio_client), interleaved, with
the API / pipeline ratio and the stages of that call (default_call.py); parameters and FLOPs per image
(conv/linear MACs counted with forward hooks, plus the LDM peer's attention matmuls; FLOPs =
2 x MACs); this machine's matmul FLOP/s (fp32, bf16) and each network's share of it; peak RSS.
Without the model's text encoder installed (a GPU-only machine) text encoding is skipped: random prompt
embeddings stand in, and it says so (and the app part is skipped: the app needs the encoder).
"""
from __future__ import annotations

import copy
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..cli import dataclass_parser
from .app_client import PROMPTS, READY, start_app
from .default_call import compare_default_call, flop_bound
from .dfgan import DFGANGenerator
from .ldm_decoder import LDMDecoder
from .measure import (cpu_name, sync_device, count_macs, has_text_encoder, matmul_flops, n_params, num_threads,
                      peak_rss_mib, percentiles, proc_rss_mib)
from .report import speed_markdown
from .throughput import throughput_many
from ..device import pick_device

TARGETS = {  # printed against, never asserted by a timed test
    "latency_p50_ms": 40.0,  # prompt -> 4 images at 64x64 through the pipeline
    "throughput_vs_dfgan_b16": 1.0,  # our generator / DF-GAN peer images/s at batch 16 (fp32)
    "throughput_vs_ldm_b16": 1.0,  # our decoder / LDM-decoder peer images/s at batch 16 (fp32)
    "app_start_s": 15.0,
    "api_vs_pipeline_p50": 1.3,  # the default /generate call through the API / through the pipeline (issue 30)
    "rest_api_vs_pipeline_p50": 1.3,  # the same call on the app's one-request REST route (model.serving.rest)
    "rss_mib": 2048.0,
}


@dataclass(kw_only=True)
class BenchConfig:
    model: str = ""  # model folder or Hub repo id; "" = env MODEL_ID, else assets/model
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 2  # torch CPU threads (this machine has 2 shared cores)
    quick: bool = False  # shorter timings (0.5 s per throughput point, 20 latency calls)
    batch_sizes: str = "1,16,64"  # generator throughput batch sizes
    seconds: float = 0.0  # time per throughput point; 0 = 0.5 quick / 2 full
    latency_calls: int = 0  # prompt -> 4 images calls; 0 = 20 quick / 50 full
    app_url: str = ""  # a running app (e.g. http://127.0.0.1:7860) of the same model for the API row; "" = skip
    start_app: bool = False  # launch `python app.py` (this model, threads, device) on a free port: start, RSS, API row
    app_calls: int = 0  # default calls timed each way (pipeline, event, API); 0 = 10 quick / 30 full
    matmul_size: int = 2048  # n of the n x n matmul that measures the machine's FLOP/s
    out: str = ""  # also write bench.json and bench.md into this folder



# --- the run ---

def run_bench(cfg: BenchConfig, pipe=None, log=print) -> dict:
    with num_threads(cfg.threads):
        return _run_bench(cfg, pipe, log)


def _run_bench(cfg: BenchConfig, pipe=None, log=print) -> dict:
    from ..pipeline import Pipeline

    secs = cfg.seconds or (0.5 if cfg.quick else 2.0)
    if pipe is None:
        pipe = Pipeline.from_pretrained(cfg.model or None, device=pick_device(cfg.device))
    r = machine(pipe)
    log(f"bench on {r['device']} ({r['threads']} threads): {r['cpu']}")
    r.update(size_and_flops(pipe))
    peers = r.pop("peers")
    r["matmul_gflops"] = peak = matmul_peaks(pipe.stages.device, secs, cfg.matmul_size)
    log(f"matmul GFLOP/s: {', '.join(f'{k} {v:.0f}' for k, v in peak.items())}")
    bss = [int(b) for b in cfg.batch_sizes.split(",") if b.strip()]
    r["throughput"] = generator_throughput(pipe, peers, bss, secs, r["gflop_per_image"], peak, log)
    encode = has_text_encoder(pipe.model.cfg.text_encoder, pipe.info.folder)  # the encoder the model's config names
    r.update(pipeline_latency(pipe, cfg.latency_calls or (20 if cfg.quick else 50), encode, log))
    if cfg.start_app or cfg.app_url:
        r["app"] = app_section(cfg, pipe, encode, log)
    finish(r, pipe, peak)
    return r


def machine(pipe) -> dict:
    """Where the bench runs: device, threads, versions, the load on the machine at the start."""
    device = pipe.stages.device
    return {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu": cpu_name(), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "image_size": pipe.model.cfg.image_size, "model": pipe.info.model_id, "cpu_count": os.cpu_count(),
            "loadavg_1m_at_start": os.getloadavg()[0]}  # other processes on the machine skew timings


def size_and_flops(pipe) -> dict:
    """Parameters and GFLOP per image of our networks and the two peers (returned under "peers":
    {name: (make a copy, inputs for a batch)} for the throughput runs). The decoder is the
    generator; the prior (the "text head" row) is a look-up."""
    m, mc = pipe.model, pipe.model.cfg
    gen = lambda: copy.deepcopy(m.decoder).float()  # noqa: E731
    g_in = lambda b: [torch.randn(b, *mc.latent_shape), torch.arange(b) % mc.num_styles]  # noqa: E731
    df_in = lambda b: [torch.randn(b, 100), torch.randn(b, 256)]  # noqa: E731
    ldm_in = lambda b: [torch.randn(b, 16, 8, 8)]  # noqa: E731  the shipped model's latent shape
    torch.manual_seed(0)
    dfgan = DFGANGenerator(nf=32)
    ldm = LDMDecoder()
    params = {"generator": n_params(gen()), "text_head": 0, "discriminator": n_params(m.discriminator),
              "minilm": 22_713_216, "dfgan_peer": n_params(dfgan), "ldm_peer": n_params(ldm)}
    d_in = [torch.zeros(1, 3, mc.image_size, mc.image_size), torch.zeros(1, mc.text_dim), torch.zeros(1, dtype=torch.long)]
    macs = {"generator": count_macs(gen().cpu(), *g_in(1)),
            "discriminator": count_macs(copy.deepcopy(m.discriminator).float().cpu(), *d_in),
            # the retrieval prior: one (1, 384) x (384, K) similarity per prompt, counted per image
            "text_head": len(m.prior.cap_emb) * mc.text_dim,
            "dfgan_peer": count_macs(dfgan, *df_in(1)),
            "ldm_peer": count_macs(ldm, *ldm_in(1)) + ldm.attention_macs(1, 8)}
    return {"generator_kind": "latent decoder (model.latent.Decoder), retrieval prior", "params": params,
            "gflop_per_image": {k: 2 * v / 1e9 for k, v in macs.items()},
            "peers": {"ours": (gen, g_in), "dfgan_peer": (lambda: copy.deepcopy(dfgan), df_in),
                      "ldm_peer": (lambda: copy.deepcopy(ldm), ldm_in)}}


def matmul_peaks(device, secs: float, n: int) -> dict:
    """The machine's limit: measured matmul GFLOP/s per precision."""
    peak = {"fp32": matmul_flops(torch.float32, device, secs, n), "bf16": matmul_flops(torch.bfloat16, device, secs, n)}
    if device.type == "cuda":
        peak["fp16"] = matmul_flops(torch.float16, device, secs, n)
    return peak


def generator_throughput(pipe, peers: dict, bss: list[int], secs: float, gflop: dict, peak: dict, log) -> dict:
    """Images/s of ours and the peers at each batch size and variant, timed in turn in one call
    (so the ratios between the three see the same machine load), and each one's share of the peak."""
    t = throughput_many(peers, bss, pipe.stages.device, secs)
    for who, key in (("ours", "generator"), ("dfgan_peer", "dfgan_peer"), ("ldm_peer", "ldm_peer")):
        for var, row in t[who].items():
            lim = peak["bf16" if "bf16" in var else "fp16" if "fp16" in var else "fp32"]
            row["pct_of_matmul_peak"] = 100 * row[str(max(bss))] * gflop[key] / lim
        t[who]["fastest_at_largest_batch"] = max(t[who].items(), key=lambda kv: kv[1][str(max(bss))])[0]
        log(f"{who}: " + "; ".join(f"{v}: " + ", ".join(f"b{b} {row[str(b)]:.0f}/s" for b in bss)
                                   for v, row in t[who].items() if isinstance(row, dict)))
    return t


def pipeline_latency(pipe, n_lat: int, encode: bool, log) -> dict:
    """prompt -> 4 images (4 candidates) through the pipeline at the model's size and at 256 px,
    and the stages of one such request, interleaved in one run so their ratios see the same load.
    Without the text encoder, random embeddings stand in for the prompts."""
    mc = pipe.model.cfg
    if not encode:
        g = torch.Generator().manual_seed(0)
        for p in PROMPTS:
            pipe.stages.set_embedding(p, torch.nn.functional.normalize(torch.randn(mc.text_dim, generator=g), dim=0))
    t = time.perf_counter()
    pipe.text_to_image.generate(PROMPTS[0], n=4, seed=0, upscale=False)  # cold: loads the sentence encoder if needed
    cold = time.perf_counter() - t
    pipe.text_to_image.generate(PROMPTS[0], n=4, seed=0, upscale=True)  # warm the upsampler's kernels too
    times = {False: [], True: []}
    stages: dict[str, list[float]] = {}
    for i in range(n_lat):
        for up in (False, True):
            if encode:
                pipe.stages.embeddings.clear()
            t = time.perf_counter()
            pipe.text_to_image.generate(PROMPTS[i % len(PROMPTS)], n=4, seed=i, upscale=up)
            sync_device(pipe.stages.device)
            times[up].append(time.perf_counter() - t)
        for k, v in request_stages(pipe, PROMPTS[i % len(PROMPTS)], i, encode).items():
            stages.setdefault(k, []).append(v)
    enc_name = mc.text_encoder.split("/")[-1]
    common = {"text_encoding": f"included ({enc_name}, cache cleared each call)" if encode
              else f"skipped: {enc_name} not installed (random embeddings)",
              "candidates": 4, "dtype": str(pipe.stages.dtype).replace("torch.", ""),
              "cpu_bf16_autocast": bool(pipe.stages.cpu_bf16)}
    r = {"pipeline_latency_4_images": {**percentiles(times[False]), "first_call_ms": 1e3 * cold,
                                       "size": mc.image_size, **common},
         "pipeline_latency_4_images_256": {**percentiles(times[True]), "size": 256, "upsampler": pipe.stages.upsampler_name,
                                           "ratio_p50_vs_raw": statistics.median(times[True])
                                           / statistics.median(times[False]), **common},
         "request_stages_4_images": {k: percentiles(v) for k, v in stages.items()}}
    for key in ("pipeline_latency_4_images", "pipeline_latency_4_images_256"):
        row = r[key]
        log(f"pipeline prompt -> 4 images at {row['size']} px: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms")
    log("one request's stages, p50: "
        + ", ".join(f"{k} {v['p50_ms']:.2f} ms" for k, v in r["request_stages_4_images"].items()))
    return r


def app_env(cfg: BenchConfig) -> dict:
    """The started app's environment, so that it does the pipeline's work: the same model, thread
    count and device."""
    env = {"OMP_NUM_THREADS": str(cfg.threads)}
    if cfg.model:
        env["MODEL_ID"] = cfg.model
    if pick_device(cfg.device) == "cpu" and torch.cuda.is_available():
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def app_section(cfg: BenchConfig, pipe, encode: bool, log) -> dict:
    """The app (started here, or cfg.app_url): start time and RSS, and a default /generate call
    through the pipeline, the event function and the API, interleaved (default_call.py)."""
    out: dict = {}
    if not encode:
        return {"skipped": "the text encoder is not installed: the app cannot encode prompts"}
    proc = None
    try:
        url = cfg.app_url
        if cfg.start_app:
            t0 = time.perf_counter()
            proc, url, start_s = start_app(log=log, env=app_env(cfg), wait_for=READY)
            out = {"start_s": start_s, "ready_s": time.perf_counter() - t0, "rss_after_start": proc_rss_mib(proc.pid)}
        calls = cfg.app_calls or (10 if cfg.quick else 30)
        stages = lambda p, prompt, seed: request_stages(p, prompt, seed, True, n=4, candidates=16)  # noqa: E731
        out["default_call"] = compare_default_call(pipe, url, calls, stages, log)
        if proc is not None:
            out["rss_after_calls"] = proc_rss_mib(proc.pid)
            # until the first generate call is answered, called once the encoder loaded and the examples were cached
            out["first_answer_s"] = out["ready_s"] + out["default_call"]["first_api_call_ms"] / 1e3
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    return out


def finish(r: dict, pipe, peak: dict) -> None:
    """The text encoder's size and FLOPs, one request's FLOPs against the matmul rate, RSS, targets."""
    device = pipe.stages.device
    if isinstance(pipe.stages.encoder, nn.Module):
        r["params"]["minilm"] = n_params(pipe.stages.encoder)
        tok = pipe.stages.encoder.tokenizer([PROMPTS[0]], return_tensors="pt").to(device)
        r["gflop_per_image"]["minilm_per_prompt"] = 2 * count_macs(pipe.stages.encoder.model, **tok) / 1e9
    # FLOPs of one request (4 images: generator + discriminator gate, one prompt) at the matmul rate
    # of the precision the pipeline runs in
    g = r["gflop_per_image"]
    req = 4 * (g["generator"] + g["discriminator"] + g["text_head"]) + g.get("minilm_per_prompt", 0.0)
    lat = r["pipeline_latency_4_images"]
    lat["gflop_per_request"] = req
    lat["flop_bound_ms"] = 1e3 * req / peak["fp16" if device.type == "cuda" else
                                            "bf16" if pipe.stages.cpu_bf16 else "fp32"]
    r["default_call_flop_bound"] = flop_bound(pipe, g, peak)
    r["peak_rss_mib"] = peak_rss_mib()
    r["loadavg_1m_at_end"] = os.getloadavg()[0]
    r["targets"] = check_targets(r)


def request_stages(pipe, prompt: str, seed: int, encode: bool, n: int = 4,
                   candidates: int | None = None) -> dict[str, float]:
    """Seconds of each stage of one prompt -> n images request, each timed alone: text encoding
    (the embedding cache cleared first; absent without MiniLM), then for the latent model the
    retrieval prior's read (prompt -> neighbours and weights) and sample (one latent per
    candidate) and the decoder (the candidates' latents -> images, in the pipeline's precision);
    the discriminator gate (every candidate); the upsampler (the n shown images to 256 px). The same
    calls generate makes, seeds seed .. seed + candidates - 1 (candidates None = n), style "any"."""
    device, m = pipe.stages.device, pipe.model
    k = candidates or n
    seeds = list(range(seed, seed + k))
    out: dict[str, float] = {}

    def timed(name, fn):
        t = time.perf_counter()
        res = fn()
        sync_device(device)
        out[name] = time.perf_counter() - t
        return res

    if encode:
        pipe.stages.embeddings.clear()
        e = timed("text_encoding", lambda: pipe.stages.embed([prompt]))
    else:
        e = pipe.stages.embed([prompt])
    style = pipe.text_to_image.seed_styles(torch.full((k,), m.cfg.num_styles, dtype=torch.long), seeds)
    ek = e.expand(k, -1)
    reading = timed("prior_read", lambda: m.prior.read(e[:1].float().cpu())[0])
    z = timed("prior_sample", lambda: m.prior.sample([reading] * k, style.tolist(), seeds))
    x = timed("decoder", lambda: pipe.stages.decode(z, style))
    timed("gate", lambda: pipe.stages.judge(x, ek, style.to(device)))
    timed("upsampler", lambda: pipe.stages.super_resolve(x[:n]))
    return out


def check_targets(r: dict) -> dict:
    """Each target: the measured value, the goal and whether it is met (None when not measured)."""
    t = r["throughput"]
    b = "16" if "16" in t["ours"]["fp32"] else max(k for k in t["ours"]["fp32"] if k.isdigit())
    app = r.get("app", {})
    rss = app.get("rss_after_calls", app.get("rss_after_start", {})).get("peak_rss_mib") or r["peak_rss_mib"]
    vals = {"latency_p50_ms": (r["pipeline_latency_4_images"]["p50_ms"], "<="),
            "throughput_vs_dfgan_b16": (t["ours"]["fp32"][b] / t["dfgan_peer"]["fp32"][b], ">="),
            "throughput_vs_ldm_b16": (t["ours"]["fp32"][b] / t["ldm_peer"]["fp32"][b], ">="),
            "app_start_s": (app.get("start_s"), "<="),
            "api_vs_pipeline_p50": (app.get("default_call", {}).get("api_vs_pipeline_p50"), "<="),
            "rest_api_vs_pipeline_p50": (app.get("default_call", {}).get("api_rest_vs_pipeline_p50"), "<="),
            "rss_mib": (rss, "<=")}
    out = {}
    for k, (v, op) in vals.items():
        goal = TARGETS[k]
        out[k] = {"value": v, "goal": f"{op} {goal:g}",
                  "met": None if v is None else (v <= goal if op == "<=" else v >= goal)}
    out["rss_mib"]["of"] = "the app process (peak)" if app.get("rss_after_start") else "this process (peak)"
    return out



def parse_args(argv: list[str] | None = None) -> BenchConfig:
    ap = dataclass_parser(BenchConfig, __doc__.splitlines()[0])
    ap.prog = "python -m model.bench"
    return BenchConfig(**vars(ap.parse_args(argv)))


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

