"""The gallery files' encoding, measured: ``python -m model.bench.encode [--repeats 25]``.

The 4 images of the app's default call (the shipped model, prompt "grinning face", seed 0, 256 px)
written as the app writes them, to a file each, as PNG at zlib levels 0, 1 (also on 2 threads), 3
and 6 (PIL's default) and as lossless WebP (methods 0, 4 = PIL's default, 6): per format, the median time to write the 4
files over the repeats and their total size (what a user downloads, over a Space's network too),
the time to decode them again (what the send-to buttons pay), and, apart, what making the file's
fresh folder costs (files.new_file_path with a full rotation). Prints one JSON line per format and a table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

FORMATS = {  # name -> (suffix, PIL save options, threads writing the 4 files)
    "png-0": (".png", {"compress_level": 0}, 1),
    "png-1": (".png", {"compress_level": 1}, 1),
    "png-1-2-threads": (".png", {"compress_level": 1}, 2),  # PIL's encoders release the GIL
    "png-3": (".png", {"compress_level": 3}, 1),
    "png-6": (".png", {"compress_level": 6}, 1),
    "webp-lossless-m0": (".webp", {"lossless": True, "method": 0}, 1),
    "webp-lossless-m4": (".webp", {"lossless": True, "method": 4}, 1),
    "webp-lossless-m6": (".webp", {"lossless": True, "method": 6}, 1),
}


def default_images(model: str | None = None) -> list[Image.Image]:
    """The shown images of the app's default call (model/serving/api.py), on the CPU."""
    from ..pipeline import Pipeline
    from ..serving.api import default_args
    from .default_call import call_pipeline
    from .measure import has_text_encoder

    pipe = Pipeline.from_pretrained(model, device="cpu")
    args = default_args(pipe, "grinning face", seed=0)
    if not has_text_encoder(pipe.model.cfg.text_encoder, pipe.info.folder):  # a stand-in embedding
        import torch
        e = torch.nn.functional.normalize(torch.randn(pipe.model.cfg.text_dim), dim=0)
        pipe.stages.set_embedding(args[0], e)
    return [s.image for s in call_pipeline(pipe, args).images]


def measure(images: list[Image.Image], repeats: int, folder: Path) -> dict:
    """name -> {write_ms (the 4 files), kib (their total), decode_ms (the 4), per_image_kib}; the
    formats interleaved repeat by repeat so that they see the same machine load."""
    from concurrent.futures import ThreadPoolExecutor

    times = {k: [] for k in FORMATS}
    decode = {k: [] for k in FORMATS}
    sizes = {}
    pool = ThreadPoolExecutor(2)
    for r in range(repeats):
        for name, (suffix, opts, threads) in FORMATS.items():
            paths = [folder / f"{name}-{r}-{i}{suffix}" for i in range(len(images))]
            t = time.perf_counter()
            if threads > 1:
                list(pool.map(lambda ip: ip[0].save(ip[1], **opts), zip(images, paths)))
            else:
                for im, p in zip(images, paths):
                    im.save(p, **opts)
            times[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            for p in paths:
                with Image.open(p) as im:
                    im.load()
            decode[name].append(time.perf_counter() - t)
            sizes[name] = sum(p.stat().st_size for p in paths)
            for p in paths:
                p.unlink()
    pool.shutdown()
    return {k: {"write_ms": 1e3 * statistics.median(times[k]), "decode_ms": 1e3 * statistics.median(decode[k]),
                "kib": sizes[k] / 1024, "per_image_kib": sizes[k] / 1024 / len(images)} for k in FORMATS}


def new_file_path_ms(repeats: int, keep: int = 256) -> float:
    """Median time of files.new_file_path once `keep` folders are there (each call lists and
    stats them all, removes the oldest and makes a fresh one)."""
    from ..serving import files

    for _ in range(keep):
        files.new_file_path(".png", keep=keep)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        files.new_file_path(".png", keep=keep)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=25)
    ap.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped model)")
    args = ap.parse_args(argv)
    images = default_images(args.model)
    with tempfile.TemporaryDirectory(prefix="encode-") as d:
        res = measure(images, args.repeats, Path(d))
    res["new_file_path"] = {"ms_per_file": new_file_path_ms(args.repeats)}
    print(f"{len(images)} images of {images[0].width} px, median of {args.repeats} repeats")
    print("| format | write 4 files, ms | 4 files, KiB | decode 4, ms |\n|---|---|---|---|")
    for k in FORMATS:
        r = res[k]
        print(f"| {k} | {r['write_ms']:.1f} | {r['kib']:.0f} | {r['decode_ms']:.1f} |")
    print(f"new_file_path with 256 folders to rotate: {res['new_file_path']['ms_per_file']:.2f} ms per file")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
