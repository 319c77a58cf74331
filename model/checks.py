"""Input checks: every value a caller sends is checked once, at the top of the task that takes it.
Each check raises ValueError with a message that names the field, so the web UI and API callers
get the same answer whatever they send."""
from __future__ import annotations

import math
import random
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .images import array_to_image, open_image, square_on_white
from .outputs import Limits

MAX_SEED = 2**31 - 1
# zero-width and other invisible format characters: a prompt of only these is empty
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), " ")
INT_TEXT = re.compile(r"-?[0-9]{1,18}")
NUMBER_TEXT = re.compile(r"\s*[-+]?([0-9]{1,18}(\.[0-9]{0,18})?|\.[0-9]{1,18})([eE][-+]?[0-9]{1,3})?\s*")


def wrap_seed(seed: int) -> int:
    """Any int -> a seed in 0..MAX_SEED (seed + k past the top starts again at 0)."""
    return seed % (MAX_SEED + 1)


def seed_run(seed: int, n: int) -> list[int]:
    """The seeds of a request's n images: image k is drawn from seed + k."""
    return [wrap_seed(seed + k) for k in range(n)]


class Checks:
    """The checks of one model's inputs: its named styles (plus "any"), its image size and the `Limits`."""

    def __init__(self, styles: tuple[str, ...] | list[str], limits: Limits, size: int):
        self.styles = ["any", *styles]  # what a caller may ask for
        self.any_style = len(styles)  # the style id that means "any" (ids 0.. are the named styles)
        self.limits, self.size = limits, size

    def prompt(self, prompt: str | None, *, name: str = "prompt") -> str:
        """Text -> the prompt with its whitespace joined (joiners stay: they hold emoji sequences together)."""
        if prompt is not None and not isinstance(prompt, str):
            raise ValueError(f"The {name} must be text, got {type(prompt).__name__}.")
        try:
            (prompt or "").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (e.g. "\\ud800" sent through the HTTP API)
            raise ValueError(f"The {name} contains characters that are not valid Unicode text "
                             "(a lone surrogate); send it as UTF-8 text.") from None
        if not (prompt or "").translate(INVISIBLE).strip():  # only invisible characters is empty too
            raise ValueError(f"The {name} is empty: describe an emoji, e.g. 'red apple'.")
        prompt = " ".join(prompt.split())
        if len(prompt) > self.limits.max_prompt_chars:
            raise ValueError(f"The {name} has {len(prompt)} characters; the limit is "
                             f"{self.limits.max_prompt_chars}.")
        return prompt

    def optional_prompt(self, prompt: str | None, *, name: str) -> str | None:
        """None or blank text -> None (the task's own default); other text is checked as a prompt."""
        if prompt is not None and not isinstance(prompt, str):
            raise ValueError(f"The {name} must be text, got {type(prompt).__name__}.")
        return self.prompt(prompt, name=name) if (prompt or "").strip() else None

    @staticmethod
    def integer(value, name: str, lo: int, hi: int) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and INT_TEXT.fullmatch(value.strip()):  # ASCII digits, at most 18
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {shown(value)}.")
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be from {lo} to {hi}, got {shown(value)}.")
        return value

    def count(self, n, candidates) -> tuple[int, int]:
        """(images shown, candidates drawn for the gate); candidates None: n."""
        n = self.integer(n, "number of images", 1, self.limits.max_images)
        return n, n if candidates is None else self.integer(candidates, "candidates", n, self.limits.max_candidates)

    def steps(self, steps) -> int:
        return self.integer(steps, "steps", 2, self.limits.max_steps)

    def seed(self, seed) -> int:
        """-1, None or blank text: a fresh random seed."""
        if isinstance(seed, str) and seed.strip() in ("", "-1"):
            seed = None
        if seed is None or (isinstance(seed, (int, float)) and not isinstance(seed, bool) and seed < 0):
            return random.randint(0, MAX_SEED)
        return self.integer(seed, "seed", 0, MAX_SEED)

    def style(self, style: str | None) -> int:
        """A style name -> its id; "any" (or None) -> any_style."""
        if style is not None and not isinstance(style, str):
            raise ValueError(f"style must be one of {', '.join(self.styles)}, got {style!r}.")
        style = (style or "any").strip().lower()
        if style not in self.styles:
            raise ValueError(f"Unknown style {style!r}; choose one of {', '.join(self.styles)}.")
        return self.styles.index(style) - 1 if style != "any" else self.any_style

    @staticmethod
    def fraction(value, name: str) -> float:
        v = number(value, f"{name} must be a number from 0 to 1")
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be from 0 to 1, got {v}.")
        return v

    def gate(self, gate, default: float) -> float:
        """The realism threshold; None: the model's calibrated default."""
        return default if gate is None else self.fraction(gate, "gate")

    def truncation(self, t, name: str = "diversity") -> float:
        t = number(t, f"{name} must be a number")
        if not (0.0 <= t <= self.limits.max_truncation) or math.isnan(t):
            raise ValueError(f"{name} must be from 0 to {self.limits.max_truncation}, got {shown(t)}.")
        return t

    @staticmethod
    def boolean(value, name: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"{name} must be true or false, got {shown(value)}.")

    def image(self, image) -> Image.Image:
        """PIL image / path / HxWxC array -> square RGB model-size image (alpha onto white)."""
        if isinstance(image, (str, Path)):
            image = open_image(image, self.limits.max_upload_pixels)
        elif isinstance(image, np.ndarray):
            image = array_to_image(image)
        if not isinstance(image, Image.Image):
            raise ValueError("Please upload an image (PNG, JPEG, WebP, GIF...).")
        if image.width * image.height > self.limits.max_upload_pixels:
            raise ValueError(f"The image is {image.width}x{image.height}; the limit is "
                             f"{self.limits.max_upload_pixels / 1e6:.1f} megapixels: make it smaller.")
        return square_on_white(ImageOps.exif_transpose(image), self.size)


def shown(value, limit: int = 40) -> str:
    """A caller's value in a message: repr, cut to `limit` characters (a 10,000-digit number or a
    long string is not echoed back whole)."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits cannot even be printed
        return "a number too large to print"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def number(value, message: str) -> float:
    """An int, float or decimal text -> float; True/False, NaN, other text and other types raise
    ValueError(message + what was sent). (float() alone takes True as 1.0 and '١' as 1.0.)"""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
    elif isinstance(value, str) and NUMBER_TEXT.fullmatch(value):
        v = float(value)
    else:
        raise ValueError(f"{message}, got {shown(value)}.")
    if math.isnan(v):
        raise ValueError(f"{message}, got NaN.")
    return v
