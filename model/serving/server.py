"""The web server's housekeeping: what it may serve, how it answers an unknown API name, where its
temporary and cached files live, and that they stay bounded and go away at exit."""
from __future__ import annotations

import csv
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse
from gradio.route_utils import FnIndexInferError

from . import files

log = logging.getLogger(__name__)

CACHE_BUDGET_MB = int(os.environ.get("CACHE_BUDGET_MB", 256))  # gradio's cache folder, pruned oldest first
FINISHED = "finished"  # marker file of an examples cache that was written to the end
EXAMPLES_CACHED = "examples cache complete"  # logged then: the start's CPU work is over (the bench waits for it)


def user_cache() -> Path:
    """The per-user cache folder (XDG): the cached examples live here, never in the app folder."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emoji-t2i"


async def unknown_api_name(request: Request, exc: FnIndexInferError) -> JSONResponse:
    """`POST /gradio_api/call/<name>` with a name the app does not have: 404, not 500."""
    return JSONResponse({"error": "No API endpoint by that name; GET /gradio_api/info lists them."},
                        status_code=404)


def launch_options(app_folder: Path) -> dict:
    """demo.launch() options that keep the server's files to itself: the app folder (code, .git,
    weights) is a blocked path, so even a path handed back by mistake is never served from it."""
    return dict(blocked_paths=[str(app_folder)],
                app_kwargs={"exception_handlers": {FnIndexInferError: unknown_api_name}})


def prepare_process() -> files.CacheBudget:
    """Before the Blocks are built: move gradio's cache into this process's own folder (removed at
    exit, SIGTERM included; app.py made it its TMPDIR before importing gradio, model.serving.tmp)
    and keep that cache under CACHE_BUDGET_MB."""
    cache = files.use_private_gradio_cache()
    files.exit_cleanly_on_sigterm()
    log.info("temporary files in %s (at most %d MB in gradio's cache; removed at exit)",
             files.app_root(), CACHE_BUDGET_MB)
    return files.CacheBudget(cache, CACHE_BUDGET_MB * 2**20).start()


# --- the cached examples: a cache is used only if it was written to the end ---

def drop_unfinished_cache(folder: Path) -> bool:
    """A start killed while caching leaves a cache with some of the examples, which gradio would
    take as complete ("Using cache from ..."): remove a cache without the FINISHED marker."""
    if folder.exists() and not (folder / FINISHED).exists():
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed the unfinished examples cache %s", folder)
        return True
    return False


def cached_rows(folder: Path) -> int:
    """Examples written to the cache (rows of gradio's log.csv files under the folder)."""
    rows = 0
    for log_csv in folder.rglob("log.csv"):
        with open(log_csv, newline="", encoding="utf-8") as f:
            rows += max(0, sum(1 for _ in csv.reader(f)) - 1)  # minus the header
    return rows


def mark_cache_finished(folder: Path, expected: int) -> bool:
    """Mark the cache finished if it holds every example."""
    if cached_rows(folder) >= expected:
        (folder / FINISHED).write_text(f"{expected}\n")
        return True
    return False


def mark_cache_when_finished(folder: Path, expected: int, timeout: float = 900.0) -> threading.Thread:
    """Gradio caches the examples while the server already answers (on a busy machine, after
    launch() has returned): watch the cache from a background thread and mark it finished once it
    holds every example; a process stopped before that leaves it unmarked, to be rebuilt."""
    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if mark_cache_finished(folder, expected):
                log.info("%s: %d examples cached in %s", EXAMPLES_CACHED, expected, folder)
                return
            time.sleep(1.0)
        log.warning("the examples cache %s holds %d of %d examples; it will be rebuilt at the next start",
                    folder, cached_rows(folder), expected)

    t = threading.Thread(target=watch, name="examples-cache", daemon=True)
    t.start()
    return t
