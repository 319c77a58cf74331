"""The app as the bench and the load test see it: launched on a free port, called through
gradio_client."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .. import paths
from .measure import percentiles

ROOT = paths.ROOT  # the repository (app.py)
PROMPTS = ("grinning face", "red apple", "rocket", "dog face", "pizza", "red heart", "cat face",
           "smiling face with sunglasses", "sun", "snowman", "pine tree", "birthday cake")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(timeout: float = 180.0, log=print, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str, float]:
    """Launch `python app.py --port P *args` on a free port; returns (process, url, seconds until it answers)."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    logf = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"app-{port}.log", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=ROOT, env=env,
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


def app_generate_args(prompt: str, seed: int, app_defaults: bool = False) -> tuple:
    """Positional inputs of app.py's "generate" event (model/serving/api.py): candidates = n = 4 and gate
    0.5, the same work as the pipeline latency, at 256 px; app_defaults: everything as a user
    who changes nothing gets it (16 candidates, the model's calibrated gate)."""
    from ..serving.api import generate_args

    return generate_args(prompt, seed=seed) if app_defaults else generate_args(prompt, n=4, seed=seed, candidates=4, gate=0.5)


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

