"""/generate end to end: the real app.py served on a TINY model, called through gradio_client;
bad input answered with a clear message, and the app still serving afterwards."""
from __future__ import annotations

import json
import re

import gradio as gr
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

import app
from model.serving import events
from app_helpers import CAPTION, assert_alive, generate  # tests/ is on sys.path (rootdir conftest)


# --- good input ---

def test_generate(client, server):
    gallery, summary = generate(client, n=4, candidates=8, seed=123)
    assert len(gallery) == 4
    for item in gallery:
        m = CAPTION.match(item["caption"])
        assert m, item["caption"]
        assert 123 <= int(m.group(2)) < 123 + 8  # seeds come from seed..seed+candidates-1
        assert m.group(1) in ("google", "twitter", "fluent3d", "openmoji")  # "any" names the style drawn
        with Image.open(item["image"]) as im:
            assert im.size == (app.DISPLAY_SIZE, app.DISPLAY_SIZE)
    assert re.match(r"Read the prompt as: .+\.  \nDrew 8 candidates; \d+ judged fake \(realism < 0\.50\) and discarded\.",
                    summary), summary
    again, _ = generate(client, n=4, candidates=8, seed=123)
    assert [g["caption"] for g in again] == [g["caption"] for g in gallery]  # a seed reproduces
    assert Image.open(again[0]["image"]).tobytes() == Image.open(gallery[0]["image"]).tobytes()


def test_generate_gate_discards_and_fills(client):
    _, summary = generate(client, n=2, candidates=6, gate=1.0)  # nothing is P(real) >= 1
    assert "6 judged fake" in summary and "best of the discarded" in summary
    gallery, summary = generate(client, n=2, candidates=6, gate=0.0)  # everything passes
    assert "0 judged fake" in summary and all("below" not in g["caption"] for g in gallery)


@pytest.mark.parametrize("seed", [-1, None])
def test_generate_random_seed(client, seed):
    kw = dict(seed=0, random_seed=True) if seed is None else dict(seed=seed)
    seeds = {CAPTION.match(generate(client, n=1, candidates=1, **kw)[0][0]["caption"]).group(2) for _ in range(3)}
    assert len(seeds) > 1


@pytest.mark.parametrize("style", ["google", "openmoji"])
def test_generate_styles(client, style):
    gallery = generate(client, style=style)[0]
    assert len(gallery) == 4 and all(CAPTION.match(g["caption"]).group(1) == style for g in gallery)


def test_generate_raw_64_and_the_sheet(client):
    gallery, _, sheet = generate(client, sheet=True, n=2, candidates=2, seed=9, upscale=False)
    with Image.open(gallery[0]["image"]) as im:  # raw 16-px images are shown enlarged by nearest neighbour
        assert im.size == (app.DISPLAY_SIZE, app.DISPLAY_SIZE)
    with Image.open(sheet) as im:
        meta = json.loads(im.text["parameters"])
        assert im.size == (2 * 256, 256 + 22)
    assert meta["prompt"] == "red apple" and meta["upscale"] is False and sorted(meta["seeds"]) == [9, 10]
    assert meta["styles"] == [CAPTION.match(g["caption"]).group(1) for g in gallery]
    assert json.loads(Image.open(sheet).text["seeds"]) == meta["seeds"]


def test_caption_puts_seed_and_style_back():
    assert events.controls_from_caption("openmoji · seed 12 · realism 0.50 · match 0.40") == ("openmoji", 12, False)
    with pytest.raises(gr.Error, match="no seed to reuse"):
        events.controls_from_caption("3/8")


# --- bad input: a clear message, and the app keeps serving ---

BAD_GENERATE = [
    (dict(prompt=""), "The prompt is empty"),
    (dict(prompt="   \n\t "), "The prompt is empty"),
    (dict(prompt="apple " * 1667), "characters; the limit is 300"),  # 10,002 characters
    (dict(n=0), "number of images must be from 1 to 16, got 0"),
    (dict(n=17, candidates=17), "number of images must be from 1 to 16, got 17"),
    (dict(n=2.5), "number of images must be a whole number from 1 to 16, got 2.5"),
    (dict(n=8, candidates=4), "candidates must be from 8 to 64, got 4"),
    (dict(candidates=65), "candidates must be from 4 to 64, got 65"),
    (dict(seed=2**31), "seed must be from 0 to 2147483647"),
    (dict(seed="abc"), "seed must be a whole number"),
    (dict(diversity=2.5), "diversity must be from 0 to 2.0"),
    (dict(diversity="lots"), "diversity must be a number"),
    (dict(style="comic"), "Unknown style 'comic'; choose one of any, google"),
    (dict(gate=1.5), "gate must be from 0 to 1"),
]


@pytest.mark.parametrize("kw,message", BAD_GENERATE, ids=[m for _, m in BAD_GENERATE])
def test_generate_bad_input(client, kw, message):
    with pytest.raises(AppError, match=re.escape(message)):
        generate(client, **kw)
    assert_alive(client)


@pytest.mark.parametrize("prompt", ["🍎 pomme rouge — 红苹果", "ñandú 🐦‍⬛ \u200b\u202eright-to-left", "tab\there\nnewline",
                                    "x" * 300, "<script>alert(1)</script> & \"quotes\"", "\x00\x01 control"])
def test_generate_any_unicode(client, prompt):
    gallery, _ = generate(client, prompt=prompt, n=2, candidates=2)
    assert len(gallery) == 2
