"""The image tasks end to end (/interpolate between prompts, /variations, /restyle,
/interpolate_images, /edit): the real app.py served on a TINY model, called through gradio_client;
bad input answered with a clear message, and the app still serving afterwards."""
from __future__ import annotations

import re

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

import app
from model.serving.sheet import sheet_parameters
from app_helpers import CAPTION, assert_alive, disc, interpolate, save, upload  # tests/ is on sys.path


# --- interpolation between prompts ---

def test_interpolate(client):
    frames, gif = interpolate(client, steps=6)
    assert [f["caption"] for f in frames] == [f"{i}/6" for i in range(1, 7)]
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 2 * 6 - 2  # there and back
        assert im.size == (app.DISPLAY_SIZE, app.DISPLAY_SIZE)


def test_interpolate_one_prompt_two_seeds(client):
    frames, _ = interpolate(client, prompt_b="", seed_a=3, seed_b=4, steps=2)
    assert len(frames) == 2


BAD_INTERPOLATE = [
    (dict(steps=1), "steps must be from 2 to 32, got 1"),
    (dict(steps=33), "steps must be from 2 to 32, got 33"),
    (dict(steps=1000), "steps must be from 2 to 32, got 1000"),
    (dict(prompt_a=""), "The first prompt is empty"),
    (dict(prompt_b="é" * 10_000), "The second prompt has 10000 characters; the limit is 300"),
    (dict(prompt_b="", seed_b=0), "Both ends are the same"),
    (dict(seed_b=2**40), "seed must be from 0 to 2147483647"),
]


@pytest.mark.parametrize("kw,message", BAD_INTERPOLATE, ids=[m for _, m in BAD_INTERPOLATE])
def test_interpolate_bad_input(client, kw, message):
    with pytest.raises(AppError, match=re.escape(message)):
        interpolate(client, **kw)
    assert_alive(client)


def test_interpolate_unicode(client):
    frames, _ = interpolate(client, prompt_a="🍎 pomme rouge — 红苹果", prompt_b="😀", steps=3)
    assert len(frames) == 3


# --- the tasks on an uploaded image ---

@pytest.fixture
def emoji_png(tmp_path):
    return save(disc(), tmp_path / "apple.png")


def test_variations_and_restyle(client, emoji_png):
    gallery, summary = client.predict(upload(emoji_png), 3, 4, 1.0, "any", 6, 0.0, True, api_name="/variations")
    assert len(gallery) == 3 and summary.startswith("The image looks like: ")
    seeds = sorted(int(CAPTION.match(g["caption"]).group(2)) for g in gallery)
    assert len(set(seeds)) == 3 and all(4 <= x < 4 + 6 for x in seeds)  # the best 3 of 6 candidates
    with Image.open(gallery[0]["image"]) as im:
        assert im.size == (256, 256)
    meta = sheet_parameters(client.predict(api_name="/sheet_variations"))
    assert meta["task"] == "variations" and sorted(meta["seeds"]) == seeds
    styled, text = client.predict(upload(emoji_png), False, api_name="/restyle")
    assert [CAPTION.match(g["caption"]).group(1) for g in styled] == ["google", "twitter", "fluent3d", "openmoji"]
    assert "Drawn in each of the 4 styles" in text
    meta = sheet_parameters(client.predict(api_name="/sheet_variations"))
    assert meta["task"] == "restyle" and meta["styles"] == ["google", "twitter", "fluent3d", "openmoji"]


def test_interpolate_images_and_edit(client, emoji_png, tmp_path):
    other = save(disc(bg=(0, 0, 255, 255)), tmp_path / "blue.png")
    frames, gif = client.predict(upload(emoji_png), upload(other), 5, "google", True, api_name="/interpolate_images")
    assert [f["caption"] for f in frames] == [f"{i}/5" for i in range(1, 6)]
    with Image.open(gif) as im:
        assert im.n_frames == 2 * 5 - 2
    frames, gif, text = client.predict(upload(emoji_png), "rocket", "", 1.0, 4, "any", False, api_name="/edit")
    assert [f["caption"] for f in frames] == ["strength 0.00", "strength 0.33", "strength 0.67", "strength 1.00"]
    assert 'toward "rocket"' in text and text.startswith("The image looks like: ")


@pytest.mark.parametrize("endpoint, args, message", [
    ("/variations", (None, 4, 0, 1.0, "any", 8, 0.5, True), "Upload an image first"),
    ("/variations", ("IMG", 4, 0, 7.0, "any", 8, 0.5, True), "strength must be from 0 to 2.0, got 7.0"),
    ("/restyle", (None, True), "Upload an image first"),
    ("/interpolate_images", ("IMG", None, 4, "any", True), "Upload the second image first"),
    ("/edit", ("IMG", "", "", 1.0, 4, "any", True), "The edit prompt is empty"),
    ("/edit", ("IMG", "rocket", "", 1.0, 4, "cubism", True), "Unknown style 'cubism'"),
])
def test_image_features_bad_input(client, emoji_png, endpoint, args, message):
    args = [upload(emoji_png) if a == "IMG" else a for a in args]
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(*args, api_name=endpoint)
    assert_alive(client)
