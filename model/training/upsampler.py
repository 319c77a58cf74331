"""Train our own 64 -> 256 upsampler on the emoji data:

    python -m model.data --out data/emoji --sizes 256 --styles fluent3d,openmoji --no-skin-tones
    python -m model.training.upsampler --high data/emoji/256 --low data/emoji/64 --out runs/sr

Or distil a trained upsampler (--teacher: the shipped Real-ESRGAN port, how assets/upsampler was made) into a smaller net
of the same shape, on what the app upsamples, with no 256-px data:

    python -m model.training.upsampler --teacher assets/upsampler-realesrgan --out runs/sr-distil \
        --features 48 --convs 8 --edge-weight 1.0 --steps 6000 --threads 1

Inputs are then the decoder's drawings of the model's stored prior latents (each in its own
style), targets the teacher's output on them; entries whose name hashes into the held-out
twentieth are kept out and the export reports its PSNR to the teacher on them.

Without --teacher, targets are the real 256-px images (fluent3d's sources are 256 px, OpenMoji is rendered from
SVG; Noto and Twemoji ship 64 px only). Each target is paired with two inputs: its real 64-px
image, and the shipped decoder's reconstruction of it (encode -> decode in its style), so the
upsampler learns to clean the generator's softness instead of enlarging it. Emojis whose code
hashes into the held-out twentieth are never trained on (``is_held_out``); the comparison
in model/evaluation/upsamplers.py measures on them. Checkpoints resume (tensors only).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..upsample import Upsampler, UpsamplerConfig
from ..pixels import to_uint8, to_unit


def is_held_out(code: str) -> bool:
    return int(hashlib.md5(code.encode()).hexdigest(), 16) % 20 == 0


def load_pairs(high: str | Path, low: str | Path, *, held_out: bool) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
    """-> (records, low (N, 3, 64, 64) uint8, high (N, 3, 256, 256) uint8) for the split."""
    high, low = Path(high), Path(low)
    recs, lo, hi = [], [], []
    for line in (high / "metadata.jsonl").read_text().splitlines():
        r = json.loads(line)
        if is_held_out(r["code"]) != held_out or not (low / r["file_name"]).is_file():
            continue
        recs.append(r)
        lo.append(np.asarray(Image.open(low / r["file_name"]).convert("RGB")))
        hi.append(np.asarray(Image.open(high / r["file_name"]).convert("RGB")))
    to_t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return recs, to_t(lo), to_t(hi)


@torch.inference_mode()
def reconstructions(model_folder: str | Path, low: torch.Tensor, styles: list[str], batch: int = 128) -> torch.Tensor:
    """The decoder's reconstruction of each 64-px image in its own style, uint8 like `low`."""
    from ..latent_model import LatentModel
    model = LatentModel.from_folder(model_folder)
    sid = torch.tensor([model.cfg.styles.index(s) for s in styles])
    out = []
    for i in range(0, len(low), batch):
        x = to_unit(low[i:i + batch])
        mu, _ = model.encoder(x)
        y = model.decoder(mu, sid[i:i + batch]).clamp(-1, 1)
        out.append(to_uint8(y))
    return torch.cat(out)


def prior_drawings(model_folder: str | Path, batch: int = 128) -> tuple[torch.Tensor, list[str]]:
    """The decoder's drawing of every stored prior latent in its own style: (N, 3, 64, 64) uint8 and
    each one's emoji name (what the app upsamples: the shown images are drawn from these latents)."""
    from ..latent_model import LatentModel
    model = LatentModel.from_folder(model_folder)
    p, out = model.prior, []
    with torch.inference_mode():
        for i in range(0, len(p.latents), batch):
            out.append(to_uint8(model.decoder(p.latents[i:i + batch].float(), p.lat_style[i:i + batch])))
    return torch.cat(out), [p.names[int(e)] for e in p.lat_entry]


@torch.inference_mode()
def teacher_targets(teacher: Upsampler, low: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """The teacher's output on low (N, 3, 64, 64) uint8 -> (N, 3, 256, 256) uint8, in bf16 where the
    CPU has it (as the app runs it)."""
    from ..device import cpu_has_fast_bf16
    dtype = torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    out = []
    for i in range(0, len(low), batch):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype == torch.bfloat16):
            y = teacher(low[i:i + batch].float() / 255).float()
        out.append((y.clamp(0, 1) * 255).round().to(torch.uint8))
    return torch.cat(out)


@torch.inference_mode()
def psnr(net: Upsampler, low: torch.Tensor, high: torch.Tensor, batch: int = 64) -> float:
    """Mean PSNR (dB) of net's output on low (uint8, 64 px) against high (uint8, 256 px)."""
    net.eval()
    vals = []
    for i in range(0, len(low), batch):
        y = net(low[i:i + batch].float() / 255).float().clamp(0, 1)
        mse = (y - high[i:i + batch].float() / 255).pow(2).mean((1, 2, 3)).clamp_min(1e-10)
        vals.append(-10 * torch.log10(mse))
    net.train()
    return float(torch.cat(vals).mean())


def distil_pairs(model_folder, teacher_folder, cache: Path | None = None) -> tuple[tuple, tuple, str]:
    """(train inputs, train targets), (held-out inputs, held-out targets), the teacher's name. cache:
    a file the drawings and the teacher's targets are kept in (~17 min on one thread to make), used
    again only for the same model and teacher folders."""
    teacher = Upsampler.from_folder(teacher_folder)
    t0, made_from = time.time(), f"{Path(model_folder).resolve()}\n{Path(teacher_folder).resolve()}"
    d = torch.load(cache, weights_only=True) if cache is not None and cache.is_file() else {}
    if d.get("made_from") == made_from:
        low, high, names = d["low"], d["high"], d["names"].split("\n")
    else:
        low, names = prior_drawings(model_folder)
        high = teacher_targets(teacher, low)
        if cache is not None:
            torch.save({"low": low, "high": high, "names": "\n".join(names), "made_from": made_from}, cache)
    held = torch.tensor([is_held_out(n) for n in names])
    print(f"{int((~held).sum())} drawings to train on, {int(held.sum())} held out; the teacher's targets "
          f"took {time.time() - t0:.0f} s", flush=True)
    return (low[~held], high[~held]), (low[held], high[held]), teacher.cfg.name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the 64 -> 256 upsampler on emoji pairs.")
    ap.add_argument("--high", default="data/emoji/256")
    ap.add_argument("--low", default="data/emoji/64")
    ap.add_argument("--model", default="assets/model", help="latent model whose decoder makes the second inputs")
    ap.add_argument("--teacher", default="", help="an upsampler folder to distil (no --high/--low data needed)")
    ap.add_argument("--out", default="runs/sr")
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--convs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=32, help="input crop (px at 64); targets are 4x")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--edge-weight", type=float, default=0.5, help="weight of the L1 on x/y differences")
    ap.add_argument("--max-minutes", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    held = None
    if args.teacher:
        (inputs, targets), held, teacher_name = distil_pairs(args.model, args.teacher, out / "pairs.pt")
        cfg = UpsamplerConfig(features=args.features, convs=args.convs,
                              name=f"{teacher_name}, distilled ({args.features}x{args.convs + 2} convs)",
                              source=f"distilled by model/training/upsampler.py --teacher {args.teacher} ({teacher_name}) "
                                     f"from its outputs on the drawings of {args.model}'s decoder")
    else:
        recs, lo, hi = load_pairs(args.high, args.low, held_out=False)
        rec = reconstructions(args.model, lo, [r["style"] for r in recs])
        inputs = torch.cat([lo, rec])  # (2N, 3, 64, 64): real and decoded inputs for the same targets
        targets = torch.cat([hi, hi])
        print(f"{len(recs)} training emojis x 2 inputs", flush=True)
        cfg = UpsamplerConfig(features=args.features, convs=args.convs, name=f"ours ({args.features}x{args.convs + 2} convs)",
                              source="trained by model/training/upsampler.py on the project's emoji data")
    net = Upsampler(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr * 0.05)
    step, ckpt = 0, out / "ckpt.pt"
    if ckpt.is_file():
        s = torch.load(ckpt, weights_only=True)
        net.load_state_dict(s["net"]); opt.load_state_dict(s["opt"]); sched.load_state_dict(s["sched"])  # noqa: E702
        step = int(s["step"])
        torch.set_rng_state(s["rng"])
        print(f"resumed at step {step}", flush=True)
    t0, c, log = time.time(), args.crop, (out / "log.jsonl").open("a")

    def save():
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "step": torch.tensor(step), "rng": torch.get_rng_state()}, ckpt)
        extra = {"steps": step, "license": "same as the data it was trained on"}
        if held is not None and len(held[0]):
            extra.update(license=f"as its teacher's weights ({args.teacher}/README.md)",
                         held_out_psnr_to_teacher=round(psnr(net, *held), 2), held_out_drawings=len(held[0]))
        net.save_pretrained(out / "export", extra_config=extra)

    while step < args.steps:
        idx = torch.randint(0, len(inputs), (args.batch,))
        ys, xs = torch.randint(0, inputs.shape[-1] - c + 1, (2, args.batch))
        x = torch.stack([inputs[i, :, a:a + c, b:b + c] for i, a, b in zip(idx, ys, xs)]).float() / 255
        y = torch.stack([targets[i, :, 4 * a:4 * (a + c), 4 * b:4 * (b + c)] for i, a, b in zip(idx, ys, xs)]).float() / 255
        if torch.rand(()) < 0.5:  # flips keep emoji statistics (a mirrored face is still a face)
            x, y = x.flip(-1), y.flip(-1)
        pred = net(x)
        loss = F.l1_loss(pred, y) + args.edge_weight * (F.l1_loss(pred.diff(dim=-1), y.diff(dim=-1))
                                           + F.l1_loss(pred.diff(dim=-2), y.diff(dim=-2)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % 100 == 0:
            minutes = (time.time() - t0) / 60
            log.write(json.dumps({"step": step, "loss": round(loss.item(), 5), "minutes": round(minutes, 2)}) + "\n")
            log.flush()
            print(f"step {step} loss {loss.item():.4f} {minutes:.1f} min", flush=True)
            if step % 500 == 0:
                save()
            if args.max_minutes and minutes >= args.max_minutes:
                break
    save()
    print(f"exported {out / 'export'} at step {step}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
