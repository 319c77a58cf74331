"""The sample grid a user sees: ``python -m model.evaluation.grid --model assets/model --out assets/results/grid.png``;
with ``--features --out assets/results/features.png`` the image features' sheet.

Rows: exact emoji names and natural descriptions; columns: each style. Each cell is the first
image the app's default call shows (seed 0, 16 candidates, the model's gate, 256 px through the
super-resolution stage), shown at 128 px (2x the model's 64), with a red corner when no
candidate passed the gate.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from ..dataset import SAMPLE_PROMPTS

NATURAL_EXAMPLES = ("a cute puppy's head", "a spaceship blasting off", "a slice of cheesy italian pie",
                    "a yellow smiley wearing dark shades")
NATURAL_TARGETS = ("dog face", "rocket", "pizza", "smiling face with sunglasses")  # what a person means by each


def grid(pipe, prompts, *, scale: int = 2, label_w: int = 300) -> Image.Image:
    styles = [s for s in pipe.checks.styles if s != "any"]
    cell = pipe.stages.size * scale
    out = Image.new("RGB", (label_w + cell * len(styles), 24 + cell * len(prompts)), "white")
    draw = ImageDraw.Draw(out)
    for j, s in enumerate(styles):
        draw.text((label_w + j * cell + 4, 6), s, fill="black")
    for i, p in enumerate(prompts):
        draw.text((4, 24 + i * cell + cell // 2 - 6), p, fill="black")
        for j, s in enumerate(styles):
            g = pipe.text_to_image.generate(p, n=1, seed=0, style=s, candidates=16)
            shown = g.images[0]
            x0, y0 = label_w + j * cell, 24 + i * cell
            resample = Image.NEAREST if shown.image.width < cell else Image.LANCZOS
            out.paste(shown.image.resize((cell, cell), resample), (x0, y0))
            if not shown.kept:
                draw.polygon([(x0, y0), (x0 + 14, y0), (x0, y0 + 14)], fill="red")
    return out


def features(pipe, *, cell: int = 128, label_w: int = 300) -> Image.Image:
    """The image features, each on the model's own twitter drawing of an emoji (seed 0, no noise):
    variations of a dog face; a phoenix (fluent3d lacks it) restyled into every style; text edits
    (grinning -> crying face, red -> green apple); an image-to-image interpolation."""
    def src(name):
        return pipe.text_to_image.generate(name, n=1, seed=0, style="twitter", truncation=0.0, upscale=False).images[0].image

    dog, phoenix, grin, apple = map(src, ("dog face", "phoenix", "grinning face", "red apple"))
    var, _ = pipe.image_tasks.variations(dog, n=5, seed=0, candidates=10)
    styled, _ = pipe.image_tasks.restyle(phoenix)
    rows = [("dog face: 5 variations", [dog, *[s.image for s in var.images]]),
            ("phoenix: restyled (google, twitter, fluent3d, openmoji)", [phoenix, *[s.image for s in styled]]),
            ('edit: "crying face"', pipe.image_tasks.edit(grin, "crying face", steps=6)[0]),
            ('edit: "green apple"', pipe.image_tasks.edit(apple, "green apple", steps=6)[0]),
            ("interpolation: dog face -> red apple", pipe.image_tasks.interpolate_images(dog, apple, steps=6))]
    out = Image.new("RGB", (label_w + 6 * cell, cell * len(rows)), "white")
    draw = ImageDraw.Draw(out)
    for i, (label, images) in enumerate(rows):
        draw.text((4, i * cell + cell // 2 - 6), label, fill="black")
        for j, im in enumerate(images[:6]):
            resample = Image.NEAREST if im.width < cell else Image.LANCZOS
            out.paste(im.resize((cell, cell), resample), (label_w + j * cell, i * cell))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Draw the README's sample grid (default calls, every style).")
    ap.add_argument("--model", default="default", help="model folder or Hub id")
    ap.add_argument("--out", default="assets/results/grid.png", help="PNG to write")
    ap.add_argument("--features", action="store_true",
                    help="draw the image features sheet instead (variations, restyle, edits, interpolation)")
    a = ap.parse_args(argv)
    from ..pipeline import Pipeline

    pipe = Pipeline.from_pretrained(a.model, device="cpu")
    img = features(pipe) if a.features else grid(pipe, [*SAMPLE_PROMPTS, *NATURAL_EXAMPLES])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(a.out)
    print(f"wrote {a.out} ({img.width}x{img.height})")


if __name__ == "__main__":
    main()
