"""Find, load, save and upload model folders: a local path, a Hub repo, or the shipped default.

Resolution order: explicit id/path (+ revision) -> env MODEL_ID (+ MODEL_REVISION) ->
the default shipped in assets/model. A Hub repo that cannot be reached (network down, repo or
revision missing, HF_HUB_OFFLINE=1 with nothing cached) falls back to the default with one
warning log line; a malformed id, a missing local folder, or a corrupt or mismatched file is an
error that names it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .latent_model import LatentModel
from . import paths

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = paths.DEFAULT_MODEL_DIR
DOWNLOAD_PATTERNS = ("config.json", "*.safetensors", "README.md",  # any model folder's files
                     "text_encoder/*")  # its own copy of its text encoder, when it carries one (model.text_encoder)


@dataclass(frozen=True)
class ModelInfo:
    model_id: str  # what was asked for ("default" for the shipped model)
    revision: str | None  # Hub revision asked for, or None
    folder: Path  # where the files are on disk
    source: str  # "default" | "local" | "hub"
    note: str = ""  # e.g. why a fallback happened
    commit: str | None = None  # the Hub commit sha the files come from (source "hub" only)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _looks_like_path(model_id: str) -> bool:
    """A Hub repo id is "name" or "org/name"; anything else is meant as a folder."""
    return (model_id.startswith((".", "~", "/", "\\")) or model_id.count("/") > 1
            or "\\" in model_id or Path(model_id).expanduser().exists())


def _why(e: Exception, offline: bool) -> str:
    """One line saying why a Hub download failed."""
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(e, RevisionNotFoundError):
        return "the revision does not exist"
    if isinstance(e, RepositoryNotFoundError):
        return "the repository does not exist (or is private/gated and no valid token is set)"
    if isinstance(e, LocalEntryNotFoundError):
        if offline:
            return "HF_HUB_OFFLINE is set and the model is not in the local Hub cache"
        cause = e.__cause__ or e
        return (f"the Hub could not be reached ({type(cause).__name__}: {str(cause).splitlines()[0][:200]}) "
                "and the model is not in the local Hub cache")
    first = (str(e).splitlines() or [""])[0][:200]
    return f"{type(e).__name__}: {first}"


def resolve(model_id: str | None = None, revision: str | None = None) -> ModelInfo:
    """Where the model files are.

    model_id: a local folder, a Hub repo id ("org/name"), "default", or None (then env MODEL_ID,
    with env MODEL_REVISION as its revision unless `revision` is given). Never raises for an
    unreachable Hub repo: falls back to DEFAULT_MODEL_DIR with one warning. Raises FileNotFoundError
    for a path-like id that is not a folder and ValueError for a malformed repo id.
    """
    model_id = (model_id or "").strip() or None
    revision = (revision or "").strip() or None
    if model_id is None:  # MODEL_REVISION belongs to MODEL_ID, never to an explicit model_id
        model_id = os.environ.get("MODEL_ID", "").strip() or None
        revision = revision or os.environ.get("MODEL_REVISION", "").strip() or None
    if model_id is None or model_id == "default":
        return ModelInfo("default", None, DEFAULT_MODEL_DIR, "default")
    if _looks_like_path(model_id):
        folder = Path(model_id).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder {model_id!r} is not a folder (and not a Hub repo id 'org/name')")
        return ModelInfo(model_id, None, folder, "local")

    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(model_id)
    except ValueError as e:
        raise ValueError(f"{model_id!r} is neither a local model folder nor a valid Hub repo id ('org/name'): {e}") from e
    # huggingface_hub reads HF_HUB_OFFLINE at import; read it again so setting it later works too
    offline = constants.HF_HUB_OFFLINE or _env_true("HF_HUB_OFFLINE")
    try:
        folder = snapshot_download(repo_id=model_id, revision=revision, local_files_only=offline,
                                   allow_patterns=list(DOWNLOAD_PATTERNS))
    except Exception as e:  # noqa: BLE001 - any Hub/network failure means "use the default"
        note = (f"model {model_id!r} (revision {revision or 'main'}) is unavailable: {_why(e, offline)}; "
                f"using the shipped default model {DEFAULT_MODEL_DIR}")
        log.warning(note)
        return ModelInfo("default", None, DEFAULT_MODEL_DIR, "default", note=note)
    folder = Path(folder)
    return ModelInfo(model_id, revision, folder, "hub", commit=folder.name)


def load_folder(folder: str | Path) -> LatentModel:
    """A model folder (config.json's model_type must be the latent model's: another is a ValueError naming it)."""
    return LatentModel.from_folder(folder)


def load_model(model_id: str | None = None, revision: str | None = None) -> tuple[LatentModel, ModelInfo]:
    """resolve() then load: raises FileNotFoundError / ValueError naming a missing, corrupt or mismatched file."""
    info = resolve(model_id, revision)
    return load_folder(info.folder), info


def push_to_hub(folder: str | Path, repo_id: str, *, token: str | None = None, private: bool = False) -> str:
    """Upload an exported model folder to the Hub; returns the commit URL.

    The folder is loaded first, so a corrupt or incomplete export is refused before anything is sent.
    """
    from huggingface_hub import HfApi

    load_folder(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id,
                             allow_patterns=[*DOWNLOAD_PATTERNS, "samples.png"])
    return str(info)
