"""Reading an imagefolder's records back (``read_metadata``) and the training captions of a
record (``caption_variants``): what model.dataset builds its packs from."""
from __future__ import annotations

import json
import re
from pathlib import Path

from .packages import dedup_lower

CAPTIONS_VERSION = 4  # part of the imagefolder pack cache's key: a change here rebuilds the cache


def _words(s: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", s.lower()))


def caption_templates(name: str, style: str = "") -> list[str]:
    """The template captions of a name ("an emoji of {name}", ...): they help the networks learn
    the caption space but add nothing to a search, so the prior leaves exactly these out."""
    return [f"an emoji of {name}", f"{name} emoji", *([f"{name} in {style} style"] if style else [])]


def is_description(caption: str, name: str) -> bool:
    """Whether one of a name's captions is a plain-word description: not the name itself, not one
    of its templates and not a keyword phrase ("{name}, {keyword}")."""
    return caption != name and caption not in caption_templates(name) and not caption.startswith(f"{name}, ") \
        and not (caption.startswith(f"{name} in ") and caption.endswith(" style"))


def caption_variants(record: dict) -> list[str]:
    """Training captions for a record: the name, 3 templates, a keyword phrase per keyword and
    the record's plain-word descriptions (its ``descriptions`` column, if any).

    Deterministic order, deduplicated, lowercase. Keyword phrases are "{name}, {keyword}" for
    every keyword that adds a word the name does not already have: they are what a person's
    words ("dark shades", "cheesy slice") meet. Only the first two were kept before
    (CAPTIONS_VERSION 1): the prior read 0.28 of the held-out natural descriptions right at
    first guess with them, 0.36 with all on every record, 0.36 with all on records without a
    skin tone only (model/EXPERIMENTS.md, 2026-12-01). A skin-tone variant keeps its name and
    templates: its keywords are its base emoji's, which already carries them, and a description
    without a tone should read as the base emoji. Descriptions ("a spaceship taking off") are
    what a person types when they do not know the name (CAPTIONS_VERSION 4).
    """
    name = " ".join(str(record.get("text") or record.get("caption") or "").lower().split())
    if not name:
        return []
    style = str(record.get("style") or "").lower().strip()
    caps = [name, *caption_templates(name, style)]
    kws = [] if record.get("skin_tone") else record.get("keywords") or []
    if isinstance(kws, str):
        kws = kws.split(",")
    name_words = _words(name)
    for kw in kws:
        kw = " ".join(str(kw).lower().split())
        if kw and not _words(kw) <= name_words:
            caps.append(f"{name}, {kw}")
    descs = [] if record.get("skin_tone") else record.get("descriptions") or []
    if isinstance(descs, str):
        descs = [descs]
    caps.extend(str(d) for d in descs)
    return dedup_lower(caps)


def read_metadata(folder: str | Path) -> list[dict]:
    """Records of an imagefolder's ``metadata.jsonl``, in file order.

    Each record keeps its columns, gets ``text`` (copied from ``caption`` when only that
    exists) and ``path`` (the image file). Raises ``ValueError`` naming the file and line on
    bad JSON, a missing ``file_name``/``text``/``caption`` or a missing image file, and
    ``FileNotFoundError`` when there is no metadata.jsonl.
    """
    folder = Path(folder)
    meta = folder / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} not found (expected an imagefolder with metadata.jsonl)")
    records = []
    with open(meta, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{meta}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: bad JSON ({e.msg})") from e
            if not isinstance(rec, dict):
                raise ValueError(f"{where}: expected a JSON object")
            text = rec.get("text", rec.get("caption"))
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{where}: missing 'text' (or 'caption') column")
            fname = rec.get("file_name")
            if not isinstance(fname, str) or not fname:
                raise ValueError(f"{where}: missing 'file_name' column")
            path = folder / fname
            if not path.is_file():
                raise ValueError(f"{where}: image file {path} does not exist")
            rec["text"] = text
            rec["path"] = str(path)
            records.append(rec)
    return records
