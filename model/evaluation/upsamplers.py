"""64 -> 256 px, side by side: nearest, bicubic and each upsampler folder, on the emojis the
trained upsampler never saw (model/training/upsampler.py's held-out twentieth):

    python -m model.evaluation.upsamplers --ours runs/sr/export --out runs/sr-eval

Two kinds of input for every held-out emoji: its real 64-px image, and the shipped decoder's
redraw of it (what the app upscales). Against the real 256-px image (fluent3d and OpenMoji
have one) each method gets PSNR, and the ratio of its high-frequency power to the real
image's (grey-level spectrum above 1/8 cycles per pixel: 1 = as sharp as the real image,
below = blurrier). Cost: median milliseconds per 4 images on this machine, all methods in one
run. Writes OUT/upsamplers.json and OUT/upsamplers.png (rows: emojis; columns: methods, real).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from ..training.upsampler import load_pairs, reconstructions
from ..upsample import Upsampler, resize
from ..pixels import to_unit


def high_band_power(x: torch.Tensor, cutoff: float = 0.125) -> torch.Tensor:
    """x (N, 3, S, S) in [0, 1] -> (N,) power of the grey-level spectrum above `cutoff` cycles/px."""
    g = x.mean(1)
    f = torch.fft.fftshift(torch.fft.fft2(g - g.mean((1, 2), keepdim=True)), dim=(-2, -1)).abs() ** 2
    s = x.shape[-1]
    fy, fx = torch.meshgrid(torch.arange(s) - s // 2, torch.arange(s) - s // 2, indexing="ij")
    mask = (fy.float() ** 2 + fx.float() ** 2).sqrt() / s > cutoff
    return f[:, mask].sum(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Compare 64 -> 256 upsamplers on held-out emojis.")
    ap.add_argument("--high", default="data/emoji/256")
    ap.add_argument("--low", default="data/emoji/64")
    ap.add_argument("--model", default="assets/model")
    ap.add_argument("--pretrained", default="assets/upsampler-realesrgan", help="converted Real-ESRGAN folder")
    ap.add_argument("--ours", nargs="*", default=["runs/sr/export"], help="our trained upsampler folders")
    ap.add_argument("--out", default="runs/sr-eval")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    recs, lo, hi = load_pairs(a.high, a.low, held_out=True)
    rec = reconstructions(a.model, lo, [r["style"] for r in recs])
    real = hi.float() / 255
    methods = {"nearest": lambda x: resize(x, 256, "nearest"), "bicubic": lambda x: resize(x, 256, "bicubic")}
    names = {"nearest": "nearest", "bicubic": "bicubic"}
    for folder in [a.pretrained, *a.ours]:
        if Path(folder).is_dir():
            up = Upsampler.from_folder(folder)
            methods[folder] = (lambda u: lambda x: u.upscale(x, 256))(up)
            names[folder] = f"{up.cfg.name} ({sum(p.numel() for p in up.parameters()):,} params)"
    ref_power = high_band_power(real)
    res = {"held_out_emojis": len(recs), "threads": a.threads, "methods": {}}
    outputs = {}
    for key, fn in methods.items():
        row = {"name": names[key]}
        for kind, src in (("real64", lo), ("decoded64", rec)):
            x = to_unit(src)
            with torch.inference_mode():
                y = torch.cat([fn(x[i:i + 32]) for i in range(0, len(x), 32)]).clamp(-1, 1)
            y01 = (y + 1) / 2
            row[kind] = {"psnr": round(psnr(y01, real), 2),
                         "sharpness": round(float((high_band_power(y01) / ref_power).median()), 3)}
            outputs[(key, kind)] = y01
        x4 = to_unit(rec[:4])
        times = []
        with torch.inference_mode():
            fn(x4)
            for _ in range(a.reps):
                t = time.perf_counter()
                fn(x4)
                times.append((time.perf_counter() - t) * 1000)
        row["ms_per_4_images"] = round(statistics.median(times), 1)
        res["methods"][key] = row
        print(json.dumps(row), flush=True)
    base = res["methods"]["bicubic"]["ms_per_4_images"]
    for row in res["methods"].values():
        row["cost_vs_bicubic"] = round(row["ms_per_4_images"] / max(base, 1e-3), 1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "upsamplers.json").write_text(json.dumps(res, indent=2) + "\n")
    # the sheet: 6 held-out emojis (decoder redraws as input), every method, then the real image
    pick = torch.linspace(0, len(recs) - 1, 6).long().tolist()
    cols = [*methods, "real"]
    sheet = Image.new("RGB", (len(cols) * 260, len(pick) * 260), "white")
    for r, i in enumerate(pick):
        for c, key in enumerate(cols):
            y = real[i] if key == "real" else outputs[(key, "decoded64")][i]
            sheet.paste(Image.fromarray((y.permute(1, 2, 0) * 255).round().byte().numpy()), (c * 260, r * 260))
    sheet.save(out / "upsamplers.png")
    res["sheet_columns"] = [names.get(k, k) for k in cols]
    (out / "upsamplers.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
