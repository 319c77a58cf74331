"""The web app end to end: the real app.py served on a TINY model, every api_name called through
gradio_client, bad input answered with a clear message, and the app still serving afterwards."""
from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

import app
from model.serving import events
from model.serving.api import GENERATE_PARAMS, generate_args
from helpers import free_port  # tests/ is on sys.path (rootdir conftest)

ROOT = Path(__file__).resolve().parent.parent
GEN = dict(prompt="red apple", style="any", n=4, seed=0, random_seed=False, diversity=1.0, candidates=8, gate=0.5,
           upscale=True)
CAPTION = re.compile(r"^(\w+) · seed (\d+) · realism [01]\.\d\d · match [01]\.\d\d( · below the gate)?$")


# --- the running app (the `server` fixture is in conftest.py, shared with the browser tests) ---

@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False, download_files=str(server.cache.parent / "downloads"))


def generate(client, **kw):
    """-> (gallery, summary); the sheet of the result: client.predict(api_name="/sheet")."""
    a = {**GEN, **kw}
    return client.predict(*generate_args(a.pop("prompt"), **a), api_name="/generate")


def interpolate(client, prompt_a="grinning face", prompt_b="red heart", seed_a=0, seed_b=1, steps=5,
                style="any", diversity=1.0):
    return client.predict(prompt_a, prompt_b, seed_a, seed_b, steps, style, diversity, api_name="/interpolate")


def score(client, path, prompt="", style="any"):
    return client.predict(handle_file(str(path)), prompt, style, api_name="/score")


def assert_alive(client):
    gallery, _ = generate(client, n=1, candidates=1)
    assert len(gallery) == 1


# --- images to upload ---

def save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


def disc(mode="RGBA", size=(64, 64), bg=(0, 0, 0, 0)) -> Image.Image:
    im = Image.new("RGBA", size, bg)
    w, h = size
    ImageDraw.Draw(im).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=(220, 30, 30, 255))
    return im if mode == "RGBA" else im.convert(mode)


def png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A valid 1x1 PNG whose header claims width x height (a decompression bomb's header)."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR data starts at byte 16
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # CRC of 'IHDR' + its 13 bytes
    path.write_bytes(bytes(data))
    return path


# --- the three api_names, good input ---

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


def test_interpolate(client):
    frames, gif = interpolate(client, steps=6)
    assert [f["caption"] for f in frames] == [f"{i}/6" for i in range(1, 7)]
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 2 * 6 - 2  # there and back
        assert im.size == (app.DISPLAY_SIZE, app.DISPLAY_SIZE)


def test_interpolate_one_prompt_two_seeds(client):
    frames, _ = interpolate(client, prompt_b="", seed_a=3, seed_b=4, steps=2)
    assert len(frames) == 2


def test_score(client, server, tmp_path):
    realism, match, heatmap, verdict = score(client, save(disc(), tmp_path / "apple.png"), prompt="red apple")
    assert 0 <= realism <= 1 and 0 <= match <= 1
    assert re.match(r"Judged \*\*(real|fake)\*\*: P\(real\) = [01]\.\d{3}, (at or above|below) the gate [01]\.\d\d "
                    r"that decides which generated images are shown; matches the prompt", verdict)
    gate = server.pipeline.default_gate  # the verdict is the generation gate's, not a fixed 0.5
    assert ("**real**" in verdict) == (realism >= gate) and f"the gate {gate:.2f}" in verdict
    assert "Patch map: red where" in verdict
    with Image.open(heatmap) as im:
        assert im.size == (256, 256)
    realism2, match2, _, verdict2 = score(client, tmp_path / "apple.png")  # no prompt: no match score
    assert realism2 == pytest.approx(realism) and match2 is None and "give a prompt" in verdict2


def test_score_api_returns_plain_numbers(client):
    """The page shows the score boxes only once they hold a score (a private step after /score);
    API callers still get two numbers (match None without a prompt), and see no extra endpoint."""
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    returns = api["/score"]["returns"]
    assert [r["component"] for r in returns] == ["Number", "Number", "Image", "Markdown"]
    assert [r["python_type"]["type"] for r in returns[:2]] == ["float", "float"]
    assert "/show_scores" not in api


def test_examples_are_cached(server):
    assert list(server.cache.rglob("log.csv")), "gr.Examples wrote no cache"
    assert len(app.read_examples()) >= 6


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


def bad_upload(tmp_path: Path, kind: str) -> Path:
    if kind == "text renamed .png":
        p = tmp_path / "notes.png"
        p.write_text("this is not an image\n" * 50)
    elif kind == "empty file":
        p = tmp_path / "empty.png"
        p.write_bytes(b"")
    elif kind == "truncated PNG":
        buf = io.BytesIO()
        disc(size=(128, 128)).save(buf, format="PNG")
        p = tmp_path / "truncated.png"
        p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    else:  # a header that claims 8000 x 8000 = 64 megapixels
        p = png_claiming_size(tmp_path / "bomb.png", 8000, 8000)
    return p


BAD_UPLOADS = [("text renamed .png", "notes.png is not an image this app can read"),
               ("empty file", "empty.png is not an image this app can read"),
               ("truncated PNG", "truncated.png is not an image this app can read"),
               ("64 MP header", "The image is 8000x8000; the limit is 16.8 megapixels")]


@pytest.mark.parametrize("kind,message", BAD_UPLOADS, ids=[k for k, _ in BAD_UPLOADS])
def test_score_bad_upload(client, tmp_path, kind, message):
    with pytest.raises(AppError, match=re.escape(message)):
        score(client, bad_upload(tmp_path, kind))
    assert_alive(client)


def test_score_bad_prompt_and_style(client, tmp_path):
    path = save(disc(), tmp_path / "ok.png")
    with pytest.raises(AppError, match="characters; the limit is 300"):
        score(client, path, prompt="a" * 10_000)
    with pytest.raises(AppError, match="Unknown style 'pixel'"):
        score(client, path, style="pixel")
    realism, match, _, _ = score(client, path, prompt="🍎 pomme rouge — 红苹果")
    assert 0 <= realism <= 1 and 0 <= match <= 1


GOOD_UPLOADS = {
    "4000x4000.png": lambda: disc("RGB", (4000, 4000), (255, 255, 255, 255)),
    "rgba.png": lambda: disc("RGBA"),
    "grayscale.png": lambda: disc("L"),
    "gray16.png": lambda: disc("L").convert("I;16"),
    "bilevel.png": lambda: disc("1"),
    "palette.gif": lambda: disc("RGBA").convert("P"),
    "photo.jpg": lambda: disc("RGB"),
    "cmyk.jpg": lambda: disc("CMYK"),
    "one_pixel.png": lambda: Image.new("RGB", (1, 1), (10, 200, 10)),
    "long_strip.webp": lambda: disc("RGB", (600, 3)),
}


@pytest.mark.parametrize("name", list(GOOD_UPLOADS))
def test_score_any_image(client, tmp_path, name):
    realism, match, heatmap, _ = score(client, save(GOOD_UPLOADS[name](), tmp_path / name), prompt="red circle")
    assert 0 <= realism <= 1 and 0 <= match <= 1 and Path(heatmap).is_file()


def test_score_no_image(client):
    with pytest.raises(AppError, match="Upload an image first"):
        client.predict(None, "", "any", api_name="/score")
    assert_alive(client)


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


# --- the image features, the 64/256 switch and the take-home sheet ---

def upload(path):
    return handle_file(str(path))


@pytest.fixture
def emoji_png(tmp_path):
    return save(disc(), tmp_path / "apple.png")


def test_generate_raw_64_and_the_sheet(client):
    gallery, _ = generate(client, n=2, candidates=2, seed=9, upscale=False)
    with Image.open(gallery[0]["image"]) as im:  # raw 16-px images are shown enlarged by nearest neighbour
        assert im.size == (app.DISPLAY_SIZE, app.DISPLAY_SIZE)
    sheet = client.predict(api_name="/sheet")  # built now, of this session's last result
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


def test_variations_and_restyle(client, emoji_png):
    gallery, summary = client.predict(upload(emoji_png), 3, 4, 1.0, "any", 6, 0.0, True, api_name="/variations")
    assert len(gallery) == 3 and summary.startswith("The image looks like: ")
    seeds = sorted(int(CAPTION.match(g["caption"]).group(2)) for g in gallery)
    assert len(set(seeds)) == 3 and all(4 <= x < 4 + 6 for x in seeds)  # the best 3 of 6 candidates
    with Image.open(gallery[0]["image"]) as im:
        assert im.size == (256, 256)
    meta = json.loads(Image.open(client.predict(api_name="/sheet_variations")).text["parameters"])
    assert meta["task"] == "variations" and sorted(meta["seeds"]) == seeds
    styled, text = client.predict(upload(emoji_png), False, api_name="/restyle")
    assert [CAPTION.match(g["caption"]).group(1) for g in styled] == ["google", "twitter", "fluent3d", "openmoji"]
    assert "Drawn in each of the 4 styles" in text
    meta = json.loads(Image.open(client.predict(api_name="/sheet_variations")).text["parameters"])
    assert meta["task"] == "restyle" and meta["styles"] == ["google", "twitter", "fluent3d", "openmoji"]


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
    meta_a = json.loads(Image.open(a.predict(api_name="/sheet")).text["parameters"])
    meta_b = json.loads(Image.open(b.predict(api_name="/sheet")).text["parameters"])
    assert (meta_a["prompt"], sorted(meta_a["seeds"])) == ("red apple", [3, 4])
    assert (meta_b["prompt"], meta_b["seeds"]) == ("rocket", [7])
    with pytest.raises(AppError, match="Nothing to put on a sheet yet"):
        session().predict(api_name="/sheet")
    with pytest.raises(AppError, match="Nothing to put on a sheet yet"):
        a.predict(api_name="/sheet_variations")  # the variations tab has its own


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


def test_examples_cache_is_keyed_by_the_upsampler(server):
    """The cached examples are 256-px images: another upsampler must not reuse them."""
    import copy

    import torch

    pipe = copy.copy(server.pipeline)
    before = app.examples_cache_dir(pipe, ["red apple"])
    pipe.upsampler = copy.deepcopy(pipe.upsampler)
    with torch.no_grad():
        next(pipe.upsampler.parameters()).add_(0.01)
    assert app.examples_cache_dir(pipe, ["red apple"]) != before
    pipe.upsampler = None
    assert app.examples_cache_dir(pipe, ["red apple"]) != before



@pytest.mark.slow
def test_served_files_are_deleted_on_schedule(tiny_latent_dir, tmp_path, monkeypatch):
    """The images, GIFs and sheets gradio serves do not pile up: with delete_cache (1 s, 2 s old)
    every file one request created is gone a few seconds later (the app runs at (3600, 3600))."""
    from helpers import start_app

    monkeypatch.setattr(app, "DELETE_CACHE", (1, 2))
    srv = start_app(tiny_latent_dir, tmp_path / "cache")
    try:
        generate(Client(srv.url, verbose=False, download_files=str(tmp_path / "dl")), n=2, candidates=2)
        files = [Path(f) for s in srv.demo.temp_file_sets for f in s]
        assert any(f.suffix == ".png" and f.is_file() for f in files), files
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(f.is_file() for f in files):
            time.sleep(0.5)
        assert not any(f.is_file() for f in files), [f for f in files if f.is_file()]
    finally:
        srv.demo.close()


def test_generate_is_named_in_one_place(server):
    """The app's /generate takes its arguments in GENERATE_PARAMS order (the bench, the load test
    and these tests build calls from model/serving/api.py)."""
    info = Client(server.url, verbose=False).view_api(print_info=False, return_format="dict")
    names = [p["parameter_name"] for p in info["named_endpoints"]["/generate"]["parameters"]]
    assert names == list(GENERATE_PARAMS)
    assert generate_args("rocket", n=1)[:3] == ("rocket", "any", 1)
    with pytest.raises(TypeError, match="no parameter"):
        generate_args("rocket", size=3)


def test_result_files_rotate_safely_under_concurrent_requests(monkeypatch, tmp_path):
    """Many requests writing result files at once: none fails (a file another thread removed
    between the listing and its stat used to raise FileNotFoundError), and only `keep` stay."""
    import threading

    from model.serving import files

    monkeypatch.setattr(files, "output_dir", lambda: tmp_path)
    errors, paths = [], []

    def worker():
        try:
            for _ in range(25):
                paths.append(files.new_file_path(".png", keep=8))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    left = {str(p) for p in tmp_path.glob("png-*")}  # one folder per file, rotated as a whole
    assert len(paths) == 200 and 1 <= len(left) <= 8 and left <= {str(Path(p).parent) for p in paths}


def test_gallery_images_are_written_as_fast_pngs(tmp_path, monkeypatch):
    """Gallery images reach gradio as PNG files we wrote at zlib level 1 (gradio would encode a
    PIL image at level 6 itself), pixel-identical to the image."""
    from model.serving import events as ui
    from model.serving import files

    monkeypatch.setattr(files, "output_dir", lambda: tmp_path)
    im = Image.effect_noise((64, 64), 40).convert("RGB")
    path = ui.shown(im, "red-apple-google-seed3")
    assert Path(path).name == "red-apple-google-seed3.png"  # downloads are named, not tmpXXXX.png
    back = Image.open(path)
    assert back.size == (256, 256) and back.format == "PNG"
    assert list(back.getdata()) == list(im.resize((256, 256), Image.NEAREST).getdata())
    slow = io.BytesIO()
    im.resize((256, 256), Image.NEAREST).save(slow, "png")  # PIL's default level
    assert Path(path).stat().st_size >= len(slow.getvalue())  # level 1 compresses less: it was not level 6
