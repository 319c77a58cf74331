"""Training data in memory: any captioned imagefolder -> a compact "pack".

A pack holds every image as PNG bytes plus, per image, its style id and the indices of
its caption variants into one caption table whose sentence embeddings (MiniLM unless the pack
says otherwise) are computed once.
It is a single safetensors file, so a dataset (and its caption embeddings) can travel
to a machine without the sentence encoder: ``python -m model.dataset FOLDER --out F``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from .config import STYLES
from .images import square_on_white
from .text_encoder import MINILM

SAMPLE_PROMPTS = ("grinning face", "red apple", "rocket", "dog face", "pizza", "red heart",
                  "smiling face with sunglasses", "cat face")


@dataclass
class Pack:
    images: torch.Tensor  # (N, 3, S, S) uint8
    styles: torch.Tensor  # (N,) int64 index into style_names
    cap_offsets: torch.Tensor  # (N + 1,) int64: captions of image i are cap_index[off[i]:off[i+1]]
    cap_index: torch.Tensor  # (K,) int64 into captions
    cap_emb: torch.Tensor  # (M, text_dim) float16 unit embeddings by text_encoder
    captions: list[str]  # (M,)
    style_names: list[str]
    text_encoder: str = MINILM  # which sentence encoder wrote cap_emb

    def __len__(self) -> int:
        return self.images.shape[0]

    def embedding_of(self, text: str) -> torch.Tensor | None:
        try:
            return self.cap_emb[self.captions.index(text)].float()
        except ValueError:
            return None


def image_names(pack: Pack) -> list[str]:
    """The name of each image: its first caption variant (the lowercased emoji name)."""
    first = pack.cap_index[pack.cap_offsets[:-1]].tolist()
    return [pack.captions[i] for i in first]


def load_rgb(path: Path, size: int) -> np.ndarray:
    """Any image file -> (size, size, 3) uint8: square RGB on white, as the app sees uploads
    (a non-square image is padded, not stretched)."""
    with Image.open(path) as im:
        return np.asarray(square_on_white(im, size))


def _skin_keep(rec: dict, skin_tones: str) -> bool:
    if skin_tones == "all" or not rec.get("skin_tone"):
        return True
    if skin_tones == "none":
        return False
    # "one": keep a single, deterministic tone variant per (style, base emoji)
    digest = hashlib.md5(f"{rec.get('style')}/{rec.get('text', '').split(':')[0]}".encode()).digest()
    tones = ("light skin tone", "medium-light skin tone", "medium skin tone",
             "medium-dark skin tone", "dark skin tone")
    return rec["skin_tone"] == tones[digest[0] % len(tones)]


def build_pack(folder: str | Path, *, size: int, encoder=None, skin_tones: str = "all",
               styles: tuple[str, ...] | None = None, text_encoder: str = MINILM, templates: bool = True) -> Pack:
    """Read an imagefolder (metadata.jsonl with a text column) into a Pack of size x size images,
    its captions embedded by `encoder` (default: text_encoder's); templates=False leaves out the
    captions the prior never reads (see without_templates)."""
    from tqdm import tqdm

    from .data import caption_variants, read_metadata

    folder = Path(folder)
    recs = [r for r in read_metadata(folder) if _skin_keep(r, skin_tones)]
    found = sorted({r.get("style") or "default" for r in recs})
    if styles is None:
        styles = tuple(s for s in STYLES if s in found) + tuple(s for s in found if s not in STYLES)
    if not recs:
        raise ValueError(f"{folder} holds no images")
    images = np.stack([load_rgb(folder / r["file_name"], size)
                       for r in tqdm(recs, desc=f"reading {folder.name}", unit="img")])
    style_ids = [styles.index(r.get("style") or "default") for r in recs]
    table: dict[str, int] = {p: i for i, p in enumerate(SAMPLE_PROMPTS)}
    offsets, index = [0], []
    for r in recs:
        for cap in caption_variants(r):
            index.append(table.setdefault(cap, len(table)))
        offsets.append(len(index))
    captions = list(table)
    pack = Pack(images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                styles=torch.tensor(style_ids, dtype=torch.long),
                cap_offsets=torch.tensor(offsets, dtype=torch.long),
                cap_index=torch.tensor(index, dtype=torch.long),
                cap_emb=torch.zeros(len(captions), 0), captions=captions, style_names=list(styles),
                text_encoder=text_encoder)
    if not templates:
        pack = without_templates(pack)
    if encoder is None:
        from .text_encoder import load_text_encoder
        encoder = load_text_encoder(text_encoder)
    return dataclasses.replace(pack, cap_emb=encoder.encode(pack.captions).to(torch.float16))


def without_templates(pack: Pack) -> Pack:
    """The pack with every caption the prior leaves out (the style and 'emoji' templates of each
    image's name, model.data.records.caption_templates) dropped from its caption table: what to
    embed when only the prior needs the captions (16k of the 42k captions of data/emoji/64).
    The prior's tables (model.training.text_tables) come out the same, row for row."""
    from .data.records import caption_templates

    off = pack.cap_offsets.tolist()
    per_image = []
    for i in range(len(pack)):
        caps = pack.cap_index[off[i]:off[i + 1]].tolist()
        name = pack.captions[caps[0]]  # the first caption variant is the name
        templates = set(caption_templates(name, pack.style_names[int(pack.styles[i])]))
        per_image.append([c for c in caps if pack.captions[c] not in templates])
    kept = sorted({c for caps in per_image for c in caps})  # the old order: the same tables, row for row
    new_id = {c: k for k, c in enumerate(kept)}
    index = [new_id[c] for caps in per_image for c in caps]
    offsets = [0, *itertools.accumulate(len(caps) for caps in per_image)]
    return dataclasses.replace(pack, cap_offsets=torch.tensor(offsets, dtype=torch.long),
                               cap_index=torch.tensor(index, dtype=torch.long),
                               cap_emb=pack.cap_emb[torch.tensor(kept, dtype=torch.long)],
                               captions=[pack.captions[c] for c in kept])


def save_pack(pack: Pack, path: str | Path) -> Path:
    blobs, offs = [], [0]
    for img in pack.images.permute(0, 2, 3, 1).numpy():
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG", optimize=True)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
        offs.append(offs[-1] + len(blobs[-1]))
    tensors = {"png": torch.from_numpy(np.concatenate(blobs)), "png_offsets": torch.tensor(offs),
               "styles": pack.styles, "cap_offsets": pack.cap_offsets, "cap_index": pack.cap_index,
               "cap_emb": pack.cap_emb}
    meta = {"captions": json.dumps(pack.captions), "style_names": json.dumps(pack.style_names),
            "size": str(pack.images.shape[-1]), "text_encoder": pack.text_encoder}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def load_pack(path: str | Path) -> Pack:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    t = load_file(str(path))
    png, offs = t["png"].numpy(), t["png_offsets"].tolist()
    images = np.stack([np.asarray(Image.open(io.BytesIO(png[a:b].tobytes())).convert("RGB"))
                       for a, b in zip(offs[:-1], offs[1:])])
    return Pack(images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), styles=t["styles"],
                cap_offsets=t["cap_offsets"], cap_index=t["cap_index"], cap_emb=t["cap_emb"],
                captions=json.loads(meta["captions"]), style_names=json.loads(meta["style_names"]),
                text_encoder=meta.get("text_encoder", MINILM))  # packs from before the field: MiniLM


def load_dataset(path: str | Path, *, size: int, skin_tones: str = "all", text_encoder: str = MINILM,
                 templates: bool = True, known: Pack | None = None) -> Pack:
    """A pack file, or an imagefolder (its pack is cached beside it and rebuilt when metadata changes),
    its captions embedded by text_encoder (a pack file holding another's is re-embedded and the
    vectors cached; known: see reembed). templates=False: without_templates."""
    path = Path(path)
    if path.is_file():
        pack = load_pack(path)
        if pack.images.shape[-1] != size:
            raise ValueError(f"{path} holds {pack.images.shape[-1]} px images, expected {size}")
        if not templates:
            pack = without_templates(pack)
        return pack if pack.text_encoder == text_encoder else reembed(pack, text_encoder, path.parent / ".cache", known)
    meta = path / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{path} is neither a pack file nor an imagefolder with metadata.jsonl")
    from .data.records import CAPTIONS_VERSION

    extra = ("" if text_encoder == MINILM else f"/{text_encoder}") + ("" if templates else "/no-templates")
    key = hashlib.md5(meta.read_bytes() + f"{size}/{skin_tones}/captions-{CAPTIONS_VERSION}{extra}".encode()).hexdigest()[:12]
    cache = path / ".cache" / f"pack-{size}-{skin_tones}-{key}.safetensors"
    if cache.is_file():
        return load_pack(cache)
    pack = build_pack(path, size=size, skin_tones=skin_tones, text_encoder=text_encoder, templates=templates)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    save_pack(pack, tmp)
    tmp.replace(cache)  # atomic: processes building the same cache never read half a file
    return pack


def reembed(pack: Pack, text_encoder: str, cache: str | Path | None = None, known: Pack | None = None) -> Pack:
    """The pack with its captions embedded by another sentence encoder; with a cache folder the
    embeddings are kept there, keyed by the encoder and the captions. known: a pack already in
    that encoder's space whose captions are reused (only the others are encoded)."""
    key = hashlib.md5(("\n".join(pack.captions) + "|" + text_encoder).encode()).hexdigest()[:12]
    file = Path(cache) / f"captions-{text_encoder.split('/')[-1]}-{key}.safetensors" if cache else None
    if file is not None and file.is_file():
        emb = load_file(str(file))["cap_emb"]
    else:
        have = {c: i for i, c in enumerate(known.captions)} if known is not None and known.text_encoder == text_encoder else {}
        todo = [c for c in pack.captions if c not in have]
        if todo:
            from .text_encoder import load_text_encoder
            new = load_text_encoder(text_encoder).encode(todo).to(torch.float16)
        at = {c: i for i, c in enumerate(todo)}
        emb = torch.stack([known.cap_emb[have[c]].to(torch.float16) if c in have else new[at[c]] for c in pack.captions]) \
            if pack.captions else torch.zeros(0, 1, dtype=torch.float16)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(f".{os.getpid()}.tmp")
            save_file({"cap_emb": emb.contiguous()}, str(tmp))
            tmp.replace(file)
    return dataclasses.replace(pack, cap_emb=emb, text_encoder=text_encoder)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Pack an imagefolder (+ caption embeddings) into one file.")
    ap.add_argument("folder", help="imagefolder with metadata.jsonl (text column)")
    ap.add_argument("--out", required=True, help="output .safetensors pack")
    ap.add_argument("--size", type=int, default=64, help="image size in pixels")
    ap.add_argument("--skin-tones", choices=("all", "one", "none"), default="all",
                    help="which skin-tone variants to keep (one: one per emoji and style)")
    a = ap.parse_args(argv)
    pack = build_pack(a.folder, size=a.size, skin_tones=a.skin_tones)
    out = save_pack(pack, a.out)
    print(f"{out}: {len(pack)} images, {len(pack.captions)} captions, "
          f"styles {pack.style_names}, {out.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
