"""Shared fixtures. Everything runs on CPU, offline, in seconds, with model.config.TINY networks."""
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

from model.config import TINY, ModelConfig  # noqa: E402
from model.gan import TextToImageGAN  # noqa: E402

torch.set_num_threads(2)  # 2 shared CPU cores


def make_tiny_model(seed: int = 0) -> TextToImageGAN:
    """A TINY-config model (16x16 images) with seeded random weights, changed from the default init so that
    every input visibly reaches the uint8 image, as in a trained model: residual gains and affine layers
    (zero at init) are randomised; the VAE head gets mu ~ N(0, 1) for a unit text vector (default init:
    ~0.03, drowned by the noise); to_rgb is scaled x4 (default: near-gray images)."""
    torch.manual_seed(seed)
    model = TextToImageGAN(ModelConfig(**TINY))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gain") or ".aff" in name:
                p.normal_(0.0, 0.5)
        model.text_head.fc.weight.normal_(0.0, 1.0)
        model.generator.to_rgb.weight.mul_(4.0)
        model.generator.to_rgb.bias.mul_(4.0)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model_factory():
    """make_tiny_model(seed) for tests that need their own (e.g. a second, different) model."""
    return make_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved TINY model folder (config.json + three fp16 .safetensors). Treat it as read-only."""
    return make_tiny_model(seed=0).save_pretrained(tmp_path_factory.mktemp("tiny_model"))


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

@pytest.fixture(scope="session")
def tiny_latent_dir(tmp_path_factory):
    """A saved tiny latent model folder (the default model's kind: encoder, decoder, discriminator,
    prior and per-style latent tables). Treat it as read-only."""
    from helpers import make_tiny_latent

    return make_tiny_latent(seed=0, styles=("google", "twitter", "fluent3d", "openmoji")).save_pretrained(
        tmp_path_factory.mktemp("tiny_latent"))


@pytest.fixture(scope="module")
def server(tiny_latent_dir, tmp_path_factory):
    from helpers import start_app

    srv = start_app(tiny_latent_dir, tmp_path_factory.mktemp("examples_cache"))
    yield srv
    srv.demo.close()
