"""model.hub against a local fake Hub (tests/fakehub.py): real huggingface_hub downloads, no network."""
from __future__ import annotations

import json
import logging
import shutil
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from model import hub
from model.latent_model import LatentModel


def fingerprint(model: LatentModel) -> torch.Tensor:
    """Decoder output for fixed inputs: equal weights <=> (practically) equal fingerprints."""
    cfg = model.cfg
    z = torch.randn(2, *cfg.latent_shape, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        return model.decoder(z, torch.tensor([0, cfg.num_styles - 1]))


@pytest.fixture
def default_is_tiny(monkeypatch, tiny_model_dir):
    """The 'shipped default' is the tiny model, so fallbacks do not depend on assets/."""
    monkeypatch.setattr(hub, "DEFAULT_MODEL_DIR", tiny_model_dir)
    return tiny_model_dir


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory, tiny_model_factory):
    """A second tiny model with different weights (the 'v2' revision)."""
    return tiny_model_factory(seed=1).save_pretrained(tmp_path_factory.mktemp("tiny_v2"))


@pytest.fixture
def two_revisions(fake_hub, tiny_model_dir, other_model_dir):
    """org/tiny: main = the tiny model, branch v2 = other weights. Returns (sha_main, sha_v2)."""
    return fake_hub.add("org/tiny", tiny_model_dir), fake_hub.add("org/tiny", other_model_dir, revision="v2")


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


# --- loading from the Hub ---

def test_load_by_repo_id(fake_hub, hf_cache, tiny_model_dir, two_revisions):
    model, info = hub.load_model("org/tiny")
    assert (info.source, info.model_id, info.commit) == ("hub", "org/tiny", two_revisions[0])
    assert info.folder.is_relative_to(hf_cache), "downloads must go to the (test) Hub cache"
    assert isinstance(model, LatentModel)  # every file of the folder (one latent table per style) came down:
    assert {p.name for p in info.folder.iterdir()} == {"config.json", *LatentModel.weight_files(model.cfg.styles)}
    assert model.prior.names == hub.load_folder(tiny_model_dir).prior.names
    assert torch.equal(fingerprint(model), fingerprint(hub.load_folder(tiny_model_dir)))
    assert any(r.startswith("GET /org/tiny/resolve/") for r in fake_hub.requests)


def test_pinned_revision_gives_other_weights(fake_hub, two_revisions, tiny_model_dir, other_model_dir):
    sha_main, sha_v2 = two_revisions
    main, _ = hub.load_model("org/tiny")
    v2, info_v2 = hub.load_model("org/tiny", revision="v2")
    by_sha, info_sha = hub.load_model("org/tiny", revision=sha_main)
    assert (info_v2.revision, info_v2.commit) == ("v2", sha_v2)
    assert info_sha.commit == sha_main
    assert not torch.allclose(fingerprint(main), fingerprint(v2)), "two revisions gave the same weights"
    assert torch.equal(fingerprint(v2), fingerprint(hub.load_folder(other_model_dir)))
    assert torch.equal(fingerprint(by_sha), fingerprint(main))


@pytest.mark.parametrize("how", ["env set after import", "env set at start-up"])
def test_offline_mode_uses_filled_cache(fake_hub, two_revisions, monkeypatch, caplog, how):
    online_main, _ = hub.load_model("org/tiny")
    online_v2, _ = hub.load_model("org/tiny", revision="v2")
    fake_hub.stop()
    n_requests = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if how == "env set at start-up":  # huggingface_hub read it at import
        from huggingface_hub import constants
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        main, info = hub.load_model("org/tiny")
        v2, info_v2 = hub.load_model("org/tiny", revision="v2")
    assert time.perf_counter() - t0 < 5, "offline mode must not wait for network retries"
    assert (info.source, info.commit, info_v2.commit) == ("hub", *two_revisions)
    assert torch.equal(fingerprint(main), fingerprint(online_main))
    assert torch.equal(fingerprint(v2), fingerprint(online_v2))
    assert len(fake_hub.requests) == n_requests
    assert not [r for r in caplog.records if r.name == "model.hub"], "a cached model must not fall back"


def test_offline_mode_with_empty_cache_falls_back(fake_hub, two_revisions, default_is_tiny, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):
        info = hub.resolve("org/tiny")
    assert (info.source, info.folder) == ("default", default_is_tiny)
    assert "HF_HUB_OFFLINE" in info.note
    assert fake_hub.requests == [], "offline mode sent a request"


@pytest.mark.parametrize("case", ["server down", "repo missing", "revision missing"])
def test_unreachable_repo_falls_back_with_one_log_line(fake_hub, two_revisions, default_is_tiny, caplog, case):
    repo, revision = {"server down": ("org/tiny", None), "repo missing": ("org/nope", None),
                      "revision missing": ("org/tiny", "no-such-branch")}[case]
    if case == "server down":
        fake_hub.stop()
    t0 = time.perf_counter()
    with caplog.at_level(logging.DEBUG, logger="model.hub"):
        model, info = hub.load_model(repo, revision=revision)
    assert time.perf_counter() - t0 < 5
    assert (info.source, info.model_id, info.folder) == ("default", "default", default_is_tiny)
    assert torch.equal(fingerprint(model), fingerprint(hub.load_folder(default_is_tiny)))
    records = [r for r in caplog.records if r.name == "model.hub"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING, [r.getMessage() for r in records]
    line = records[0].getMessage()
    assert "\n" not in line and repo in line and "default" in line
    assert {"server down": "could not be reached", "repo missing": "repository does not exist",
            "revision missing": "revision does not exist"}[case] in line
    assert info.note == line


def test_env_vars_are_honoured(fake_hub, two_revisions, tiny_model_dir, monkeypatch):
    sha_main, sha_v2 = two_revisions
    fake_hub.add("org/other", tiny_model_dir)
    monkeypatch.setenv("MODEL_ID", "org/tiny")
    monkeypatch.setenv("MODEL_REVISION", "v2")
    info = hub.resolve()
    assert (info.model_id, info.revision, info.commit) == ("org/tiny", "v2", sha_v2)
    assert hub.resolve(revision="main").commit == sha_main  # an explicit revision wins over MODEL_REVISION
    # an explicit model id wins, and MODEL_REVISION (which belongs to MODEL_ID) is not applied to it
    other = hub.resolve("org/other")
    assert (other.source, other.model_id, other.revision) == ("hub", "org/other", None)
    monkeypatch.setenv("MODEL_ID", str(tiny_model_dir))
    assert (hub.resolve().source, hub.resolve().folder) == ("local", tiny_model_dir)
    monkeypatch.delenv("MODEL_ID")
    assert hub.resolve().source == "default"


def test_resolve_local_and_bad_ids(tiny_model_dir, tmp_path, fake_hub):
    assert hub.resolve(str(tiny_model_dir)).source == "local"
    assert hub.resolve("default").folder == hub.DEFAULT_MODEL_DIR
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        hub.resolve(str(tmp_path / "no-such-folder"))
    with pytest.raises(FileNotFoundError, match="missing"):
        hub.resolve("./missing")
    with pytest.raises(ValueError, match="nor a valid Hub repo id"):
        hub.resolve("org/bad name!")
    assert fake_hub.requests == []


# --- corrupt or mismatched files: a clear error naming the file, never a silent fallback ---

def test_truncated_safetensors_names_the_file(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    bad = folder / "decoder.safetensors"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with pytest.raises(ValueError, match="decoder.safetensors"):
        hub.load_folder(folder)


def test_garbage_safetensors_names_the_file(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    (folder / "encoder.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="encoder.safetensors"):
        hub.load_model(str(folder))


def test_nan_weights_are_refused(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    sd = load_file(str(folder / "discriminator.safetensors"))
    next(iter(sd.values())).view(-1)[0] = float("nan")
    save_file(sd, str(folder / "discriminator.safetensors"))
    with pytest.raises(ValueError, match=r"discriminator.safetensors.*NaN"):
        hub.load_folder(folder)


def test_corrupt_file_on_the_hub_is_an_error_not_a_fallback(fake_hub, tiny_model_dir, default_is_tiny):
    files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir()}
    files["decoder.safetensors"] = files["decoder.safetensors"][:100]
    fake_hub.add("org/broken", files)
    with pytest.raises(ValueError, match="decoder.safetensors"):
        hub.load_model("org/broken")


def test_config_that_does_not_match_the_weights(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["channels"] = [16, 16]  # the weights were saved with (8, 16)
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"encoder.safetensors does not match .*config.json.*config wants"):
        hub.load_folder(folder)


@pytest.mark.parametrize("edit, message", [
    (lambda c: {**c, "n_layers": 3}, "unknown LatentConfig keys"),
    (lambda c: {**c, "image_size": 24}, "power of two"),
    (lambda c: {**c, "image_size": "16"}, "config.json"),
    (lambda c: [c], "config.json"),
    (lambda c: "{not json", "not valid JSON"),
])
def test_bad_config_json_names_the_file(tiny_model_dir, tmp_path, edit, message):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    cfg = edit(json.loads((folder / "config.json").read_text()))
    (folder / "config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    with pytest.raises(ValueError, match=message) as err:
        hub.load_folder(folder)
    assert "config.json" in str(err.value)


def test_a_retired_gan_folder_is_refused_by_name(tiny_model_dir, tmp_path):
    """A folder of the VAE-GAN shipped before the latent model: a clear error naming its model_type."""
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "model_type": "emoji-vae-gan"}))
    with pytest.raises(ValueError, match=r"config.json.*model_type 'emoji-vae-gan' is not a kind this code loads"):
        hub.load_model(str(folder))


def test_missing_weight_file_names_it(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    (folder / "encoder.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="encoder.safetensors"):
        hub.load_folder(folder)


# --- upload ---

def test_push_to_hub_round_trip(fake_hub, tiny_model_dir):
    url = hub.push_to_hub(tiny_model_dir, "org/pushed")
    sha = fake_hub.repos["org/pushed"]["refs"]["main"]
    assert url.endswith(f"/org/pushed/commit/{sha}")
    model, info = hub.load_model("org/pushed")
    assert info.commit == sha
    assert torch.equal(fingerprint(model), fingerprint(hub.load_folder(tiny_model_dir)))


def test_push_to_hub_refuses_a_broken_folder(fake_hub, tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    (folder / "decoder.safetensors").write_bytes(b"broken")
    with pytest.raises(ValueError, match="decoder.safetensors"):
        hub.push_to_hub(folder, "org/pushed")
    assert fake_hub.requests == [], "nothing may be sent for a broken folder"

