"""What a user sees for what a user types, measured (``python -m model.evaluation.user_prompts``).

    python -m model.evaluation.user_prompts --models assets/model runs/vae/export --out runs/user-eval

Prompts: natural descriptions written for this (``assets/prompts/natural.jsonl``: "a cute
puppy's head" for dog face, no word of the name, never a training caption) and, for the same
emojis, their exact names. Each model answers every prompt with the app's default call
(4 images from 16 candidates, style "any", seed 0, its own gate). Rows:

* a model: the images the default call shows;
* ``search``: an emoji search box, the training caption nearest the prompt (MiniLM) -> that
  emoji's real images: the bar a user would otherwise reach for;
* ``real``: the target emoji's own real images: the evaluator's ceiling.

Measures: R-precision (the evaluator ranks the target name among 1 + 99 random other names;
the prompt is the unit of the standard error), per style; the share of calls showing >= 1
image that passed the gate; how often the prior's first reading is the target; how far shown
images are from their nearest training image; unseen pairs (emojis a style lacks, asked in
that style) recognised and judged that style, and every shown image judged the style it was
drawn in, by a style classifier trained here on real images (a small CNN on pixels, held-out
names, model.evaluation.style_judge; the old linear probe on the evaluator's features is
reported beside it). Models are compared on the same prompts and seeds: paired differences
with standard errors.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from .. import paths
from ..dataset import image_names, load_dataset
from ..evaluator import DEFAULT_EVALUATOR_DIR
from . import style_judge
from .judge import Judge, to_uint8_pil
from .metrics import standard_error

NATURAL = paths.NATURAL_PROMPTS


def read_natural(path: str | Path = NATURAL) -> list[dict]:
    """[{name, prompt, category}] from a jsonl file (blank lines ignored)."""
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def nearest_distance(images: torch.Tensor, train: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """(M, 3, S, S), (N, 3, S, S) uint8 -> (M,) RMS pixel distance (0-1 scale) to the nearest training image."""
    t = train.flatten(1).float() / 255.0  # (N, D)
    tn = (t * t).sum(1)
    out = []
    for i in range(0, len(images), batch):
        q = images[i:i + batch].flatten(1).float() / 255.0
        d2 = (q * q).sum(1, keepdim=True) + tn[None] - 2 * q @ t.t()  # (b, N)
        out.append((d2.clamp(min=0).min(1).values / q.shape[1]).sqrt())
    return torch.cat(out)


def per_style(hits: torch.Tensor, styles: list[str]) -> dict[str, float]:
    """Mean hit of the images of each style."""
    out: dict[str, list[float]] = {}
    for h, s in zip(hits.tolist(), styles):
        out.setdefault(s, []).append(h)
    return {s: round(float(np.mean(v)), 4) for s, v in sorted(out.items())}


def _summary(per_prompt: torch.Tensor) -> dict:
    return {"mean": round(float(per_prompt.mean()), 4), "se": round(standard_error(per_prompt.numpy()), 4)}


def judged_drawn_style(sc: dict, styles: list[str], targets: list[str], pack) -> dict:
    """The share of images judged the style they were drawn in (style "any" draws every style in
    turn), by the style classifier and by the old probe, per style, split into seen pairs (the
    target exists in that style among the real images) and unseen ones; and the classifier's
    confusion on the seen ones ([drawn][judged])."""
    have: dict[str, set[str]] = {}
    for n, s in zip(image_names(pack), pack.styles.tolist()):
        have.setdefault(n, set()).add(pack.style_names[s])
    want = torch.tensor([pack.style_names.index(s) for s in styles])
    seen = torch.tensor([s in have.get(t, set()) for s, t in zip(styles, targets)], dtype=torch.bool)
    out = {}
    for key, pred in (("cnn", sc["styles"]), ("probe", sc["styles_probe"])):
        ok = (pred == want).float()
        for part, m in (("seen", seen), ("unseen", ~seen)):
            out[f"{key}_{part}"] = {s: round(float(ok[m & (want == k)].mean()), 4)
                                    for k, s in enumerate(pack.style_names) if (m & (want == k)).any()}
            out[f"{key}_{part}"]["all"] = round(float(ok[m].mean()), 4) if m.any() else None
    out["cnn_seen_confusion"] = style_judge.confusion(sc["styles"][seen], want[seen], len(pack.style_names))
    out["images_seen"], out["images_unseen"] = int(seen.sum()), int((~seen).sum())
    return out


def evaluate_model(model_id: str, sets: dict[str, list[tuple[str, str]]], judge: Judge, pack, *,
                   unseen: list[tuple[str, int]], k: int = 4, candidates: int = 16, log=print) -> dict:
    """The default call for every prompt of every set; sets: {kind: [(prompt, target name)]}."""
    from ..pipeline import Pipeline

    pipe = Pipeline.from_pretrained(model_id, device="cpu", upsampler=None)  # measured at the model size
    res: dict = {"model": str(model_id), "gate": pipe.gate.default}
    shown_all = []
    for kind, items in sets.items():
        t = time.time()
        images, owners, passed, read_ok, styles = [], [], [], [], []
        for i, (prompt, name) in enumerate(items):
            g = pipe.text_to_image.generate(prompt, n=k, seed=0, style="any", candidates=candidates, upscale=False)
            images += [s.image for s in g.images]
            styles += [s.style for s in g.images]
            owners += [i] * len(g.images)
            passed.append(any(s.kept for s in g.images))
            if g.reading is not None:
                read_ok.append(g.reading.names[0] == name)
        x = to_uint8_pil(images)
        shown_all.append(x)
        sc = judge.score(x, torch.tensor(owners), [n for _, n in items])
        res[kind] = {"rprec": _summary(sc["per_prompt"]), "by_prompt": [round(float(v), 4) for v in sc["per_prompt"]],
                     "per_style": per_style(sc["hits"], styles),
                     "shown_passed_gate": round(float(np.mean(passed)), 4),
                     "prior_top1": round(float(np.mean(read_ok)), 4) if read_ok else None,
                     "judged_drawn_style": judged_drawn_style(sc, styles, [items[o][1] for o in owners], pack)}
        log(f"  {model_id} {kind}: R-precision {res[kind]['rprec']}, passed gate {res[kind]['shown_passed_gate']}, "
            f"prior top-1 {res[kind]['prior_top1']} ({time.time() - t:.0f} s)")
    # unseen pairs: the exact name, asked in a style that lacks it
    if unseen:
        images, owners, passed, names = [], [], [], []
        for i, (name, style) in enumerate(unseen):
            g = pipe.text_to_image.generate(name, n=k, seed=0, style=pack.style_names[style], candidates=candidates,
                                            upscale=False)
            images += [s.image for s in g.images]
            owners += [i] * len(g.images)
            passed.append(any(s.kept for s in g.images))
            names.append(name)
        x = to_uint8_pil(images)
        sc = judge.score(x, torch.tensor(owners), names)
        want = torch.tensor([unseen[o][1] for o in owners])
        res["unseen"] = {"pairs": len(unseen), "rprec": _summary(sc["per_prompt"]),
                         "judged_style": round(float((sc["styles"] == want).float().mean()), 4),
                         "judged_style_probe": round(float((sc["styles_probe"] == want).float().mean()), 4),
                         "shown_passed_gate": round(float(np.mean(passed)), 4)}
        log(f"  {model_id} unseen pairs: {res['unseen']}")
    shown = torch.cat(shown_all)
    d = nearest_distance(shown, pack.images)
    res["nearest_train_rms"] = {"median": round(float(d.median()), 4), "share_below_0.02": round(float((d < 0.02).float().mean()), 4)}
    return res


def reference_rows(sets, judge: Judge, pack, names: list[str], k: int = 4) -> dict:
    """search: nearest training caption (MiniLM) -> its emoji's real images; real: the target's own."""
    from ..text_encoder import SentenceEncoder

    enc = SentenceEncoder()
    img_of: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        img_of.setdefault(n, []).append(i)
    cap_name = {}
    off = pack.cap_offsets.tolist()
    for i, n in enumerate(names):
        for c in pack.cap_index[off[i]:off[i + 1]].tolist():
            cap_name.setdefault(c, n)
    cap_ids = torch.tensor(sorted(cap_name))
    cap_emb = pack.cap_emb[cap_ids].float()
    out = {"search": {}, "real": {}}
    for kind, items in sets.items():
        q = enc.encode([p for p, _ in items])
        top = (q @ cap_emb.t()).argmax(1)
        found = [cap_name[int(cap_ids[j])] for j in top]
        for row, targets in (("search", found), ("real", [n for _, n in items])):
            ids = [img_of[n][:k] for n in targets]
            x = pack.images[torch.tensor([i for r in ids for i in r])]
            owners = torch.tensor([j for j, r in enumerate(ids) for _ in r])
            sc = judge.score(x, owners, [n for _, n in items])
            out[row][kind] = {"rprec": _summary(sc["per_prompt"]), "by_prompt": [round(float(v), 4) for v in sc["per_prompt"]],
                              "per_style": per_style(sc["hits"], [pack.style_names[int(pack.styles[i])] for r in ids for i in r])}
        out["search"][kind]["found_target"] = round(float(np.mean([f == n for f, (_, n) in zip(found, items)])), 4)
    return out


def paired(a: list[float], b: list[float]) -> dict:
    d = np.asarray(a) - np.asarray(b)
    return {"diff": round(float(d.mean()), 4), "se": round(standard_error(d), 4)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="R-precision of what the app shows for natural descriptions and exact "
                                             "names, beside an emoji search row, for one or more models.")
    ap.add_argument("--models", nargs="+", default=["default"], help="model folders or Hub ids (the first is the baseline)")
    ap.add_argument("--data", default=".pack/emoji64-one.safetensors", help="pack or imagefolder of the real images")
    ap.add_argument("--prompts", default=str(NATURAL), help="natural descriptions (jsonl: name, prompt)")
    ap.add_argument("--evaluator", default=str(DEFAULT_EVALUATOR_DIR), help="evaluator folder")
    ap.add_argument("--out", default="runs/user-eval", help="folder for results.json")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--style-cache", default=str(style_judge.DEFAULT_CACHE),
                    help="folder of the style classifier's built weights ('': train, never cache)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    pack = load_dataset(a.data, size=64)
    names = image_names(pack)
    known = set(names)
    natural = [r for r in read_natural(a.prompts) if r["name"] in known]
    sets = {"natural": [(r["prompt"], r["name"]) for r in natural], "exact": [(r["name"], r["name"]) for r in natural]}
    by_name: dict[str, set[int]] = {}
    for n, s in zip(names, pack.styles.tolist()):
        by_name.setdefault(n, set()).add(s)
    unseen = [(n, s) for n in sorted(by_name) for s in range(len(pack.style_names))
              if s not in by_name[n] and len(by_name[n]) >= 2 and pack.style_names[s] == "fluent3d"]
    judge = Judge(pack, names, a.evaluator, style_cache=a.style_cache or None)
    print(f"{len(natural)} natural prompts, {len(unseen)} unseen pairs; style probe accuracy on real images "
          f"{judge.style_acc_real:.3f}")
    print(style_judge.report_markdown(judge.style_report))
    results = {"prompts": len(natural), "unseen_pairs": len(unseen), "style_probe_real_acc": judge.style_acc_real,
               **judge.style_summary(), "style_instruments": {"held_out_names": judge.style_report,
                                                              "probe_as_used": judge.style_report_probe_as_used,
                                                              "style_judge_training": judge.style_judge.info},
               "rows": reference_rows(sets, judge, pack, names), "models": []}
    for m in a.models:
        results["models"].append(evaluate_model(m, sets, judge, pack, unseen=unseen))
    base = results["models"][0]
    for r in results["models"][1:]:
        r["paired_vs_first"] = {kind: paired(r[kind]["by_prompt"], base[kind]["by_prompt"]) for kind in sets}
    for r in results["models"]:
        r["vs_search"] = {kind: round(r[kind]["rprec"]["mean"] / max(results["rows"]["search"][kind]["rprec"]["mean"], 1e-9), 3)
                          for kind in sets}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(to_markdown(results))


def to_markdown(r: dict) -> str:
    rows = ["| row | natural R-prec | exact R-prec | shown ≥1 passed gate (natural / exact) | prior top-1 (natural / exact) |",
            "|---|---|---|---|---|"]
    f = lambda s: f"{s['mean']:.3f} ± {s['se']:.3f}"  # noqa: E731
    for name in ("search", "real"):
        rr = r["rows"][name]
        rows.append(f"| {name} | {f(rr['natural']['rprec'])} | {f(rr['exact']['rprec'])} | – | – |")
    for m in r["models"]:
        rows.append(f"| {m['model']} ({m['kind']}, gate {m['gate']:.2f}) | {f(m['natural']['rprec'])} | {f(m['exact']['rprec'])} | "
                    f"{m['natural']['shown_passed_gate']:.2f} / {m['exact']['shown_passed_gate']:.2f} | "
                    f"{m['natural']['prior_top1']} / {m['exact']['prior_top1']} |")
    lines = rows + [""]
    sj = r.get("style_judge_real_acc")
    if sj:
        fmt = lambda d: ", ".join(f"{k} {v:.2f}" for k, v in d.items())  # noqa: E731
        lines.append(f"- style classifier (CNN on pixels, held-out names), accuracy on real images: {fmt(sj)}; "
                     f"blurred through 16 px: {fmt(r['style_judge_blur16_acc'])}; the old probe on the evaluator's "
                     f"features, same images: {fmt(r['style_probe_names_real_acc'])}; blurred through 16 px: "
                     f"{fmt(r['style_probe_names_blur16_acc'])}")
    for m in r["models"]:
        if "unseen" in m:
            u = m["unseen"]
            probe = f" (old feature probe: {u['judged_style_probe']:.2f})" if "judged_style_probe" in u else ""
            lines.append(f"- {m['model']}: unseen pairs ({u['pairs']}, fluent3d): R-prec {f(u['rprec'])}, judged fluent3d "
                         f"by the style classifier (CNN on pixels, held-out names) {u['judged_style']:.2f}{probe}, "
                         f"shown passed gate {u['shown_passed_gate']:.2f}; nearest training image "
                         f"RMS median {m['nearest_train_rms']['median']:.3f}; vs search {m['vs_search']}")
        for kind in ("exact", "natural"):
            j = m.get(kind, {}).get("judged_drawn_style")
            if j:
                unseen_part = f", unseen pairs {j['cnn_unseen']}" if j["images_unseen"] else ""
                lines.append(f"- {m['model']} {kind} prompts (style \"any\"): judged the style drawn, by the style "
                             f"classifier, seen pairs {j['cnn_seen']}{unseen_part}; by the old probe, seen {j['probe_seen']}")
        if "paired_vs_first" in m:
            lines.append(f"- {m['model']} minus {r['models'][0]['model']} (paired): {m['paired_vs_first']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
