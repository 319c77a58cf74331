"""Calls to the running app through gradio_client, and images to upload, shared by the test_app*
modules (plain functions; the `server` and `client` fixtures are in conftest.py)."""
from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path

from gradio_client import handle_file
from PIL import Image, ImageDraw

from model.serving.api import generate_args

GEN = dict(prompt="red apple", style="any", n=4, seed=0, random_seed=False, diversity=1.0, candidates=8, gate=0.5,
           upscale=True)
CAPTION = re.compile(r"^(\w+) · seed (\d+) · realism [01]\.\d\d · match [01]\.\d\d( · below the gate)?$")


# --- calls ---

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


def upload(path):
    return handle_file(str(path))


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
