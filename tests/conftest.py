"""Shared fixtures. Everything runs on CPU, offline, in seconds, with tiny (16 px) latent models."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# --- environment: set before anything imports huggingface_hub / gradio (they read it at import) ---
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="hf_home_")  # never the user's real cache or token
atexit.register(shutil.rmtree, os.environ["HF_HOME"], ignore_errors=True)
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
             "HF_TOKEN", "MODEL_ID", "MODEL_REVISION"):
    os.environ.pop(_var, None)

import pytest  # noqa: E402
import torch  # noqa: E402

from model.config import STYLES  # noqa: E402

# 1 thread: tiny tensors gain nothing from a second, and on this shared 2-core machine two threads spin
# against each other (see the A/B in model/EXPERIMENTS.md, 2026-12-07; TEST_THREADS=2 to compare)
torch.set_num_threads(int(os.environ.get("TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def tiny_model_factory():
    """helpers.make_tiny_model(seed, styles) for tests that need their own (e.g. a second, different) model."""
    from helpers import make_tiny_model

    return make_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved tiny model folder of the shipped kind (model_type emoji-latent-vae: encoder, decoder,
    discriminator, prior and per-style latent tables), 16 px, the four default styles. Treat it as read-only."""
    from helpers import make_tiny_model

    return make_tiny_model(seed=0, styles=STYLES).save_pretrained(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """A fresh, empty Hub cache for one test (huggingface_hub reads HF_HUB_CACHE only at import)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return cache


@pytest.fixture
def fake_hub(hf_cache, monkeypatch):
    """A running tests.fakehub.FakeHub that huggingface_hub talks to instead of huggingface.co.

    HF_ENDPOINT is read when huggingface_hub is imported, so the module constants are patched too."""
    from huggingface_hub import constants

    from fakehub import FakeHub  # tests/ is on sys.path (pytest rootdir conftest)

    hub = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    yield hub
    hub.stop()


# --- the running app, shared by the API and the browser tests (start_app is in helpers.py) ---

@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    from helpers import start_app

    srv = start_app(tiny_model_dir, tmp_path_factory.mktemp("examples_cache"))
    yield srv
    srv.demo.close()


@pytest.fixture(scope="module")
def client(server):
    """A gradio_client Client of the module's running app (the test_app* modules; calls in app_helpers.py)."""
    from gradio_client import Client

    return Client(server.url, verbose=False, download_files=str(server.cache.parent / "downloads"))


# --- the browser tests: one Chromium per module, a fresh page per test (helpers in browser_helpers.py) ---

@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (never `playwright install`); a missing one fails the test, saying how to install it."""
    import shutil
    from pathlib import Path

    from browser_helpers import CHROMIUM, CHROMIUM_ARGS, OUTPUT

    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium` "
                    "(the browser tests never download one with `playwright install`)")
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page of the running app for one test, 1280 x 1000: nothing generated or scored yet."""
    from browser_helpers import open_page

    pg = open_page(browser, server.url)
    yield pg
    pg.close()


@pytest.fixture
def narrow_page(browser, server):
    """A fresh page in a phone-sized window: 420 x 900."""
    from browser_helpers import open_page

    pg = open_page(browser, server.url, width=420, height=900)
    yield pg
    pg.close()
