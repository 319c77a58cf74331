"""A default /generate call three ways, interleaved call by call in one run so that their ratios
see the same machine load: `TextToImage.generate` at the app's defaults (model.serving.api.default_args:
4 images of 16 candidates, the calibrated gate, 256 px), the app's event function over the same
pipeline (+ the gallery files it writes), and the same call through the API (gradio_client against
a started app, files not downloaded: the answer as the server gives it) and, to tell the server's
share from gradio_client's, over plain HTTP (POST /gradio_api/call/generate, then its event
stream: gradio_client polls its messages every 50 ms, a browser does not). Each call gets a prompt of
its own and the bench process's embedding cache is cleared before each, so every row encodes its
prompt once. The app's one-request REST route (POST /rest/generate, model.serving.rest) is a row
of its own. Beside them, the stages of the same request, each timed alone."""
from __future__ import annotations

import time

from ..serving.api import GENERATE_PARAMS, default_args
from .app_client import PROMPTS
from .measure import percentiles, sync_device


def call_prompt(i: int) -> str:
    """A prompt no earlier call of the run used (so no embedding cache answers it)."""
    return f"{PROMPTS[i % len(PROMPTS)]} {i}"


def call_pipeline(pipe, args: tuple):
    """/generate's positional arguments -> TextToImage.generate, as the app's event function calls it."""
    from ..serving.events import run_generate

    return run_generate(pipe, *args)


def call_event(pipe, args: tuple):
    from ..serving.events import generate_images

    return generate_images(pipe, *args)


def serving_stages(pipe, prompt: str, out) -> dict[str, float]:
    """Seconds of what the event function adds to a pipeline result `out`, each timed alone: the
    gallery files (one image file each) and the PNG sheet of the result (built on request)."""
    from ..serving import events

    t = time.perf_counter()
    events.gallery(prompt, out.images)
    files = time.perf_counter() - t
    t = time.perf_counter()
    events.result_sheet(pipe, out.images, prompt, prompt=prompt)
    return {"gallery_files": files, "sheet": time.perf_counter() - t}


def http_call(http, url: str, args: tuple) -> None:
    """/generate over plain HTTP: the call, then its event stream until it completes."""
    r = http.post(f"{url.rstrip('/')}/gradio_api/call/generate", json={"data": list(args)})
    r.raise_for_status()
    with http.stream("GET", f"{url.rstrip('/')}/gradio_api/call/generate/{r.json()['event_id']}") as stream:
        event = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ").strip()
            elif line.startswith("data: ") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"/generate failed over HTTP: {line.removeprefix('data: ')[:300]}")
                return
    raise RuntimeError("/generate's event stream ended without an answer")


def rest_call(http, url: str, args: tuple) -> None:
    """/generate's call on the app's one-request REST route (model.serving.rest), by input name."""
    from ..serving.rest import ROUTE

    r = http.post(f"{url.rstrip('/')}{ROUTE}", json=dict(zip(GENERATE_PARAMS, args)))
    if r.status_code != 200:
        raise RuntimeError(f"{ROUTE} answered {r.status_code}: {r.text[:300]}")


def compare_default_call(pipe, url: str, calls: int, stages=None, log=print) -> dict:
    """The three rows' percentiles and p50 ratios; stages(pipe, prompt, seed) -> {stage: seconds}
    (speed.request_stages for the default call), timed after each triple."""
    import httpx
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    http = httpx.Client(timeout=120)
    device = pipe.stages.device

    def timed(row: str, fn):
        t = time.perf_counter()
        res = fn()
        sync_device(device)
        rows[row].append(time.perf_counter() - t)
        return res

    rows: dict[str, list[float]] = {"first_api": [], "pipeline": [], "event": [], "api": [], "api_http": [],
                                    "api_rest": []}
    first = default_args(pipe, "grinning face", seed=0)  # warm: the app's first call is reported apart
    timed("first_api", lambda: client.predict(*first, api_name="/generate"))
    call_event(pipe, first)
    parts: dict[str, list[float]] = {}
    for i in range(calls):
        args = default_args(pipe, call_prompt(i), seed=i)
        pipe.stages.embeddings.clear()
        result = timed("pipeline", lambda: call_pipeline(pipe, args))
        pipe.stages.embeddings.clear()
        timed("event", lambda: call_event(pipe, args))
        timed("api", lambda: client.predict(*args, api_name="/generate"))
        timed("api_http", lambda: http_call(http, url, default_args(pipe, call_prompt(i) + ".", seed=i)))
        timed("api_rest", lambda: rest_call(http, url, default_args(pipe, call_prompt(i) + "!", seed=i)))
        more = {**(stages(pipe, args[0], i) if stages else {}), **serving_stages(pipe, args[0], result)}
        for k, v in more.items():
            parts.setdefault(k, []).append(v)
    first_api = rows.pop("first_api")[0]
    out = {k: percentiles(v) for k, v in rows.items()}
    p50 = {k: v["p50_ms"] for k, v in out.items()}
    res = {**out, "api_vs_pipeline_p50": p50["api"] / p50["pipeline"],
           "api_http_vs_pipeline_p50": p50["api_http"] / p50["pipeline"],
           "api_rest_vs_pipeline_p50": p50["api_rest"] / p50["pipeline"],
           "event_vs_pipeline_p50": p50["event"] / p50["pipeline"],
           "stages": {k: percentiles(v) for k, v in parts.items()}, "first_api_call_ms": 1e3 * first_api,
           "call": dict(zip(GENERATE_PARAMS[1:], first[1:])), "prompts": "one per call, the same in every row"}
    log(f"default call ({res['call']['n']} of {res['call']['candidates']} candidates), p50: pipeline "
        f"{p50['pipeline']:.1f} ms, event {p50['event']:.1f} ms, API {p50['api']:.1f} ms (plain HTTP "
        f"{p50['api_http']:.1f} ms, REST route {p50['api_rest']:.1f} ms); API / pipeline "
        f"{res['api_vs_pipeline_p50']:.2f} (REST {res['api_rest_vs_pipeline_p50']:.2f})")
    return res


def flop_bound(pipe, gflop_per_image: dict, peak: dict, shown: int = 4, candidates: int = 16) -> dict:
    """Where the default call's model time must go at best: each stage's GFLOP (2 x conv/linear
    MACs; the decoder and the gate on every candidate, the upsampler on the shown images, MiniLM
    once) and the ms it needs at the machine's measured matmul rate in the precision the pipeline
    runs in. A stage timed far above its bound is limited by something else (memory, small
    kernels, threads), one near it only by fewer FLOPs. Candidates come in two rounds
    (model.text_to_image.first_round): the bound is given for all of them and for the first half alone."""
    import torch

    from ..text_to_image import first_round
    from .measure import count_macs

    g = {"decoder": candidates * gflop_per_image["generator"],
         "gate": candidates * gflop_per_image["discriminator"]}
    if pipe.stages.upsampler is not None:
        x = torch.zeros(1, 3, pipe.model.cfg.image_size, pipe.model.cfg.image_size)
        up = next(pipe.stages.upsampler.parameters())
        g["upsampler"] = shown * 2 * count_macs(pipe.stages.upsampler, x.to(up.device, up.dtype)) / 1e9
    if "minilm_per_prompt" in gflop_per_image:
        g["text_encoding"] = gflop_per_image["minilm_per_prompt"]
    precision = ("fp16" if pipe.stages.device.type == "cuda" else
                 "bf16" if pipe.stages.cpu_bf16 else "fp32")
    rate = peak[precision]
    first = (g["decoder"] + g["gate"]) * (1 - first_round(shown, candidates) / candidates)  # what the first round saves
    return {"precision": precision, "matmul_gflops": rate, "gflop": g,
            "bound_ms": {k: 1e3 * v / rate for k, v in g.items()}, "total_bound_ms": 1e3 * sum(g.values()) / rate,
            "first_round_only_bound_ms": 1e3 * (sum(g.values()) - first) / rate}
