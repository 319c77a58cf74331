"""The numbers of the evaluation, each a small function of tensors: R-precision and its
standard error over prompts, paired differences of two runs, diversity, the spectrum ratio,
ROC AUC and the discriminator-as-gate statistics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .config import RPREC_KEYS
from ..pixels import to_unit

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
        out = [pipe.stages.judge(to_unit(x[i:i + batch]), e[i:i + batch].to(pipe.stages.device, pipe.stages.dtype),
                           styles[i:i + batch].to(pipe.stages.device)) for i in range(0, len(x), batch)]
        return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])

    r_real, m_real = judge(real, emb)
    r_fake, _ = judge(fake, emb)
    _, m_wrong = judge(real, emb.roll(1, 0))
    return {"images": len(real), "gate": gate, "kept_real": float((r_real >= gate).float().mean()),
            "kept_model": float((r_fake >= gate).float().mean()), "realism_auc": auc(r_real, r_fake),
            "match_auc": auc(m_real, m_wrong)}
