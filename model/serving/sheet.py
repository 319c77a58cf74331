"""Results a user can take home: one PNG sheet of a whole result, captions under each image,
and what reproduces it (prompt, style, seeds, model) in the PNG's text metadata; animated GIFs.
A sheet is built only when asked for: an event keeps what its sheet needs (`SheetSource`) in
`KeptResults`, in memory, under a key that the page holds in a gr.State."""
from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from ..stages import OUTPUT_SIZE

TILE = OUTPUT_SIZE  # a sheet's images at the size the app shows them
CAPTION_H = 22
COLUMNS = 4


# zlib level of the PNGs the app writes: level 1 encodes a 256-px emoji in 3.9 ms against 15.4 ms
# at PIL's default 6, for files 18 % larger (90 vs 76 KiB); PNG encoding was 39 % of a request
PNG_LEVEL = 1


def contact_sheet(images: list[Image.Image], captions: list[str], metadata: dict, path: str | Path,
                  *, tile: int = TILE, columns: int = COLUMNS) -> Path:
    """images (any size; each is resized to `tile` px, nearest when enlarging 64-px ones) with their
    captions -> a PNG at `path` whose text chunks hold every metadata key (values as JSON when not
    str) plus "parameters", the whole metadata as one JSON object."""
    if not images:
        raise ValueError("nothing to put on a sheet: no images")
    cols = min(columns, len(images))
    rows = -(-len(images) // cols)
    sheet = Image.new("RGB", (cols * tile, rows * (tile + CAPTION_H)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (im, cap) in enumerate(zip(images, captions)):
        x, y = (i % cols) * tile, (i // cols) * (tile + CAPTION_H)
        resample = Image.NEAREST if im.width < tile else Image.LANCZOS
        sheet.paste(im.convert("RGB").resize((tile, tile), resample), (x, y))
        draw.text((x + 4, y + tile + 4), fit_text(draw, cap, font, tile - 8), fill=(40, 40, 40), font=font)
    info = PngInfo()
    for k, v in metadata.items():
        info.add_text(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    info.add_text("parameters", json.dumps(metadata, ensure_ascii=False))
    sheet.save(path, pnginfo=info, compress_level=PNG_LEVEL)
    return Path(path)


def fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """text cut (with an ellipsis) to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def sheet_parameters(path: str | Path) -> dict:
    """The "parameters" a sheet was written with (contact_sheet's metadata)."""
    with Image.open(path) as im:
        return json.loads(im.text["parameters"])


def frames_to_gif(frames: list[Image.Image], path: str | Path, *, size: int = 256, ms: int = 120) -> Path:
    """Write frames as a looping GIF (there and back), upscaled with nearest neighbour."""
    big = [f.resize((size, size), Image.NEAREST) for f in frames]
    seq = big + big[-2:0:-1]
    seq[0].save(path, save_all=True, append_images=seq[1:], duration=ms, loop=0)
    return Path(path)


# --- what a sheet needs, kept until asked for ---

@dataclass(frozen=True)
class SheetSource:
    """A shown result as its sheet needs it: the file name's stem, the images (as shown), their
    captions, and the metadata that reproduces them."""
    name: str
    images: tuple[Image.Image, ...]
    captions: tuple[str, ...]
    metadata: dict

    @property
    def nbytes(self) -> int:
        return sum(im.width * im.height * len(im.getbands()) for im in self.images)


class KeptResults:
    """The latest results' SheetSources under random keys, at most `max_bytes` of image data: when a
    new one does not fit, the least recently used go. The key lives in the session's gr.State (a
    value the browser never sends), so a session reaches only the results it was given, and memory
    stays bounded however many sessions there are (an API call without gradio_client is a session
    of its own). Thread-safe."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, SheetSource] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, source: SheetSource) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._items[key] = source
            self._bytes += source.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return key

    def get(self, key) -> SheetSource | None:
        if not isinstance(key, str):
            return None
        with self._lock:
            source = self._items.get(key)
            if source is not None:
                self._items.move_to_end(key)
            return source

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes
