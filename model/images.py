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


def open_image(path: str | Path, max_pixels: int) -> Image.Image:
    """Open an uploaded file as an image, with a clear error for anything that is not one."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise ValueError(f"The image is {im.width}x{im.height}; the limit is "
                                 f"{max_pixels / 1e6:g} megapixels.")
            im.load()
            return im.copy()
    except ValueError:
        raise
    except Image.DecompressionBombError:
        raise ValueError(f"{Path(path).name} is too large: the limit is {max_pixels / 1e6:g} megapixels.") from None
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{Path(path).name} is not an image this app can read ({type(e).__name__}).") from e


def heatmap_overlay(img: Image.Image, patch: np.ndarray, size: int = 256) -> Image.Image:
    """Green where the discriminator finds a region real, red where it finds it fake."""
    base = img.resize((size, size), Image.NEAREST).convert("RGB")
    p = Image.fromarray((patch * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
    p = np.asarray(p, dtype=np.float32)[..., None] / 255.0  # (size, size, 1)
    color = np.concatenate([(1 - p) * 255, p * 255, np.zeros_like(p)], axis=2)  # red -> green
    out = 0.55 * np.asarray(base, dtype=np.float32) + 0.45 * color
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
