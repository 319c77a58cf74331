"""The pinned npm packages the emoji dataset is built from (one per style of model.config.STYLES), emoji codes,
and fetching: ``npm pack`` into a cache folder only when a tarball is missing, reading members
with :mod:`tarfile` (nothing is unpacked to disk)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable


class DataBuildError(RuntimeError):
    """The dataset cannot be built here (npm, a tarball, cairosvg missing or broken); the message
    says what to do. The command line prints it and exits 1; library callers can catch it."""



SKIN_TONES: dict[int, str] = {
    0x1F3FB: "light skin tone",
    0x1F3FC: "medium-light skin tone",
    0x1F3FD: "medium skin tone",
    0x1F3FE: "medium-dark skin tone",
    0x1F3FF: "dark skin tone",
}

# OpenMoji groups -> emoji.json categories (used for codes emoji.json does not know)
GROUP_CATEGORY = {
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

SOURCES = [  # (style, npm package, license, copyright holder) as the model cards list them
    ("google", "emoji-datasource-google@16.0.0", "Apache-2.0", "Google (Noto Emoji)"),
    ("twitter", "emoji-datasource-twitter@16.0.0", "CC-BY-4.0", "Twitter / X (Twemoji)"),
    ("fluent3d", "@lobehub/fluent-emoji-3d@1.1.0", "MIT", "Microsoft (Fluent Emoji)"),
    ("openmoji", "openmoji@17.0.0", "CC-BY-SA-4.0", "OpenMoji"),
]


# --------------------------------------------------------------------------- codes


def code_key(code: str) -> tuple[int, ...]:
    """Code points of a hex code like "0023-FE0F-20E3" or "23_20e3", without U+FE0F."""
    parts = [p for p in re.split(r"[-_\s]+", code.strip()) if p]
    return tuple(cp for cp in (int(p, 16) for p in parts) if cp != 0xFE0F)


def code_str(key: tuple[int, ...]) -> str:
    """Canonical code of the dataset: lowercase, 4+ hex digits, no fe0f ("1f44b-1f3fd")."""
    return "-".join(f"{cp:04x}" for cp in key)


def is_private_use(key: tuple[int, ...]) -> bool:
    return any(0xE000 <= cp <= 0xF8FF or cp >= 0xF0000 for cp in key)


def tone_of(key: tuple[int, ...]) -> str | None:
    tones = [SKIN_TONES[cp] for cp in key if cp in SKIN_TONES]
    if not tones:
        return None
    if len(set(tones)) == 1:
        return tones[0]
    return ", ".join(tones)


def split_tags(s: Any) -> list[str]:
    if not s:
        return []
    if isinstance(s, (list, tuple)):
        return [str(t) for t in s]
    return str(s).split(",")


def dedup_lower(items: Iterable[str], drop: Iterable[str] = ()) -> list[str]:
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
        raise DataBuildError(
            f"{path} is missing and npm is not installed: install Node.js with npm "
            f"(e.g. `apt-get install -y npm`) or put {pkg.tarball} (from `npm pack {spec}`) "
            f"into {cache}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    print(f"npm pack {spec} -> {cache}", file=sys.stderr)
    try:
        proc = subprocess.run([npm, "pack", spec], cwd=cache, capture_output=True, text=True)
    except OSError as e:
        raise DataBuildError(f"could not run npm to fetch {spec}: {e}") from e
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout or "").strip()[-800:]
        raise DataBuildError(
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
        raise DataBuildError(f"cannot read {tgz}: {e} (delete it to fetch it again)") from e
    return out
