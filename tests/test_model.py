"""The discriminator and the Pipeline on a tiny latent model (16x16 images, the shipped kind), on CPU, in seconds."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import TINY_NAMES
from PIL import Image

from model.discriminator import Discriminator
from model.hub import ModelInfo, load_folder
from model.latent import TINY_LATENT, LatentConfig
from model.outputs import Scored, round_robin
from model.paths import ROOT
from model.pipeline import Pipeline

CFG = LatentConfig(**TINY_LATENT)  # the default styles, as tiny_model_dir
B = 3


class NoEncoder:
    """Stands in for MiniLM: a test that reaches the real encoder should say so, not load it silently."""

    def __call__(self, texts):
        raise AssertionError(f"MiniLM was asked to embed {texts!r}: prefill with pipe.stages.set_embedding")


def prefill(pipe: Pipeline, *prompts: str) -> None:
    """A known emoji name embeds to its caption vector; any other prompt (and each part the composer
    splits it into) to a random unit vector (fixed per prompt)."""
    from model.compose import parse

    prior = pipe.model.prior
    plans = [parse(pipe.checks.prompt(p)) for p in prompts]
    prompts = (*prompts, *(part for plan in plans if plan is not None for part in plan.parts))
    for i, p in enumerate(prompts):
        g = torch.Generator().manual_seed(1000 + i)
        e = (prior.cap_emb[prior.names.index(p)] if p in prior.names
             else torch.nn.functional.normalize(torch.randn(CFG.text_dim, generator=g), dim=0))
        pipe.stages.set_embedding(pipe.checks.prompt(p), e)


PROMPTS = (*TINY_NAMES[:2], "🍎 pomme rouge", "日本語のりんご", "zero\u200bwidth  and\ttabs", "שלום עולם")


@pytest.fixture
def pipe(tiny_model_dir):
    model = load_folder(tiny_model_dir).requires_grad_(False)
    assert model.cfg == CFG
    p = Pipeline(model=model, info=ModelInfo("tiny", None, tiny_model_dir, "local"), device=torch.device("cpu"),
                 encoder=NoEncoder())
    prefill(p, *PROMPTS)
    return p


def arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)


# --- networks ---

def test_discriminator_outputs(tiny_model_factory):
    d: Discriminator = tiny_model_factory(seed=0, styles=CFG.styles).discriminator
    x = torch.rand(B, 3, CFG.image_size, CFG.image_size) * 2 - 1
    e = torch.nn.functional.normalize(torch.randn(B, CFG.text_dim), dim=1)
    with torch.no_grad():
        realism, match, patch = d(x, e, torch.tensor([0, 1, CFG.num_styles]))
        realism2, no_match, patch2 = d(x)
        _, match_any, _ = d(x, e)  # style None means "any"
    assert realism.shape == (B,) and match.shape == (B,)
    assert patch.shape == (B, 1, 8, 8)  # the 8x8 feature map, before the last down block
    assert no_match is None and torch.equal(realism, realism2) and torch.equal(patch, patch2)
    assert match_any.shape == (B,) and not torch.allclose(match_any, match), "style does not reach the match head"
    assert all(torch.isfinite(t).all() for t in (realism, match, patch))


# --- pipeline ---

def test_different_prompts_give_different_images(pipe):
    a = pipe.text_to_image.generate("red apple", n=1, seed=0).images[0].image
    b = pipe.text_to_image.generate("rocket", n=1, seed=0).images[0].image
    assert a.size == (256, 256) and a.mode == "RGB"  # through the super-resolution stage by default
    assert np.abs(arr(a) - arr(b)).mean() > 1, "the prompt does not change the image"
    raw = pipe.text_to_image.generate("red apple", n=1, seed=0, upscale=False).images[0].image
    assert raw.size == (CFG.image_size, CFG.image_size)
    # the 256-px image is the 64-px one enlarged (bicubic here: this pipeline has no upsampler)
    raw_b = pipe.text_to_image.generate("rocket", n=1, seed=0, upscale=False).images[0].image
    down = arr(a.resize(raw.size, Image.BOX))
    assert np.abs(down - arr(raw)).mean() < 0.5 * np.abs(down - arr(raw_b)).mean()


def test_seed_gives_the_same_image_alone_and_in_a_batch(pipe):
    alone = pipe.text_to_image.generate("red apple", n=1, seed=4).images[0]
    batch = pipe.text_to_image.generate("red apple", n=4, seed=3).images
    assert sorted(s.seed for s in batch) == [3, 4, 5, 6]
    in_batch = next(s for s in batch if s.seed == 4)
    assert alone.seed == 4 and np.array_equal(arr(alone.image), arr(in_batch.image))
    assert (alone.realism, alone.match) == pytest.approx((in_batch.realism, in_batch.match), abs=1e-5)
    others = [s for s in batch if s.seed != 4]
    assert all(not np.array_equal(arr(alone.image), arr(s.image)) for s in others), "seeds give equal images"


def test_generation_scores_and_gate(pipe):
    gen = pipe.text_to_image.generate("red apple", n=2, seed=0, candidates=6, gate=0.0)
    assert (gen.candidates, gen.discarded, len(gen.images)) == (3, 0, 2)  # every one passes: the first half is enough
    assert all(0 <= s.realism <= 1 and 0 <= s.match <= 1 and s.kept for s in gen.images)
    strict = pipe.text_to_image.generate("red apple", n=2, seed=0, candidates=6, gate=1.0)
    assert strict.discarded == 6 and [s.kept for s in strict.images] == [False, False]
    assert pipe.text_to_image.generate("red apple", n=2, seed=0, candidates=6, gate=1.0, fill=False).images == []


@pytest.mark.parametrize("prompt", PROMPTS[2:])
def test_unicode_prompts_work(pipe, prompt):
    gen = pipe.text_to_image.generate(prompt, n=2, seed=1, upscale=False)
    assert len(gen.images) == 2 and all(s.image.size == (CFG.image_size,) * 2 for s in gen.images)
    assert pipe.gate.score(gen.images[0].image, prompt=prompt).match is not None


@pytest.mark.parametrize("call, message", [
    (lambda p: p.text_to_image.generate(""), "prompt is empty"),
    (lambda p: p.text_to_image.generate(" \n\t "), "prompt is empty"),
    (lambda p: p.text_to_image.generate(None), "prompt is empty"),
    (lambda p: p.text_to_image.generate("x" * 10_000), "10000 characters; the limit is 300"),
    (lambda p: p.text_to_image.generate("red apple", n=0), "number of images must be from 1 to 16, got 0"),
    (lambda p: p.text_to_image.generate("red apple", n=1000), "number of images must be from 1 to 16, got 1000"),
    (lambda p: p.text_to_image.generate("red apple", n=2.5), "number of images must be a whole number"),
    (lambda p: p.text_to_image.generate("red apple", n=True), "number of images must be a whole number"),
    (lambda p: p.text_to_image.generate("red apple", n=4, candidates=2), "candidates must be from 4 to 64"),
    (lambda p: p.text_to_image.generate("red apple", seed="abc"), "seed must be a whole number"),
    (lambda p: p.text_to_image.generate("red apple", seed=2**40), "seed must be from 0 to"),
    (lambda p: p.text_to_image.generate("red apple", style="cubism"), "Unknown style 'cubism'; choose one of any, google"),
    (lambda p: p.text_to_image.generate("red apple", truncation=-0.5), "diversity must be from 0 to 2.0, got -0.5"),
    (lambda p: p.text_to_image.generate("red apple", truncation=float("nan")), "diversity must be a number, got NaN"),
    (lambda p: p.text_to_image.generate("red apple", truncation="lots"), "diversity must be a number"),
    (lambda p: p.text_to_image.generate("red apple", gate=1.5), "gate must be from 0 to 1"),
    (lambda p: p.text_to_image.interpolate("red apple", "rocket", steps=1), "steps must be from 2 to 32, got 1"),
    (lambda p: p.text_to_image.interpolate("red apple", "rocket", steps=1000), "steps must be from 2 to 32, got 1000"),
    (lambda p: p.text_to_image.interpolate("red apple", "", seed_a=1), "Both ends are the same"),
    (lambda p: p.text_to_image.interpolate("", "rocket"), "first prompt is empty"),
    (lambda p: p.gate.score(Image.new("RGB", (4, 4)), prompt="y" * 10_000), "prompt has 10000 characters"),
])
def test_pipeline_bounds_give_clear_errors(pipe, call, message):
    with pytest.raises(ValueError, match=message):
        call(pipe)


def test_style_and_number_inputs_from_the_ui_are_accepted(pipe):
    assert len(pipe.text_to_image.generate("red apple", n="3", seed=5.0, style=" Google ").images) == 3
    assert pipe.checks.styles == ["any", *CFG.styles]
    assert pipe.text_to_image.generate("red apple", n=1, seed=-1).images[0].seed >= 0  # -1: a random seed


def test_interpolation_frames(pipe):
    frames = pipe.text_to_image.interpolate("red apple", "rocket", steps=5, seed_a=1, seed_b=2, upscale=False)
    assert len(frames) == 5 and all(f.size == (CFG.image_size,) * 2 for f in frames)
    assert not np.array_equal(arr(frames[0]), arr(frames[-1]))
    same_seed = pipe.text_to_image.interpolate("red apple", "rocket", steps=3, seed_a=7)
    assert not np.array_equal(arr(same_seed[0]), arr(same_seed[-1]))


def _rgba_transparent(size=(20, 10)):
    return Image.new("RGBA", size, (255, 0, 0, 0))


@pytest.mark.parametrize("make", [
    pytest.param(lambda tmp: _rgba_transparent(), id="RGBA"),
    pytest.param(lambda tmp: Image.new("L", (12, 12), 128), id="grayscale"),
    pytest.param(lambda tmp: Image.new("LA", (12, 12), (0, 255)), id="grayscale+alpha"),
    pytest.param(lambda tmp: Image.new("P", (12, 12)), id="palette"),
    pytest.param(lambda tmp: Image.new("RGB", (1, 1), (0, 255, 0)), id="1x1"),
    pytest.param(lambda tmp: Image.new("RGB", (4000, 4000), (10, 20, 30)), id="4000x4000"),
    pytest.param(lambda tmp: np.zeros((9, 7, 3), np.uint8), id="array"),
    pytest.param(lambda tmp: (Image.new("RGB", (30, 30), "blue").save(tmp / "a.png"), tmp / "a.png")[1], id="path"),
])
def test_score_accepts_odd_images(pipe, tmp_path, make):
    r = pipe.gate.score(make(tmp_path))
    assert 0 <= r.realism <= 1 and r.match is None
    assert r.patch.shape == (8, 8) and 0 <= r.patch.min() <= r.patch.max() <= 1
    assert r.image.size == (CFG.image_size,) * 2 and r.image.mode == "RGB"
    assert r.heatmap.mode == "RGB" and r.heatmap.size == (256, 256)


def test_score_composites_alpha_on_white_and_pads_to_square(pipe):
    assert (np.asarray(pipe.gate.score(_rgba_transparent()).image) == 255).all()
    wide = np.asarray(pipe.gate.score(Image.new("RGB", (40, 10), (0, 0, 0))).image)
    assert (wide[0] == 255).all() and (wide[CFG.image_size // 2] < 50).all()  # white bars above/below


def test_score_with_prompt_and_style(pipe):
    img = pipe.text_to_image.generate("red apple", n=1, seed=0).images[0].image
    r = pipe.gate.score(img, prompt="red apple", style="twitter")
    assert r.match is not None and 0 <= r.match <= 1
    assert r.match != pipe.gate.score(img, prompt="rocket", style="twitter").match


@pytest.mark.parametrize("bad", ["text", "missing", "none", "empty-array"])
def test_score_rejects_non_images_clearly(pipe, tmp_path, bad):
    path = tmp_path / "notes.txt"
    path.write_text("this is not an image\n" * 10)
    image = {"text": path, "missing": tmp_path / "gone.png", "none": None,
             "empty-array": np.zeros((0, 5, 3), np.uint8)}[bad]
    with pytest.raises(ValueError, match=r"not an image|upload an image|Expected an image array"):
        pipe.gate.score(image)


def test_score_refuses_oversized_upload_before_decoding(pipe, tmp_path):
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    pipe.checks.limits = dataclasses.replace(pipe.checks.limits, max_upload_pixels=50_000)
    with pytest.raises(ValueError, match="300x300"):
        pipe.gate.score(tmp_path / "big.png")


# --- bugs found and fixed: zero diversity, float / odd-channel arrays, wrong argument types ---

def test_interpolate_with_zero_diversity(pipe):
    frames = pipe.text_to_image.interpolate("red apple", "rocket", steps=3, truncation=0.0)
    assert np.asarray(frames[0]).std() > 0 or np.asarray(frames[0]).mean() > 0


def test_score_float_array_in_unit_range(pipe):
    r = pipe.gate.score(np.full((8, 8, 3), 0.8, np.float32))
    assert np.asarray(r.image).mean() > 150


def test_score_odd_channel_arrays_give_value_error(pipe):
    with pytest.raises(ValueError):
        pipe.gate.score(np.zeros((8, 8, 5), np.uint8))


def test_wrong_types_give_clear_messages(pipe):
    assert pipe.text_to_image.generate("red apple", gate=None).gate == CFG.gate  # None: the model's calibrated default
    for call in (lambda: pipe.text_to_image.generate("red apple", gate=[1]), lambda: pipe.text_to_image.generate("red apple", gate="x"),
                 lambda: pipe.text_to_image.generate("red apple", style=3), lambda: pipe.gate.score(Image.new("RGB", (4, 4)), prompt=5)):
        with pytest.raises(ValueError, match="gate|style|prompt"):
            call()


# --- the real sentence encoder (MiniLM, ~2 s) ---

def test_sentence_encoder_minilm():
    from model.text_encoder import SentenceEncoder

    enc = SentenceEncoder()
    e = enc(["red apple", "green apple", "rocket", "🚀 ракета"])
    assert e.shape == (4, 384) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.1, f"red apple~green apple {sim[0, 1]:.3f} vs rocket {sim[0, 2]:.3f}"
    assert torch.allclose(enc(["red apple"])[0], e[0], atol=1e-5), "embedding depends on batch mates (padding)"


def test_any_style_draws_a_named_style_per_seed(pipe):
    """'any': seed k is drawn in named style k mod num_styles, the same image as asking for that style."""
    k = len(CFG.styles)
    gen = pipe.text_to_image.generate("red apple", n=k, seed=8, style="any", candidates=k, gate=0.0)
    by_seed = {s.seed: s for s in gen.images}
    assert {s.style for s in gen.images} == set(CFG.styles)
    for seed, s in by_seed.items():
        assert s.style == CFG.styles[seed % k]
        named = pipe.text_to_image.generate("red apple", n=1, seed=seed, style=s.style).images[0]
        assert named.style == s.style and np.array_equal(arr(named.image), arr(s.image))
    frames = pipe.text_to_image.interpolate("red apple", "rocket", steps=2, seed_a=9, style="any")
    named = pipe.text_to_image.interpolate("red apple", "rocket", steps=2, seed_a=9, style=CFG.styles[9 % k])
    assert all(np.array_equal(arr(a), arr(b)) for a, b in zip(frames, named))


def test_any_style_shows_the_styles_in_turns(pipe):
    """With 'any', the best image of each style comes before a second image of any style."""
    k = len(CFG.styles)
    gen = pipe.text_to_image.generate("rocket", n=k, seed=0, style="any", candidates=4 * k, gate=0.0)
    assert sorted(s.style for s in gen.images) == sorted(CFG.styles)
    one = pipe.text_to_image.generate("rocket", n=k, seed=0, style=CFG.styles[0], candidates=4 * k, gate=0.0)
    assert {s.style for s in one.images} == {CFG.styles[0]}
    ranked = [Scored(None, i, r, 1.0, True, st) for i, (r, st) in enumerate(
        [(0.9, "a"), (0.8, "a"), (0.7, "b"), (0.6, "a"), (0.5, "c")])]
    assert [s.seed for s in round_robin(ranked)] == [0, 2, 4, 1, 3]


# --- bad input that once cost memory, crashed or misread (issue 17) ---

@pytest.mark.parametrize("bad, message", [
    ("red \ud800 apple", "lone surrogate"), ("\u200b\u200b", "is empty"), (["red apple"], "must be text"),
    (5, "must be text")])
def test_odd_prompts_get_clear_messages(pipe, bad, message):
    with pytest.raises(ValueError, match=message):
        pipe.text_to_image.generate(bad)


def test_sixteen_bit_grey_is_scaled_not_clipped(pipe, tmp_path):
    grey16 = Image.fromarray(np.full((32, 32), 20000, dtype=np.uint16))  # mode I;16: a mid grey
    grey16.save(tmp_path / "g16.png")
    grey8 = Image.fromarray(np.full((32, 32), round(20000 / 257), dtype=np.uint8))
    a = np.asarray(pipe.checks.image(str(tmp_path / "g16.png")), dtype=np.int16)
    b = np.asarray(pipe.checks.image(grey8), dtype=np.int16)
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert np.abs(a - b).max() <= 1 and 70 < a.mean() < 85  # not the white square of a clipping convert


def test_a_long_thin_upload_is_shrunk_before_it_is_padded(pipe, tmp_path):
    """A 16000x100 PNG (a few KB) once became a 16000x16000 canvas (~1 GB). Peak memory of the
    whole preparation, measured in a fresh process, must stay small."""
    import subprocess
    import sys

    Image.new("RGB", (16000, 100), (200, 30, 30)).save(tmp_path / "strip.png")
    code = f"""
import resource
from PIL import Image
from model.checks import Checks
from model.outputs import Limits
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
img = Checks(("google",), Limits(), 64).image({str(tmp_path / 'strip.png')!r})
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(img.size, (after - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    size, grown_mib = out.stdout.split(")")[0] + ")", int(out.stdout.split(")")[1])
    assert size == "(64, 64)" and grown_mib < 150, out.stdout


def test_training_reader_and_app_see_the_same_square(pipe, tmp_path):
    """One "square RGB on white": a non-square transparent upload is padded (not stretched) the
    same way by the training reader (model.dataset) and the app (Checks.image)."""
    from model.dataset import load_rgb

    im = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    im.paste((200, 20, 20, 255), (0, 0, 40, 20))
    im.save(tmp_path / "wide.png")
    train = load_rgb(tmp_path / "wide.png", CFG.image_size)
    app_img = np.asarray(pipe.checks.image(tmp_path / "wide.png"))
    assert np.array_equal(train, app_img)
    assert (train[0] > 240).all() and (train[-1] > 240).all()  # padded top and bottom rows are white
    assert train[CFG.image_size // 2, CFG.image_size // 2, 0] > 150  # the red band in the middle
