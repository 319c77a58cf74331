"""Prompts no emoji set has, drawn from their parts: two ideas in one image ("a cat wearing
sunglasses", "two cats", "an owl and a moon") and a colour bound to an object ("a purple banana").

The prior is a search over known emojis, so alone it returns the nearest known one. Here a prompt
is split at its relation word into a subject and a second idea (or a count, or a colour word);
each part is read by the prior and drawn by the decoder in the asked style, each from its own
seed, and the parts are laid out on one canvas by the relation: the second idea on the subject's
eyes ("wearing sunglasses"), on its head (hats, crowns), in its lower corner ("holding", "with",
"playing"), beside it ("and"), behind it ("on fire"), around it ("in"), below it ("with snow",
"on a skateboard"), above it ("under"). A colour word moves the subject's main hue to the asked
one, its shading kept. Seeds in a row arrange the parts anew where the relation allows it
(mirrored, staggered, the other in another corner: `arrangements`), so that one style shows four
pictures, not one four times. The layout is a rule, not a learned model; model/EXPERIMENTS.md
(2026-12-07) has what was measured, the learned alternatives that lost included.

A prompt is split only when every part reads as a known emoji clearly better than the whole
prompt does (`Composer.plan`): held-out natural descriptions ("yellow triangle with an
exclamation point") describe one emoji, and stay whole.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .pixels import hsv_to_rgb, rgb_to_hsv

# named hues in degrees (the colour words a prompt may bind); the hue measure uses the same names
COLOURS = {"red": 0.0, "orange": 30.0, "yellow": 55.0, "green": 120.0, "blue": 215.0, "purple": 275.0,
           "pink": 325.0}
COLOURED_SATURATION, COLOURED_VALUE = 0.35, 0.3  # a pixel below either is grey, white or outline
HUE_WINDOW = 50.0  # degrees around a drawing's main hue that recolour moves (a banana's yellows and oranges)

# a split is taken when each part's best caption similarity is >= PART_MIN and >= the whole
# prompt's + MARGIN. Measured on the 236 held-out natural descriptions and 14 two-idea prompts
# (runs of 2026-12-07): 137 descriptions contain a relation word, their parts score 0.28-0.77
# and rarely both >= 0.55; the two-idea prompts' parts score 0.51-0.80 against 0.41-0.63 whole
PART_MIN, MARGIN = 0.55, 0.05
# a colour word on one object ("a blue apple") is taken unless the whole prompt is an emoji's
# name ("blue heart"); its object must still read as something known ("apple" scores 0.50)
COLOUR_SUBJECT_MIN = 0.45

HEADWEAR = ("hat", "crown", "cap", "helmet", "beret", "bonnet", "tiara", "hood")
EYEWEAR = ("glasses", "sunglasses", "goggles", "mask", "monocle")
WEATHER = ("snow", "rain", "lightning", "rain drops", "snowflakes", "hail")
RELATIONS = ("wearing", "holding", "playing", "eating", "riding", "reading", "drinking", "with", "and",
             "behind", "inside", "in", "on", "under")
COUNTS = {"two": 2, "2": 2, "pair of": 2}  # words after _clean, which drops a leading "a"
# plurals that dropping an s gets wrong, by ending (so "snowmen" and "policewomen" follow "men")
IRREGULAR = {"men": "man", "people": "person", "children": "child", "mice": "mouse", "geese": "goose",
             "teeth": "tooth", "feet": "foot", "cacti": "cactus", "octopi": "octopus", "leaves": "leaf",
             "knives": "knife", "wolves": "wolf", "loaves": "loaf", "elves": "elf", "shelves": "shelf",
             "scarves": "scarf", "tomatoes": "tomato", "potatoes": "potato", "mangoes": "mango",
             "volcanoes": "volcano", "mosquitoes": "mosquito", "tornadoes": "tornado", "buses": "bus",
             "ramen": "ramen"}  # (ramen: not a plural of "raman")

# where each part goes, as (scale, centre x, centre y) of the canvas, and whether the second
# idea is drawn over the subject
LAYOUTS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], bool]] = {
    "eyes": ((1.0, 0.5, 0.5), (0.62, 0.5, 0.42), True),
    "head": ((0.8, 0.5, 0.58), (0.6, 0.5, 0.2), True),
    "corner": ((0.85, 0.42, 0.42), (0.5, 0.72, 0.72), True),
    "beside": ((0.62, 0.32, 0.5), (0.62, 0.68, 0.5), True),
    "two": ((0.62, 0.32, 0.5), (0.62, 0.68, 0.5), True),
    "behind": ((0.8, 0.5, 0.56), (1.0, 0.5, 0.5), False),
    "in front": ((0.75, 0.4, 0.38), (0.75, 0.6, 0.62), True),
    "inside": ((0.5, 0.5, 0.45), (1.0, 0.5, 0.5), False),
    "below": ((0.8, 0.5, 0.38), (0.5, 0.5, 0.78), True),
    "above": ((0.7, 0.5, 0.65), (0.7, 0.5, 0.3), False),
}
# more arrangements of a layout, for variety across seeds: seed k draws arrangement k mod their
# count (`arrangement`), the first being LAYOUTS'. A layout whose place is its meaning (eyes, head,
# inside, below, above) has one; a sideways one is also drawn mirrored (the subject on the right).
MORE_LAYOUTS: dict[str, list[tuple[tuple[float, float, float], tuple[float, float, float], bool]]] = {
    "beside": [((0.72, 0.38, 0.58), (0.52, 0.74, 0.36), False)],  # the subject large, the other behind it
    "two": [((0.66, 0.36, 0.6), (0.58, 0.66, 0.4), False),  # staggered, one behind the other
            ((0.56, 0.34, 0.34), (0.62, 0.64, 0.66), True)],  # on a diagonal, the lower one in front
    "corner": [((0.8, 0.44, 0.56), (0.48, 0.74, 0.3), True)],  # the other in the upper corner
    "behind": [((0.72, 0.6, 0.6), (0.88, 0.42, 0.42), False)],  # the other behind, off centre
}
WHERE = {"eyes": "on its eyes", "head": "on its head", "corner": "in a corner", "beside": "beside or behind it",
         "two": "twice", "behind": "behind it", "in front": "in front of it", "inside": "around it",
         "below": "below it", "above": "above it"}


@dataclass(frozen=True)
class Plan:
    """What a prompt was split into: the subject, and a second idea with its layout, a count, or
    a colour bound to the subject."""
    subject: str
    other: str | None = None
    layout: str | None = None  # a key of LAYOUTS; None: the subject alone (a colour only)
    colour: str | None = None  # a key of COLOURS
    reads: str | None = None  # the text the subject is read from, when not its own name

    @property
    def parts(self) -> list[str]:
        return [self.reads or self.subject] + ([self.other] if self.other and self.layout != "two" else [])

    def __str__(self) -> str:
        subject = f"{self.colour} {self.subject}" if self.colour else self.subject
        if self.layout == "two":
            return f"{subject} x 2"
        if self.other is None:
            return subject
        return f"{subject} + {self.other} ({WHERE[self.layout]})"


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip().lower()).strip(" .!?")
    return re.sub(r"^(a|an|the|some)\s+", "", text)


def _singular(text: str) -> str:
    words = text.split(" ")
    last = words[-1]
    stem = max((w for w in IRREGULAR if last.endswith(w)), key=len, default=None)
    if stem is not None:  # snowmen, mice, leaves, tomatoes ("two snowmen" read "snowmen" at 0.57, "snowman" 0.70)
        last = last[: len(last) - len(stem)] + IRREGULAR[stem]
    elif last.endswith(("xes", "ches", "shes", "sses", "zzes")):  # foxes, peaches, dishes, glasses
        last = last[:-2]
    elif last.endswith("ies") and len(last) > 4:
        last = last[:-3] + "y"
    elif last.endswith("s") and not last.endswith("ss") and len(last) > 3:
        last = last[:-1]
    return " ".join(words[:-1] + [last])


def _layout(relation: str, other: str) -> str:
    if relation in ("wearing", "with") and any(w in other for w in EYEWEAR):
        return "eyes"
    if relation in ("wearing", "with") and any(w in other for w in HEADWEAR):
        return "head"
    if relation == "with" and other in WEATHER:
        return "below"
    if relation == "on":
        return "behind" if other in ("fire", "flames") else "below"
    return {"and": "beside", "behind": "in front", "in": "inside", "inside": "inside", "under": "above"}.get(
        relation, "corner")


def parse(prompt: str) -> Plan | None:
    """The parts a prompt names, or None when it names one thing (no relation word, count or
    colour word). Only the grammar: `Composer.plan` decides whether the split is taken."""
    text = _clean(prompt)
    for word, n in COUNTS.items():
        if text.startswith(word + " ") and len(text) > len(word) + 1:
            rest = _clean(text[len(word) + 1:])
            if not any(f" {r} " in f" {rest} " for r in RELATIONS):
                colour, subject = _colour(_singular(rest))
                return Plan(subject, subject, "two", colour)
    m = re.match(rf"^(.+?)\s+({'|'.join(RELATIONS)})\s+(.+)$", text)
    if m:
        subject, relation, other = m.group(1), m.group(2), _clean(m.group(3))
        if not subject or not other:
            return None
        colour, subject = _colour(subject)
        return Plan(subject, other, _layout(relation, other), colour)
    colour, subject = _colour(text)
    return Plan(subject, None, None, colour) if colour and subject else None


def _colour(text: str) -> tuple[str | None, str]:
    first, _, rest = text.partition(" ")
    return (first, rest) if first in COLOURS and rest else (None, text)


class Composer:
    """Decides which prompts are drawn from parts. similarity(texts) -> (P,) each text's best
    caption similarity in the prior (after its query map); names: the emojis the model knows."""

    def __init__(self, similarity: Callable[[list[str]], torch.Tensor], names: list[str]) -> None:
        self.similarity = similarity
        self.names = {n.lower() for n in names}

    def plan(self, prompt: str) -> Plan | None:
        plan = parse(prompt)
        if plan is None or _clean(prompt) in self.names:
            return None
        sims = self.similarity([prompt, *plan.parts])
        whole, parts = float(sims[0]), sims[1:]
        if plan.layout is None:  # a colour on one object; read whole when that reads better
            if float(parts[0]) < COLOUR_SUBJECT_MIN:  # ("a blue apple": apples, where "apple" reads a phone)
                return None
            return plan if float(parts[0]) >= whole else Plan(plan.subject, colour=plan.colour, reads=_clean(prompt))
        if float(parts.min()) < PART_MIN or float(parts.min()) < whole + MARGIN:
            return None
        if plan.layout in ("eyes", "head") and f"{plan.subject} face" in self.names:  # the face wears it
            plan = Plan(f"{plan.subject} face", plan.other, plan.layout, plan.colour)
        return plan


# --- drawing ---

def cutout(x: torch.Tensor) -> torch.Tensor:
    """(3, S, S) in [-1, 1] on a white ground -> alpha (1, S, S): the pixels that are not ground."""
    u = (x + 1) / 2
    ink = (u.min(0).values < 0.92) | ((u.max(0).values - u.min(0).values) > 0.08)
    return F.max_pool2d(ink.float()[None, None], 3, 1, 1)[0]


def _place(x: torch.Tensor, box: tuple[float, float, float], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image (3, S, S) and its cutout, scaled and moved onto an empty canvas -> (rgb, alpha)."""
    scale, cx, cy = box
    s = max(4, round(size * scale))
    both = torch.cat([x, cutout(x)])[None]
    both = F.interpolate(both, size=(s, s), mode="bilinear", antialias=True, align_corners=False)[0]
    canvas = torch.cat([torch.ones(3, size, size), torch.zeros(1, size, size)])
    x0, y0 = round(cx * size - s / 2), round(cy * size - s / 2)
    xs, ys = slice(max(0, x0), min(size, x0 + s)), slice(max(0, y0), min(size, y0 + s))
    canvas[:, ys, xs] = both[:, ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    return canvas[:3], canvas[3:].clamp(0, 1)


def _mirrored(arr):
    (sa, xa, ya), (sb, xb, yb), front = arr
    return (sa, round(1 - xa, 6), ya), (sb, round(1 - xb, 6), yb), front


def arrangements(layout: str) -> list:
    """A layout's arrangements, (subject box, other box, other in front), LAYOUTS' first; each
    sideways one is followed by its mirror image, unless that is the same picture (two of one
    thing side by side, mirrored, is the pair swapped)."""
    out = []
    for arr in [LAYOUTS[layout], *MORE_LAYOUTS.get(layout, [])]:
        mirror = _mirrored(arr)
        swapped = (mirror[1], mirror[0], mirror[2])
        same = layout == "two" and swapped[:2] == arr[:2]
        out += [arr] + ([mirror] if (arr[0][1] != 0.5 or arr[1][1] != 0.5) and not same else [])
    return out


def arrangement(layout: str, seed: int) -> int:
    """The arrangement a seed draws: seeds in a row cycle through the layout's arrangements."""
    return int(seed) % len(arrangements(layout))


def compose(subject: torch.Tensor, other: torch.Tensor, layout: str, which: int = 0) -> torch.Tensor:
    """Two drawings (3, S, S) in [-1, 1] on white -> one (3, S, S): laid out by the layout's
    arrangement `which` (0: LAYOUTS[layout])."""
    box_a, box_b, other_in_front = arrangements(layout)[which]
    size = subject.shape[-1]
    (ia, aa), (ib, ab) = _place(subject, box_a, size), _place(other, box_b, size)
    layers = [(ia, aa), (ib, ab)] if other_in_front else [(ib, ab), (ia, aa)]
    out = torch.ones(3, size, size)
    for rgb, alpha in layers:
        out = out * (1 - alpha) + ((rgb + 1) / 2) * alpha
    return out * 2 - 1


def recolour(x: torch.Tensor, colour: str) -> torch.Tensor:
    """(3, S, S) in [-1, 1] -> the same drawing with its main colour moved to COLOURS[colour]:
    the coloured pixels within HUE_WINDOW degrees of its most common named hue are rotated by
    the difference (saturation, value and their hue spread kept, so the shading stays). A
    drawing with few coloured pixels (a grey elephant) has its grey body tinted instead."""
    h, s, v = rgb_to_hsv((x + 1) / 2)
    coloured = (s > COLOURED_SATURATION) & (v > COLOURED_VALUE)
    body = (v > 0.25) & ~((s < 0.12) & (v > 0.92))  # not the outline, not the white ground
    target = COLOURS[colour]
    if coloured.sum() > 0.2 * body.sum():
        d = (h - main_hue(h, coloured) + 180) % 360 - 180  # signed distance to the main hue
        near = coloured & (d.abs() <= HUE_WINDOW)
        h = torch.where(near, (target + d * 0.5) % 360, h)  # the spread halved: shading, not a rainbow
        if colour == "pink":  # pink is a light red: less saturated than the hues it replaces
            s = torch.where(near, s.clamp(max=0.55), s)
    else:
        grey = body & (s < COLOURED_SATURATION)
        h, s = torch.where(grey, torch.full_like(h, target), h), torch.where(grey, torch.full_like(s, 0.5), s)
    return hsv_to_rgb(h, s, v) * 2 - 1


def main_hue(hue: torch.Tensor, coloured: torch.Tensor) -> float:
    """Hues in degrees (H, W) and their coloured mask -> the centre of the named colour most coloured
    pixels are nearest to (COLOURS' first where none is coloured)."""
    counts = torch.bincount(nearest_colour(hue[coloured]), minlength=len(COLOURS))
    return list(COLOURS.values())[int(counts.argmax())]


def nearest_colour(hue: torch.Tensor) -> torch.Tensor:
    """Hues in degrees (...) -> the index of the nearest named colour in COLOURS (...)."""
    centres = torch.tensor(list(COLOURS.values()), device=hue.device)
    d = (hue[..., None] - centres).abs()
    return torch.minimum(d, 360 - d).argmin(-1)
