"""The app as the bench and the load test see it: launched on a free port, called through
gradio_client (the bench's default call through the API: default_call.py)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .. import paths

# the app's log lines once its start-up work is over (app.py main, model/serving/server.py)
READY = ("text encoder ready", "examples cache complete")
PROMPTS = ("grinning face", "red apple", "rocket", "dog face", "pizza", "red heart", "cat face",
           "smiling face with sunglasses", "sun", "snowman", "pine tree", "birthday cake")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(timeout: float = 180.0, log=print, args: tuple[str, ...] = (), env: dict | None = None,
              wait_for: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str, float]:
    """Launch `python app.py --port P *args` on a free port (env: more environment variables);
    returns (process, url, seconds until it answers HTTP). wait_for: lines of the app's log to wait
    for after that too (e.g. READY: the sentence encoder loaded and the examples cached, so no
    start-up work competes with what is timed next)."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", **(env or {})}
    logf = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"app-{port}.log", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=paths.ROOT, env=env,
                            stdout=logf, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    secs = None
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}; see {logf.name}")
        if secs is None:
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as r:
                    if r.status == 200:
                        secs = time.perf_counter() - t0
                        log(f"app answered on {url} after {secs:.1f} s (log {logf.name})")
            except OSError:
                pass
        if secs is not None:
            text = Path(logf.name).read_text(errors="replace")
            if all(line in text for line in wait_for):
                return proc, url, secs
        time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"app.py did not answer (or log {list(wait_for)}) within {timeout} s; see {logf.name}")


def app_generate_args(prompt: str, seed: int, app_defaults: bool = False) -> tuple:
    """Positional inputs of app.py's "generate" event (model/serving/api.py) for the load test:
    n = candidates = 4, gate 0.5, 256 px; app_defaults: everything else as a user who changes
    nothing gets it (16 candidates, the model's calibrated gate)."""
    from ..serving.api import generate_args

    return generate_args(prompt, seed=seed) if app_defaults else generate_args(prompt, n=4, seed=seed, candidates=4, gate=0.5)
