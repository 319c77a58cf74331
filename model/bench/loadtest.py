"""Load test of a running app: many concurrent gradio_client clients calling "generate".

    python -m model.loadtest --url http://127.0.0.1:7860 --pid APP_PID [--clients 32 --requests 10]
    python -m model.loadtest --start-app            # launches app.py on a free port itself

Every request must be answered or cleanly refused by the queue ("queue is full"); anything
else counts as failed. Prints a JSON summary: counts, p50/p95 latency of answered requests,
throughput, and the app process's RSS before and after (from /proc/PID/status).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..cli import dataclass_parser
from .app_client import PROMPTS, app_generate_args, start_app
from .measure import percentiles, proc_rss_mib


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


def classify(exc: BaseException | None) -> str:
    """ok | refused (the queue said it is full) | failed (anything else)."""
    if exc is None:
        return "ok"
    text = f"{type(exc).__name__}: {exc}".lower()
    return "refused" if "queueerror" in text or "queue is full" in text else "failed"


def summarize(records: list[dict], wall_s: float) -> dict:
    """records: {"outcome": ok|refused|failed, "seconds": float, "error": str|None} per request."""
    ok = [r["seconds"] for r in records if r["outcome"] == "ok"]
    counts = {k: sum(r["outcome"] == k for r in records) for k in ("ok", "refused", "failed")}
    errors = sorted({r["error"] for r in records if r["outcome"] == "failed"})[:5]
    return {"requests": len(records), **counts, "all_answered_or_refused": counts["failed"] == 0,
            "latency": percentiles(ok) if ok else None, "wall_s": wall_s,
            "answered_per_s": len(ok) / wall_s if wall_s > 0 else None, "failed_examples": errors}


def client_loop(url: str, cid: int, n: int, records: list[dict], lock: threading.Lock, barrier: threading.Barrier) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
    except Exception as e:  # noqa: BLE001 - a client that cannot connect fails all its requests
        with lock:
            records += [{"outcome": "failed", "seconds": 0.0, "error": f"connect: {type(e).__name__}: {e}"}] * n
        barrier.wait()
        return
    barrier.wait()  # every client starts together
    for j in range(n):
        t, err = time.perf_counter(), None
        try:
            client.predict(*app_generate_args(f"{PROMPTS[(cid + j) % len(PROMPTS)]}", cid * 1000 + j),
                           api_name="/generate")
        except Exception as e:  # noqa: BLE001 - classified below
            err = e
        rec = {"outcome": classify(err), "seconds": time.perf_counter() - t,
               "error": None if err is None else f"{type(err).__name__}: {str(err)[:200]}"}
        with lock:
            records.append(rec)


def run_load(cfg: LoadConfig, log=print) -> dict:
    proc, url, pid, start_s = None, cfg.url, cfg.pid or None, None
    try:
        if cfg.start_app:
            proc, url, start_s = start_app(log=log)
            pid = proc.pid
        if not url:
            raise ValueError("give --url of a running app, or --start-app")
        warm = None
        if cfg.warmup:
            from gradio_client import Client

            t, err = time.perf_counter(), None
            try:
                Client(url, verbose=False).predict(*app_generate_args(PROMPTS[0], 0), api_name="/generate")
            except Exception as e:  # noqa: BLE001 - reported, the load test goes on
                err = e
            warm = {"outcome": classify(err), "seconds": time.perf_counter() - t,
                    "error": None if err is None else f"{type(err).__name__}: {str(err)[:200]}"}
        at_start = proc_rss_mib(pid) if pid else None  # after start (and the warm-up request)
        before = at_start
        records: list[dict] = []
        lock, barrier = threading.Lock(), threading.Barrier(cfg.clients)
        threads = [threading.Thread(target=client_loop, args=(url, i, cfg.requests, records, lock, barrier))
                   for i in range(cfg.clients)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        summary = {"url": url, "clients": cfg.clients, "requests_per_client": cfg.requests,
                   "call": "generate(prompt, 'any', n=4, seed, False, 1.0, candidates=4, gate=0.5, 256 px)",
                   **summarize(records, wall),
                   "app_rss_before": before, "app_rss_after": proc_rss_mib(pid) if pid else None}
        if cfg.settle_minutes > 0 and pid:  # does what the load grew come back, or stay?
            log(f"waiting {cfg.settle_minutes:g} min idle before measuring the app's memory again")
            time.sleep(60 * cfg.settle_minutes)
            summary["app_rss_after_settling"] = {**proc_rss_mib(pid), "minutes": cfg.settle_minutes}
        summary["warmup_request"] = warm
        if start_s is not None:
            summary["app_start_s"] = start_s  # until the app answers HTTP (example caching may go on)
        return summary
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


def parse_args(argv: list[str] | None = None) -> LoadConfig:
    ap = dataclass_parser(LoadConfig, __doc__.splitlines()[0])
    cfg = LoadConfig(**vars(ap.parse_args(argv)))
    if cfg.clients < 1 or cfg.requests < 1:
        ap.error("--clients and --requests must be >= 1")
    return cfg


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    summary = run_load(cfg)
    text = json.dumps(summary, indent=2)
    print(text)
    if cfg.out:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        (Path(cfg.out) / "loadtest.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
