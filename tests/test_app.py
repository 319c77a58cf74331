"""The app as a whole: the real app.py served on a TINY model (its header, queue limits, endpoint
names and cached examples) and its command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from gradio_client import Client

import app
from model.bench.app_client import free_port
from model.paths import ROOT
from model.serving.api import GENERATE_PARAMS, generate_args
from app_helpers import generate  # tests/ is on sys.path (rootdir conftest)


# --- the served app ---

def test_header_shows_model_and_device(server, client):
    config = json.dumps(client.config, ensure_ascii=False)
    assert "source local" in config and "device **cpu**" in config
    assert str(server.pipeline.info.model_id) in config


def test_queue_has_limits(server):
    assert server.demo._queue.max_size == app.QUEUE_MAX_SIZE
    assert server.demo._queue.default_concurrency_limit == app.QUEUE_CONCURRENCY


def test_api_names(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate", "/interpolate", "/score", "/variations", "/restyle", "/interpolate_images", "/edit", "/sheet",
            "/sheet_variations"} <= set(named)


def test_generate_is_named_in_one_place(server):
    """The app's /generate takes its arguments in GENERATE_PARAMS order (the bench, the load test
    and these tests build calls from model/serving/api.py)."""
    info = Client(server.url, verbose=False).view_api(print_info=False, return_format="dict")
    names = [p["parameter_name"] for p in info["named_endpoints"]["/generate"]["parameters"]]
    assert names == list(GENERATE_PARAMS)
    assert generate_args("rocket", n=1)[:3] == ("rocket", "any", 1)
    with pytest.raises(TypeError, match="no parameter"):
        generate_args("rocket", size=3)


def test_examples_are_cached(server):
    assert list(server.cache.rglob("log.csv")), "gr.Examples wrote no cache"
    assert len(app.read_examples()) >= 6


def test_examples_cache_is_keyed_by_the_upsampler(server):
    """The cached examples are 256-px images: another upsampler must not reuse them."""
    import copy

    import torch

    pipe = copy.copy(server.pipeline)
    pipe.stages = copy.copy(pipe.stages)  # its own stages: the upsampler swapped below is not the server's
    before = app.examples_cache_dir(pipe, ["red apple"])
    pipe.stages.upsampler = copy.deepcopy(pipe.stages.upsampler)
    with torch.no_grad():
        next(pipe.stages.upsampler.parameters()).add_(0.01)
    assert app.examples_cache_dir(pipe, ["red apple"]) != before
    pipe.stages.upsampler = None
    assert app.examples_cache_dir(pipe, ["red apple"]) != before


# --- the command line ---

def test_cli_defaults_and_env(monkeypatch):
    monkeypatch.delenv("SHARE", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    a = app.parse_args([])
    assert (a.host, a.port, a.share) == ("127.0.0.1", 7860, False)
    assert app.parse_args(["--host", "0.0.0.0", "--port", "8000", "--share"]).share
    monkeypatch.setenv("SHARE", "1")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what Hugging Face Spaces sets
    a = app.parse_args([])
    assert a.share and a.host == "0.0.0.0"
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


@pytest.mark.slow
def test_cli_serves_and_share_fails_softly(tiny_model_dir, tmp_path):
    """`python app.py --share` without network: says it could not make a link, keeps serving.
    A dead proxy stands in for "no network", so the test never reaches the internet either way."""
    port = free_port()
    env = {**os.environ, "MODEL_ID": str(tiny_model_dir), "GRADIO_EXAMPLES_CACHE": str(tmp_path / "cache"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost",
           "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--share"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "text encoder ready" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert "Could not create share link" in text, text
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        assert proc.poll() is None  # still serving
        gallery, _ = generate(Client(f"http://127.0.0.1:{port}/", verbose=False), n=1, candidates=1)
        assert len(gallery) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
