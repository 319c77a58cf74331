"""Load test of a running app: many concurrent gradio_client clients calling "generate".

    python -m model.loadtest --url http://127.0.0.1:7860 --pid APP_PID [--clients 32 --requests 10]
    python -m model.loadtest --start-app            # launches app.py on a free port itself
    python -m model.loadtest --start-app --levels 1,8,32 --compare-batch 1,8 --requests 6
        # before/after batching in one run: the app started once per --max-batch, each load level in turn
    python -m model.loadtest --start-app --client http   # plain-HTTP clients: a lighter load generator
    python -m model.loadtest --start-app --client rest   # the app's one-request REST route

Every request must be answered or cleanly refused by the queue ("queue is full"); anything
else counts as failed. Prints a JSON summary: counts, p50/p95 latency of answered requests,
throughput, the app process's RSS before and after (from /proc/PID/status), and where the CPU went:
the app's and the load generator's CPU seconds (the clients run on the same machine as the app).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..cli import dataclass_parser
from .app_client import PROMPTS, app_generate_args, start_app
from .default_call import http_call, rest_call
from .measure import percentiles, proc_cpu_s, proc_rss_mib


@dataclass(kw_only=True)
class LoadConfig:
    url: str = ""  # the running app; "" needs --start-app
    pid: int = 0  # the app's process id, for RSS before/after; 0 = not measured (or the started app)
    start_app: bool = False  # launch `python app.py` on a free port, test it, stop it
    clients: int = 32  # concurrent gradio_client clients (one thread each)
    requests: int = 10  # sequential requests per client
    warmup: bool = True  # one request before the load (it loads the sentence encoder); reported apart
    out: str = ""  # also write loadtest.json into this folder
    settle_minutes: float = 0.0  # after the load, wait this long idle and measure the app's RSS again
    levels: str = ""  # comma-separated client counts run one after another (e.g. 1,8,32); "" = --clients
    compare_batch: str = ""  # with --start-app: comma-separated app --max-batch values, the app started once each
    app_defaults: bool = False  # call /generate with the app's defaults (16 candidates, calibrated gate), not 4 / 0.5
    # how each client calls: "gradio_client" (a Client per thread, what a Python user runs), "http"
    # (plain HTTP: POST /gradio_api/call/generate, then its event stream; a lighter load generator, so
    # more of a shared machine's CPU is left to the app: `cpu` in the summary says how much each took)
    # or "rest" (the app's one-request route, POST /rest/generate: model.serving.rest)
    client: str = "gradio_client"


def classify(exc: BaseException | None) -> str:
    """ok | refused (the queue said it is full) | failed (anything else)."""
    if exc is None:
        return "ok"
    text = f"{type(exc).__name__}: {exc}".lower()
    full = "queueerror" in text or "queue is full" in text or "queue_full" in text or "answered 503" in text
    return "refused" if full or (type(exc).__name__ == "HTTPStatusError" and "503" in text) else "failed"


def summarize(records: list[dict], wall_s: float) -> dict:
    """records: {"outcome": ok|refused|failed, "seconds": float, "error": str|None} per request."""
    ok = [r["seconds"] for r in records if r["outcome"] == "ok"]
    counts = {k: sum(r["outcome"] == k for r in records) for k in ("ok", "refused", "failed")}
    errors = sorted({r["error"] for r in records if r["outcome"] == "failed"})[:5]
    return {"requests": len(records), **counts, "all_answered_or_refused": counts["failed"] == 0,
            "latency": percentiles(ok) if ok else None, "wall_s": wall_s,
            "answered_per_s": len(ok) / wall_s if wall_s > 0 else None, "failed_examples": errors}


class HTTPCaller:
    """/generate over plain HTTP (model.bench.default_call.http_call, or rest_call with rest=True),
    the `predict` of a gradio_client Client."""

    def __init__(self, url: str, rest: bool = False) -> None:
        import httpx

        self.url, self.rest, self.http = url, rest, httpx.Client(timeout=600)

    def predict(self, *args, api_name: str = "/generate") -> None:
        (rest_call if self.rest else http_call)(self.http, self.url, args)


def client_loop(url: str, cid: int, n: int, records: list[dict], lock: threading.Lock, barrier: threading.Barrier,
                app_defaults: bool = False, kind: str = "gradio_client") -> None:
    from gradio_client import Client

    try:
        client = HTTPCaller(url, rest=kind == "rest") if kind in ("http", "rest") else Client(url, verbose=False)
    except Exception as e:  # noqa: BLE001 - a client that cannot connect fails all its requests
        with lock:
            records += [{"outcome": "failed", "seconds": 0.0, "error": f"connect: {type(e).__name__}: {e}"}] * n
        barrier.wait()
        return
    barrier.wait()  # every client starts together
    for j in range(n):
        t, err = time.perf_counter(), None
        try:
            client.predict(*app_generate_args(f"{PROMPTS[(cid + j) % len(PROMPTS)]}", cid * 1000 + j, app_defaults),
                           api_name="/generate")
        except Exception as e:  # noqa: BLE001 - classified below
            err = e
        rec = {"outcome": classify(err), "seconds": time.perf_counter() - t,
               "error": None if err is None else f"{type(err).__name__}: {str(err)[:200]}"}
        with lock:
            records.append(rec)


def one_level(url: str, pid: int | None, clients: int, requests: int, app_defaults: bool,
              kind: str = "gradio_client") -> dict:
    """`clients` threads x `requests` sequential calls, all started together -> summary with RSS before/after."""
    before = proc_rss_mib(pid) if pid else None
    records: list[dict] = []
    start: dict = {}

    def go() -> None:  # every client has connected (gradio_client fetches the app's config and API
        # info first: 32 of them cost seconds of both processes' CPU): the load starts now
        start.update(t=time.perf_counter(), cpu=(proc_cpu_s(pid) if pid else None, proc_cpu_s()))

    lock, barrier = threading.Lock(), threading.Barrier(clients, action=go)
    threads = [threading.Thread(target=client_loop, args=(url, i, requests, records, lock, barrier, app_defaults, kind))
               for i in range(clients)]
    t_connect = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    end = time.perf_counter()
    wall = end - start.get("t", t_connect)
    cpu = cpu_split(start.get("cpu", (None, 0.0)), (proc_cpu_s(pid) if pid else None, proc_cpu_s()), wall, len(records))
    cpu["connect_s"] = round(start.get("t", end) - t_connect, 2)  # the clients' connecting, not in wall_s
    call = ("generate(prompt, 'any', n=4, seed, candidates=16, the calibrated gate, 256 px): the app's defaults"
            if app_defaults else "generate(prompt, 'any', n=4, seed, False, 1.0, candidates=4, gate=0.5, 256 px)")
    return {"url": url, "clients": clients, "client": kind, "requests_per_client": requests, "call": call,
            **summarize(records, wall), "cpu": cpu, "app_rss_before": before,
            "app_rss_after": proc_rss_mib(pid) if pid else None}


def cpu_split(before: tuple, after: tuple, wall_s: float, requests: int) -> dict:
    """(app, load generator) CPU seconds before and after a level -> where the cores went: each
    process's CPU seconds, the cores each kept busy on average, and the app's CPU ms per request.
    The load generator (this process: the clients' threads) shares the machine with the app."""
    gen = after[1] - before[1]
    out = {"load_generator_s": round(gen, 2), "load_generator_cores": round(gen / wall_s, 2) if wall_s > 0 else None}
    if before[0] is not None:
        app = after[0] - before[0]
        out.update(app_s=round(app, 2), app_cores=round(app / wall_s, 2) if wall_s > 0 else None,
                   app_cpu_ms_per_request=round(1e3 * app / requests, 1) if requests else None)
    return out


def warm_up(url: str, app_defaults: bool) -> dict:
    """One request before the load (it loads the sentence encoder); reported apart."""
    from gradio_client import Client

    t, err = time.perf_counter(), None
    try:
        Client(url, verbose=False).predict(*app_generate_args(PROMPTS[0], 0, app_defaults), api_name="/generate")
    except Exception as e:  # noqa: BLE001 - reported, the load test goes on
        err = e
    return {"outcome": classify(err), "seconds": time.perf_counter() - t,
            "error": None if err is None else f"{type(err).__name__}: {str(err)[:200]}"}


def run_load(cfg: LoadConfig, log=print, app_args: tuple[str, ...] = ()) -> dict:
    """One app (started here, or cfg.url): the warm-up, then each load level; with --levels the
    summary holds one entry per level under "levels"."""
    if cfg.client not in ("gradio_client", "http", "rest"):
        raise ValueError(f"--client must be gradio_client, http or rest, got {cfg.client!r}")
    proc, url, pid, start_s = None, cfg.url, cfg.pid or None, None
    try:
        if cfg.start_app:
            proc, url, start_s = start_app(log=log, args=app_args)
            pid = proc.pid
        if not url:
            raise ValueError("give --url of a running app, or --start-app")
        warm = warm_up(url, cfg.app_defaults) if cfg.warmup else None
        at_start = proc_rss_mib(pid) if pid else None  # after start (and the warm-up request)
        levels = [int(x) for x in cfg.levels.split(",") if x.strip()] if cfg.levels else [cfg.clients]
        runs = []
        for c in levels:
            runs.append(one_level(url, pid, c, cfg.requests, cfg.app_defaults, cfg.client))
            lat = runs[-1]["latency"] or {}
            log(f"{' '.join(app_args) or 'app'}: {c} clients x {cfg.requests}: {runs[-1]['ok']} answered, "
                f"{runs[-1]['answered_per_s'] or 0:.2f} req/s, p50 {lat.get('p50_ms', float('nan')):.0f} ms; "
                f"cores busy: app {runs[-1]['cpu'].get('app_cores')}, "
                f"load generator {runs[-1]['cpu']['load_generator_cores']}")
        summary = dict(runs[0]) if len(runs) == 1 else {"url": url, "levels": runs, "app_rss_after_start": at_start,
                                                         "app_rss_after": proc_rss_mib(pid) if pid else None}
        summary["app_rss_before"] = at_start
        if cfg.settle_minutes > 0 and pid:  # does what the load grew come back, or stay?
            log(f"waiting {cfg.settle_minutes:g} min idle before measuring the app's memory again")
            time.sleep(60 * cfg.settle_minutes)
            summary["app_rss_after_settling"] = {**proc_rss_mib(pid), "minutes": cfg.settle_minutes}
        summary["warmup_request"] = warm
        if start_s is not None:
            summary["app_start_s"] = start_s  # until the app answers HTTP (example caching may go on)
        if app_args:
            summary["app_args"] = list(app_args)
        return summary
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


def compare_batches(cfg: LoadConfig, log=print) -> dict:
    """The same load levels against the app started with each --max-batch, one after another,
    and the throughput ratio of each setting to the first at every level."""
    settings = [int(x) for x in cfg.compare_batch.split(",") if x.strip()]
    out = {"compare_batch": settings, "runs": {}}
    for b in settings:
        out["runs"][str(b)] = run_load(cfg, log, app_args=("--max-batch", str(b)))
    base = out["runs"][str(settings[0])]
    as_levels = lambda r: r["levels"] if "levels" in r else [r]  # noqa: E731
    out["throughput_ratio_vs_first"] = {
        str(b): {str(lv["clients"]): round((lv["answered_per_s"] or 0) / max(b0["answered_per_s"] or 1e-9, 1e-9), 3)
                 for lv, b0 in zip(as_levels(out["runs"][str(b)]), as_levels(base))} for b in settings}
    return out


def parse_args(argv: list[str] | None = None) -> LoadConfig:
    ap = dataclass_parser(LoadConfig, __doc__.splitlines()[0])
    cfg = LoadConfig(**vars(ap.parse_args(argv)))
    if cfg.clients < 1 or cfg.requests < 1:
        ap.error("--clients and --requests must be >= 1")
    if cfg.compare_batch and not cfg.start_app:
        ap.error("--compare-batch starts the app itself: add --start-app")
    return cfg


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    summary = compare_batches(cfg) if cfg.compare_batch else run_load(cfg)
    text = json.dumps(summary, indent=2)
    print(text)
    if cfg.out:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        (Path(cfg.out) / "loadtest.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
