"""The evaluation protocol: quality (and speed) of a model, measured the same way every time.

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

The run is a sequence of steps, each a function below: ``_setup`` (pipeline, data, evaluator,
names), ``_generators`` (the model and its random-init floor), ``_fd_rows`` (FD, spectrum and the
gate statistics on the query half), ``_rprec_rows`` (R-precision and diversity per name split,
one ``_split_prompts`` / ``_candidates`` / ``_prompt_images`` / ``_measure`` per split and
wording), ``_diversity_means`` and ``_results``; report.py writes them out.
"""
from __future__ import annotations

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

from ..dataset import Pack, image_names, load_dataset
from ..evaluator import (ENL0Features, Evaluator, EvaluatorConfig, EvaluatorTrainConfig, base_name, encode_images, fd,
                         train_evaluator)
from ..latent_model import LatentModel
from ..text_to_image import TextToImage
from . import report
from .config import DISTRACTORS, NEAREST, PARAPHRASES, ROWS, EvalConfig
from .metrics import (diversity, group_means, judge_stats, load_results, paired_difference, prompt_means,
                      r_precision, seed_diversity, spectrum_ratio, standard_error)
from .. import paths
from ..device import pick_device
from .. import pixels



# --- sampling ---

def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) in [-1, 1] -> uint8 on the CPU, rounded as the app rounds its PNGs."""
    return pixels.to_uint8(x).cpu()


def sample(pipe, model: LatentModel, emb: torch.Tensor, styles: torch.Tensor, seeds: list[int],
           batch: int = 64) -> torch.Tensor:
    """emb (N, 384), styles (N,) model style ids, seeds (N,) -> (N, 3, S, S) uint8 raw samples of
    `model`, drawn by TextToImage.sample exactly as the app draws them (truncation 1, no gate)."""
    draw = TextToImage(dataclasses.replace(pipe.stages, model=model), pipe.checks, pipe.gate)
    return torch.cat([to_uint8(draw.sample(emb[i:i + batch], styles[i:i + batch], seeds[i:i + batch]))
                      for i in range(0, len(seeds), batch)])


def retrieve(query: torch.Tensor, pool_emb: torch.Tensor, k: int = 1, mask: torch.Tensor | None = None) -> torch.Tensor:
    """query (Q, 384), pool (P, 384) -> (Q, k) pool indices of the nearest names (cosine);
    mask (Q, P) bool limits the candidates (e.g. to the query's style)."""
    sim = torch.nn.functional.normalize(query.float(), dim=1) @ torch.nn.functional.normalize(pool_emb.float(), dim=1).t()
    if mask is not None:
        sim = sim.masked_fill(~mask, -2.0)
    return sim.topk(min(k, sim.shape[1]), dim=1).indices


def _style_map(pack: Pack, model: LatentModel) -> torch.Tensor:
    """pack style id -> model style id (unknown styles -> the model's 'any')."""
    names = list(model.cfg.styles)
    return torch.tensor([names.index(s) if s in names else len(names) for s in pack.style_names])



def _rel(path) -> str:
    """A path relative to the repository when it is inside it (results do not name the machine)."""
    p = Path(path).resolve()
    return str(p.relative_to(paths.ROOT)) if p.is_relative_to(paths.ROOT) else str(path)


def _rng(*parts) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.md5(repr(parts).encode()).digest()[:8], "big"))


# --- the run ---


def run(cfg: EvalConfig, *, encoder=None, log=print) -> dict:
    from ..bench import num_threads

    with num_threads(cfg.threads):
        return _run(cfg, encoder, log)


def _run(cfg: EvalConfig, encoder, log) -> dict:
    other = load_results(cfg.compare_to) if cfg.compare_to else None  # a bad path fails before the run, not after
    t_start = time.time()
    s = _setup(cfg, encoder, log)
    gens = _generators(s)
    res, checks, gate, pool = _fd_rows(s, gens, log)
    grid, prompt_lists = _rprec_rows(s, gens, pool, res, log, t_start)
    _diversity_means(res)
    results = _results(s, res, checks, gate, prompt_lists)
    if other is not None:
        results["compared_to"] = {"results": cfg.compare_to, "model": other["model"]["id"]}
        try:
            results["compared_to"]["paired"] = paired_difference(results, other)
        except ValueError as e:  # this run's own results are still written
            results["compared_to"]["error"] = str(e)
            log(f"no paired comparison: {e}")
    if cfg.bench:  # in its own process, so its RSS and timings are not the evaluation's
        results["speed"] = bench_subprocess(cfg, s.dev, log)
    results["seconds"] = round(time.time() - t_start, 1)
    out = Path(cfg.out)
    report.write(results, grid, out)
    log(f"wrote {out}/results.json, results.md, quality.png in {results['seconds']:.0f} s")
    return results


@dataclass
class Setup:
    """What every step reads: the run's config and sizes, the pipeline and its model, the real
    images, the evaluator, and one embedding per distinct name of the data."""

    cfg: EvalConfig
    sz: dict
    dev: str
    pipe: object
    model: LatentModel
    pack: Pack
    ev_dir: Path
    ev: Evaluator
    ev_info: dict
    held: set  # base names held out from the evaluator's training
    enl0: ENL0Features | None
    uniq: list[str]  # the distinct names, sorted
    name_emb: torch.Tensor  # (U, text_dim) in the model's text encoder's space
    name_idx: dict[str, int]
    img_name: torch.Tensor  # (N,) name id of each image
    name_txt: torch.Tensor  # (U, D) evaluator text embeddings of the names
    style_of: torch.Tensor  # (N,) model style id of each image
    any_style: int

    def img_feats(self, images: torch.Tensor) -> torch.Tensor:
        return encode_images(self.ev.image_features, images)


def _setup(cfg: EvalConfig, encoder, log) -> Setup:
    """The pipeline (and its text encoder), the data at the model's size, the evaluator, the names."""
    from ..pipeline import Pipeline

    sz = cfg.sizes()
    dev = pick_device(cfg.device)
    pipe = Pipeline.from_pretrained(cfg.model or None, device=dev)
    if encoder is not None:
        pipe.stages.encoder = encoder
    elif pipe.stages.encoder is None:  # the encoder the model's config names
        from ..text_encoder import load_text_encoder
        pipe.stages.encoder = load_text_encoder(pipe.model.cfg.text_encoder, pipe.info.folder).to(pipe.stages.device)
    model = pipe.model
    pack = load_dataset(cfg.data, size=pipe.stages.size)  # captions in MiniLM's space: the evaluator's
    log(f"model {pipe.info.model_id} ({pipe.info.folder}); data {cfg.data}: {len(pack)} images, "
        f"{pipe.stages.size} px; sizes {sz}")
    ev_dir, ev, ev_info = load_or_train_evaluator(cfg, pack, pipe.stages.size, log)
    enl0 = ENL0Features() if cfg.enl0 else None

    # names: one embedding per distinct name, from the pack's caption table
    names = image_names(pack)
    uniq = sorted(set(names))
    ev_emb = torch.stack([pack.embedding_of(n) for n in uniq])  # (U, 384): what the evaluator reads
    # what the model reads: the same vectors when it reads MiniLM, else its own encoder's
    name_emb = ev_emb if model.cfg.text_encoder == pack.text_encoder else pipe.stages.encoder.encode(uniq).float().cpu()
    name_idx = {n: i for i, n in enumerate(uniq)}
    return Setup(cfg=cfg, sz=sz, dev=dev, pipe=pipe, model=model, pack=pack, ev_dir=ev_dir, ev=ev, ev_info=ev_info,
                 held=set(ev_info["split"]["test_base_names"]), enl0=enl0, uniq=uniq, name_emb=name_emb,
                 name_idx=name_idx, img_name=torch.tensor([name_idx[n] for n in names]),
                 name_txt=ev.text_embed(ev_emb), style_of=_style_map(pack, model)[pack.styles],
                 any_style=model.cfg.num_styles)


def load_or_train_evaluator(cfg: EvalConfig, pack: Pack, image_size: int, log=print) -> tuple[Path, Evaluator, dict]:
    """The evaluator of cfg.evaluator: loaded, or trained once on the data and saved there."""
    ev_dir = Path(cfg.evaluator)
    if cfg.retrain_evaluator or not (ev_dir / "evaluator.safetensors").is_file():
        log(f"training the evaluator ({cfg.evaluator_steps} steps) -> {ev_dir}")
        arch = EvaluatorConfig(image_size=image_size, channels=tuple(cfg.evaluator_width * 2 ** i for i in range(4)))
        ev, info = train_evaluator(pack, arch,
                                   EvaluatorTrainConfig(steps=cfg.evaluator_steps, seed=cfg.seed), log=log)
        info["training"]["data"] = str(cfg.data)
        ev.save(ev_dir, info)
    ev, ev_info = Evaluator.load(ev_dir)
    return ev_dir, ev, ev_info


def _generators(s: Setup) -> dict:
    """The generator rows: the model under test and the same architecture with fresh random weights."""
    model, pipe = s.model, s.pipe
    torch.manual_seed(s.cfg.seed)
    floor = type(model)(model.cfg).to(pipe.stages.device, pipe.stages.dtype).eval().requires_grad_(False)
    floor.prior = model.prior  # the floor: random networks reading the same prior
    if pipe.stages.cpu_bf16:
        floor = floor.to(memory_format=torch.channels_last)  # as Pipeline.from_pretrained does
    return {"model": model, "random_init": floor}


def _fd_rows(s: Setup, gens: dict, log) -> tuple[dict, dict, dict, torch.Tensor]:
    """FD (evaluator and ENL0 features, overall and per style) and the spectrum ratio of every row:
    a query half (Q) against a reference half (R); the discriminator's gate statistics on the
    queries. Returns (results per row, sanity checks, gate statistics, the retrieval pool)."""
    cfg, sz, pipe, pack = s.cfg, s.sz, s.pipe, s.pack
    perm = torch.from_numpy(_rng(cfg.seed, "split", len(pack)).permutation(len(pack)))
    half = len(pack) // 2
    # R: reference; Q: queries (their names and styles are the prompts); P: the retrieval pool,
    # the rest of Q's half, so retrieved images are never the queries nor the reference
    ref, qry = perm[:half][:sz["n_ref"]], perm[half:][:min(sz["n_fd"], (len(pack) - half) // 2)]
    pool = perm[half + len(qry):]
    q_emb, q_style = s.name_emb[s.img_name[qry]], s.style_of[qry]
    seeds = [cfg.seed + 1000 + i for i in range(len(qry))]
    pool_emb = s.name_emb[s.img_name[pool]]  # (P, 384)
    same_style = s.style_of[qry][:, None] == s.style_of[pool][None, :]  # (Q, P)
    nearest = retrieve(q_emb, pool_emb, 1, same_style)[:, 0]
    fd_images = {"real": pack.images[qry], "retrieval": pack.images[pool[nearest]]}
    for row, g in gens.items():
        fd_images[row] = sample(pipe, g, q_emb, q_style, seeds)
    t = time.time()
    ref_f = {"eval": s.img_feats(pack.images[ref])}
    row_f = {row: {"eval": s.img_feats(x)} for row, x in fd_images.items()}
    if s.enl0 is not None:
        ref_f["enl0"] = encode_images(s.enl0, pack.images[ref], 64)
        for row, x in fd_images.items():
            row_f[row]["enl0"] = encode_images(s.enl0, x, 64)
    log(f"features of {len(ref) + len(qry) * len(fd_images)} images in {time.time() - t:.0f} s")
    ref_styles, q_styles = pack.styles[ref], pack.styles[qry]
    res = {row: {} for row in ROWS}
    for row in ROWS:
        for kind, rf in ref_f.items():
            res[row][f"fd_{kind}"] = fd(row_f[row][kind], rf)
            res[row][f"fd_{kind}_per_style"] = {
                st: fd(row_f[row][kind][q_styles == k], rf[ref_styles == k])
                for k, st in enumerate(pack.style_names)
                if (q_styles == k).sum() >= 2 and (ref_styles == k).sum() >= 2}
    for row in ROWS:  # same queries as FD, against the same reference
        res[row]["spectrum_ratio"] = spectrum_ratio(fd_images[row], pack.images[ref])
    checks = {"fd_eval_ref_vs_itself": fd(ref_f["eval"], ref_f["eval"])}
    gate = judge_stats(pipe, fd_images["real"], fd_images["model"], q_emb, q_style)
    return res, checks, gate, pool


def _rprec_rows(s: Setup, gens: dict, pool: torch.Tensor, res: dict, log, t_start: float) -> tuple[dict | None, dict]:
    """R-precision and diversity of every row, on prompts from each name split (held-out names
    'test', the evaluator's training names 'train'), each as its exact name and paraphrased;
    into res. Returns (8 images per row of held-out names for the plot, the prompts per split)."""
    pool_emb = s.name_emb[s.img_name[pool]]  # (P, 384)
    grid, prompt_lists = None, {}
    for split in ("test", "train"):
        prompts = _split_prompts(s, split)
        if not prompts:
            continue
        prompt_lists[split] = prompts
        cand_txt, near_txt = _candidates(s, prompts)
        para = [PARAPHRASES[i % len(PARAPHRASES)].format(p) for i, p in enumerate(prompts)]
        p_emb = {"exact": s.name_emb[[s.name_idx[p] for p in prompts]],
                 "paraphrase": s.pipe.stages.encoder.encode(para).float()}
        for kind, emb in p_emb.items():
            images, owner, style_i, drawn = _prompt_images(s, gens, pool, pool_emb, emb, prompts)
            for row in ROWS:
                _measure(s, res[row], row, kind, split, images[row], owner[row], style_i[row],
                         cand_txt, near_txt, len(prompts), drawn if row in gens else None)
            if split == "test" and kind == "exact":
                grid = {row: torch.stack([images[row][owner[row] == i][0] for i in range(min(8, len(prompts)))])
                        for row in ROWS}  # the first image of each of the first 8 prompts
        log(f"R-precision on {len(prompts)} {split} names done ({time.time() - t_start:.0f} s)")
    return grid, prompt_lists


def _split_prompts(s: Setup, split: str) -> list[str]:
    """Up to n_prompts names of the split ('test': base names held out from the evaluator), in name order."""
    in_split = [n for n in s.uniq if (base_name(n) in s.held) == (split == "test")]
    return [in_split[i] for i in sorted(_rng(s.cfg.seed, split).permutation(len(in_split))[:s.sz["n_prompts"]])]


def _candidates(s: Setup, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluator text embeddings of each prompt's candidates, the true name first: (P, 1 + 99, D)
    against random names of other base names, (P, 1 + NEAREST, D) against the nearest ones."""
    cands, near = [], []  # (P, C) name ids: the true name, then distractors of other base names
    for p in prompts:
        others = [i for i, n in enumerate(s.uniq) if base_name(n) != base_name(p)]
        pick = _rng(s.cfg.seed, "cands", p).permutation(len(others))[:DISTRACTORS]
        cands.append([s.name_idx[p]] + [others[j] for j in pick])
        sim = s.name_emb[others] @ s.name_emb[s.name_idx[p]]  # the names a sentence encoder finds closest
        near.append([s.name_idx[p]] + [others[j] for j in sim.topk(min(NEAREST, len(others))).indices.tolist()])
    cand_txt = torch.stack([s.name_txt[torch.tensor(c)] for c in cands])  # (P, C, D)
    near_txt = torch.stack([s.name_txt[torch.tensor(c)] for c in near])  # (P, 1 + NEAREST, D)
    return cand_txt, near_txt


def _prompt_images(s: Setup, gens: dict, pool: torch.Tensor, pool_emb: torch.Tensor, emb: torch.Tensor,
                   prompts: list[str]) -> tuple[dict, dict, dict, torch.Tensor]:
    """per_prompt images of every row for each prompt embedding (P, 384). Returns per row the images,
    the prompt each image belongs to and the model style it is in; and the style each seed is drawn in."""
    cfg, pipe, pack, img_name, k_img = s.cfg, s.pipe, s.pack, s.img_name, s.sz["per_prompt"]
    rep = emb.repeat_interleave(k_img, 0)  # (P * k, 384)
    seeds = [cfg.seed + j for _ in prompts for j in range(k_img)]
    drawn = pipe.text_to_image.seed_styles(torch.full((len(rep),), s.any_style), seeds)  # the style each seed is drawn in
    images = {row: sample(pipe, g, rep, torch.full((len(rep),), s.any_style), seeds) for row, g in gens.items()}
    # retrieval: the nearest name in the pool, then its images (any style), cycled to k
    top = img_name[pool[retrieve(emb, pool_emb, 1)[:, 0]]]  # (P,) name ids
    ret = [pool[img_name[pool] == nm] for nm in top.tolist()]
    ret_ids = torch.cat([ids[torch.arange(k_img) % len(ids)] for ids in ret])
    images["retrieval"] = pack.images[ret_ids]
    real_ids = [torch.nonzero(img_name == s.name_idx[p])[:k_img, 0] for p in prompts]
    images["real"] = pack.images[torch.cat(real_ids)]
    owner = {row: torch.arange(len(prompts)).repeat_interleave(k_img) for row in ROWS}
    owner["real"] = torch.cat([torch.full((len(r),), i) for i, r in enumerate(real_ids)])
    # the model style each image is in: what "recognisable in every style" is read from
    style_i = {row: drawn for row in gens}
    style_i["retrieval"] = s.style_of[ret_ids]
    style_i["real"] = s.style_of[torch.cat(real_ids)]
    return images, owner, style_i, drawn


def _measure(s: Setup, out: dict, row: str, kind: str, split: str, images: torch.Tensor, owner: torch.Tensor,
             style_i: torch.Tensor, cand_txt: torch.Tensor, near_txt: torch.Tensor, n_prompts: int,
             drawn: torch.Tensor | None) -> None:
    """One row's R-precision (and, for exact names, vs the nearest names and its diversity) into out.
    drawn: the style each seed is drawn in, for generator rows (seed diversity)."""
    emb_i = s.ev.image_embed(s.img_feats(images))  # (M, D)
    measured = {kind: r_precision(emb_i, cand_txt[owner])}
    if kind == "exact":
        measured["nearest"] = r_precision(emb_i, near_txt[owner])
    for name, hits in measured.items():
        key = f"rprec_{name}_{split}"
        per_prompt = prompt_means(hits, owner, n_prompts)
        out[key] = float(hits.mean())
        out[key + "_se"] = standard_error(per_prompt)
        out[key + "_per_style"] = group_means(hits, style_i, s.model.cfg.styles)
        if row == "model":  # for paired comparisons of two models on these prompts and seeds
            out.setdefault("by_prompt", {})[key] = [round(float(v), 4) for v in per_prompt]
    if kind == "exact":
        divs = [diversity(emb_i[owner == i], images[owner == i]) for i in range(n_prompts)]
        out.setdefault("_div", []).extend(divs)
        if drawn is not None:  # seeds of one prompt drawn in the same style: what z alone changes
            out.setdefault("_seed_div", []).extend(
                seed_diversity(images[owner == i], drawn[owner == i]) for i in range(n_prompts))


def _diversity_means(res: dict) -> None:
    """The per-prompt diversities collected by _measure -> their means, per row."""
    for row in ROWS:
        divs = np.array(res[row].pop("_div", []), dtype=float).reshape(-1, 2)
        res[row]["diversity_embed_l2"] = float(np.nanmean(divs[:, 0])) if len(divs) else None
        res[row]["diversity_pixel_std"] = float(np.nanmean(divs[:, 1])) if len(divs) else None
        seed_divs = np.array(res[row].pop("_seed_div", []), dtype=float)
        res[row]["seed_diversity_pixel_std"] = (float(np.nanmean(seed_divs))
                                                if np.isfinite(seed_divs).any() else None)


def _results(s: Setup, res: dict, checks: dict, gate: dict, prompt_lists: dict) -> dict:
    """The results.json of the run (before the comparison, the speed and the run time)."""
    cfg, pipe, pack, model = s.cfg, s.pipe, s.pack, s.model
    return {
        "model": {"id": pipe.info.model_id, "folder": _rel(pipe.info.folder), "source": pipe.info.source,
                  "image_size": pipe.stages.size, "styles": list(model.cfg.styles)},
        "data": {"path": str(cfg.data), "images": len(pack), "names": len(s.uniq), "styles": pack.style_names},
        "evaluator": {"folder": _rel(s.ev_dir), "held_out_base_names": len(s.held),
                      "training": s.ev_info.get("training", {}), "feat_dim": s.ev.cfg.feat_dim},
        "config": {**dataclasses.asdict(cfg), "evaluator": _rel(cfg.evaluator)}, "sizes": s.sz, "prompts": prompt_lists,
        "rows": res, "checks": checks, "gate": gate,
        "notes": report.notes(model, pipe.info.folder),
    }


def bench_subprocess(cfg: EvalConfig, device: str, log=print) -> dict:
    """Run ``python -m model.bench`` with this run's model, device and threads; its bench.json."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "model.bench", "--device", device, "--threads", str(cfg.threads), "--out", tmp,
               *(["--quick"] if cfg.quick else []), *(["--model", cfg.model] if cfg.model else []),
               *(["--app-url", cfg.app_url] if cfg.app_url else []), *(["--start-app"] if cfg.start_app else [])]
        log("running " + " ".join(cmd[1:]))
        subprocess.run(cmd, check=True, cwd=paths.ROOT)
        return json.loads((Path(tmp) / "bench.json").read_text())
