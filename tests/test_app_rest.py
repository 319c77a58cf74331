"""The one-request REST route (model.serving.rest, POST /rest/generate) on the tests' served app:
the same drawing as gradio's /generate, bad input answered with a message, big bodies and too
many calls refused, the app serving on."""
from __future__ import annotations

import base64
import io
import threading

import httpx
import numpy as np
import pytest
from app_helpers import assert_alive
from PIL import Image

from model.serving import rest


def post(server, body, **kw):
    return httpx.post(server.url.rstrip("/") + rest.ROUTE, timeout=120, **({"json": body} if body is not None else kw))


def test_rest_generate_draws_what_the_pipeline_draws(server):
    r = post(server, {"prompt": "rocket", "style": "google", "n": 2, "seed": 3, "candidates": 8, "upscale": False})
    assert r.status_code == 200, r.text
    got = r.json()
    assert [im["seed"] for im in got["images"]] and len(got["images"]) == 2
    assert got["summary"].startswith(("Read the prompt as", "Drawn")) and "candidates" in got["summary"]
    want = server.pipeline.text_to_image.generate("rocket", n=2, seed=3, style="google", candidates=8,
                                                  gate=server.pipeline.gate.default, upscale=False)
    assert [im["seed"] for im in got["images"]] == [s.seed for s in want.images]
    for im, s in zip(got["images"], want.images):
        png = Image.open(io.BytesIO(base64.b64decode(im["png_base64"])))
        assert png.format == "PNG" and png.size == (256, 256)  # the raw model-size image shown at display size
        a = np.asarray(png.resize(s.image.size, Image.NEAREST), dtype=np.int16)
        b = np.asarray(s.image.convert("RGB"), dtype=np.int16)
        assert np.abs(a - b).mean() < 1.0  # the same drawing (batched with other calls: float noise only)
        assert im["caption"].startswith(f"google · seed {s.seed}") and im["style"] == "google"


@pytest.mark.parametrize("body,status,message", [
    ({"prompt": ""}, 400, "The prompt is empty"),
    ({"prompt": "rocket", "n": 99}, 400, "number of images must be from 1 to 16"),
    ({"prompt": "rocket", "steps": 3}, 400, "Unknown input(s) 'steps'"),
    ({"style": "google"}, 400, 'names no "prompt"'),
    (["rocket"], 400, "must be a JSON object"),
    ({"prompt": "rocket", "other_designs": "maybe"}, 400, "other designs must be true or false"),
    ({"prompt": 5}, 400, "prompt"),  # JSON of the wrong type: the pipeline's own message, never a 500
    ({"prompt": ["rocket"]}, 400, "prompt"),
    ({"prompt": "rocket", "n": "four"}, 400, "number of images"),
    ({"prompt": "rocket", "seed": [1]}, 400, "seed"),
    ({"prompt": "rocket", "gate": {"a": 1}}, 400, "gate"),
])
def test_rest_bad_input_gets_a_message(server, body, status, message):
    r = post(server, body)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert_alive_rest(server)


def test_rest_refuses_a_body_that_is_not_json_or_too_big(server):
    r = post(server, None, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    r = post(server, None, content=b'{"prompt": "' + b"a" * (rest.MAX_BODY + 10) + b'"}')
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    assert_alive_rest(server)


def test_rest_refuses_calls_beyond_its_slots(server, client, monkeypatch):
    """With every slot held, a call is refused at once with 503 (as gradio's queue says it is full);
    those in the slots are drawn, and gradio's own API keeps answering meanwhile."""
    import app

    n = app.QUEUE_MAX_SIZE + server.pipeline.text_to_image.max_batch
    inside, release, lock = [], threading.Event(), threading.Lock()
    real = rest.run_generate

    def slow(*a, **kw):
        with lock:
            inside.append(1)
        release.wait(60)
        return real(*a, **kw)

    monkeypatch.setattr(rest, "run_generate", slow)
    results = []
    threads = [threading.Thread(target=lambda: results.append(post(server, {"prompt": "rocket", "n": 1,
                                                                              "candidates": 4}).status_code))
               for _ in range(n)]
    try:
        for t in threads:
            t.start()
        for _ in range(600):  # until every slot holds a call
            if len(inside) == n:
                break
            threading.Event().wait(0.05)
        assert len(inside) == n
        busy = post(server, {"prompt": "rocket", "n": 1, "candidates": 4})
        assert busy.status_code == 503 and "busy" in busy.json()["error"], busy.text
        assert_alive(client)  # the held calls have threads of their own: gradio's API still answers
    finally:
        release.set()
        for t in threads:
            t.join(60)
    assert results.count(200) == len(results) == n  # those in the slots were all drawn
    assert_alive_rest(server)


def assert_alive_rest(server):
    r = post(server, {"prompt": "red apple", "n": 1, "candidates": 4, "upscale": False})
    assert r.status_code == 200 and len(r.json()["images"]) == 1


def test_gradio_api_still_serves(client):
    assert_alive(client)
