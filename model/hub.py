"""Find, load, save and upload model folders: a local path, a Hub repo, or the shipped default.

Resolution order: explicit id/path (+ revision) -> env MODEL_ID (+ MODEL_REVISION) ->
the default shipped in assets/model. A Hub repo that cannot be reached falls back to the
default with one log line; a corrupt or mismatched file is an error that names the file.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .gan import WEIGHT_FILES, TextToImageGAN

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "model"
MODEL_FILES = ("config.json", *(f"{n}.safetensors" for n in WEIGHT_FILES))


@dataclass(frozen=True)
class ModelInfo:
    model_id: str  # what was asked for ("default" for the shipped model)
    revision: str | None  # Hub revision asked for, or None
    folder: Path  # where the files are on disk
    source: str  # "default" | "local" | "hub"
    note: str = ""  # e.g. why a fallback happened


def resolve(model_id: str | None = None, revision: str | None = None) -> ModelInfo:
    """Where the model files are. Never raises for an unreachable Hub repo: falls back."""
    model_id = model_id or os.environ.get("MODEL_ID") or None
    revision = revision or os.environ.get("MODEL_REVISION") or None
    if not model_id or model_id == "default":
        return ModelInfo("default", None, DEFAULT_MODEL_DIR, "default")
    if Path(model_id).expanduser().is_dir():
        return ModelInfo(model_id, None, Path(model_id).expanduser(), "local")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id=model_id, revision=revision,
                                   allow_patterns=[*MODEL_FILES, "README.md"])
    except Exception as e:  # noqa: BLE001 - any Hub/network failure means "use the default"
        note = f"could not load {model_id!r} (revision {revision}) from the Hub: {type(e).__name__}: {e}"
        log.warning("%s; falling back to the shipped default model", str(note).splitlines()[0])
        return ModelInfo("default", None, DEFAULT_MODEL_DIR, "default", note=note)
    return ModelInfo(model_id, revision, Path(folder), "hub")


def load_model(model_id: str | None = None, revision: str | None = None) -> tuple[TextToImageGAN, ModelInfo]:
    info = resolve(model_id, revision)
    return TextToImageGAN.from_folder(info.folder), info


def push_to_hub(folder: str | Path, repo_id: str, *, token: str | None = None, private: bool = False) -> str:
    """Upload an exported model folder to the Hub; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id,
                             allow_patterns=[*MODEL_FILES, "README.md", "samples.png"])
    return str(info)
