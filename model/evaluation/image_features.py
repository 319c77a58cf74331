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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Variations and restyling of real emojis, measured.")
    ap.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped one)")
    ap.add_argument("--data", default=".pack/emoji64-one.safetensors")
    ap.add_argument("--evaluator", default=str(DEFAULT_EVALUATOR_DIR))
    ap.add_argument("--images", type=int, default=200, help="real images measured (spread over the styles)")
    ap.add_argument("--out", default="runs/image-eval")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from ..pipeline import Pipeline

    pack = load_dataset(a.data, size=64)
    names = image_names(pack)
    judge = Judge(pack, names, a.evaluator)
    pipe = Pipeline.from_pretrained(a.model, device="cpu", upsampler=None)
    rng = np.random.default_rng(a.seed)
    pick = rng.choice(len(pack.images), size=min(a.images, len(pack.images)), replace=False).tolist()
    styles = pipe.model.cfg.styles
    k = 4
    t0 = time.time()
    rows = {"input": [], "redraw": [], "variations": []}
    owners = {key: [] for key in rows}
    variety, to_input = [], []
    rest = {"offset": ([], [], []), "plain": ([], [], [])}  # images, owners, asked style
    sheet = []
    prior = pipe.model.prior
    shift = prior.restyle
    for i, idx in enumerate(pick):
        img = Image.fromarray(pack.images[idx].permute(1, 2, 0).numpy())
        rows["input"].append(img); owners["input"].append(i)
        redraw, _ = pipe.variations(img, n=1, seed=0, strength=0.0, upscale=False)
        rows["redraw"].append(redraw.images[0].image); owners["redraw"].append(i)
        var, looks = pipe.variations(img, n=k, seed=a.seed, candidates=8, upscale=False)
        v = [s.image for s in var.images]
        rows["variations"] += v; owners["variations"] += [i] * len(v)
        vx = to_uint8_pil(v)
        variety.append(pairwise_rms(vx))
        to_input.append(float(np.mean([pairwise_rms(torch.stack([vx[j], pack.images[idx]])) for j in range(len(vx))])))
        source = int(pack.styles[idx])
        for mode in ("plain", "offset"):  # offset last: the sheet shows what the app does
            prior.restyle = shift if mode == "offset" else (lambda z, s, t: z)
            out, _ = pipe.restyle(img, upscale=False)
            for s in out:
                t = styles.index(s.style)
                if t != source:
                    rest[mode][0].append(s.image); rest[mode][1].append(i); rest[mode][2].append(t)
        prior.restyle = shift
        if i < 8:
            sheet.append([img, redraw.images[0].image, *v, *[s.image for s in out]])
    item_names = [names[idx] for idx in pick]
    res = {"images": len(pick), "k": k, "seconds": round(time.time() - t0, 1),
           "style_probe_real_acc": round(judge.style_acc_real, 4), **judge.style_summary()}
    for key, imgs in rows.items():
        sc = judge.score(to_uint8_pil(imgs), torch.tensor(owners[key]), item_names)
        res[f"rprec_{key}"] = round(float(sc["per_prompt"].mean()), 4)
    res["variety_rms_between"] = round(float(np.mean(variety)), 4)
    res["variety_rms_to_input"] = round(float(np.mean(to_input)), 4)
    for mode, (imgs, own, want) in rest.items():
        sc = judge.score(to_uint8_pil(imgs), torch.tensor(own), item_names)
        want_t = torch.tensor(want)
        judged = sc["styles"] == want_t
        judged_probe = sc["styles_probe"] == want_t
        res[f"restyle_{mode}"] = {
            "rprec": round(float(sc["hits"].float().mean()), 4),
            "judged_style": round(float(judged.float().mean()), 4),
            "judged_by_target": {styles[t]: round(float(judged[want_t == t].float().mean()), 4)
                                 for t in range(len(styles)) if (want_t == t).any()},
            "judged_style_probe": round(float(judged_probe.float().mean()), 4),
            "judged_by_target_probe": {styles[t]: round(float(judged_probe[want_t == t].float().mean()), 4)
                                       for t in range(len(styles)) if (want_t == t).any()}}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "image_features.json").write_text(json.dumps(res, indent=2) + "\n")
    cols = max(len(r) for r in sheet)
    canvas = Image.new("RGB", (cols * 66, len(sheet) * 66), "white")
    for r, row in enumerate(sheet):
        for c, im in enumerate(row):
            canvas.paste(im.resize((64, 64)), (c * 66, r * 66))
    canvas.resize((canvas.width * 2, canvas.height * 2), Image.NEAREST).save(out / "image_features.png")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
