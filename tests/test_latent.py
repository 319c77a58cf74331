"""The latent model (image VAE + retrieval prior + discriminator): networks, prior, save/load,
pipeline and training, on 16 px configs, on CPU, in seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import TINY_NAMES, make_tiny_model

from model.config import config_dict, config_from_dict
from model.hub import ModelInfo, load_folder
from model.latent import TINY_LATENT, LatentConfig
from model.latent_model import LatentModel
from model.prior import Reading
from model.pipeline import Pipeline
from model.stages import image_tensor


class NoEncoder:
    def __call__(self, texts):
        raise AssertionError(f"MiniLM was asked to embed {texts!r}: prefill with pipe.stages.set_embedding")


@pytest.fixture
def tiny():
    return make_tiny_model()


@pytest.fixture
def pipe(tiny, tmp_path):
    p = Pipeline(model=tiny, info=ModelInfo("tiny", None, tmp_path, "local"), device=torch.device("cpu"),
                 encoder=NoEncoder())
    for i, name in enumerate(TINY_NAMES):  # a prompt equal to a known caption embeds to that caption
        p.stages.set_embedding(name, tiny.prior.cap_emb[i])
    p.stages.set_embedding("something new", torch.nn.functional.normalize(torch.randn(384), dim=0))
    return p


# --- networks and config ---

def test_config_validation():
    with pytest.raises(ValueError, match="power of two"):
        LatentConfig(**{**TINY_LATENT, "image_size": 24})
    with pytest.raises(ValueError, match="gate must be in"):
        LatentConfig(**{**TINY_LATENT, "gate": 1.5})
    with pytest.raises(ValueError, match="unknown LatentConfig keys"):
        config_from_dict(LatentConfig, {"bogus": 1})


def test_encoder_decoder_shapes_and_style_matters(tiny):
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    mu, logvar = tiny.encoder(x)
    assert mu.shape == logvar.shape == (3, *tiny.cfg.latent_shape) == (3, 4, 8, 8)
    y0 = tiny.decoder(mu, torch.zeros(3, dtype=torch.long))
    y1 = tiny.decoder(mu, torch.ones(3, dtype=torch.long))
    assert y0.shape == (3, 3, 16, 16)
    assert (y0 - y1).abs().mean() > 1e-3  # the style embedding reaches the image


# --- the prior ---

def test_prior_reads_a_known_caption_as_its_emoji(tiny):
    r = tiny.prior.read(tiny.prior.cap_emb[1:2])[0]
    assert r.names[0] == "rocket" and r.weights[0] > 0.99
    assert sum(r.weights) == pytest.approx(1.0, abs=1e-3)
    assert str(r).startswith("rocket 1.00")


def test_the_query_map_moves_what_a_prompt_reads_as(tiny):
    prior = tiny.prior
    assert prior.query_map.abs().max() == 0  # W = 0: plain MiniLM
    e = prior.cap_emb[1:2].clone()  # rocket's caption
    assert torch.allclose(prior.query(e), e, atol=1e-6)
    target = prior.cap_emb[0] - prior.cap_emb[1]  # a map that carries the rocket caption onto the first emoji's
    prior.query_map = torch.outer(prior.cap_emb[1], target)
    try:
        assert prior.read(e)[0].names[0] == TINY_NAMES[0] != "rocket"
    finally:
        prior.query_map = torch.zeros_like(prior.query_map)


def test_fit_query_map_learns_to_ignore_a_nuisance_direction():
    """Captions = an emoji's direction + large noise on a few 'nuisance' dimensions (as MiniLM's
    wording directions): held-out queries read right more often once the map is fitted."""
    from model.prior import best_per_entry
    from model.training.query_map import fit_query_map
    g = torch.Generator().manual_seed(0)
    U, per, d = 40, 4, 32
    centres = torch.randn(U, d, generator=g) * torch.cat([torch.ones(d - 8), torch.zeros(8)])
    def draw(n):
        noise = torch.randn(n, U, d, generator=g) * torch.cat([0.15 * torch.ones(d - 8), 3 * torch.ones(8)])
        return torch.nn.functional.normalize(centres + noise, dim=-1)
    cap = draw(per).transpose(0, 1).reshape(U * per, d)  # rows grouped by entry
    ent = torch.arange(U).repeat_interleave(per)
    held, held_y = draw(1)[0], torch.arange(U)
    def acc(W):
        q = torch.nn.functional.normalize(held + held @ W, dim=-1)
        return (best_per_entry(q @ cap.t(), ent, U).argmax(1) == held_y).float().mean().item()
    W = fit_query_map(cap, ent, torch.arange(len(cap)), torch.arange(len(cap)), steps=150, batch=64, anchors=64,
                      lr=1e-2)  # anchors: the default 512 is 3x this table and 7x the time
    assert acc(torch.zeros(d, d)) < 0.6 and acc(W) > acc(torch.zeros(d, d)) + 0.2
    assert torch.equal(fit_query_map(cap, ent, torch.arange(len(cap)), torch.arange(0), steps=5), torch.zeros(d, d))


def test_prior_sample_is_per_seed_and_truncation_zero_is_the_best_latent(tiny):
    prior = tiny.prior
    rd = prior.read(prior.cap_emb[0:1])[0]
    best_row, has = prior.row_for(rd.entries[0], 0)
    assert has
    z0 = prior.sample([rd], [0], [5], truncation=0.0)
    assert torch.equal(z0[0], prior.latents[best_row])
    alone = prior.sample([rd], [0], [7])
    batch = prior.sample([rd, rd, rd], [1, 0, 0], [3, 7, 9])
    assert torch.equal(alone[0], batch[1])  # a seed's latent does not depend on its batch mates
    assert not torch.equal(batch[1], batch[2])  # another seed, another latent


def test_a_style_that_lacks_the_emoji_restyles_another_styles_latent(tiny):
    dog = TINY_NAMES.index("dog face")
    row, has = tiny.prior.row_for(dog, 1)  # the tiny prior's dog face exists only in style 0
    assert not has and int(tiny.prior.lat_style[row]) == 0 and int(tiny.prior.lat_entry[row]) == dog


def test_a_moved_last_styles_design_is_moved_only_when_no_other_style_draws_the_emoji():
    from model.prior import RetrievalPrior

    p = RetrievalPrior(text_dim=4, latent_shape=(2, 2, 2), num_styles=4, top_k=2, temperature=0.1, moved_last=(3,))
    # emoji 0 drawn by styles 0 and 3 (rows 0, 1); emoji 1 by style 3 alone (row 2)
    p.fill(names=["cat", "owl"], cap_emb=torch.eye(4)[:2], cap_entry=torch.tensor([0, 1]), latents=torch.randn(3, 2, 2, 2),
           sigmas=torch.ones(3, 2), lat_entry=torch.tensor([0, 0, 1]), lat_style=torch.tensor([0, 3, 3]))
    assert {p.row_for(0, 2, choice=c) for c in range(4)} == {(0, False)}  # never style 3's, another draws it
    assert p.row_for(1, 2, choice=1) == (2, False)  # style 3's when it is the only one
    assert RetrievalPrior(text_dim=4, latent_shape=(2, 2, 2), num_styles=4, top_k=2, temperature=0.1).fill(
        names=["cat", "owl"], cap_emb=torch.eye(4)[:2], cap_entry=torch.tensor([0, 1]), latents=torch.randn(3, 2, 2, 2),
        sigmas=torch.ones(3, 2), lat_entry=torch.tensor([0, 0, 1]), lat_style=torch.tensor([0, 3, 3])).row_for(0, 2, 1) == (1, False)


def test_variety_draws_the_variety_sets_designs_of_an_emoji_the_asked_style_has():
    from model.prior import RetrievalPrior

    p = RetrievalPrior(text_dim=4, latent_shape=(2, 2, 2), num_styles=4, top_k=2, temperature=0.1, variety_from=(0, 1))
    # emoji 0 drawn by styles 0, 1 and 2 (rows 0, 1, 2); emoji 1 by style 1 alone (row 3)
    p.fill(names=["cat", "owl"], cap_emb=torch.eye(4)[:2], cap_entry=torch.tensor([0, 1]),
           latents=torch.randn(4, 2, 2, 2), sigmas=torch.ones(4, 2), lat_entry=torch.tensor([0, 0, 0, 1]),
           lat_style=torch.tensor([0, 1, 2, 1]))
    # odd choices take the variety sets' designs in turn, even ones the set's own
    assert [p.row_for(0, 2, choice=c, variety=True) for c in range(5)] == [(2, True), (0, False), (2, True), (1, False),
                                                                          (2, True)]
    assert {p.row_for(0, 2, choice=c) for c in range(4)} == {(2, True)}  # without variety: the set's own only
    assert [p.row_for(0, 0, choice=c, variety=True) for c in range(4)] == [(0, True), (1, False), (0, True), (1, False)]
    assert p.row_for(1, 2, choice=0, variety=True) == (3, False)  # lacking it: moved in as before
    assert p.is_variety(0, 2) and p.is_variety(1, 2) and not p.is_variety(2, 2)
    assert not p.is_variety(3, 2)  # moved in because style 2 lacks the owl, not for variety
    # a variety design is restyled into the asked style (the analogy shift), not drawn as it is
    z = p.latent_in(0, 2, choice=1, variety=True)
    assert torch.equal(z, p.restyle(p.latents[0].float(), 0, 2))
    cat = Reading(names=["cat"], weights=[1.0], entries=[0])
    zs, rows = p.sample_designs([cat] * 3, [2] * 3, [0, 1, 2], variety=True)
    assert rows == [2, 0, 2] and zs.shape == (3, 2, 2, 2)


def test_the_config_names_the_styles_moved_last():
    from model.latent import LatentConfig

    assert LatentConfig().prior_moved_last == ("openmoji",)
    m = LatentModel(LatentConfig(styles=("google", "twitter"), prior_moved_last=("openmoji",),
                                 prior_variety_from=("twitter", "fluent3d")))
    assert m.prior.moved_last == ()  # a style the model does not have is ignored
    assert m.prior.variety_from == (1,)
    with pytest.raises(ValueError, match="variety_gate"):
        LatentConfig(variety_gate=-0.1)


# --- save / load ---

def test_save_load_round_trip(tiny, tmp_path):
    folder = tiny.save_pretrained(tmp_path / "m", extra_config={"training": {"steps": 3}})
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "encoder.safetensors", "decoder.safetensors", "discriminator.safetensors",
            "prior.safetensors", "latents-google.safetensors", "latents-openmoji.safetensors"} <= names
    m = load_folder(folder)
    assert isinstance(m, LatentModel) and m.prior.names == list(TINY_NAMES)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "emoji-latent-vae"
    z = torch.randn(2, *m.cfg.latent_shape)
    again = load_folder(m.save_pretrained(tmp_path / "m2"))  # fp16 storage: a second trip is exact
    with torch.no_grad():
        assert torch.equal(m.decoder(z, torch.tensor([0, 1])), again.decoder(z, torch.tensor([0, 1])))
    assert torch.equal(m.prior.latents, again.prior.latents)
    # rows come back grouped by style file, each still paired with its entry
    assert sorted(zip(m.prior.lat_entry.tolist(), m.prior.lat_style.tolist())) == \
        sorted(zip(tiny.prior.lat_entry.tolist(), tiny.prior.lat_style.tolist()))
    # the caption table travels as int8 rows with a scale: close, and the readings unchanged
    from safetensors.torch import load_file
    stored = load_file(str(folder / "prior.safetensors"))
    assert stored["cap_emb_q"].dtype == torch.int8 and "cap_emb" not in stored
    assert (m.prior.cap_emb - tiny.prior.cap_emb).abs().max() < 0.01
    q = torch.nn.functional.normalize(tiny.prior.cap_emb + 0.3 * torch.randn_like(tiny.prior.cap_emb), dim=1)
    assert [r.names[0] for r in m.prior.read(q)] == [r.names[0] for r in tiny.prior.read(q)]
    assert stored["query_map"].shape == (384, 384) and torch.equal(m.prior.query_map, tiny.prior.query_map)


def test_a_folder_with_a_float_caption_table_still_loads(tiny, tmp_path):
    from safetensors.torch import load_file, save_file
    folder = tiny.save_pretrained(tmp_path / "m")
    t = load_file(str(folder / "prior.safetensors"))
    from safetensors import safe_open
    with safe_open(str(folder / "prior.safetensors"), "pt") as f:
        meta = f.metadata()
    save_file({"cap_emb": tiny.prior.cap_emb.half(), "cap_entry": t["cap_entry"]}, str(folder / "prior.safetensors"), metadata=meta)
    m = load_folder(folder)  # folders written before the int8 table and the query map (the Hub's copies)
    assert torch.allclose(m.prior.cap_emb, tiny.prior.cap_emb, atol=1e-3)
    assert m.prior.query_map.abs().max() == 0  # no map stored: plain MiniLM
    save_file({**t, "query_map": torch.zeros(16, 16)}, str(folder / "prior.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="query_map is"):
        load_folder(folder)


def test_missing_or_mismatched_prior_files_are_named(tiny, tmp_path):
    folder = tiny.save_pretrained(tmp_path / "m")
    (folder / "latents-openmoji.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="latents-openmoji.safetensors"):
        load_folder(folder)
    cfg = json.loads((folder / "config.json").read_text())
    tiny.save_pretrained(folder)
    cfg["latent_channels"] = 8
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not match"):
        load_folder(folder)


# --- the pipeline on a latent model ---

def test_generate_reads_the_prompt_and_uses_the_calibrated_gate(pipe):
    pipe.model.cfg = LatentConfig(**{**config_dict(pipe.model.cfg), "gate": 0.0, "styles": ("google", "openmoji")})
    g = pipe.text_to_image.generate("rocket", n=2, candidates=4, seed=1)
    assert g.reading.names[0] == "rocket" and g.gate == 0.0
    assert all(s.kept for s in g.images)  # gate 0 keeps everything
    strict = pipe.text_to_image.generate("rocket", n=2, candidates=4, seed=1, gate=1.0)
    assert not any(s.kept for s in strict.images) and strict.gate == 1.0


def test_seed_gives_the_same_image_alone_and_in_a_batch(pipe):
    alone = pipe.text_to_image.generate("red apple", n=1, candidates=1, seed=11, style="google").images[0]
    many = pipe.text_to_image.generate("red apple", n=4, candidates=4, seed=10, style="google").images
    same = [s for s in many if s.seed == 11][0]
    assert np.array_equal(np.asarray(alone.image), np.asarray(same.image))


def test_different_prompts_and_styles_give_different_images(pipe):
    a = pipe.text_to_image.generate("red apple", n=1, seed=0, style="google").images[0].image
    b = pipe.text_to_image.generate("rocket", n=1, seed=0, style="google").images[0].image
    c = pipe.text_to_image.generate("red apple", n=1, seed=0, style="openmoji").images[0].image
    arr = lambda im: np.asarray(im, dtype=np.int16)  # noqa: E731
    assert np.abs(arr(a) - arr(b)).mean() > 1 and np.abs(arr(a) - arr(c)).mean() > 1


def test_read_and_interpolate(pipe):
    assert pipe.text_to_image.read("dog face").names[0] == "dog face"
    frames = pipe.text_to_image.interpolate("red apple", "rocket", steps=5, seed_a=0, style="google", truncation=0.0, upscale=False)
    assert len(frames) == 5 and frames[0].size == (16, 16)
    first = pipe.text_to_image.generate("red apple", n=1, seed=0, style="google", truncation=0.0, upscale=False).images[0].image
    assert np.array_equal(np.asarray(frames[0]), np.asarray(first))  # the first frame is the first end
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames[-1]))


def test_score_works_on_a_latent_model(pipe):
    img = pipe.text_to_image.generate("rocket", n=1, seed=0).images[0].image
    r = pipe.gate.score(img, "rocket", "google")
    assert 0 <= r.realism <= 1 and 0 <= r.match <= 1
    assert r.patch.ndim == 2 and ((r.patch >= 0) & (r.patch <= 1)).all()


# --- latent refinement (semi-amortised inference) ---

def test_refine_latents_fits_the_image_and_leaves_the_decoder_alone(tiny):
    from model.refine import reconstruction, refine_latents

    g = torch.Generator().manual_seed(3)
    style = torch.tensor([0, 1, 0, 1])
    with torch.no_grad():  # images the decoder can draw; the (untrained) encoder's guess misses them
        x = tiny.decoder(torch.randn(4, *tiny.cfg.latent_shape, generator=g), style)
        mu, _ = tiny.encoder(x)
    before = {k: v.clone() for k, v in tiny.decoder.state_dict().items()}
    tiny.decoder.requires_grad_(True)
    z = refine_latents(tiny.decoder, x, style, mu, steps=20, lr=0.1)
    assert z.shape == mu.shape and not z.requires_grad and not torch.equal(z, mu)
    with torch.no_grad():
        err = lambda lat: float(sum(reconstruction(tiny.decoder(lat, style), x).values()))
        assert err(z) < 0.7 * err(mu)  # the encoder's one-shot guess leaves a gap that the steps close
    assert all(torch.equal(v, before[k]) for k, v in tiny.decoder.state_dict().items())
    assert all(p.requires_grad for p in tiny.decoder.parameters())  # given back as it was
    assert refine_latents(tiny.decoder, x, style, mu, steps=0, lr=0.1) is mu
    fast = refine_latents(tiny.decoder, x, style, mu, steps=20, lr=0.1, channels_last=True)
    assert torch.allclose(fast, z, atol=1e-4)  # the export's CPU layout: same latents
    assert all(p.is_contiguous() for p in tiny.decoder.parameters())  # layout given back


def test_encode_image_refines_when_the_model_says_so(pipe):
    from model.refine import reconstruction

    img = pipe.text_to_image.generate("red apple", n=1, seed=0, style="google", truncation=0.0).images[0].image
    plain = pipe.image_tasks.encode_image(img)
    pipe.model.cfg = LatentConfig(**{**config_dict(pipe.model.cfg), "refine_steps": 15})
    fitted = pipe.image_tasks.encode_image(img)
    assert fitted.shape == plain.shape and not torch.allclose(fitted, plain)
    x = image_tensor(pipe.checks.image(img))
    sid = torch.tensor([pipe.model.cfg.styles.index(pipe.image_tasks.read_latent(plain).style)])
    with torch.no_grad():
        assert float(sum(reconstruction(pipe.model.decoder(fitted[None], sid), x).values())) < \
            float(sum(reconstruction(pipe.model.decoder(plain[None], sid), x).values()))
    with pytest.raises(ValueError, match="refine_steps"):
        LatentConfig(**{**TINY_LATENT, "refine_steps": -1})
