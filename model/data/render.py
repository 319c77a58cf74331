"""Rendering one source image (raster or openmoji SVG) into the square RGB PNGs of the dataset."""
from __future__ import annotations

import io
import os
import re

from .packages import OPENMOJI_SVG_RENDER, DataBuildError

def _to_square_rgb(im, size: int):
    """Pad to a centred square on white, LANCZOS to size (model.images.square_on_white: the
    same conversion training and the app use)."""
    from ..images import square_on_white

    return square_on_white(im, size)


def _drop_missing_markers(svg: bytes) -> bytes:
    """Remove marker references to ids the SVG does not define (browsers ignore them,
    cairosvg crashes: openmoji 1F3F4-E0065-E0073-E0063-E006D-E007F uses url(#Dot))."""
    ids = set(re.findall(rb'\bid="([^"]+)"', svg))

    def repl(m: re.Match) -> bytes:
        return m.group(0) if m.group(2) in ids else b""

    return re.sub(rb'\s(marker(?:-start|-mid|-end)?)="url\(#([^)"]+)\)"', repl, svg)


def _render_svg(data: bytes, size: int) -> bytes:
    import cairosvg

    try:
        return cairosvg.svg2png(bytestring=data, output_width=size, output_height=size)
    except Exception:
        fixed = _drop_missing_markers(data)
        if fixed == data:
            raise
        return cairosvg.svg2png(bytestring=fixed, output_width=size, output_height=size)


def render_job(job: tuple[str, bytes, list[tuple[int, str]], str]) -> tuple[str, int, str | None]:
    """Worker: decode one source image and write every (size, path) it is needed at.

    Returns (job id, files written, error message or None); errors do not stop the build.
    """
    from PIL import Image

    kind, data, outputs, job_id = job
    try:
        if kind == "svg":
            im = Image.open(io.BytesIO(_render_svg(data, OPENMOJI_SVG_RENDER)))
        else:
            im = Image.open(io.BytesIO(data))
        im.load()
        for size, path in outputs:
            out = _to_square_rgb(im, size)
            tmp = f"{path}.tmp"
            out.save(tmp, format="PNG")
            os.replace(tmp, path)
    except Exception as e:  # a broken source image skips that record, not the build
        return job_id, 0, f"{type(e).__name__}: {e}"
    return job_id, len(outputs), None


def import_cairosvg() -> None:
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError) as e:
        raise DataBuildError(
            f"cannot import cairosvg ({e}); install it with `pip install cairosvg` and the "
            f"cairo library with `apt-get install -y libcairo2`"
        ) from e
