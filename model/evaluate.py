"""Quality (and speed) of a model, measured the same way every time.

    python -m model.evaluate [--quick] [--model PATH_OR_ID] [--data data/emoji/64] [--out assets/results]

Writes results.json, results.md and quality.png to --out. Rows, all from the same code:
``real`` (real images of a disjoint half of the data: the ceiling), ``model`` (the model under
test, raw samples: no discriminator gate, truncation 1), ``random_init`` (the same architecture
with fresh random weights: the floor) and ``retrieval`` (the real images of the name nearest the
prompt, from a pool of real images disjoint from the queries and the reference: a look-up
baseline that shows what memorising the training set would score).

Metrics (none of them is FID; no Inception weights exist offline):
* R-precision: an image's prompt name is ranked against 99 random other names by the
  evaluator (model.evaluator); top-1 rate, for exact names and for paraphrased prompts, on
  names the evaluator was trained on and on held-out names.
* FD-eval: Frechet distance of evaluator image features (trained from scratch on this data);
  FD-ENL0: the same on ImageNet EfficientNet-Lite0 pooled features. Both are computed with the
  same sample sizes for every row; values depend on those sizes, so compare rows, not runs.
* Diversity: mean pairwise L2 distance of unit evaluator embeddings among the images of one
  prompt, and the per-pixel standard deviation among them (0-1 scale).
* Spectrum: each row's mean power per spatial-frequency band, divided by the reference real
  images' -- above 1 in the top band is texture real emoji lack (crosshatch, specks), below 1
  is blur.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .dataset import Pack, load_dataset
from .evaluator import (DEFAULT_EVALUATOR_DIR, ENL0Features, Evaluator, EvaluatorConfig, EvaluatorTrainConfig,
                        base_name, encode_images, fd, image_names, train_evaluator)
from .gan import TextToImageGAN

PARAPHRASES = ("a picture of a {}", "{} icon", "an image showing {}", "a small drawing of {}",
               "{} symbol", "the {} sticker")  # none of these is a training caption template
ROWS = ("real", "model", "random_init", "retrieval")
DISTRACTORS = 99  # R-precision ranks the true name among 1 + 99 (AttnGAN)
NEAREST = 9  # hard R-precision: among 1 + the 9 other names nearest the prompt's (grinning vs smiling face)


@dataclass(kw_only=True)
class EvalConfig:
    model: str = ""  # model folder or Hub repo id; "" = env MODEL_ID, else assets/model
    data: str = "data/emoji/64"  # imagefolder (metadata.jsonl) or pack file: the real images
    out: str = "assets/results"  # results.json, results.md, quality.png
    quick: bool = False  # fewer prompts and images: a few minutes on 2 CPU threads
    evaluator: str = str(DEFAULT_EVALUATOR_DIR)  # evaluator folder; trained there when missing
    retrain_evaluator: bool = False  # train the evaluator again (on --data) and overwrite it
    evaluator_steps: int = EvaluatorTrainConfig.steps  # training steps when (re)training
    evaluator_width: int = EvaluatorConfig.channels[0]  # first-stage channels when (re)training (x2 per stage)
    n_fd: int = 0  # generated (and real query) images per row for FD; 0 = 200 quick / 1000 full
    n_ref: int = 0  # real reference images for FD; 0 = 600 quick / 3000 full
    n_prompts: int = 0  # R-precision prompts per name split; 0 = 24 quick / 150 full
    per_prompt: int = 0  # images per R-precision prompt; 0 = 4 quick / 8 full
    enl0: bool = True  # also FD-ENL0 (the slowest part: 224 px EfficientNet-Lite0)
    bench: bool = True  # also run model.bench (speed and cost) into the same results
    app_url: str = ""  # running app for the bench's API latency (gradio_client), "" = skip
    start_app: bool = False  # the bench launches app.py itself: start time, app RSS, API latency
    device: str = "cpu"  # cpu | cuda | auto
    threads: int = 2  # torch CPU threads
    seed: int = 0  # prompts, noise seeds, the data halves and the distractors
    compare_to: str = ""  # results.json (or its folder) of another model on the same data, prompts and seeds: paired R-precision differences with standard errors in results.md

    def sizes(self) -> dict:
        q = self.quick
        return dict(n_fd=self.n_fd or (200 if q else 1000), n_ref=self.n_ref or (600 if q else 3000),
                    n_prompts=self.n_prompts or (24 if q else 150), per_prompt=self.per_prompt or (4 if q else 8))


# --- sampling ---

def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) in [-1, 1] -> uint8, rounded as the app rounds its PNGs."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def sample(pipe, model: TextToImageGAN, emb: torch.Tensor, styles: torch.Tensor, seeds: list[int],
           batch: int = 64) -> torch.Tensor:
    """emb (N, 384), styles (N,) model style ids, seeds (N,) -> (N, 3, S, S) uint8 raw samples of
    `model`, drawn by Pipeline.sample exactly as the app draws them (truncation 1, no gate)."""
    pipe = dataclasses.replace(pipe, model=model)
    return torch.cat([to_uint8(pipe.sample(emb[i:i + batch], styles[i:i + batch], seeds[i:i + batch]))
                      for i in range(0, len(seeds), batch)])


def retrieve(query: torch.Tensor, pool_emb: torch.Tensor, k: int = 1, mask: torch.Tensor | None = None) -> torch.Tensor:
    """query (Q, 384), pool (P, 384) -> (Q, k) pool indices of the nearest names (cosine);
    mask (Q, P) bool limits the candidates (e.g. to the query's style)."""
    sim = torch.nn.functional.normalize(query.float(), dim=1) @ torch.nn.functional.normalize(pool_emb.float(), dim=1).t()
    if mask is not None:
        sim = sim.masked_fill(~mask, -2.0)
    return sim.topk(min(k, sim.shape[1]), dim=1).indices


# --- metrics ---

def r_precision(img_emb: torch.Tensor, cand_emb: torch.Tensor) -> torch.Tensor:
    """img_emb (N, D) unit, cand_emb (N, C, D) unit with the true caption at index 0 -> (N,) hit."""
    sim = torch.einsum("nd,ncd->nc", img_emb, cand_emb)  # (N, C)
    return (sim[:, 0:1] > sim[:, 1:]).all(dim=1).float()


def prompt_means(hits: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    """Per-image hits (M,) and the prompt each image belongs to (M,) -> (n,) each prompt's mean hit.
    The images of one prompt are not independent draws, so the prompt is the unit of a standard error."""
    total = torch.zeros(n).index_add_(0, owner, hits.float())
    return total / torch.bincount(owner, minlength=n).clamp(min=1)


def standard_error(values) -> float:
    """Standard error of the mean of independent values (sample std with ddof 1 / sqrt n); nan below 2."""
    v = np.asarray(values, dtype=float)
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def load_results(path) -> dict:
    """A results.json written by this module (clear errors for a wrong path or another file)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"--compare-to: no results file at {path}")
    try:
        r = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--compare-to: {path} is not JSON ({e})") from None
    if not isinstance(r, dict) or "rows" not in r or "model" not in r:
        raise ValueError(f"--compare-to: {path} is not a model.evaluate results.json")
    return r


RPREC_KEYS = [f"rprec_{kind}_{split}" for split in ("test", "train") for kind in ("exact", "paraphrase", "nearest")]


def paired_difference(a: dict, b: dict) -> dict[str, dict]:
    """Two results (results.json dicts) on the same data, prompts, seeds and images per prompt ->
    {R-precision key: {"a", "b", "diff" (a - b), "se"}}: the mean over prompts of the per-prompt
    difference and its standard error. Pairing by prompt cancels how hard each prompt is, so the
    standard error of a difference is much smaller than either run's own."""
    for field in ("prompts", "sizes"):
        if a.get(field) != b.get(field):
            raise ValueError(f"the two results differ in {field}: paired differences need the same prompts and "
                             "sizes (the same --data, --seed, --n-prompts and --per-prompt)")
    if a["config"].get("seed") != b["config"].get("seed"):
        raise ValueError("the two results used different --seed, so their noise seeds differ")
    if a.get("evaluator") != b.get("evaluator"):
        raise ValueError("the two results were measured by different evaluators")
    out = {}
    for key in RPREC_KEYS:
        pa, pb = a["rows"]["model"].get("by_prompt", {}).get(key), b["rows"]["model"].get("by_prompt", {}).get(key)
        if pa is None or pb is None:
            continue
        d = np.asarray(pa) - np.asarray(pb)
        out[key] = {"a": float(np.mean(pa)), "b": float(np.mean(pb)), "diff": float(d.mean()), "se": standard_error(d)}
    if not out:
        raise ValueError("no per-prompt R-precision in one of the results: re-run model.evaluate on it")
    return out


def group_means(values: torch.Tensor, groups: torch.Tensor, names) -> dict[str, float]:
    """Mean of values per group id, keyed by names[id]; ids without a name (e.g. 'any') or without values are left out."""
    return {name: float(values[groups == k].float().mean()) for k, name in enumerate(names) if (groups == k).any()}


def diversity(emb: torch.Tensor, images: torch.Tensor) -> tuple[float, float]:
    """One prompt's k images: mean pairwise L2 of unit embeddings (k, D); mean per-pixel std (0-1)."""
    if len(emb) < 2:
        return float("nan"), float("nan")
    d = torch.cdist(emb[None], emb[None])[0]  # (k, k)
    k = len(emb)
    return float(d.sum() / (k * (k - 1))), float((images.float() / 255).std(dim=0).mean())


def seed_diversity(images: torch.Tensor, styles: torch.Tensor) -> float:
    """One prompt's images (k, 3, S, S) uint8 and their style ids (k,): mean per-pixel std (0-1) among
    images of the same style, averaged over styles drawn at least twice; NaN when none is."""
    stds = [(images[styles == s].float() / 255).std(dim=0).mean() for s in styles.unique()
            if int((styles == s).sum()) >= 2]
    return float(torch.stack(stds).mean()) if stds else float("nan")


SPECTRUM_BANDS = (1 / 16, 1 / 8, 1 / 4, 1.0)  # band edges in cycles/pixel; the last takes the corners
SPECTRUM_KEYS = (*(f"{lo:.3g}-{min(hi, 0.5):.3g}" for lo, hi in zip(SPECTRUM_BANDS[:-1], SPECTRUM_BANDS[1:])),
                 "0.5 x", "0.5 y")


def spectrum_profile(images: torch.Tensor) -> torch.Tensor:
    """images (N, 3, S, S) uint8 -> (len(SPECTRUM_KEYS),) mean power of the grey, mean-removed images'
    2-D spectrum in each radial band [edges[i], edges[i + 1]) of cycles/pixel, then at exactly
    0.5 cycles/pixel along x and along y: one-pixel stripes, the crosshatch a generator can lay
    over flat areas."""
    x = (images.float() / 255).mean(1)  # (N, S, S)
    power = torch.fft.fft2(x - x.mean(dim=(1, 2), keepdim=True)).abs().pow(2).mean(0)  # (S, S)
    h, w = power.shape
    f = torch.fft.fftfreq(w)
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()  # (S, S)
    bands = [power[(radius >= lo) & (radius < hi)].mean() for lo, hi in zip(SPECTRUM_BANDS[:-1], SPECTRUM_BANDS[1:])]
    return torch.stack([*bands, power[0, w // 2], power[h // 2, 0]])


def spectrum_ratio(images: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Spectrum profile of images over that of reference images: 1 = real's texture, > 1 excess,
    < 1 blur; NaN where the reference has no power (flat colours have no one-pixel stripes)."""
    ref = spectrum_profile(reference)
    ratio = torch.where(ref > 1e-12, spectrum_profile(images) / ref.clamp_min(1e-12), torch.nan)
    return dict(zip(SPECTRUM_KEYS, map(float, ratio)))


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """P(a positive scores above a negative), ties counting half: the ROC AUC of the scores."""
    diff = pos.float()[:, None] - neg.float()[None, :]
    return float((diff > 0).float().mean() + 0.5 * (diff == 0).float().mean())


def judge_stats(pipe, real: torch.Tensor, fake: torch.Tensor, emb: torch.Tensor, styles: torch.Tensor,
                gate: float = 0.5, batch: int = 64) -> dict:
    """How well the model's discriminator does the app's job. real/fake (N, 3, S, S) uint8 with the
    same names (emb) and styles: the share each keeps at `gate` (P(real) >= gate, as generate does),
    the realism AUC of real against fake, and the match AUC of real images with their own name
    against the same images with another image's name."""
    def judge(x, e):
        out = [pipe._judge(x[i:i + batch].float() / 127.5 - 1.0, e[i:i + batch].to(pipe.device, pipe.dtype),
                           styles[i:i + batch].to(pipe.device)) for i in range(0, len(x), batch)]
        return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])

    r_real, m_real = judge(real, emb)
    r_fake, _ = judge(fake, emb)
    _, m_wrong = judge(real, emb.roll(1, 0))
    return {"images": len(real), "gate": gate, "kept_real": float((r_real >= gate).float().mean()),
            "kept_model": float((r_fake >= gate).float().mean()), "realism_auc": auc(r_real, r_fake),
            "match_auc": auc(m_real, m_wrong)}


def _style_map(pack: Pack, model: TextToImageGAN) -> torch.Tensor:
    """pack style id -> model style id (unknown styles -> the model's 'any')."""
    names = list(model.cfg.styles)
    return torch.tensor([names.index(s) if s in names else len(names) for s in pack.style_names])


def _rel(path) -> str:
    """A path relative to the repository when it is inside it (results do not name the machine)."""
    root = Path(__file__).resolve().parent.parent
    p = Path(path).resolve()
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(path)


def _rng(*parts) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.md5(repr(parts).encode()).digest()[:8], "big"))


# --- the run ---


def fd_enl0_note(model, folder) -> str:
    """Whether FD-ENL0 is independent of the model's training: not when its discriminator is built
    on EfficientNet-Lite features, nor when a perceptual loss on them (--perc-weight) trained its
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


def run(cfg: EvalConfig, *, encoder=None, log=print) -> dict:
    from .bench import num_threads

    with num_threads(cfg.threads):
        return _run(cfg, encoder, log)


def _run(cfg: EvalConfig, encoder, log) -> dict:
    other = load_results(cfg.compare_to) if cfg.compare_to else None  # a bad path fails before the run, not after
    from .pipeline import Pipeline

    t_start = time.time()
    sz = cfg.sizes()
    dev = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    pipe = Pipeline.from_pretrained(cfg.model or None, device=dev)
    if encoder is not None:
        pipe.encoder = encoder
    elif pipe.encoder is None:
        from .text_encoder import SentenceEncoder
        pipe.encoder = SentenceEncoder().to(pipe.device)
    model = pipe.model
    pack = load_dataset(cfg.data, size=pipe.size)
    log(f"model {pipe.info.model_id} ({pipe.info.folder}); data {cfg.data}: {len(pack)} images, "
        f"{pipe.size} px; sizes {sz}")

    # evaluator: load, or train once and save
    ev_dir = Path(cfg.evaluator)
    if cfg.retrain_evaluator or not (ev_dir / "evaluator.safetensors").is_file():
        log(f"training the evaluator ({cfg.evaluator_steps} steps) -> {ev_dir}")
        arch = EvaluatorConfig(image_size=pipe.size, channels=tuple(cfg.evaluator_width * 2 ** i for i in range(4)))
        ev, info = train_evaluator(pack, arch,
                                   EvaluatorTrainConfig(steps=cfg.evaluator_steps, seed=cfg.seed), log=log)
        info["training"]["data"] = str(cfg.data)
        ev.save(ev_dir, info)
    ev, ev_info = Evaluator.load(ev_dir)
    held = set(ev_info["split"]["test_base_names"])
    img_feats = lambda images: encode_images(ev.image_features, images)  # noqa: E731
    enl0 = ENL0Features() if cfg.enl0 else None

    # names: one embedding per distinct name, from the pack's caption table
    names = image_names(pack)
    uniq = sorted(set(names))
    name_emb = torch.stack([pack.embedding_of(n) for n in uniq])  # (U, 384)
    name_idx = {n: i for i, n in enumerate(uniq)}
    img_name = torch.tensor([name_idx[n] for n in names])  # (N,)
    name_txt = ev.text_embed(name_emb)  # (U, D)
    style_of = _style_map(pack, model)[pack.styles]  # (N,) model style ids
    any_style = model.cfg.num_styles

    torch.manual_seed(cfg.seed)
    floor = type(model)(model.cfg).to(pipe.device, pipe.dtype).eval().requires_grad_(False)
    if hasattr(floor, "prior"):  # a latent model's floor: random networks reading the same prior
        floor.prior = model.prior
    if getattr(pipe, "cpu_bf16", False):
        floor = floor.to(memory_format=torch.channels_last)  # as Pipeline.from_pretrained does
    gens = {"model": model, "random_init": floor}

    # --- FD: query half (Q) vs reference half (R) ---
    perm = torch.from_numpy(_rng(cfg.seed, "split", len(pack)).permutation(len(pack)))
    half = len(pack) // 2
    # R: reference; Q: queries (their names and styles are the prompts); P: the retrieval pool,
    # the rest of Q's half, so retrieved images are never the queries nor the reference
    ref, qry = perm[:half][:sz["n_ref"]], perm[half:][:min(sz["n_fd"], (len(pack) - half) // 2)]
    pool = perm[half + len(qry):]
    q_emb, q_style = name_emb[img_name[qry]], style_of[qry]
    seeds = [cfg.seed + 1000 + i for i in range(len(qry))]
    pool_emb = name_emb[img_name[pool]]  # (P, 384)
    same_style = style_of[qry][:, None] == style_of[pool][None, :]  # (Q, P)
    nearest = retrieve(q_emb, pool_emb, 1, same_style)[:, 0]
    fd_images = {"real": pack.images[qry], "retrieval": pack.images[pool[nearest]]}
    for row, g in gens.items():
        fd_images[row] = sample(pipe, g, q_emb, q_style, seeds)
    t = time.time()
    ref_f = {"eval": img_feats(pack.images[ref])}
    row_f = {row: {"eval": img_feats(x)} for row, x in fd_images.items()}
    if enl0 is not None:
        ref_f["enl0"] = encode_images(enl0, pack.images[ref], 64)
        for row, x in fd_images.items():
            row_f[row]["enl0"] = encode_images(enl0, x, 64)
    log(f"features of {len(ref) + len(qry) * len(fd_images)} images in {time.time() - t:.0f} s")
    ref_styles, q_styles = pack.styles[ref], pack.styles[qry]
    res = {row: {} for row in ROWS}
    for row in ROWS:
        for kind, rf in ref_f.items():
            res[row][f"fd_{kind}"] = fd(row_f[row][kind], rf)
            res[row][f"fd_{kind}_per_style"] = {
                s: fd(row_f[row][kind][q_styles == k], rf[ref_styles == k])
                for k, s in enumerate(pack.style_names)
                if (q_styles == k).sum() >= 2 and (ref_styles == k).sum() >= 2}
    for row in ROWS:  # same queries as FD, against the same reference
        res[row]["spectrum_ratio"] = spectrum_ratio(fd_images[row], pack.images[ref])
    checks = {"fd_eval_ref_vs_itself": fd(ref_f["eval"], ref_f["eval"])}
    gate = judge_stats(pipe, fd_images["real"], fd_images["model"], q_emb, q_style)

    # --- R-precision and diversity: prompts from each name split ---
    k_img, grid, prompt_lists = sz["per_prompt"], None, {}
    for split in ("test", "train"):
        in_split = [n for n in uniq if (base_name(n) in held) == (split == "test")]
        prompts = [in_split[i] for i in sorted(_rng(cfg.seed, split).permutation(len(in_split))[:sz["n_prompts"]])]
        if not prompts:
            continue
        prompt_lists[split] = prompts
        cands, near = [], []  # (P, C) name ids: the true name, then distractors of other base names
        for p in prompts:
            others = [i for i, n in enumerate(uniq) if base_name(n) != base_name(p)]
            pick = _rng(cfg.seed, "cands", p).permutation(len(others))[:DISTRACTORS]
            cands.append([name_idx[p]] + [others[j] for j in pick])
            sim = name_emb[others] @ name_emb[name_idx[p]]  # the names a sentence encoder finds closest
            near.append([name_idx[p]] + [others[j] for j in sim.topk(min(NEAREST, len(others))).indices.tolist()])
        cand_txt = torch.stack([name_txt[torch.tensor(c)] for c in cands])  # (P, C, D)
        near_txt = torch.stack([name_txt[torch.tensor(c)] for c in near])  # (P, 1 + NEAREST, D)
        para = [PARAPHRASES[i % len(PARAPHRASES)].format(p) for i, p in enumerate(prompts)]
        p_emb = {"exact": name_emb[[name_idx[p] for p in prompts]], "paraphrase": pipe.encoder.encode(para).float()}
        for kind, emb in p_emb.items():
            rep = emb.repeat_interleave(k_img, 0)  # (P * k, 384)
            seeds = [cfg.seed + j for _ in prompts for j in range(k_img)]
            drawn = pipe.seed_styles(torch.full((len(rep),), any_style), seeds)  # the style each seed is drawn in
            images = {row: sample(pipe, g, rep, torch.full((len(rep),), any_style), seeds) for row, g in gens.items()}
            # retrieval: the nearest name in the pool, then its images (any style), cycled to k
            top = img_name[pool[retrieve(emb, pool_emb, 1)[:, 0]]]  # (P,) name ids
            ret = [pool[img_name[pool] == nm] for nm in top.tolist()]
            ret_ids = torch.cat([ids[torch.arange(k_img) % len(ids)] for ids in ret])
            images["retrieval"] = pack.images[ret_ids]
            real_ids = [torch.nonzero(img_name == name_idx[p])[:k_img, 0] for p in prompts]
            images["real"] = pack.images[torch.cat(real_ids)]
            owner = {row: torch.arange(len(prompts)).repeat_interleave(k_img) for row in ROWS}
            owner["real"] = torch.cat([torch.full((len(r),), i) for i, r in enumerate(real_ids)])
            # the model style each image is in: what "recognisable in every style" is read from
            style_i = {row: drawn for row in gens}
            style_i["retrieval"] = style_of[ret_ids]
            style_i["real"] = style_of[torch.cat(real_ids)]
            for row in ROWS:
                emb_i = ev.image_embed(img_feats(images[row]))  # (M, D)
                measured = {kind: r_precision(emb_i, cand_txt[owner[row]])}
                if kind == "exact":
                    measured["nearest"] = r_precision(emb_i, near_txt[owner[row]])
                for name, hits in measured.items():
                    key = f"rprec_{name}_{split}"
                    per_prompt = prompt_means(hits, owner[row], len(prompts))
                    res[row][key] = float(hits.mean())
                    res[row][key + "_se"] = standard_error(per_prompt)
                    res[row][key + "_per_style"] = group_means(hits, style_i[row], model.cfg.styles)
                    if row == "model":  # for paired comparisons of two models on these prompts and seeds
                        res[row].setdefault("by_prompt", {})[key] = [round(float(v), 4) for v in per_prompt]
                if kind == "exact":
                    divs = [diversity(emb_i[owner[row] == i], images[row][owner[row] == i])
                            for i in range(len(prompts))]
                    res[row].setdefault("_div", []).extend(divs)
                    if row in gens:  # seeds of one prompt drawn in the same style: what z alone changes
                        res[row].setdefault("_seed_div", []).extend(
                            seed_diversity(images[row][owner[row] == i], drawn[owner[row] == i])
                            for i in range(len(prompts)))
            if split == "test" and kind == "exact":
                grid = {row: torch.stack([images[row][owner[row] == i][0] for i in range(min(8, len(prompts)))])
                        for row in ROWS}  # the first image of each of the first 8 prompts
        log(f"R-precision on {len(prompts)} {split} names done ({time.time() - t_start:.0f} s)")
    for row in ROWS:
        divs = np.array(res[row].pop("_div", []), dtype=float).reshape(-1, 2)
        res[row]["diversity_embed_l2"] = float(np.nanmean(divs[:, 0])) if len(divs) else None
        res[row]["diversity_pixel_std"] = float(np.nanmean(divs[:, 1])) if len(divs) else None
        seed_divs = np.array(res[row].pop("_seed_div", []), dtype=float)
        res[row]["seed_diversity_pixel_std"] = (float(np.nanmean(seed_divs))
                                                if np.isfinite(seed_divs).any() else None)

    results = {
        "model": {"id": pipe.info.model_id, "folder": _rel(pipe.info.folder), "source": pipe.info.source,
                  "image_size": pipe.size, "styles": list(model.cfg.styles)},
        "data": {"path": str(cfg.data), "images": len(pack), "names": len(uniq), "styles": pack.style_names},
        "evaluator": {"folder": _rel(ev_dir), "held_out_base_names": len(held),
                      "training": ev_info.get("training", {}), "feat_dim": ev.cfg.feat_dim},
        "config": {**dataclasses.asdict(cfg), "evaluator": _rel(cfg.evaluator)}, "sizes": sz, "prompts": prompt_lists,
        "rows": res, "checks": checks, "gate": gate,
        "notes": {
            "fd_enl0": fd_enl0_note(model, pipe.info.folder),
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
        },
    }
    if other is not None:
        results["compared_to"] = {"results": cfg.compare_to, "model": other["model"]["id"]}
        try:
            results["compared_to"]["paired"] = paired_difference(results, other)
        except ValueError as e:  # this run's own results are still written
            results["compared_to"]["error"] = str(e)
            log(f"no paired comparison: {e}")
    if cfg.bench:  # in its own process, so its RSS and timings are not the evaluation's
        results["speed"] = bench_subprocess(cfg, dev, log)
    results["seconds"] = round(time.time() - t_start, 1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    (out / "results.md").write_text(to_markdown(results))
    plot(results, grid, out / "quality.png")
    log(f"wrote {out}/results.json, results.md, quality.png in {results['seconds']:.0f} s")
    return results


def bench_subprocess(cfg: EvalConfig, device: str, log=print) -> dict:
    """Run ``python -m model.bench`` with this run's model, device and threads; its bench.json."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "model.bench", "--device", device, "--threads", str(cfg.threads), "--out", tmp,
               *(["--quick"] if cfg.quick else []), *(["--model", cfg.model] if cfg.model else []),
               *(["--app-url", cfg.app_url] if cfg.app_url else []), *(["--start-app"] if cfg.start_app else [])]
        log("running " + " ".join(cmd[1:]))
        subprocess.run(cmd, check=True, cwd=root)
        return json.loads((Path(tmp) / "bench.json").read_text())


# --- reports ---

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
        from .bench import speed_markdown
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


# --- command line ---

def _field_help() -> dict[str, str]:
    import inspect
    import re

    return {m.group(1): m.group(2) for m in (re.match(r"\s+(\w+): \w+ = .*?#\s*(.*)$", line)
                                             for line in inspect.getsource(EvalConfig).splitlines()) if m}


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    helps = _field_help()
    ap = argparse.ArgumentParser(description="Measure quality (R-precision, FD-eval, FD-ENL0, diversity) "
                                             "and speed of a model; writes results.json/.md and quality.png.")
    for f in dataclasses.fields(EvalConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f"{helps.get(f.name, '')} (default: {f.default})")
        else:
            kind = {"int": int, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            ap.add_argument(flag, type=kind, default=f.default, help=f"{helps.get(f.name, '')} (default: {f.default!r})")
    return EvalConfig(**vars(ap.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
