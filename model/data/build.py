"""``build()``: the pinned packages -> one imagefolder per size (images, metadata.jsonl,
ATTRIBUTION.md)."""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from .catalog import build_catalog, match_fluent
from ..config import STYLES
from .packages import (PACKAGES, DataBuildError, Package, dedup_lower, code_str, ensure_tarball,
                       read_members)
from .render import import_cairosvg, render_job

DESCRIPTIONS = Path(__file__).with_name("descriptions.jsonl")


def read_descriptions(path: str | Path = DESCRIPTIONS) -> dict[str, list[str]]:
    """code -> plain-word descriptions ("a spaceship taking off"), from a jsonl of
    {"code": ..., "descriptions": [...]} (other columns, e.g. "name", are for people)."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                code, texts = str(row["code"]).lower(), row["descriptions"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: expected {{\"code\": ..., \"descriptions\": [...]}} ({e})") from e
            out.setdefault(code, []).extend(dedup_lower(texts))
    return out


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
        "OpenMoji/CLDR tags; descriptions in plain words were written by this project.",
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


def _check_styles(styles: Iterable[str], names: str) -> list[str]:
    """The requested styles in STYLES order; a ValueError for an unknown style or names scheme."""
    requested = set(styles)
    if not requested or requested - set(STYLES):
        raise ValueError(f"styles must be among {STYLES}, got {sorted(requested)}")
    if names not in ("cldr", "unicode"):
        raise ValueError(f"names must be 'cldr' or 'unicode', got {names!r}")
    return [s for s in STYLES if s in requested]


def _member_filter(style: str, styles: list[str]) -> Callable[[str], bool]:
    """Which tarball members of ``style``'s package to read: its license files, its metadata json,
    and its images when ``style`` is one of the built ``styles``."""
    lic = set(PACKAGES[style].license_files)
    imgs = style in styles
    if style in ("google", "twitter"):
        prefix = f"package/img/{style}/64/"
        return lambda n: n == "package/emoji.json" or n in lic or (imgs and n.startswith(prefix) and n.endswith(".png"))
    if style == "fluent3d":
        return lambda n: n in lic or (n.startswith("package/") and n.endswith(".webp"))
    return lambda n: n == "package/data/openmoji.json" or n in lic or (
        imgs and n.startswith("package/color/svg/") and n.endswith(".svg"))


def _read_packages(needed: list[str], styles: list[str], cache: Path, progress: bool) -> dict[str, dict[str, bytes]]:
    """style -> {member: bytes} of each needed package (downloaded into ``cache`` when missing)."""
    from tqdm import tqdm

    tarballs = {s: ensure_tarball(PACKAGES[s], cache) for s in needed}
    return {s: read_members(tarballs[s], _member_filter(s, styles))
            for s in tqdm(needed, desc="reading packages", disable=not progress)}


def _catalog(data: dict[str, dict[str, bytes]], meta_style: str, styles: list[str]) -> tuple[dict, list[str]]:
    """The emoji catalog from emoji.json and openmoji.json, with the fluent3d images matched in
    when fluent3d is built; returns (catalog, fluent3d files matching no code)."""
    try:
        emoji_json = json.loads(data[meta_style]["package/emoji.json"])
        openmoji_json = json.loads(data["openmoji"]["package/data/openmoji.json"])
    except KeyError as e:
        raise DataBuildError(f"{e.args[0]} not found in its package tarball") from e
    cat = build_catalog(emoji_json, openmoji_json)
    unmatched: list[str] = []
    if "fluent3d" in styles:
        fl, unmatched = match_fluent([n for n in data["fluent3d"] if n.endswith(".webp")], cat)
        for key, member in fl.items():
            cat[key].images["fluent3d"] = member
    return cat, unmatched


def _style_records(cat: dict, style: str, src: dict[str, bytes], *, skin_tones: bool, names: str,
                   descs: dict[str, list[str]], limit: int | None) -> list[dict]:
    """The metadata rows of one style (sorted by code, the first ``limit``); ``_member`` names the
    source image in the package."""
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
            "keywords": dedup_lower(ent.short_names + ent.tags, drop=[text]),
            "category": ent.category or "Extras",
            "code": code,
            "skin_tone": ent.skin_tone,
            "descriptions": [] if ent.skin_tone else descs.get(code, []),
            "_member": member,
        })
    recs.sort(key=lambda r: r["code"])
    return recs[:limit] if limit is not None else recs


def _render_jobs(out: Path, sizes: list[int], per_style: dict[str, list[dict]],
                 data: dict[str, dict[str, bytes]]) -> list[tuple]:
    """One render_job per image with an output file not yet on disk (creating the image folders)."""
    jobs = []
    for style, recs in per_style.items():
        ss = _style_sizes(style, sizes)
        kind = "svg" if style == "openmoji" else "raster"
        for size in ss:
            (out / str(size) / "images" / style).mkdir(parents=True, exist_ok=True)
        for r in recs:
            outputs = [(size, str(out / str(size) / r["file_name"])) for size in ss]
            outputs = [(s, p) for s, p in outputs if not os.path.exists(p)]
            if outputs:
                jobs.append((kind, data[style][r["_member"]], outputs, r["file_name"]))
    return jobs


def _run_jobs(jobs: list[tuple], workers: int, progress: bool) -> tuple[int, dict[str, str]]:
    """Render the jobs (in a pool of ``workers`` processes when more than one); returns (files
    written, {file_name: error} of the jobs whose source could not be rendered)."""
    from tqdm import tqdm

    written = 0
    failed: dict[str, str] = {}
    if not jobs:
        return written, failed
    bar = tqdm(total=len(jobs), desc="rendering images", unit="img", disable=not progress)
    if workers > 1 and len(jobs) > 1:
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(workers) as pool:
            for job_id, n, err in pool.imap_unordered(render_job, jobs, chunksize=16):
                written += n
                if err:
                    failed[job_id] = err
                bar.update()
    else:
        for job in jobs:
            job_id, n, err = render_job(job)
            written += n
            if err:
                failed[job_id] = err
            bar.update()
    bar.close()
    return written, failed


def _write_metadata(path: Path, per_style: dict[str, list[dict]], in_size: list[str]) -> dict[str, int]:
    """metadata.jsonl of the styles ``in_size`` (written to a temporary file, then moved into
    place); returns style -> rows written."""
    counts = {}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for style in in_size:
            counts[style] = len(per_style[style])
            for r in per_style[style]:
                row = {k: v for k, v in r.items() if not k.startswith("_")}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return counts


def _used_for(in_size: list[str], meta_style: str, names: str) -> dict[str, str]:
    """style -> what one size's dataset took from its package, for ATTRIBUTION.md."""
    used = {s: "images" for s in in_size}
    used.setdefault(meta_style, "metadata (emoji.json)")
    used["openmoji"] = "images, captions and tags" if "openmoji" in in_size else "captions and tags (openmoji.json)"
    if names == "unicode" and "openmoji" not in in_size:
        used["openmoji"] = "tags (openmoji.json)"
    return used


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
    descriptions: str | Path | None = DESCRIPTIONS,
) -> dict[str, Any]:
    """Build the datasets.

    ``descriptions``: a jsonl of {"code", "descriptions"} (default: the project's own, written
    in plain words for every base emoji); each record of that code gets them in a
    ``descriptions`` column (skin-tone variants get none). ``None``: no descriptions.

    Returns {"counts": {size: {style: n}}, "written": files written, "unmatched": fluent3d
    files matching no code, "failed": file_names whose source could not be rendered}.
    """
    out, cache = Path(out), Path(cache)
    sizes = sorted({int(s) for s in sizes})
    styles = _check_styles(styles, names)
    if "openmoji" in styles:
        import_cairosvg()

    # metadata comes from emoji-datasource (emoji.json) and openmoji (openmoji.json) always
    meta_style = next((s for s in ("google", "twitter") if s in styles), "google")
    needed = sorted(set(styles) | {meta_style, "openmoji"}, key=STYLES.index)
    data = _read_packages(needed, styles, cache, progress)
    cat, unmatched = _catalog(data, meta_style, styles)
    descs = read_descriptions(descriptions) if descriptions is not None else {}
    per_style = {style: _style_records(cat, style, data[style], skin_tones=skin_tones, names=names,
                                       descs=descs, limit=limit) for style in styles}

    written, failed = _run_jobs(_render_jobs(out, sizes, per_style, data), workers, progress)
    for job_id, err in sorted(failed.items()):
        print(f"warning: skipped {job_id}: {err}", file=sys.stderr)
    if failed:
        for style in styles:
            per_style[style] = [r for r in per_style[style] if r["file_name"] not in failed]

    # metadata + attribution per size
    licenses = {s: _license_text(data[s], PACKAGES[s]) for s in needed}
    counts: dict[int, dict[str, int]] = {}
    for size in sizes:
        in_size = [s for s in styles if size in _style_sizes(s, sizes)]
        if in_size:
            counts[size] = _write_metadata(out / str(size) / "metadata.jsonl", per_style, in_size)
            write_attribution(out / str(size), _used_for(in_size, meta_style, names), licenses)
    return {"counts": counts, "written": written, "unmatched": unmatched,
            "failed": sorted(failed)}
