"""The old VAE-GAN's training config (one ``python -m model.train`` flag per field) and the
model architecture it asks for."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import TINY, ModelConfig
from ..dataset import Pack


@dataclass(kw_only=True)
class TrainConfig:
    data: str = "data/emoji/64"  # imagefolder with metadata.jsonl (text column) or a pack file
    out: str = "runs/default"  # checkpoints, samples, logs and the exported model folder
    model_config: str = ""  # ModelConfig fields as a JSON file or object ('{"g_bilinear_blocks": 1}'); "" = defaults; "tiny" = test size
    skin_tones: str = "all"  # all | one | none: skin-tone variants kept from the data
    batch_size: int = 32  # per process
    steps: int = 20000  # total optimisation steps (a resumed run continues to this number)
    max_minutes: float = 0.0  # stop cleanly (checkpoint + export) after this wall time; 0 = off
    lr_g: float = 1e-4  # TTUR: the discriminator learns 4x faster (DF-GAN)
    lr_d: float = 4e-4
    beta1: float = 0.0  # Adam betas as in BigGAN / DF-GAN
    beta2: float = 0.9
    grad_clip: float = 0.0  # clip each network's global gradient norm to this per step; 0 = off
    r1_gamma: float = 0.1  # R1 weight; small for 64 px data (StyleGAN2 heuristic ~ 0.0002 * px^2 / batch)
    r1_interval: int = 4  # lazy R1: every N D-steps, scaled by N (StyleGAN2)
    kl_weight: float = 1.0  # VAE head KL (StackGAN conditioning augmentation)
    match_weight: float = 1.0  # weight of the matching-aware text-match loss
    adv_weight: float = 1.0  # adversarial terms; 0 = a reconstruction-only phase (D neither trained nor used)
    recon_weight: float = 0.0  # VAE-GAN reconstruction: L1 between G(z=0, c, style), c = mu + sigma * eps, and the real image
    perc_weight: float = 0.0  # perceptual reconstruction: the same pair compared in frozen ImageNet EfficientNet-Lite0 features (model/perceptual.py; FD-ENL0 then no longer independent)
    init_from: str = ""  # model folder to start from (fine-tuning); ignored when a checkpoint resumes
    init_d_from: str = ""  # model folder whose discriminator is used instead (a trained judge for a generator from a reconstruction-only phase); ignored on resume
    d_warmup: int = 0  # the first N steps train only D (G and text head frozen): a fresh D judges before G follows it; N >= steps trains D alone against a fixed G (refits the gate)
    style_dropout: float = 0.1  # share of samples trained with the "any" style token
    augment: str = "translation,cutout"  # DiffAugment policy ("" = off)
    ema_halflife_kimg: float = 10.0  # EMA half-life of the generator, in thousands of images
    ema_rampup: float = 0.05  # half-life <= this fraction of images seen so far (early EMA follows)
    log_every: int = 50  # steps between loss-log rows (log.jsonl)
    sample_every: int = 500  # steps between sample grids (samples/step_*.png)
    ckpt_every: int = 1000  # steps between checkpoint + export
    seed: int = 0  # seeds the weights and the batch sampler
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16 on cuda, off on cpu) | bf16 | none
    threads: int = 0  # torch CPU threads; 0 = torch's default
    channels_last: bool = True  # NHWC tensors for the networks and images: faster convolutions (CPU bf16, GPU); same results up to rounding
    push_to_hub: str = ""  # repo id to upload the exported model folder to

    def __post_init__(self) -> None:
        if self.skin_tones not in ("all", "one", "none"):
            raise ValueError(f"skin_tones must be all, one or none, got {self.skin_tones!r}")
        if self.amp not in ("auto", "bf16", "none"):
            raise ValueError(f"amp must be auto, bf16 or none, got {self.amp!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (mismatched pairs need a partner), got {self.batch_size}")
        if self.adv_weight == 0 and self.recon_weight == 0 and self.perc_weight == 0:
            raise ValueError("adv_weight, recon_weight and perc_weight are all 0: nothing to train")
        if min(self.adv_weight, self.recon_weight, self.perc_weight) < 0:
            raise ValueError("adv_weight, recon_weight and perc_weight must be >= 0")
        if self.steps < 1 or self.r1_interval < 1:
            raise ValueError("steps and r1_interval must be >= 1")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        if self.d_warmup < 0 or (self.d_warmup > 0 and self.adv_weight == 0):
            raise ValueError(f"d_warmup must be >= 0 and needs adv_weight > 0 (D is trained only then), got {self.d_warmup}")


def model_fields(tcfg: TrainConfig) -> dict:
    """The ModelConfig fields --model-config asks for ("" = defaults, "tiny", a JSON object, or a JSON file)."""
    if tcfg.model_config == "tiny":
        return dict(TINY)
    if tcfg.model_config.lstrip().startswith("{"):
        return json.loads(tcfg.model_config)
    return json.loads(Path(tcfg.model_config).read_text()) if tcfg.model_config else {}


def model_config_for(tcfg: TrainConfig, pack: Pack, base: ModelConfig | None = None) -> ModelConfig:
    """The architecture asked for, over base's (the checkpoint's or --init-from's; else the defaults),
    with the styles and image size of the data."""
    return ModelConfig.from_dict({**(base.to_dict() if base is not None else {}), **model_fields(tcfg),
                                  "styles": tuple(pack.style_names), "image_size": pack.images.shape[-1]})
