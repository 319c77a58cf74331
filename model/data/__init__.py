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

The package, lowest layer first: ``packages`` (the pinned npm packages, the styles, emoji
codes, fetching the tarballs), ``catalog`` (names, tags, categories and skin tones of every
code), ``render`` (one source image -> square PNGs), ``build`` (``build()`` and
ATTRIBUTION.md), ``records`` (``read_metadata`` and ``caption_variants``, which model.dataset
reads packs with) and ``cli`` (``main``, what ``python -m model.data`` runs). None of them
imports torch.
"""
from .build import DESCRIPTIONS, build, read_descriptions, write_attribution
from .catalog import FLUENT3D_TONE_FIX, Entry, build_catalog, match_fluent
from .cli import main
from ..config import STYLES
from .packages import (OPENMOJI_SVG_RENDER, PACKAGES, SKIN_TONES, SOURCES, DataBuildError, Package, code_key, code_str,
                       ensure_tarball, read_members)
from .records import caption_templates, caption_variants, read_metadata

__all__ = ["FLUENT3D_TONE_FIX", "OPENMOJI_SVG_RENDER", "PACKAGES", "SKIN_TONES", "SOURCES", "STYLES", "DataBuildError", "Entry", "Package",
           "DESCRIPTIONS", "build", "build_catalog", "caption_templates", "caption_variants", "code_key", "code_str", "ensure_tarball", "main",
           "match_fluent", "read_descriptions", "read_members", "read_metadata", "write_attribution"]
