"""The old VAE-GAN's model card (README.md), written beside the weights gan.py exports."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..config import ModelConfig
from ..data.packages import SOURCES
from .card import front_matter
from .gan_config import TrainConfig

FLAG_ORDER = ("data", "init_from", "init_d_from", "model_config", "batch_size", "steps", "max_minutes", "amp", "adv_weight", "recon_weight",
              "perc_weight", "kl_weight", "lr_g", "lr_d", "beta1", "r1_gamma", "grad_clip", "d_warmup")


def command_of(tc: dict) -> str:
    """The python -m model.train command line of a TrainConfig dict (the flags that matter here)."""
    default = TrainConfig()
    flags = [f"--{k.replace('_', '-')} {shlex.quote(str(tc[k]))}" for k in FLAG_ORDER
             if k in tc and (k == "data" or tc[k] != getattr(default, k))]
    return "python -m model.train " + " ".join(flags)


def lineage(training: dict) -> list[dict]:
    """Training phases, oldest first, following each phase's --init-from export back."""
    phases, seen = [training], set()
    while (src := phases[0].get("config", {}).get("init_from")) and src not in seen:
        seen.add(src)
        try:
            prev = json.loads((Path(src) / "config.json").read_text()).get("training")
        except (OSError, ValueError):
            break
        if not prev:
            break
        phases.insert(0, prev)
    return phases


def sessions_of(phase: dict) -> list[dict]:
    """A phase's training sessions (a resume may change flags); one without records counts as one session."""
    return phase.get("sessions") or [{"to_step": phase.get("steps"), "config": phase.get("config", {})}]


def _steps(session: dict) -> str:
    return f"{session['from_step']} → {session['to_step']}" if "from_step" in session else f"→ {session.get('to_step')}"


def write_model_card(folder: Path, cfg: ModelConfig, training: dict, *, dataset_size: int) -> Path:
    tc = training.get("config", {})
    phases = lineage(training)
    phase_rows = "\n".join(
        f"| {i + 1} | {p.get('device')} | {_steps(r)} | {r.get('minutes', '–')} | `{command_of(r.get('config', {}))}` |"
        for i, p in enumerate(phases) for r in sessions_of(p))
    rows = "\n".join(f"| {s} | `{p}` | {lic} | {who} |" for s, p, lic, who in SOURCES)
    text = front_matter("text-to-image", "gan", "vae", "emoji") + f"""
# Emoji VAE-GAN ({cfg.image_size}x{cfg.image_size})

A small text-to-image GAN: a frozen all-MiniLM-L6-v2 sentence encoder with a trainable VAE head
(mu, log sigma^2, KL), a modulated convolutional generator and a discriminator with a realism
logit, a text-match logit and a patch map. Load it with this repository's `model.hub.load_model`.

## Training data
{dataset_size} images from four emoji sets (built by `python -m model.data` from pinned npm packages):

| style | package | license | copyright |
|---|---|---|---|
{rows}

The weights are a derivative of CC-BY-SA-4.0 data (OpenMoji) and are released under CC-BY-SA-4.0.

## Training
Phases (each starts from the previous one's export); a row per session, as a resumed run may change
its flags (steps are cumulative within a phase):

| phase | device | steps | minutes | command |
|---|---|---|---|---|
{phase_rows}

Last phase's settings: `{json.dumps({k: tc[k] for k in sorted(tc) if k not in ('data', 'out')})}`

## Architecture
`{json.dumps(cfg.to_dict())}`

## Samples
Rows: grinning face, red apple, rocket, dog face, pizza, red heart, smiling face with sunglasses,
cat face; columns: {', '.join(cfg.styles)} (EMA generator, c = mu, fixed noise).

![samples](samples.png)
"""
    path = folder / "README.md"
    path.write_text(text)
    return path
