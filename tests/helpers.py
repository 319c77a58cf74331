"""Builders shared by several test modules (plain functions; fixtures live in conftest.py)."""
from __future__ import annotations

import torch

from model.latent import TINY_LATENT, LatentConfig
from model.latent_model import LatentModel

TINY_NAMES = ("red apple", "rocket", "dog face")


def make_tiny_model(seed: int = 0, styles=("google", "openmoji")) -> LatentModel:
    """A 16 px latent model with seeded random weights (residual gains and style affines opened, so
    every input reaches the image) and a filled prior: TINY_NAMES, one random unit caption vector
    each; every name in every style except 'dog face', which lacks the last style."""
    torch.manual_seed(seed)
    m = LatentModel(LatentConfig(**TINY_LATENT, styles=tuple(styles)))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("gain") or ".aff" in name:
                p.normal_(0.0, 0.5)
    g = torch.Generator().manual_seed(seed)
    rows = [(e, s) for e in range(len(TINY_NAMES)) for s in range(len(styles))
            if not (TINY_NAMES[e] == "dog face" and s == len(styles) - 1)]
    m.prior.fill(names=TINY_NAMES,
                 cap_emb=torch.nn.functional.normalize(torch.randn(len(TINY_NAMES), 384, generator=g), dim=1),
                 cap_entry=torch.arange(len(TINY_NAMES)),
                 latents=torch.randn(len(rows), *m.cfg.latent_shape, generator=g),
                 sigmas=torch.full((len(rows), m.cfg.latent_channels), 0.1),
                 lat_entry=torch.tensor([e for e, _ in rows]), lat_style=torch.tensor([s for _, s in rows]))
    return m.eval()


COLOURS = {"red apple": (220, 30, 30), "green apple": (40, 200, 40), "blue heart": (30, 60, 220),
           "yellow star": (240, 220, 20), "black cat": (10, 10, 10), "white cloud": (250, 250, 250)}
COLOUR_DESCRIPTIONS = {"red apple": ["a shiny fruit the colour of a fire engine"],
                       "black cat": ["a dark kitty", "a night-coloured pet that purrs"]}


def write_colour_folder(root, size: int = 16, styles=("google", "openmoji")):
    """Solid-colour 'emoji', every name in every style, as a captioned imagefolder under root."""
    import json

    from PIL import Image

    rows = []
    for style in styles:
        (root / style).mkdir(parents=True, exist_ok=True)
        for i, (text, rgb) in enumerate(COLOURS.items()):
            shade = tuple(min(255, c + 20 * styles.index(style)) for c in rgb)  # styles differ a little
            Image.new("RGB", (size, size), shade).save(root / style / f"{i}.png")
            rows.append({"file_name": f"{style}/{i}.png", "text": text, "style": style, "keywords": ["thing"],
                         "descriptions": COLOUR_DESCRIPTIONS.get(text, [])})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def start_app(model_dir, cache_dir):
    """app.build_demo on a tiny pipeline (with the shipped upsampler), served from a background
    thread on a free port."""
    from types import SimpleNamespace

    import app
    from model.bench.app_client import free_port
    from model.pipeline import Pipeline

    pipeline = Pipeline.from_pretrained(str(model_dir), device="cpu")
    demo = app.build_demo(pipeline, examples_cache=cache_dir)
    port = free_port()
    app.launch(demo, pipeline, **app.launch_options("127.0.0.1", port), quiet=True)
    return SimpleNamespace(url=f"http://127.0.0.1:{port}/", demo=demo, pipeline=pipeline, cache=cache_dir)
