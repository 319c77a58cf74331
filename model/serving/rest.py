"""A one-request JSON API for text to image, beside gradio's: ``POST /rest/generate``.

gradio's API takes two requests (join its queue, then read the answer's event stream) and copies
every image file into its cache; gradio_client polls for the answer every 50 ms. This route
answers in the response itself, the images as base64 PNGs, drawn by the same pipeline (its
batcher draws concurrent calls together, as for the app's own calls):

    curl -s localhost:7860/rest/generate -H 'content-type: application/json' \\
         -d '{"prompt": "rocket", "style": "fluent3d"}'

The body names any of /generate's inputs (model.serving.api.GENERATE_PARAMS; the rest take the
app's defaults, gate: the model's calibrated one). The answer: {"summary", "images": [{"caption",
"style", "seed", "realism", "match", "passed_gate", "redrawn_from", "png_base64"}]}. Bad input:
400 and {"error": message}; more than `max_waiting` calls in the server at once: 503, as gradio's
queue says "Queue is full". Measured against gradio's path: model/EXPERIMENTS.md (2026-12-07,
fifth session)."""
from __future__ import annotations

import base64
import io
import json
import logging
import threading

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse

from ..outputs import Generation
from ..pipeline import Pipeline
from .api import GENERATE_DEFAULTS, GENERATE_PARAMS
from .events import caption, run_generate, save_png, summary

log = logging.getLogger(__name__)

ROUTE = "/rest/generate"
MAX_BODY = 16_384  # bytes; a prompt is at most 300 characters, the other inputs a few each
BUSY = "The server is busy ({n} requests in progress); try again in a few seconds."


def png_base64(image) -> str:
    buf = io.BytesIO()
    save_png(image, buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def answer(out: Generation) -> dict:
    return {"summary": summary(out),
            "images": [{"caption": caption(s), "style": s.style, "seed": s.seed, "realism": round(s.realism, 4),
                        "match": round(s.match, 4), "passed_gate": s.kept, "redrawn_from": s.redrawn_from,
                        "png_base64": png_base64(s.image)} for s in out.images]}


def inputs(raw: bytes) -> dict:
    """The request body -> /generate's inputs by name, defaults filled in; ValueError says what is wrong."""
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"The body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise ValueError('The body must be a JSON object, e.g. {"prompt": "rocket"}.')
    unknown = sorted(set(body) - set(GENERATE_PARAMS))
    if unknown:
        raise ValueError(f"Unknown input(s) {', '.join(map(repr, unknown))}; it takes {', '.join(GENERATE_PARAMS)}.")
    if "prompt" not in body:
        raise ValueError('The body names no "prompt".')
    return {**GENERATE_DEFAULTS, **body}


async def read_body(request: Request) -> bytes | None:
    """The body, or None when it is (or says it is) longer than MAX_BODY, read no further."""
    declared = request.headers.get("content-length") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def add_rest_api(demo, pipeline: Pipeline, max_waiting: int) -> None:
    """Mount ROUTE on the launched demo's server (demo.launch(prevent_thread_lock=True) first)."""
    slots = threading.BoundedSemaphore(max_waiting)
    # its own threads: calls waiting in the pipeline's batcher must not hold the worker threads
    # gradio's own handlers run in (anyio's default pool, 40)
    threads = anyio.CapacityLimiter(max_waiting)

    def draw(a: dict) -> dict:
        return answer(run_generate(pipeline, *(a[k] for k in GENERATE_PARAMS)))

    async def generate(request: Request):
        raw = await read_body(request)
        if raw is None:
            return JSONResponse({"error": f"The body is larger than {MAX_BODY} bytes."}, status_code=413)
        if not slots.acquire(blocking=False):
            return JSONResponse({"error": BUSY.format(n=max_waiting)}, status_code=503)
        try:
            return JSONResponse(await anyio.to_thread.run_sync(draw, inputs(raw), limiter=threads))
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except Exception:  # noqa: BLE001 - logged; the caller gets no internals
            log.exception("%s failed", ROUTE)
            return JSONResponse({"error": "The server failed to draw this request."}, status_code=500)
        finally:
            slots.release()

    app = demo.server_app
    app.add_api_route(ROUTE, generate, methods=["POST"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())  # ahead of gradio's own routes
