"""The evaluation's reports: the notes results.json carries, results.md and quality.png."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .config import DISTRACTORS, NEAREST, ROWS, RPREC_KEYS


def fd_enl0_note(model, folder) -> str:
    """Whether FD-ENL0 is independent of the model's training: not when its discriminator is built
    on EfficientNet-Lite features, nor when a perceptual loss on them (the retired GAN's --perc-weight) trained its
    generator, as the folder's config.json records."""
    in_d = any(type(mod).__module__.startswith("efficientnet") for mod in model.discriminator.modules())
    try:
        in_g = bool(json.loads((Path(folder) / "config.json").read_text()).get("training", {}).get("enl0_in_training"))
    except (OSError, TypeError, ValueError, AttributeError):
        in_g = False
    head = "ImageNet EfficientNet-Lite0 pooled features (224 px). "
    if in_d or in_g:
        why = ("discriminator is built on EfficientNet-Lite features" if in_d else
               "generator was trained with a perceptual loss on these features")
        return head + f"CAUTION: this model's {why}, so FD-ENL0 is not independent of training; trust FD-eval more. Not FID."
    return head + ("This model's discriminator does not use them (no EfficientNet module in it) and its training "
                   "records no perceptual loss on them, so FD-ENL0 is independent of training. Not FID.")


def notes(model, folder) -> dict[str, str]:
    """What each column of results.json means (its "notes"), FD-ENL0's independence of this model included."""
    return {
        "fd_enl0": fd_enl0_note(model, folder),
        "fd_eval": "pooled image features of our contrastive evaluator (trained from scratch on the real "
                   "images of --data, never on generated ones). Not FID.",
        "retrieval": "returns the real image whose name embedding is nearest the prompt (same style for FD), "
                     "from a pool disjoint from the FD queries and reference",
        "r_precision": f"top-1 of the prompt's name among 1 + {DISTRACTORS} names of other emoji (fewer when "
                       "the data has fewer), ranked by the evaluator; 'held-out' = names (all skin tones) "
                       "held out from its training. Chance is 0.01. The real row's images do not depend on the wording, so "
                       "its paraphrase columns repeat its exact ones: they show the evaluator's own accuracy. "
                       f"'vs {NEAREST} nearest': the same images, against the {NEAREST} other base names whose "
                       "MiniLM embeddings are nearest the prompt's (grinning face vs grinning face with big eyes, "
                       "beaming face...): the fine detail a person reads; chance is 0.1, and the real row shows how "
                       "far such near names can be told apart at all.",
        "diversity": "among the images of one prompt: mean pairwise L2 of unit evaluator embeddings; "
                     "per-pixel std (0-1). The real row uses the real images of the name (all styles).",
        "seed_diversity": "generator rows only: per-pixel std (0-1) among seeds of one prompt drawn in the "
                          "same style, i.e. what the noise alone changes (needs >= 2 images per style: "
                          "full mode draws 8 per prompt in 4 styles)",
        "spectrum": "grey-level power spectrum of the FD queries (generated: the same names and styles), "
                    "mean power per band of spatial frequency (cycles/pixel; 0.5 = one pixel on, one off) "
                    "divided by the reference real images': > 1 in the top band = texture the real emoji lack "
                    "(crosshatch, specks), < 1 = blur. Band totals can hide a crosshatch behind blur, so "
                    "'0.5 x' / '0.5 y' give the ratio at exactly 0.5 cycles/pixel along each axis: one-pixel "
                    "stripes",
        "samples": "raw generator samples (no discriminator gate), truncation 1, style 'any' for "
                   "R-precision, the query image's style for FD",
    }


def _f(v, nd=3) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"


def to_markdown(r: dict) -> str:
    rows, styles = r["rows"], r["data"]["styles"]
    cols = [("R-prec exact (held-out names)", "rprec_exact_test"), ("R-prec paraphrase (held-out)", "rprec_paraphrase_test"),
            ("R-prec exact (train names)", "rprec_exact_train"), ("R-prec paraphrase (train)", "rprec_paraphrase_train"),
            (f"R-prec vs {NEAREST} nearest names, held-out / train", "rprec_nearest_test", "rprec_nearest_train"),
            ("FD-eval", "fd_eval"), ("FD-ENL0", "fd_enl0"), ("diversity (emb L2)", "diversity_embed_l2"),
            ("diversity (pixel std)", "diversity_pixel_std"), ("seed diversity, one style (pixel std)", "seed_diversity_pixel_std")]
    lines = [f"# Evaluation of `{r['model']['id']}`", "",
             f"Data `{r['data']['path']}`: {r['data']['images']} images, {r['data']['names']} names; "
             f"sizes {r['sizes']}; {r['seconds']:.0f} s. Higher R-precision is better, lower FD is better.", "",
             "| row | " + " | ".join(c for c, *_ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row in ROWS:
        lines.append(f"| {row} | " + " | ".join(
            " / ".join(_f(rows[row].get(k), 1 if k.startswith("fd") else 3) for k in keys) for _, *keys in cols) + " |")
    se = {k: rows["model"].get(k + "_se") for k in RPREC_KEYS}
    if any(v is not None for v in se.values()):
        lines += ["", f"Standard errors of the model row's R-precision over its {r['sizes']['n_prompts']} prompts per "
                      "split (the prompt is the unit: its images are not independent draws): " + ", ".join(
                          f"{k.removeprefix('rprec_').replace('_test', ' held-out').replace('_train', ' train')} "
                          f"±{_f(v)}" for k, v in se.items() if v is not None) + "."]
    if "compared_to" in r:
        c = r["compared_to"]
        lines += ["", f"Paired with `{c['model']}` ({c['results']}), the same prompts and seeds: "]
        if "paired" in c:
            lines[-1] += ("difference = this model minus that one, mean over prompts, ± its standard error "
                          "(|difference| < 2 s.e. is within the noise):")
            lines += ["", "| R-precision | this model | that model | difference | ± s.e. |", "|---|---|---|---|---|"]
            for k, d in c["paired"].items():
                lines.append(f"| {k.removeprefix('rprec_')} | {_f(d['a'])} | {_f(d['b'])} | {d['diff']:+.3f} | {_f(d['se'])} |")
        else:
            lines[-1] += f"not compared: {c['error']}"
    lines += ["", "FD-eval per style:", "", "| row | " + " | ".join(styles) + " |", "|---" * (len(styles) + 1) + "|"]
    for row in ROWS:
        ps = rows[row].get("fd_eval_per_style", {})
        lines.append(f"| {row} | " + " | ".join(_f(ps.get(s), 1) for s in styles) + " |")
    mstyles = r["model"]["styles"]
    lines += ["", f"R-precision per style, exact names: held-out / training names / training names vs their {NEAREST} "
                  "nearest (generators: seed k is drawn in style k mod the number of styles):", "",
              "| row | " + " | ".join(mstyles) + " |", "|---" * (len(mstyles) + 1) + "|"]
    for row in ROWS:
        per = [rows[row].get(k, {}) for k in ("rprec_exact_test_per_style", "rprec_exact_train_per_style",
                                              "rprec_nearest_train_per_style")]
        lines.append(f"| {row} | " + " | ".join(" / ".join(_f(d.get(s)) for d in per) for s in mstyles) + " |")
    bands = list(rows["real"].get("spectrum_ratio", {}))
    if bands:
        lines += ["", "Spectrum: power per frequency band (cycles/pixel) over the reference real images' "
                      "(1 = real texture, > 1 excess, < 1 blur):", "",
                  "| row | " + " | ".join(bands) + " |", "|---" * (len(bands) + 1) + "|"]
        for row in ROWS:
            lines.append(f"| {row} | " + " | ".join(_f(rows[row]["spectrum_ratio"].get(b), 2) for b in bands) + " |")
    if "gate" in r:
        g = r["gate"]
        lines += ["", f"The discriminator as the app's gate, on {g['images']} training images and as many raw samples "
                      f"of their names and styles: at gate {g['gate']} it keeps {g['kept_real']:.1%} of the real "
                      f"images and {g['kept_model']:.1%} of the samples; realism AUC (real vs sample) "
                      f"{g['realism_auc']:.3f}, match AUC (real image with its name vs another's) {g['match_auc']:.3f}; "
                      "0.5 = chance."]
    lines += ["", *(f"- **{k}**: {v}" for k, v in r["notes"].items()),
              f"- sanity: FD-eval of the reference set against itself = {r['checks']['fd_eval_ref_vs_itself']:.2g}"]
    if "speed" in r:
        from ..bench import speed_markdown
        lines += ["", speed_markdown(r["speed"])]
    return "\n".join(lines) + "\n"


def plot(r: dict, grid: dict | None, path: Path) -> None:
    """Bars of R-precision and both FDs per row; below, 8 images of held-out names per row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = r["rows"]
    fig = plt.figure(figsize=(16, 8 if grid else 4.5))
    gs = fig.add_gridspec(2 if grid else 1, 3, height_ratios=[1, 1] if grid else [1])
    ax = fig.add_subplot(gs[0, 0])
    keys = ["rprec_exact_test", "rprec_paraphrase_test", "rprec_exact_train", "rprec_paraphrase_train",
            "rprec_nearest_test", "rprec_nearest_train"]
    w = 0.8 / len(ROWS)
    for i, row in enumerate(ROWS):
        ax.bar(np.arange(len(keys)) + i * w, [rows[row].get(k) or 0 for k in keys], w, label=row)
    ax.set_xticks(np.arange(len(keys)) + 0.4 - w / 2, ["exact\nheld-out", "para.\nheld-out", "exact\ntrain",
                                                       "para.\ntrain", f"{NEAREST} near\nheld-out", f"{NEAREST} near\ntrain"],
                  fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(f"R-precision (top-1 of 100; of 1 + {NEAREST} nearest), higher is better")
    ax.legend(fontsize=8)
    for j, kind in enumerate(("fd_eval", "fd_enl0")):
        ax = fig.add_subplot(gs[0, 1 + j])
        ax.bar(ROWS, [rows[row].get(kind) or 0 for row in ROWS], color=["C0", "C1", "C2", "C3"])
        ax.set_title(f"{'FD-eval' if kind == 'fd_eval' else 'FD-ENL0'}, lower is better (not FID)")
    if grid:
        ax = fig.add_subplot(gs[1, :])
        size = next(iter(grid.values())).shape[-1]
        strip = torch.full((3, size * len(ROWS), size * 8), 255, dtype=torch.uint8)
        for i, row in enumerate(ROWS):
            for j, img in enumerate(grid[row][:8]):
                strip[:, i * size:(i + 1) * size, j * size:(j + 1) * size] = img
        ax.imshow(strip.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_yticks([(i + 0.5) * size for i in range(len(ROWS))], ROWS)
        ax.set_xticks([])
        ax.set_title("images of held-out names (exact-name prompts, style 'any')")
    fig.suptitle(f"{r['model']['id']} on {r['data']['path']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(results: dict, grid: dict | None, out: Path) -> None:
    """results.json, results.md and quality.png into out."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    (out / "results.md").write_text(to_markdown(results))
    plot(results, grid, out / "quality.png")
