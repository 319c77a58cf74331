"""Where the repository's shipped files are (the device policy is model/device.py)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository (app.py, assets/, model/)
ASSETS = ROOT / "assets"
DEFAULT_MODEL_DIR = ASSETS / "model"  # the shipped latent model
UPSAMPLER_DIR = ASSETS / "upsampler"  # the shipped 64 -> 256 upsampler (distilled from the next one)
REALESRGAN_DIR = ASSETS / "upsampler-realesrgan"  # Real-ESRGAN animevideov3 x4, converted: the teacher
EVALUATOR_DIR = ASSETS / "evaluator"  # the evaluation's own instrument (never trained against)
NATURAL_PROMPTS = ASSETS / "prompts" / "natural.jsonl"  # held-out natural descriptions

