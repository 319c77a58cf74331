"""Measure the image features on real emojis, with the instruments the model never trained on
(the project's evaluator, the style classifier of model.evaluation.style_judge: a small CNN on
pixels trained on real images of held-out names, and the old linear style probe on the
evaluator's features, reported beside it):

    python -m model.evaluation.image_features --out runs/image-eval

- variations: real 64-px images -> 4 variations each (the app's defaults, raw 64 px); how often
  the evaluator recognises the input's emoji in them (R-precision among 1 + 99 distractors),
  beside the input itself and the model's plain redraw (strength 0); and how much they vary
  (RMS between variations of one image, and to the input).
- restyle: the same images drawn in each other style; R-precision and how often the style
  classifier (and, as a second field, the old probe) judges them the asked style, with and
  without the style-mean shift.
Results go to OUT/image_features.json and a sample sheet OUT/image_features.png.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..dataset import image_names, load_dataset
from ..evaluator import DEFAULT_EVALUATOR_DIR
from .judge import Judge, to_uint8_pil


def pairwise_rms(x: torch.Tensor) -> float:
    """x (k, 3, S, S) uint8 -> mean RMS (in [0, 1] units) over the k(k-1)/2 pairs."""
    f = x.float().flatten(1) / 255
    d = [float(((f[i] - f[j]) ** 2).mean().sqrt()) for i in range(len(f)) for j in range(i + 1, len(f))]
    return float(np.mean(d)) if d else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Variations and restyling of real emojis, measured.")
    ap.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped one)")
    ap.add_argument("--data", default=".pack/emoji64-one.safetensors")
    ap.add_argument("--evaluator", default=str(DEFAULT_EVALUATOR_DIR))
    ap.add_argument("--images", type=int, default=200, help="real images measured (spread over the styles)")
    ap.add_argument("--out", default="runs/image-eval")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


@dataclass
class Drawings:
    """What the pipeline drew from the picked real images; every image list has an owner list
    beside it (the index into the picked images whose name it should show)."""
    rows: dict[str, list[Image.Image]] = field(
        default_factory=lambda: {"input": [], "redraw": [], "variations": []})
    owners: dict[str, list[int]] = field(
        default_factory=lambda: {"input": [], "redraw": [], "variations": []})
    variety: list[float] = field(default_factory=list)  # RMS between one image's variations
    to_input: list[float] = field(default_factory=list)  # RMS of its variations to the input
    # restyle mode ("plain": no style-mean shift, "offset": the app's) -> (images, owners, asked style)
    restyled: dict[str, tuple[list, list, list]] = field(
        default_factory=lambda: {"offset": ([], [], []), "plain": ([], [], [])})
    sheet: list[list[Image.Image]] = field(default_factory=list)  # the first 8 inputs' rows


def _restyle(pipe, img: Image.Image, i: int, source: int, out: Drawings) -> list:
    """Restyle ``img`` without and then with the prior's style-mean shift, keeping the images in
    styles other than its ``source``; returns the shifted restyles (what the app shows)."""
    prior = pipe.model.prior
    styles = pipe.model.cfg.styles
    shift = prior.restyle
    for mode in ("plain", "offset"):  # offset last: the sheet shows what the app does
        prior.restyle = shift if mode == "offset" else (lambda z, s, t: z)
        styled, _ = pipe.image_tasks.restyle(img, upscale=False)
        for s in styled:
            t = styles.index(s.style)
            if t != source:
                imgs, owners, asked = out.restyled[mode]
                imgs.append(s.image); owners.append(i); asked.append(t)
    prior.restyle = shift
    return styled


def draw(pipe, pack, pick: list[int], *, k: int, seed: int) -> Drawings:
    """Redraw (strength 0), ``k`` variations and restyles of each picked real image, raw 64 px."""
    out = Drawings()
    for i, idx in enumerate(pick):
        img = Image.fromarray(pack.images[idx].permute(1, 2, 0).numpy())
        out.rows["input"].append(img); out.owners["input"].append(i)
        redraw, _ = pipe.image_tasks.variations(img, n=1, seed=0, strength=0.0, upscale=False)
        out.rows["redraw"].append(redraw.images[0].image); out.owners["redraw"].append(i)
        var, _ = pipe.image_tasks.variations(img, n=k, seed=seed, candidates=8, upscale=False)
        v = [s.image for s in var.images]
        out.rows["variations"] += v; out.owners["variations"] += [i] * len(v)
        vx = to_uint8_pil(v)
        out.variety.append(pairwise_rms(vx))
        out.to_input.append(float(np.mean([pairwise_rms(torch.stack([vx[j], pack.images[idx]]))
                                           for j in range(len(vx))])))
        styled = _restyle(pipe, img, i, int(pack.styles[idx]), out)
        if i < 8:
            out.sheet.append([img, redraw.images[0].image, *v, *[s.image for s in styled]])
    return out


def _restyle_scores(judge: Judge, imgs: list, own: list[int], want: list[int], item_names: list[str],
                    styles: tuple[str, ...]) -> dict:
    """R-precision of restyled images and how often each style reader judges them the asked style."""
    sc = judge.score(to_uint8_pil(imgs), torch.tensor(own), item_names)
    want_t = torch.tensor(want)
    judged = sc["styles"] == want_t
    judged_probe = sc["styles_probe"] == want_t
    return {
        "rprec": round(float(sc["hits"].float().mean()), 4),
        "judged_style": round(float(judged.float().mean()), 4),
        "judged_by_target": {styles[t]: round(float(judged[want_t == t].float().mean()), 4)
                             for t in range(len(styles)) if (want_t == t).any()},
        "judged_style_probe": round(float(judged_probe.float().mean()), 4),
        "judged_by_target_probe": {styles[t]: round(float(judged_probe[want_t == t].float().mean()), 4)
                                   for t in range(len(styles)) if (want_t == t).any()}}


def measure(judge: Judge, drawn: Drawings, item_names: list[str], styles: tuple[str, ...]) -> dict:
    """The results' measured fields: R-precision of inputs, redraws and variations, their variety,
    and the restyle scores per mode."""
    res = {}
    for key, imgs in drawn.rows.items():
        sc = judge.score(to_uint8_pil(imgs), torch.tensor(drawn.owners[key]), item_names)
        res[f"rprec_{key}"] = round(float(sc["per_prompt"].mean()), 4)
    res["variety_rms_between"] = round(float(np.mean(drawn.variety)), 4)
    res["variety_rms_to_input"] = round(float(np.mean(drawn.to_input)), 4)
    for mode, (imgs, own, want) in drawn.restyled.items():
        res[f"restyle_{mode}"] = _restyle_scores(judge, imgs, own, want, item_names, styles)
    return res


def save_sheet(sheet: list[list[Image.Image]], path: Path) -> None:
    """One row per image (64-px tiles, 2 px apart), enlarged 2x by nearest neighbour."""
    cols = max(len(r) for r in sheet)
    canvas = Image.new("RGB", (cols * 66, len(sheet) * 66), "white")
    for r, row in enumerate(sheet):
        for c, im in enumerate(row):
            canvas.paste(im.resize((64, 64)), (c * 66, r * 66))
    canvas.resize((canvas.width * 2, canvas.height * 2), Image.NEAREST).save(path)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    from ..pipeline import Pipeline

    pack = load_dataset(a.data, size=64)
    names = image_names(pack)
    judge = Judge(pack, names, a.evaluator)
    pipe = Pipeline.from_pretrained(a.model, device="cpu", upsampler=None)
    rng = np.random.default_rng(a.seed)
    pick = rng.choice(len(pack.images), size=min(a.images, len(pack.images)), replace=False).tolist()
    k = 4
    t0 = time.time()
    drawn = draw(pipe, pack, pick, k=k, seed=a.seed)
    res = {"images": len(pick), "k": k, "seconds": round(time.time() - t0, 1),
           "style_probe_real_acc": round(judge.style_acc_real, 4), **judge.style_summary(),
           **measure(judge, drawn, [names[idx] for idx in pick], pipe.model.cfg.styles)}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "image_features.json").write_text(json.dumps(res, indent=2) + "\n")
    save_sheet(drawn.sheet, out / "image_features.png")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
