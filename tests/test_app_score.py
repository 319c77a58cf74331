"""/score end to end: the real app.py served on a TINY model, called through gradio_client with
good uploads of every kind and bad ones, answered with a clear message; the app keeps serving."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from app_helpers import assert_alive, disc, png_claiming_size, save, score  # tests/ is on sys.path


# --- good input ---

def test_score(client, server, tmp_path):
    realism, match, heatmap, verdict = score(client, save(disc(), tmp_path / "apple.png"), prompt="red apple")
    assert 0 <= realism <= 1 and 0 <= match <= 1
    assert re.match(r"Judged \*\*(real|fake)\*\*: P\(real\) = [01]\.\d{3}, (at or above|below) the gate [01]\.\d\d "
                    r"that decides which generated images are shown; matches the prompt", verdict)
    gate = server.pipeline.gate.default  # the verdict is the generation gate's, not a fixed 0.5
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


# --- bad input: a clear message, and the app keeps serving ---

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


def test_score_no_image(client):
    with pytest.raises(AppError, match="Upload an image first"):
        client.predict(None, "", "any", api_name="/score")
    assert_alive(client)
