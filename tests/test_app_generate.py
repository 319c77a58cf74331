"""/generate end to end: the real app.py served on a TINY model, called through gradio_client;
bad input answered with a clear message, and the app still serving afterwards."""
from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

import app
from model.serving import events
from model.serving.sheet import sheet_parameters
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
        # each file (written two at a time) is the captioned image's, named for its download
        assert Path(item["image"]).name == f"red-apple-{m.group(1)}-seed{m.group(2)}.png"
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
    gallery, _ = generate(client, n=2, candidates=2, seed=9, upscale=False)
    with Image.open(gallery[0]["image"]) as im:  # raw 16-px images are shown enlarged by nearest neighbour
        assert im.size == (app.DISPLAY_SIZE, app.DISPLAY_SIZE)
    sheet = client.predict(api_name="/sheet")  # built now, of this session's last result
    meta = sheet_parameters(sheet)
    with Image.open(sheet) as im:
        assert im.size == (2 * 256, 256 + 22)
    assert meta["prompt"] == "red apple" and meta["upscale"] is False and sorted(meta["seeds"]) == [9, 10]
    assert meta["styles"] == [CAPTION.match(g["caption"]).group(1) for g in gallery]
    assert json.loads(Image.open(sheet).text["seeds"]) == meta["seeds"]


def test_generate_builds_no_sheet(client, server):
    """/generate answers the gallery and the summary; the sheet is built only when asked for (it
    cost a tenth of a default call), so a call writes its gallery files and nothing else."""
    from model.serving.files import output_dir

    returns = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["returns"]
    assert [r["component"] for r in returns] == ["Gallery", "Markdown"]
    sheets = lambda: set(output_dir().glob("png-*/*-sheet.png"))  # noqa: E731
    before = sheets()
    gallery, _ = generate(client, prompt="rocket", n=3, candidates=3)
    assert len(gallery) == 3 and not sheets() - before
    sheet = client.predict(api_name="/sheet")
    assert Path(sheet).name == "rocket-sheet.png" and len(sheets() - before) == 1


def test_kept_results_stay_within_their_budget():
    """What the sheet button needs is kept in memory under a bound, the least recently used first."""
    from model.serving.sheet import KeptResults, SheetSource

    img = Image.new("RGB", (16, 16))
    source = lambda n: SheetSource("x", (img,) * n, ("caption",) * n, {})  # noqa: E731
    kept = KeptResults(max_bytes=3 * 16 * 16 * 3)
    keys = [kept.put(source(1)) for _ in range(3)]
    assert all(kept.get(k) for k in keys) and kept.nbytes == 3 * 768 and len(set(keys)) == 3
    kept.get(keys[0])  # used again: the second is now the least recently used
    new = kept.put(source(1))
    assert kept.get(keys[1]) is None and kept.get(keys[0]) and kept.get(new) and kept.nbytes <= kept.max_bytes
    big = kept.put(source(5))  # a result over the whole budget is still kept, alone
    assert len(kept) == 1 and kept.get(big) and kept.nbytes == 5 * 768
    assert kept.get(None) is None and kept.get(["x"]) is None and kept.get("a guess") is None
    with pytest.raises(gr.Error, match="no longer kept"):
        events.sheet_of("a key of a result that was dropped")
    with pytest.raises(gr.Error, match="Nothing to put on a sheet yet"):
        events.sheet_of(None)


def test_a_sheet_is_of_the_sessions_own_last_result(server):
    """Each session (a browser tab, a gradio_client Client) gets the sheet of the result it was
    shown last; a session with none gets a message."""
    def session():
        return Client(server.url, verbose=False, download_files=str(server.cache.parent / "downloads"))

    a, b = session(), session()
    generate(a, prompt="red apple", n=2, candidates=2, seed=3)
    generate(b, prompt="rocket", n=1, candidates=1, seed=7)
    meta_a = sheet_parameters(a.predict(api_name="/sheet"))
    meta_b = sheet_parameters(b.predict(api_name="/sheet"))
    assert (meta_a["prompt"], sorted(meta_a["seeds"])) == ("red apple", [3, 4])
    assert (meta_b["prompt"], meta_b["seeds"]) == ("rocket", [7])
    with pytest.raises(AppError, match="Nothing to put on a sheet yet"):
        session().predict(api_name="/sheet")
    with pytest.raises(AppError, match="Nothing to put on a sheet yet"):
        a.predict(api_name="/sheet_variations")  # the variations tab has its own


def test_caption_puts_seed_and_style_back():
    assert events.controls_from_caption("openmoji · seed 12 · realism 0.50 · match 0.40") == ("openmoji", 12, False)
    from model.outputs import Scored

    moved = events.caption(Scored(None, 5, 0.5, 0.4, True, "fluent3d", redrawn_from="twitter"))
    assert moved.endswith("twitter's design")  # says whose design was moved into fluent3d
    assert events.controls_from_caption(moved) == ("fluent3d", 5, False)  # and still puts the seed back
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
    (dict(other_designs="maybe"), "other designs must be true or false"),
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


def test_other_designs_in_a_named_style_through_the_api(client):
    gallery, _ = generate(client, prompt="rocket", style="fluent3d", n=4, other_designs=True, gate=0.0)
    captions = [g["caption"] for g in gallery]
    assert len(captions) == 4 and all(c.startswith("fluent3d · seed ") for c in captions)
    assert all(c.endswith(("google's design", "twitter's design")) or "design" not in c for c in captions)


def test_the_status_line_says_how_a_composed_prompt_was_drawn():
    from model.compose import Plan
    from model.outputs import Generation

    def line(plan):
        return events.summary(Generation(images=[], candidates=8, discarded=0, gate=0.3, plan=plan)).split("\n")[0]

    assert line(Plan("banana", colour="purple")) == "Drawn as banana, made purple.  "
    assert line(Plan("apple", colour="blue", reads="blue apple")) == "Drawn as apple, made blue.  "
    assert line(Plan("cat face", "sunglasses", "eyes")) == "Drawn from its parts: cat face + sunglasses (on its eyes).  "
