"""Build the emoji caption dataset from pinned npm packages, and read imagefolder datasets.

Run ``python -m model.data --help``. The builder

* finds each pinned package's tarball in a cache folder, and runs ``npm pack NAME@VERSION``
  there only when it is missing (no other network access);
* reads only the members it needs from the tarballs with :mod:`tarfile` (images,
  ``emoji.json``, ``openmoji.json``, license files); nothing is unpacked to disk;
* writes one Hugging Face ``imagefolder`` dataset per size (``<out>/64``, ``<out>/128``):
  ``images/<style>/<code>.png`` (RGB, alpha composited onto white, exact square size),
  ``metadata.jsonl`` and ``ATTRIBUTION.md``.

A style is written at a size only when its source is at least that large (google and
twitter are 64 px PNGs and are never upscaled). Re-running skips images that exist and
rewrites the metadata.

Captions (``text``) are the CLDR short names, which OpenMoji's ``openmoji.json`` carries for
every code, the same for all four styles (``--names unicode`` uses the lowercased Unicode
character names of ``emoji.json`` instead, e.g. "smiling face with open mouth" for U+1F603;
those collide across codes with CLDR names, so they are not the default).
"""
from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

STYLES: tuple[str, ...] = ("google", "twitter", "fluent3d", "openmoji")

SKIN_TONES: dict[int, str] = {
    0x1F3FB: "light skin tone",
    0x1F3FC: "medium-light skin tone",
    0x1F3FD: "medium skin tone",
    0x1F3FE: "medium-dark skin tone",
    0x1F3FF: "dark skin tone",
}

# OpenMoji groups -> emoji.json categories (used for codes emoji.json does not know)
_GROUP_CATEGORY = {
    "smileys-emotion": "Smileys & Emotion",
    "people-body": "People & Body",
    "component": "Component",
    "animals-nature": "Animals & Nature",
    "food-drink": "Food & Drink",
    "travel-places": "Travel & Places",
    "activities": "Activities",
    "objects": "Objects",
    "symbols": "Symbols",
    "flags": "Flags",
    # subgroups of "extras-unicode"
    "subdivision-flag": "Flags",
    "regional-indicator": "Symbols",
    "symbol-other": "Symbols",
}


@dataclass(frozen=True)
class Package:
    """One pinned npm package and what the dataset uses it for."""

    key: str
    name: str
    version: str
    license: str  # SPDX id of the images (or data) taken from it
    holder: str  # copyright holder of the artwork
    url: str
    license_files: tuple[str, ...]  # members copied into ATTRIBUTION.md
    native: float  # largest square size its images allow (inf for vectors)
    note: str = ""

    @property
    def tarball(self) -> str:
        """The file name ``npm pack`` writes: ``@scope/name`` -> ``scope-name-VERSION.tgz``."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


PACKAGES: dict[str, Package] = {
    "google": Package(
        "google", "emoji-datasource-google", "16.0.0", "Apache-2.0",
        "Google Inc. (Noto Emoji); emoji.json and packaging MIT, Copyright (c) 2013 Cal Henderson",
        "https://github.com/iamcal/emoji-data (images: https://github.com/googlefonts/noto-emoji, "
        "license https://www.apache.org/licenses/LICENSE-2.0)",
        ("package/LICENSE",), 64,
        "Images: Noto Emoji, Apache License 2.0. Metadata (emoji.json: names, short names, "
        "categories) MIT.",
    ),
    "twitter": Package(
        "twitter", "emoji-datasource-twitter", "16.0.0", "CC-BY-4.0",
        "Twitter, Inc and other contributors (Twemoji); packaging MIT, Copyright (c) 2013 Cal Henderson",
        "https://github.com/iamcal/emoji-data (images: https://github.com/jdecked/twemoji, "
        "license https://creativecommons.org/licenses/by/4.0/)",
        ("package/LICENSE",), 64,
        "Images: Twemoji, Creative Commons Attribution 4.0 International.",
    ),
    "fluent3d": Package(
        "fluent3d", "@lobehub/fluent-emoji-3d", "1.1.0", "MIT",
        "Microsoft Corporation (Fluent UI Emoji); package Copyright (c) 2023 LobeHub",
        "https://github.com/lobehub/fluent-emoji (artwork: https://github.com/microsoft/fluentui-emoji)",
        ("package/LICENSE", "package/LICENSE.md", "package/README.md"), 256,
        "Images: Microsoft Fluent UI Emoji (3D), MIT License. The npm package ships no LICENSE "
        "file; its package.json declares MIT and its README's license section is quoted below.",
    ),
    "openmoji": Package(
        "openmoji", "openmoji", "17.0.0", "CC-BY-SA-4.0",
        "OpenMoji contributors (HfG Schwäbisch Gmünd)",
        "https://openmoji.org (https://github.com/hfg-gmuend/openmoji)",
        ("package/LICENSE.txt",), float("inf"),
        "All emojis designed by OpenMoji - the open-source emoji and icon project. License: "
        "CC BY-SA 4.0. The images here are adaptations (rasterized with cairosvg, composited "
        "onto white, resized) and are shared under the same license.",
    ),
}

OPENMOJI_SVG_RENDER = 256  # openmoji SVGs are rendered at this size, then LANCZOS-resized


# --------------------------------------------------------------------------- codes


def code_key(code: str) -> tuple[int, ...]:
    """Code points of a hex code like "0023-FE0F-20E3" or "23_20e3", without U+FE0F."""
    parts = [p for p in re.split(r"[-_\s]+", code.strip()) if p]
    return tuple(cp for cp in (int(p, 16) for p in parts) if cp != 0xFE0F)


def code_str(key: tuple[int, ...]) -> str:
    """Canonical code of the dataset: lowercase, 4+ hex digits, no fe0f ("1f44b-1f3fd")."""
    return "-".join(f"{cp:04x}" for cp in key)


def _is_private_use(key: tuple[int, ...]) -> bool:
    return any(0xE000 <= cp <= 0xF8FF or cp >= 0xF0000 for cp in key)


def _tones(key: tuple[int, ...]) -> str | None:
    tones = [SKIN_TONES[cp] for cp in key if cp in SKIN_TONES]
    if not tones:
        return None
    if len(set(tones)) == 1:
        return tones[0]
    return ", ".join(tones)


def _split_tags(s: Any) -> list[str]:
    if not s:
        return []
    if isinstance(s, (list, tuple)):
        return [str(t) for t in s]
    return str(s).split(",")


def _dedup_lower(items: Iterable[str], drop: Iterable[str] = ()) -> list[str]:
    seen = {d.strip().lower() for d in drop}
    out = []
    for it in items:
        t = " ".join(str(it).lower().split())
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


# --------------------------------------------------------------------------- fetching


def ensure_tarball(pkg: Package, cache: Path) -> Path:
    """Path of the package tarball in ``cache``; runs ``npm pack`` there only if it is missing."""
    cache = Path(cache)
    path = cache / pkg.tarball
    if path.is_file():
        return path
    spec = f"{pkg.name}@{pkg.version}"
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            f"{path} is missing and npm is not installed: install Node.js with npm "
            f"(e.g. `apt-get install -y npm`) or put {pkg.tarball} (from `npm pack {spec}`) "
            f"into {cache}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    print(f"npm pack {spec} -> {cache}", file=sys.stderr)
    try:
        proc = subprocess.run([npm, "pack", spec], cwd=cache, capture_output=True, text=True)
    except OSError as e:
        raise SystemExit(f"could not run npm to fetch {spec}: {e}") from e
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout or "").strip()[-800:]
        raise SystemExit(
            f"npm pack {spec} failed (exit {proc.returncode}); expected {path}.\n{tail}"
        )
    return path


def read_members(tgz: Path, wanted) -> dict[str, bytes]:
    """Bytes of the tarball's regular-file members for which ``wanted(name)`` is true."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for m in tar:
                if m.isfile() and wanted(m.name):
                    f = tar.extractfile(m)
                    if f is not None:
                        out[m.name] = f.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SystemExit(f"cannot read {tgz}: {e} (delete it to fetch it again)") from e
    return out


# --------------------------------------------------------------------------- catalog


@dataclass
class Entry:
    """Everything known about one code (base emoji or skin-tone variant)."""

    key: tuple[int, ...]
    cldr_name: str | None = None
    unicode_name: str | None = None
    short_names: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    category: str | None = None
    skin_tone: str | None = None
    base: tuple[int, ...] | None = None  # base code of a skin-tone variant
    images: dict[str, str] = field(default_factory=dict)  # style -> tar member

    def name(self, names: str = "cldr") -> str:
        first, second = (self.cldr_name, self.unicode_name)
        if names == "unicode":
            first, second = second, first
        return first or second or code_str(self.key)


def build_catalog(emoji_json: list[dict], openmoji_json: list[dict]) -> dict[tuple[int, ...], Entry]:
    """Merge emoji.json (names, short names, categories, skin variants) with openmoji.json."""
    cat: dict[tuple[int, ...], Entry] = {}
    for e in emoji_json:
        key = code_key(e["unified"])
        name = (e.get("name") or "").lower().strip() or None
        shorts = [s.replace("_", " ") for s in e.get("short_names") or [e.get("short_name") or ""]]
        category = e.get("category")
        cat[key] = Entry(key, unicode_name=name, short_names=shorts, category=category,
                         skin_tone=None)
        cat[key].images.update(_ds_images(e))
        for mods, v in (e.get("skin_variations") or {}).items():
            vkey = code_key(v["unified"])
            tone = _tones(code_key(mods))
            cat[vkey] = Entry(
                vkey, unicode_name=f"{name}: {tone}" if name else None, short_names=shorts,
                category=category, skin_tone=tone, base=key,
            )
            cat[vkey].images.update(_ds_images(v))
    om_tags: dict[tuple[int, ...], list[str]] = {}
    for o in openmoji_json:
        if o.get("group") == "extras-openmoji":
            continue
        key = code_key(o["hexcode"])
        if _is_private_use(key):
            continue
        tags = _split_tags(o.get("tags")) + _split_tags(o.get("openmoji_tags"))
        om_tags[key] = tags
        ent = cat.get(key)
        tone = _tones(key) if o.get("skintone") not in ("", None) else None
        if ent is None:
            group = o.get("group") or ""
            category = _GROUP_CATEGORY.get(group) or _GROUP_CATEGORY.get(o.get("subgroups") or "")
            base = code_key(o["skintone_base_hexcode"]) if o.get("skintone_base_hexcode") else None
            ent = cat[key] = Entry(key, category=category or "Extras", skin_tone=tone,
                                   base=base if tone else None)
        ent.cldr_name = " ".join((o.get("annotation") or "").lower().split()) or None
        ent.images["openmoji"] = f"package/color/svg/{o['hexcode']}.svg"
        if ent.base is None and tone and o.get("skintone_base_hexcode"):
            ent.base = code_key(o["skintone_base_hexcode"])
    for ent in cat.values():
        # skin-tone variants carry no tags of their own: reuse their base's
        ent.tags = om_tags.get(ent.key) or (om_tags.get(ent.base, []) if ent.base else [])
        if not ent.short_names and ent.base in cat:
            ent.short_names = cat[ent.base].short_names
        if ent.category is None and ent.base in cat:
            ent.category = cat[ent.base].category
    return cat


def _ds_images(e: dict) -> dict[str, str]:
    img = e.get("image")
    out = {}
    if img:
        for style in ("google", "twitter"):
            if e.get(f"has_img_{style}", True):
                out[style] = f"package/img/{style}/64/{img}"
    return out


# @lobehub/fluent-emoji-3d@1.1.0 names its medium-light (U+1F3FC) and medium (U+1F3FD) files
# the wrong way round: in 270 of 280 five-tone sets the "1f3fc" image is darker than the
# "1f3fd" one (0 of 281 in google/twitter/openmoji), and side by side "1f3fd" is the light
# peach that Microsoft's Fluent "Medium-Light" is. The builder swaps them back.
FLUENT3D_TONE_FIX = {0x1F3FC: 0x1F3FD, 0x1F3FD: 0x1F3FC}


def match_fluent(names: Iterable[str], cat: dict[tuple[int, ...], Entry],
                 tone_fix: dict[int, int] = FLUENT3D_TONE_FIX) -> tuple[dict, list[str]]:
    """Map fluent3d asset names to codes. Returns ({key: member}, unmatched file stems)."""
    by_key: dict[tuple[int, ...], list[str]] = {}
    for member in names:
        stem = member.rsplit("/", 1)[-1][: -len(".webp")]
        key = tuple(tone_fix.get(cp, cp) for cp in code_key(stem))
        # subdivision flags are named "1f3f4-e0067_e0062_..." without the cancel tag
        if key and key[0] == 0x1F3F4 and any(0xE0020 <= c <= 0xE007E for c in key) and key[-1] != 0xE007F:
            key = key + (0xE007F,)
        by_key.setdefault(key, []).append(member)
    matched, unmatched = {}, []
    for key, members in by_key.items():
        if key not in cat:
            unmatched += [m.rsplit("/", 1)[-1] for m in members]
            continue
        # several files per code (e.g. "23-fe0f-20e3" and "0023-fe0f-20e3"): prefer the
        # one named like emoji.json's image, else the first by name
        want = cat[key].images.get("google", "").rsplit("/", 1)[-1].replace(".png", ".webp")
        members.sort(key=lambda m: (m.rsplit("/", 1)[-1] != want, m))
        matched[key] = members[0]
    return matched, sorted(unmatched)


# --------------------------------------------------------------------------- images


def _to_square_rgb(im, size: int):
    """RGBA-aware: pad to square (centered, transparent), composite onto white, LANCZOS."""
    from PIL import Image

    im = im.convert("RGBA")
    w, h = im.size
    if w != h:
        s = max(w, h)
        canvas = Image.new("RGBA", (s, s), (255, 255, 255, 0))
        canvas.paste(im, ((s - w) // 2, (s - h) // 2))
        im = canvas
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, im).convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.LANCZOS)
    return rgb


def _drop_missing_markers(svg: bytes) -> bytes:
    """Remove marker references to ids the SVG does not define (browsers ignore them,
    cairosvg crashes: openmoji 1F3F4-E0065-E0073-E0063-E006D-E007F uses url(#Dot))."""
    ids = set(re.findall(rb'\bid="([^"]+)"', svg))

    def repl(m: re.Match) -> bytes:
        return m.group(0) if m.group(2) in ids else b""

    return re.sub(rb'\s(marker(?:-start|-mid|-end)?)="url\(#([^)"]+)\)"', repl, svg)


def _render_svg(data: bytes, size: int) -> bytes:
    import cairosvg

    try:
        return cairosvg.svg2png(bytestring=data, output_width=size, output_height=size)
    except Exception:
        fixed = _drop_missing_markers(data)
        if fixed == data:
            raise
        return cairosvg.svg2png(bytestring=fixed, output_width=size, output_height=size)


def _render_job(job: tuple[str, bytes, list[tuple[int, str]], str]) -> tuple[str, int, str | None]:
    """Worker: decode one source image and write every (size, path) it is needed at.

    Returns (job id, files written, error message or None); errors do not stop the build.
    """
    from PIL import Image

    kind, data, outputs, job_id = job
    try:
        if kind == "svg":
            im = Image.open(io.BytesIO(_render_svg(data, OPENMOJI_SVG_RENDER)))
        else:
            im = Image.open(io.BytesIO(data))
        im.load()
        for size, path in outputs:
            out = _to_square_rgb(im, size)
            tmp = f"{path}.tmp"
            out.save(tmp, format="PNG")
            os.replace(tmp, path)
    except Exception as e:  # a broken source image skips that record, not the build
        return job_id, 0, f"{type(e).__name__}: {e}"
    return job_id, len(outputs), None


def _import_cairosvg() -> None:
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError) as e:
        raise SystemExit(
            f"cannot import cairosvg ({e}); install it with `pip install cairosvg` and the "
            f"cairo library with `apt-get install -y libcairo2`"
        ) from e


# --------------------------------------------------------------------------- build


def _style_sizes(style: str, sizes: Iterable[int]) -> list[int]:
    return [s for s in sizes if s <= PACKAGES[style].native]


def _license_text(data: dict[str, bytes], pkg: Package) -> str:
    parts = []
    for member in pkg.license_files:
        if member not in data:
            continue
        text = data[member].decode("utf-8", "replace")
        if member.endswith("README.md"):  # quote only the license section
            m = re.search(r"^#+[^\n]*licen[sc]e[^\n]*\n(.*?)(?=^#+ |\Z)", text, re.I | re.M | re.S)
            if not m:
                continue
            text = "\n".join(l for l in m.group(1).strip().splitlines() if not l.startswith("["))
        parts.append(f"From `{member[len('package/'):]}`:\n\n```text\n{text.strip()}\n```\n")
    return "\n".join(parts) or "(the package ships no license file)\n"


def write_attribution(folder: Path, used: dict[str, str], licenses: dict[str, str]) -> None:
    """``used``: style -> what was taken from its package ("images", "metadata")."""
    lines = [
        "# Attribution",
        "",
        "This dataset was built by `python -m model.data` from the pinned npm packages below. "
        "Images were rasterized/resized, composited onto a white background and saved as PNG. "
        "Captions are CLDR short names from OpenMoji's `openmoji.json` and/or the names of "
        "`emoji.json` (emoji-datasource); keywords are emoji-datasource short names and "
        "OpenMoji/CLDR tags.",
        "",
        "| style | package | version | license | copyright | used for |",
        "|---|---|---|---|---|---|",
    ]
    for style in STYLES:
        if style in used:
            p = PACKAGES[style]
            lic = "MIT (emoji.json)" if used[style] == "metadata (emoji.json)" else p.license
            lines.append(f"| {style} | `{p.name}` | {p.version} | {lic} | {p.holder} | {used[style]} |")
    lines.append("")
    for style in STYLES:
        if style not in used:
            continue
        p = PACKAGES[style]
        lines += [
            f"## {p.name}@{p.version} ({style})",
            "",
            f"- Used for: {used[style]}",
            f"- License: {p.license}" + (" (images); emoji.json MIT" if style in ("google", "twitter") else ""),
            f"- Copyright: {p.holder}",
            f"- URL: {p.url}",
            f"- npm: https://www.npmjs.com/package/{p.name}/v/{p.version}",
            "",
            p.note,
            "",
            licenses.get(style, "(license file not read)\n"),
        ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ATTRIBUTION.md").write_text("\n".join(lines), encoding="utf-8")


def build(
    out: str | Path = "data/emoji",
    cache: str | Path = "data/npm-cache",
    sizes: Iterable[int] = (64, 128),
    styles: Iterable[str] = STYLES,
    skin_tones: bool = True,
    limit: int | None = None,
    workers: int = 2,
    names: str = "cldr",
    progress: bool = True,
) -> dict[str, Any]:
    """Build the datasets.

    Returns {"counts": {size: {style: n}}, "written": files written, "unmatched": fluent3d
    files matching no code, "failed": file_names whose source could not be rendered}.
    """
    from tqdm import tqdm

    out, cache = Path(out), Path(cache)
    sizes = sorted({int(s) for s in sizes})
    requested = set(styles)
    if not requested or requested - set(STYLES):
        raise ValueError(f"styles must be among {STYLES}, got {sorted(requested)}")
    styles = [s for s in STYLES if s in requested]
    if names not in ("cldr", "unicode"):
        raise ValueError(f"names must be 'cldr' or 'unicode', got {names!r}")
    if "openmoji" in styles:
        _import_cairosvg()

    # metadata comes from emoji-datasource (emoji.json) and openmoji (openmoji.json) always
    meta_style = next((s for s in ("google", "twitter") if s in styles), "google")
    needed = sorted(set(styles) | {meta_style, "openmoji"}, key=STYLES.index)
    tarballs = {s: ensure_tarball(PACKAGES[s], cache) for s in needed}

    def wanted_for(style: str):
        lic = set(PACKAGES[style].license_files)
        if style in ("google", "twitter"):
            imgs = style in styles
            prefix = f"package/img/{style}/64/"
            return lambda n: n == "package/emoji.json" or n in lic or (imgs and n.startswith(prefix) and n.endswith(".png"))
        if style == "fluent3d":
            return lambda n: n in lic or (n.startswith("package/") and n.endswith(".webp"))
        imgs = style in styles
        return lambda n: n == "package/data/openmoji.json" or n in lic or (
            imgs and n.startswith("package/color/svg/") and n.endswith(".svg"))

    data: dict[str, dict[str, bytes]] = {}
    for s in tqdm(needed, desc="reading packages", disable=not progress):
        data[s] = read_members(tarballs[s], wanted_for(s))
    try:
        emoji_json = json.loads(data[meta_style]["package/emoji.json"])
        openmoji_json = json.loads(data["openmoji"]["package/data/openmoji.json"])
    except KeyError as e:
        raise SystemExit(f"{e.args[0]} not found in its package tarball") from e
    cat = build_catalog(emoji_json, openmoji_json)

    unmatched: list[str] = []
    if "fluent3d" in styles:
        fl, unmatched = match_fluent([n for n in data["fluent3d"] if n.endswith(".webp")], cat)
        for key, member in fl.items():
            cat[key].images["fluent3d"] = member

    # records per style
    per_style: dict[str, list[dict]] = {}
    for style in styles:
        src = data[style]
        recs = []
        for key, ent in cat.items():
            member = ent.images.get(style)
            if member is None or member not in src:
                continue
            if ent.skin_tone and not skin_tones:
                continue
            code = code_str(key)
            text = ent.name(names)
            recs.append({
                "file_name": f"images/{style}/{code}.png",
                "text": text,
                "style": style,
                "keywords": _dedup_lower(ent.short_names + ent.tags, drop=[text]),
                "category": ent.category or "Extras",
                "code": code,
                "skin_tone": ent.skin_tone,
                "_member": member,
            })
        recs.sort(key=lambda r: r["code"])
        per_style[style] = recs[:limit] if limit is not None else recs

    # render what is missing
    jobs = []
    for style in styles:
        ss = _style_sizes(style, sizes)
        kind = "svg" if style == "openmoji" else "raster"
        for size in ss:
            (out / str(size) / "images" / style).mkdir(parents=True, exist_ok=True)
        for r in per_style[style]:
            outputs = [(size, str(out / str(size) / r["file_name"])) for size in ss]
            outputs = [(s, p) for s, p in outputs if not os.path.exists(p)]
            if outputs:
                jobs.append((kind, data[style][r["_member"]], outputs, r["file_name"]))
    written = 0
    failed: dict[str, str] = {}
    if jobs:
        bar = tqdm(total=len(jobs), desc="rendering images", unit="img", disable=not progress)
        if workers > 1 and len(jobs) > 1:
            ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with ctx.Pool(workers) as pool:
                results = pool.imap_unordered(_render_job, jobs, chunksize=16)
                for job_id, n, err in results:
                    written += n
                    if err:
                        failed[job_id] = err
                    bar.update()
        else:
            for job in jobs:
                job_id, n, err = _render_job(job)
                written += n
                if err:
                    failed[job_id] = err
                bar.update()
        bar.close()
    for job_id, err in sorted(failed.items()):
        print(f"warning: skipped {job_id}: {err}", file=sys.stderr)
    if failed:
        for style in styles:
            per_style[style] = [r for r in per_style[style] if r["file_name"] not in failed]
    del jobs

    # metadata + attribution per size
    licenses = {s: _license_text(data[s], PACKAGES[s]) for s in needed}
    counts: dict[int, dict[str, int]] = {}
    for size in sizes:
        folder = out / str(size)
        in_size = [s for s in styles if size in _style_sizes(s, sizes)]
        if not in_size:
            continue
        counts[size] = {}
        tmp = folder / "metadata.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for style in in_size:
                counts[size][style] = len(per_style[style])
                for r in per_style[style]:
                    row = {k: v for k, v in r.items() if not k.startswith("_")}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, folder / "metadata.jsonl")
        used = {s: "images" for s in in_size}
        used.setdefault(meta_style, "metadata (emoji.json)")
        used["openmoji"] = "images, captions and tags" if "openmoji" in in_size else "captions and tags (openmoji.json)"
        if names == "unicode" and "openmoji" not in in_size:
            used["openmoji"] = "tags (openmoji.json)"
        write_attribution(folder, used, licenses)
    return {"counts": counts, "written": written, "unmatched": unmatched,
            "failed": sorted(failed)}


# --------------------------------------------------------------------------- reuse


def _words(s: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", s.lower()))


def caption_variants(record: dict) -> list[str]:
    """Training captions for a record: the name, 3 templates and up to 2 keyword phrases.

    Deterministic order, deduplicated, lowercase. Keyword phrases are "{name}, {keyword}"
    for the first keywords that add a word the name does not already have.
    """
    name = " ".join(str(record.get("text") or record.get("caption") or "").lower().split())
    if not name:
        return []
    style = str(record.get("style") or "").lower().strip()
    caps = [name, f"an emoji of {name}", f"{name} emoji"]
    if style:
        caps.append(f"{name} in {style} style")
    kws = record.get("keywords") or []
    if isinstance(kws, str):
        kws = kws.split(",")
    name_words = _words(name)
    n = 0
    for kw in kws:
        kw = " ".join(str(kw).lower().split())
        if not kw or _words(kw) <= name_words:
            continue
        caps.append(f"{name}, {kw}")
        n += 1
        if n == 2:
            break
    return _dedup_lower(caps)


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


# --------------------------------------------------------------------------- CLI


def _parse_ints(s: str) -> list[int]:
    try:
        vals = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}")
    if not vals or any(v < 8 for v in vals):
        raise argparse.ArgumentTypeError(f"sizes must be integers >= 8, got {s!r}")
    return vals


def _parse_styles(s: str) -> list[str]:
    vals = [x.strip() for x in s.split(",") if x.strip()]
    bad = [v for v in vals if v not in STYLES]
    if bad or not vals:
        raise argparse.ArgumentTypeError(f"unknown style(s) {bad}; choose from {','.join(STYLES)}")
    return vals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m model.data",
        description="Build the emoji caption datasets (Hugging Face imagefolder layout) "
        "from pinned npm packages.",
    )
    ap.add_argument("--out", default="data/emoji",
                    help="output folder; one imagefolder per size is written to OUT/<size> "
                    "(default: %(default)s)")
    ap.add_argument("--cache", default="data/npm-cache",
                    help="folder holding the npm tarballs; `npm pack` runs only for missing "
                    "ones (default: %(default)s)")
    ap.add_argument("--sizes", type=_parse_ints, default=[64, 128],
                    help="comma-separated square image sizes; a style is written only at sizes "
                    "its source allows, google/twitter at 64 at most (default: 64,128)")
    ap.add_argument("--styles", type=_parse_styles, default=list(STYLES),
                    help=f"comma-separated styles to build (default: {','.join(STYLES)})")
    ap.add_argument("--no-skin-tones", action="store_true",
                    help="leave out skin-tone variants (base emojis only)")
    ap.add_argument("--limit", type=int, default=None, metavar="N",
                    help="debug: only the first N emojis (by code) of each style")
    ap.add_argument("--workers", type=int, default=2,
                    help="processes that render images (default: %(default)s)")
    ap.add_argument("--names", choices=("cldr", "unicode"), default="cldr",
                    help="caption source: CLDR short names from openmoji.json, the same for "
                    "every style, or emoji.json's Unicode names (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    t0 = time.time()
    res = build(out=args.out, cache=args.cache, sizes=args.sizes, styles=args.styles,
                skin_tones=not args.no_skin_tones, limit=args.limit,
                workers=max(1, args.workers), names=args.names)
    for size, by_style in res["counts"].items():
        total = sum(by_style.values())
        detail = ", ".join(f"{s} {n}" for s, n in by_style.items())
        print(f"{Path(args.out) / str(size)}: {total} images ({detail})")
    if res["unmatched"]:
        print(f"fluent3d files without a matching code: {len(res['unmatched'])} "
              f"({', '.join(res['unmatched'][:5])}...)")
    if res["failed"]:
        print(f"skipped {len(res['failed'])} images that could not be rendered: "
              f"{', '.join(res['failed'][:5])}")
    print(f"wrote {res['written']} new image files in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
