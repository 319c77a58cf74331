"""The app's disk footprint under steady use: `python -m model.bench.disk --minutes 10`.

Starts `python app.py` (with its own TMPDIR), calls /generate back to back at the app's defaults
for the given time, samples the size of the app's temporary folder every `--every` seconds, then
stops the app with SIGTERM and checks that the folder is gone. Prints one JSON line per sample
and a summary; CACHE_BUDGET_MB (the app's bound on gradio's cache) is passed through."""
from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from pathlib import Path

from .app_client import PROMPTS, start_app


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under folder; files and folders the app removes meanwhile are skipped."""
    total = 0
    for root, _, names in os.walk(folder, onerror=lambda e: None):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to call /generate (default 10)")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between size samples (default 30)")
    ap.add_argument("--budget-mb", type=int, default=None, help="CACHE_BUDGET_MB for the app (default: the app's)")
    args = ap.parse_args(argv)
    from gradio_client import Client

    from ..serving.api import generate_args

    tmp = Path(tempfile.mkdtemp(prefix="disk-bench-"))
    os.environ["TMPDIR"] = str(tmp)  # the app's temp folder lands here, and nothing else does
    if args.budget_mb is not None:
        os.environ["CACHE_BUDGET_MB"] = str(args.budget_mb)
    proc, url, _ = start_app()
    client = Client(url, verbose=False, download_files=False)
    t0 = last = time.monotonic()
    calls, samples = 0, []
    try:
        while time.monotonic() - t0 < 60 * args.minutes:
            client.predict(*generate_args(PROMPTS[calls % len(PROMPTS)], seed=calls), api_name="/generate")
            calls += 1
            if time.monotonic() - last >= args.every:
                last = time.monotonic()
                size = folder_bytes(tmp)
                samples.append({"s": round(last - t0), "calls": calls, "mb": round(size / 2**20, 1)})
                print(json.dumps(samples[-1]), flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    left = [str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file() and not p.name.startswith("app-")]
    out = {"minutes": args.minutes, "calls": calls, "max_mb": max((s["mb"] for s in samples), default=0.0),
           "mb_per_call": round(samples[-1]["mb"] / max(1, samples[-1]["calls"]), 3) if samples else None,
           "budget_mb": int(os.environ.get("CACHE_BUDGET_MB", 256)), "left_after_sigterm": left[:5],
           "left_count": len(left)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
