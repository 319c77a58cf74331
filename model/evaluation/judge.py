"""The instruments a shown image is measured with, together: the evaluator (R-precision among
1 + DISTRACTORS names) and two style readers trained on the real images (the pixel CNN of
style_judge.py and the older linear probe on the evaluator's features).

    python -m model.evaluation.judge            # train (or load) the style CNN and report it beside the probe

Used by user_prompts.py and image_features.py; it only measures (nothing in training imports it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..dataset import image_names, load_dataset
from ..evaluator import DEFAULT_EVALUATOR_DIR, Evaluator, base_name, encode_images
from . import style_judge
from .config import DISTRACTORS
from .metrics import prompt_means, r_precision


def to_uint8_pil(images) -> torch.Tensor:
    """PIL images -> (N, 3, S, S) uint8."""
    return torch.stack([torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1) for im in images])


def fit_probe(feats: torch.Tensor, styles: torch.Tensor, train: torch.Tensor, classes: int, steps: int = 300):
    """A linear probe on standardised features, fitted on the rows train (full-batch Adam)
    -> (probe, (mean, std))."""
    mu, sd = feats[train].mean(0), feats[train].std(0) + 1e-6
    probe = torch.nn.Linear(feats.shape[1], classes)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    x = (feats[train] - mu) / sd
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(probe(x), styles[train]).backward()
        opt.step()
    return probe.requires_grad_(False), (mu, sd)


class Judge:
    """The evaluator (R-precision) and two style instruments trained here on the real images:

    * ``style_judge``: a small CNN on pixels (model.evaluation.style_judge), trained on 80% of
      the base names with resolution/blur augmentations, cached under runs/style_judge/. It
      gives score()'s "styles".
    * the old linear probe on the evaluator's image features (300 full-batch Adam steps, a
      random 80% of the images): score()'s "styles_probe". Those features are built to be
      style-invariant, so the probe reads style poorly (and reads blur as fluent3d); kept for
      comparison.

    ``style_report``: both on the CNN's held-out names, clean and blurred through 16 and 32 px
    (the probe refitted on the CNN's training names for this, so both are scored on emojis
    they never saw), and the old probe on its own held-out images."""

    def __init__(self, pack, names: list[str], evaluator_dir=DEFAULT_EVALUATOR_DIR, seed: int = 0,
                 style_cache=style_judge.DEFAULT_CACHE, log=print) -> None:
        self.ev, _ = Evaluator.load(evaluator_dir)
        self.uniq = sorted(set(names))
        self.idx = {n: i for i, n in enumerate(self.uniq)}
        self.name_txt = self.ev.text_embed(torch.stack([pack.embedding_of(n) for n in self.uniq]))  # (U, D)
        feats = self.features(pack.images)
        classes = len(pack.style_names)
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(feats), generator=g)
        tr, te = perm[: int(0.8 * len(perm))], perm[int(0.8 * len(perm)):]
        self.probe, self.norm = fit_probe(feats, pack.styles, tr, classes)
        self.style_acc_real = float((self.probe_predict_features(feats[te]) == pack.styles[te]).float().mean())
        self.style_judge = style_judge.load_or_train(pack, names, style_cache, log=log)
        # the instruments' own report: CNN vs a probe fitted on the same training names, on held-out names
        cfg = style_judge.StyleJudgeConfig()
        ntr, nte = style_judge.name_split(names, cfg.test_frac, cfg.seed)
        probe_n, norm_n = fit_probe(feats, pack.styles, ntr, classes)

        def probe_names(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return probe_n((self.features(x) - norm_n[0]) / norm_n[1]).argmax(1)

        self.style_report = style_judge.instrument_report(
            {"cnn": self.style_judge.predict, "probe": probe_names}, pack.images[nte], pack.styles[nte], pack.style_names)
        self.style_report_probe_as_used = style_judge.instrument_report(
            {"probe": self.probe_predict}, pack.images[te], pack.styles[te], pack.style_names)
        self.rng = np.random.default_rng(seed)

    def probe_predict_features(self, f: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.probe((f - self.norm[0]) / self.norm[1]).argmax(1)

    def probe_predict(self, images: torch.Tensor) -> torch.Tensor:
        """The old linear probe's style ids for (M, 3, S, S) uint8 images."""
        return self.probe_predict_features(self.features(images))

    def style_summary(self) -> dict:
        """Per-style held-out accuracies of both instruments (clean and blurred) for results.json."""
        rep, old = self.style_report, self.style_report_probe_as_used
        out = {}
        for v in rep["cnn"]:
            key = "real_acc" if v == "clean" else f"{v}_acc"
            out[f"style_judge_{key}"] = rep["cnn"][v]["per_style"]
            out[f"style_probe_names_{key}"] = rep["probe"][v]["per_style"]
            out[f"style_probe_{key}_per_style"] = old["probe"][v]["per_style"]
        out["style_judge_blur16_read_as_fluent3d"] = rep["cnn"]["blur16"].get("read_as_fluent3d")
        out["style_probe_names_blur16_read_as_fluent3d"] = rep["probe"]["blur16"].get("read_as_fluent3d")
        return out

    def features(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return encode_images(self.ev.image_features, images)

    def candidates(self, name: str, seed: int) -> list[int]:
        """The target's id, then DISTRACTORS other base names' ids (fixed per name and seed)."""
        others = [i for i, n in enumerate(self.uniq) if base_name(n) != base_name(name)]
        rng = np.random.default_rng(int.from_bytes(hashlib.md5(f"{seed}:{name}".encode()).digest()[:4], "big"))
        return [self.idx[name]] + [others[j] for j in rng.permutation(len(others))[:DISTRACTORS]]

    def score(self, images: torch.Tensor, owners: torch.Tensor, names: list[str], seed: int = 0) -> dict:
        """images (M, 3, S, S) uint8 of prompts owners (M,) whose targets are names -> hits (M,),
        per-prompt means, predicted styles (M,): "styles" by the style classifier (CNN on pixels),
        "styles_probe" by the old probe on the evaluator's features."""
        with torch.no_grad():
            f = self.features(images)
            emb = self.ev.image_embed(f)
            cands = torch.stack([self.name_txt[torch.tensor(self.candidates(n, seed))] for n in names])  # (P, C, D)
            hits = r_precision(emb, cands[owners])
        styles_probe = self.probe_predict_features(f)
        styles = self.style_judge.predict(images)
        return {"hits": hits, "per_prompt": prompt_means(hits, owners, len(names)), "styles": styles,
                "styles_probe": styles_probe}

    def part_hits(self, images: torch.Tensor, parts: list[list[list[str]]], seed: int = 0) -> torch.Tensor:
        """images (M, 3, S, S) uint8; parts[m]: what image m should show, each part a list of the
        emoji names that count as it -> (M, P) hits: a part is recognised when, in the whole image
        or one of its windows (`crops`), its best name beats the DISTRACTORS other names of its
        first name's candidates, less any name of the image's own parts (an owl beside a moon is
        not wrong for looking like a moon). nan: no such part."""
        views = crops(images)  # (M, V, 3, S, S): a part may fill only part of the picture
        with torch.no_grad():
            emb = self.ev.image_embed(self.features(views.flatten(0, 1))).view(*views.shape[:2], -1)
        out = torch.full((len(images), max(len(p) for p in parts)), float("nan"))
        for m, image_parts in enumerate(parts):
            sim = emb[m] @ self.name_txt.T  # (V, U)
            own = {base_name(n) for part in image_parts for n in part}
            for k, part in enumerate(image_parts):
                others = [i for i in self.candidates(part[0], seed)[1:] if base_name(self.uniq[i]) not in own]
                out[m, k] = float((sim[:, [self.idx[n] for n in part]].max(1).values > sim[:, others].max(1).values).any())
        return out


def crops(images: torch.Tensor, frac: float = 0.6, steps: int = 3) -> torch.Tensor:
    """(M, 3, S, S) uint8 -> (M, 1 + steps^2, 3, S, S) uint8: the whole image, then square windows
    of frac x its side on a steps x steps grid, each resized to S."""
    size = images.shape[-1]
    w = round(frac * size)
    starts = [round(i * (size - w) / (steps - 1)) for i in range(steps)]
    views = [images.float()] + [F.interpolate(images[..., y:y + w, x:x + w].float(), size=(size, size), mode="bilinear",
                                              antialias=True, align_corners=False) for y in starts for x in starts]
    return torch.stack(views, 1).round().clamp(0, 255).to(torch.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train (or load) the pixel style classifier and report it beside the "
                                             "evaluator-feature probe on held-out emoji names.")
    ap.add_argument("--data", default=".pack/emoji64-one.safetensors")
    ap.add_argument("--evaluator", default=str(DEFAULT_EVALUATOR_DIR))
    ap.add_argument("--cache", default=str(style_judge.DEFAULT_CACHE), help="folder of built weights ('' : never cache)")
    ap.add_argument("--out", default=None, help="write the report as OUT/style_judge.json")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    pack = load_dataset(a.data, size=64)
    names = image_names(pack)
    judge = Judge(pack, names, a.evaluator, style_cache=a.cache or None)
    print(style_judge.report_markdown(judge.style_report))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "style_judge.json").write_text(json.dumps(judge.style_report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
