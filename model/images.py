"""Uploaded images -> PIL images: arrays, files, and modes Pillow would convert badly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def to_rgba(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGBA; high-bit-depth modes are scaled to 8 bits, not clipped (Pillow's own
    convert clips a 16-bit grey value of 40000 to 255: white)."""
    if image.mode.startswith("I;16"):
        a = np.asarray(image, dtype=np.float64) / 257.0  # 0..65535 -> 0..255
        image = Image.fromarray(a.round().clip(0, 255).astype(np.uint8), "L")
    elif image.mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float64)
        top = np.nanmax(a) if a.size else 0.0
        scale = 257.0 if top > 255 else (1 / 255.0 if image.mode == "F" and top <= 1.0 else 1.0)
        image = Image.fromarray(np.nan_to_num(a / scale).round().clip(0, 255).astype(np.uint8), "L")
    return image.convert("RGBA")


def array_to_image(a: np.ndarray) -> Image.Image:
    """HxW, HxWx1, HxWx3 or HxWx4 array (uint8, or float in [0, 1]) -> PIL image."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.size == 0 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"Expected an image array of shape HxW, HxWx3 or HxWx4, got {a.shape}.")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if np.nanmax(a) <= 1.0:
            a = a * 255.0  # float images in [0, 1]
        a = np.nan_to_num(a).clip(0, 255).round().astype(np.uint8)
    return Image.fromarray(a)


DECODE_SIDE = 1024  # an upload is shrunk to about this before any conversion (square_on_white's own bound)


class ImageTooLarge(ValueError):
    """An upload over the pixel limit (refused from its header, before decoding)."""


def open_image(path: str | Path, max_pixels: int) -> Image.Image:
    """Open an uploaded file as an image, with a clear error for anything that is not one. The
    size is checked from the header; a JPEG is decoded at a reduced scale when large (draft), and
    any image is shrunk by an integer factor right after decoding, so the conversions that follow
    (16-bit grey to 8 bits, palette or 1-bit to RGBA) never run at full size."""
    name = Path(path).name
    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise ImageTooLarge(f"The image is {im.width}x{im.height}; the limit is "
                                    f"{max_pixels / 1e6:.1f} megapixels: make it smaller.")
            if im.format == "JPEG" and max(im.size) > 2 * DECODE_SIDE:
                im.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
            im.load()
            return shrink(im, DECODE_SIDE).copy()
    except ImageTooLarge:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name} is too large: the limit is {max_pixels / 1e6:.1f} megapixels.") from None
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, MemoryError) as e:  # Pillow's own errors, e.g.
        # "Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK": not worth showing a user
        raise ValueError(f"{name} is not an image this app can read (PNG, JPEG, WebP, GIF, BMP, TIFF).") from e


def shrink(image: Image.Image, side: int) -> Image.Image:
    """Reduce by the integer factor that brings the longer side near `side` (box filter; modes that
    Pillow cannot reduce are converted first); smaller images are returned as they are."""
    factor = max(image.size) // side
    if factor < 2:
        return image
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode.startswith("I;16"):
        image = image.convert("I")
    elif image.mode not in ("L", "LA", "I", "F", "RGB", "RGBA", "CMYK", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    return image.reduce(factor)


def heatmap_overlay(img: Image.Image, patch: np.ndarray, size: int = 256) -> Image.Image:
    """The discriminator's patch map over the image, relative to itself: red where it finds the
    image least real, green where most (min-max over this image; an absolute scale drew a uniform
    olive tint, since most patches sit near the middle). A map with no spread (< 0.02) is drawn
    flat yellow: no region stands out."""
    base = img.resize((size, size), Image.NEAREST).convert("RGB")
    lo, hi = float(patch.min()), float(patch.max())
    rel = (patch - lo) / (hi - lo) if hi - lo >= 0.02 else np.full_like(patch, 0.5)
    p = Image.fromarray((rel * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
    p = np.asarray(p, dtype=np.float32)[..., None] / 255.0  # (size, size, 1)
    color = np.concatenate([(1 - p) * 255, p * 255, np.zeros_like(p)], axis=2)  # red -> green
    out = 0.45 * np.asarray(base, dtype=np.float32) + 0.55 * color
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def square_on_white(image: Image.Image, size: int) -> Image.Image:
    """Any PIL image -> a size x size RGB image: the one "square RGB on white" that the data
    builder, the training reader and the app all use. Shrunk first when large (aspect kept, to
    at most max(4 x size, 1024) px: a 16000x100 strip never becomes a 16000x16000 canvas; the
    emoji sources, at most 1024 px, are untouched by it), padded to a centred square, composited
    onto white (transparency becomes white), then LANCZOS-resized."""
    image = to_rgba(image)
    bound = max(4 * size, 1024)
    if max(image.size) > bound:
        image = image.copy()
        image.thumbnail((bound, bound), Image.LANCZOS)
    side = max(image.size)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(image, ((side - image.width) // 2, (side - image.height) // 2))
    rgb = canvas.convert("RGB")
    return rgb if rgb.size == (size, size) else rgb.resize((size, size), Image.LANCZOS)
