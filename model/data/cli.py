"""The command line of the builder: ``python -m model.data --help``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .build import DESCRIPTIONS, build
from ..config import STYLES
from .packages import DataBuildError

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
    ap.add_argument("--descriptions", default=str(DESCRIPTIONS), metavar="JSONL",
                    help="plain-word descriptions per emoji code, added to the captions; 'none' "
                    "for names and keywords only (default: the project's own, %(default)s)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    t0 = time.time()
    try:
        res = build(out=args.out, cache=args.cache, sizes=args.sizes, styles=args.styles,
                    skin_tones=not args.no_skin_tones, limit=args.limit,
                    workers=max(1, args.workers), names=args.names,
                    descriptions=None if args.descriptions.lower() == "none" else args.descriptions)
    except DataBuildError as e:  # a clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
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

