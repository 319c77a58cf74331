"""Train the VAE-GAN: ``python -m model.train --data data/emoji/64 --out runs/default``.

The old GAN (model.gan), not the shipped latent model (model.training.trainer). Its config is
gan_config.py, its model card gan_card.py; model/train.py is the thin entry point.

Every flag is a TrainConfig field. Runs on the CPU by default, on CUDA (bf16 autocast) when
present, and data-parallel under ``torchrun --nproc_per_node N -m model.train ...``
(gradients all-reduced by hand, gloo on CPU / nccl on GPU). Checkpoints resume exactly.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..augment import diff_augment
from ..cli import parse_dataclass
from ..config import ModelConfig
from ..dataset import SAMPLE_PROMPTS, Pack, load_dataset
from ..gan import TextToImageGAN
from ..losses import d_hinge, g_hinge, matching_aware, r1_penalty
from ..text_encoder import kl_divergence
from .gan_config import TrainConfig, model_config_for, model_fields
from ..paths import pick_device
from ..pixels import to_unit


# --- distributed helpers ---

def _dist_setup(device: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if world > 1 else (0, 1)


def _sync_grads(params: list[nn.Parameter], world: int) -> None:
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


# --- the trainer ---

class Trainer:
    def __init__(self, tcfg: TrainConfig, pack: Pack | None = None) -> None:
        self.cfg = tcfg
        dev = pick_device(tcfg.device)
        self.device = torch.device(dev)
        if tcfg.threads:
            torch.set_num_threads(tcfg.threads)
        self.rank, self.world = _dist_setup(dev)
        if dev == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        amp = tcfg.amp if tcfg.amp != "auto" else ("bf16" if dev == "cuda" else "none")
        self.memory_format = torch.channels_last if tcfg.channels_last else torch.contiguous_format
        self.autocast = (lambda: torch.autocast(dev, dtype=torch.bfloat16)) if amp == "bf16" else contextlib.nullcontext
        self.out = Path(tcfg.out)
        self.pack = pack if pack is not None else load_dataset(
            tcfg.data, size=model_fields(tcfg).get("image_size", ModelConfig().image_size), skin_tones=tcfg.skin_tones)
        ckpt_path = self.out / "checkpoint.pt"
        ckpt = torch.load(ckpt_path, map_location=self.device, weights_only=True) if ckpt_path.is_file() else None
        start = TextToImageGAN.from_folder(tcfg.init_from) if tcfg.init_from and ckpt is None else None
        # fields --model-config does not name: as the checkpoint, else the start model, has them
        before = ModelConfig.from_dict(ckpt["model_config"]) if ckpt is not None else getattr(start, "cfg", None)
        self.mcfg = model_config_for(tcfg, self.pack, before)
        if start is not None:
            # fields that change no weight's shape may differ: the run's own settings apply
            if dataclasses.replace(start.cfg, text_gain=self.mcfg.text_gain,
                                   g_bilinear_blocks=self.mcfg.g_bilinear_blocks) != self.mcfg:
                raise ValueError(f"--init-from {tcfg.init_from} has another architecture than this run")

        torch.manual_seed(tcfg.seed)
        self.model = TextToImageGAN(self.mcfg).to(self.device, memory_format=self.memory_format)
        if self.world > 1:
            for p in self.model.parameters():
                dist.broadcast(p.data, 0)
        self.ema = copy.deepcopy(nn.ModuleDict({"text_head": self.model.text_head,
                                                "generator": self.model.generator})).eval().requires_grad_(False)
        self.g_params = list(self.model.text_head.parameters()) + list(self.model.generator.parameters())
        self.d_params = list(self.model.discriminator.parameters())
        betas = (tcfg.beta1, tcfg.beta2)
        self.opt_g = torch.optim.Adam(self.g_params, lr=tcfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.d_params, lr=tcfg.lr_d, betas=betas)
        self.gen = torch.Generator().manual_seed(tcfg.seed * 1000 + self.rank)  # batch sampling
        self.perceptual = None
        if tcfg.perc_weight > 0:  # frozen, not part of the model: never saved or exported
            from ..perceptual import PerceptualDistance
            self.perceptual = PerceptualDistance().to(self.device, memory_format=self.memory_format)
        self.step = 0

        # data on the training device once: uint8 images are small (26k x 12 KB at 64 px)
        self.images = self.pack.images.to(self.device).contiguous(memory_format=self.memory_format)
        self.styles = self.pack.styles.to(self.device)
        self.cap_emb = self.pack.cap_emb.float().to(self.device)
        self.log: list[dict] = []
        self.sessions: list[dict] = []  # one per fit() call: its step range, minutes and flags (a resume may change them)
        if ckpt is not None:
            self.load_checkpoint(ckpt, ckpt_path)
        else:
            if start is not None:
                self.model.load_state_dict(start.state_dict())
                self.ema.load_state_dict(nn.ModuleDict({"text_head": start.text_head,
                                                        "generator": start.generator}).state_dict())
            if tcfg.init_d_from:
                judge = TextToImageGAN.from_folder(tcfg.init_d_from)
                if judge.cfg.styles != self.mcfg.styles:
                    raise ValueError(f"--init-d-from {tcfg.init_d_from} knows the styles {list(judge.cfg.styles)}, "
                                     f"this run {list(self.mcfg.styles)}")
                try:
                    self.model.discriminator.load_state_dict(judge.discriminator.state_dict())
                except RuntimeError as e:
                    raise ValueError(f"--init-d-from {tcfg.init_d_from} has another discriminator: {e}") from None

    # --- one batch ---
    def sample_batch(self) -> dict[str, torch.Tensor]:
        b, p, g = self.cfg.batch_size, self.pack, self.gen
        idx = torch.randint(len(p), (b,), generator=g)
        lo, hi = p.cap_offsets[idx], p.cap_offsets[idx + 1]
        cap = p.cap_index[lo + (torch.rand(b, generator=g) * (hi - lo)).long()]  # one caption variant each
        drop = torch.rand(b, generator=g) < self.cfg.style_dropout
        style = torch.where(drop, torch.full_like(p.styles[idx], self.mcfg.num_styles), p.styles[idx])
        z = torch.randn(b, self.mcfg.z_dim, generator=g)
        eps = torch.randn(b, self.mcfg.cond_dim, generator=g)
        d = self.device
        idx_d, cap_d = idx.to(d), cap.to(d)
        e = self.cap_emb[cap_d]
        return dict(real=to_unit(self.images[idx_d]), e=e, wrong=e.roll(1, 0),
                    style=style.to(d), z=z.to(d), eps=eps.to(d))

    def train_step(self) -> dict[str, float]:
        cfg, m = self.cfg, self.model
        G, D, head = m.generator, m.discriminator, m.text_head
        bt = self.sample_batch()
        aug = lambda x: diff_augment(x, cfg.augment)  # noqa: E731

        # discriminator
        zero = torch.zeros((), device=self.device)
        loss_adv = loss_match = r1 = zero
        r_real, r_fake = torch.ones(1, device=self.device), -torch.ones(1, device=self.device)
        warmup = self.step < cfg.d_warmup  # D only: G and the text head stay as they are
        # one generator forward serves both steps: D sees it detached, G's step back-propagates through it
        with self.autocast(), torch.set_grad_enabled(not warmup):
            c, mu, logvar = head(bt["e"], bt["eps"])
            fake = G(bt["z"], c, bt["style"]) if cfg.adv_weight > 0 else None
        if cfg.adv_weight > 0:
            D.requires_grad_(True)
            with self.autocast():
                phi_r, patch_r = D.features(aug(bt["real"]))
                phi_f, patch_f = D.features(aug(fake.detach()))
                r_real, r_fake = D.realism_logit(phi_r, patch_r), D.realism_logit(phi_f, patch_f)
                m_real = D.match_logit(phi_r, bt["e"], bt["style"])
                m_wrong = D.match_logit(phi_r, bt["wrong"], bt["style"])
                m_fake = D.match_logit(phi_f, bt["e"], bt["style"])
                loss_adv = d_hinge(r_real.float(), r_fake.float())
                loss_match = matching_aware(m_real.float(), m_fake.float(), m_wrong.float())
                loss_d = loss_adv + cfg.match_weight * loss_match
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            if cfg.r1_gamma > 0 and self.step % cfg.r1_interval == 0:
                real = bt["real"].detach().requires_grad_(True)
                phi, patch = D.features(real)  # no augmentation: grid_sample has no double backward on CUDA
                logits = D.realism_logit(phi, patch) + D.match_logit(phi, bt["e"], bt["style"])
                r1 = r1_penalty(logits, real)
                (r1 * (cfg.r1_gamma / 2) * cfg.r1_interval).backward()
            _sync_grads(self.d_params, self.world)
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.d_params, cfg.grad_clip)
            self.opt_d.step()

        D.requires_grad_(False)
        g_adv = g_match = kl = recon = perc = g_norm = zero
        if not warmup:  # generator (+ VAE head), from the forward above
            with self.autocast():
                kl = kl_divergence(mu.float(), logvar.float())
                loss_g = cfg.kl_weight * kl
                if cfg.adv_weight > 0:
                    phi, patch = D.features(aug(fake))
                    g_adv = g_hinge(D.realism_logit(phi, patch).float())
                    g_match = g_hinge(D.match_logit(phi, bt["e"], bt["style"]).float())
                    loss_g = loss_g + cfg.adv_weight * (g_adv + cfg.match_weight * g_match)
                if cfg.recon_weight > 0 or cfg.perc_weight > 0:  # the text's own image, for samples with a named style
                    named = bt["style"] < self.mcfg.num_styles
                    n_named = named.sum().clamp(min=1)
                    x0 = G(torch.zeros_like(bt["z"]), c, bt["style"])  # c: the VAE head's reparameterised sample
                    recon = ((x0.float() - bt["real"]).abs().mean(dim=(1, 2, 3)) * named).sum() / n_named
                    loss_g = loss_g + cfg.recon_weight * recon
                    if self.perceptual is not None:
                        perc = (self.perceptual(x0, bt["real"]) * named).sum() / n_named
                        loss_g = loss_g + cfg.perc_weight * perc
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            _sync_grads(self.g_params, self.world)
            g_norm = torch.nn.utils.clip_grad_norm_(self.g_params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            self.opt_g.step()
        self.step += 1
        if not warmup:
            self.update_ema()
        # detached tensors: no device sync per step; fit() reads them every log_every steps
        return {"d_adv": loss_adv.detach(), "d_match": loss_match.detach(), "r1": r1.detach(),
                "g_adv": g_adv.detach(), "g_match": g_match.detach(), "kl": kl.detach(), "recon": recon.detach(),
                "perc": perc.detach(), "g_norm": g_norm.detach(), "real_acc": (r_real > 0).float().mean(), "fake_acc": (r_fake < 0).float().mean()}

    @torch.no_grad()
    def update_ema(self) -> None:
        nimg = self.step * self.cfg.batch_size * self.world
        half = self.cfg.ema_halflife_kimg * 1000
        if self.cfg.ema_rampup > 0:
            half = min(half, nimg * self.cfg.ema_rampup)
        beta = 0.5 ** (self.cfg.batch_size * self.world / max(half, 1e-8))
        live = {"text_head": self.model.text_head, "generator": self.model.generator}
        for name, ema_mod in self.ema.items():
            for pe, p in zip(ema_mod.parameters(), live[name].parameters()):
                pe.lerp_(p.detach(), 1.0 - beta)
            for be, b in zip(ema_mod.buffers(), live[name].buffers()):
                be.copy_(b)

    # --- checkpoints (tensors and plain types only: loaded with weights_only=True) ---
    def state(self) -> dict:
        s = {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
             "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "step": self.step,
             "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
             "train_config": dataclasses.asdict(self.cfg), "model_config": self.mcfg.to_dict(), "log": self.log,
             "sessions": self.sessions}
        if self.device.type == "cuda":
            s["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return s

    def save_checkpoint(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path, tmp = self.out / "checkpoint.pt", self.out / "checkpoint.pt.tmp"
        torch.save(self.state(), tmp)
        tmp.replace(path)  # atomic: an interrupted save leaves the previous checkpoint
        return path

    def load_checkpoint(self, s: dict, path: Path) -> None:
        """Restore the state() dict s, read from path."""
        if ModelConfig.from_dict(s["model_config"]) != self.mcfg:  # fields added since take their defaults
            raise ValueError(f"{path} was trained with another model config; use a new --out")
        self.model.load_state_dict(s["model"])
        self.ema.load_state_dict(s["ema"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        for opt in (self.opt_g, self.opt_d):  # Adam's moments in their parameter's memory format (a checkpoint
            for p, st in opt.state.items():   # may come from a run with the other --channels-last setting)
                for k, v in st.items():
                    if torch.is_tensor(v) and v.shape == p.shape:
                        st[k] = torch.empty_like(p).copy_(v)
        for opt, lr in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:  # the flags of this run win over the saved ones
                group["lr"], group["betas"] = lr, (self.cfg.beta1, self.cfg.beta2)
        self.step, self.log = s["step"], s["log"]
        self.sessions = s.get("sessions", [])  # absent in checkpoints written before sessions were recorded
        self.gen.set_state(s["gen"].cpu())  # map_location moved it to the device
        torch.set_rng_state(s["torch_rng"].cpu())
        if "cuda_rng" in s and self.device.type == "cuda":
            torch.cuda.set_rng_state(s["cuda_rng"].cpu(), self.device)

    # --- outputs ---
    def fork_rng(self):
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    @torch.no_grad()
    def sample_grid(self, path: Path) -> Path:
        """Rows: SAMPLE_PROMPTS; columns: the named styles; EMA weights, c = mu, fixed z."""
        from torchvision.utils import save_image

        prompts = [p for p in SAMPLE_PROMPTS if self.pack.embedding_of(p) is not None]
        ns = self.mcfg.num_styles
        e = torch.stack([self.pack.embedding_of(p) for p in prompts]).to(self.device)
        e = e.repeat_interleave(ns, 0)  # (P * ns, 384)
        style = torch.arange(ns, device=self.device).repeat(len(prompts))
        z = torch.randn(len(prompts) * ns, self.mcfg.z_dim, generator=torch.Generator().manual_seed(1234)).to(self.device)
        c, _, _ = self.ema["text_head"](e)
        x = self.ema["generator"](z, c, style).float()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(x * 0.5 + 0.5, path, nrow=ns, padding=1, pad_value=1.0)
        return path

    def export(self, folder: Path) -> Path:
        """The EMA text head + generator and the discriminator as a loadable model folder."""
        from .gan_card import lineage, sessions_of, write_model_card

        final = TextToImageGAN(self.mcfg)
        final.text_head.load_state_dict(self.ema["text_head"].state_dict())
        final.generator.load_state_dict(self.ema["generator"].state_dict())
        final.discriminator.load_state_dict(self.model.discriminator.state_dict())
        training = {"steps": self.step, "images_seen": self.step * self.cfg.batch_size * self.world,
                    "sessions": self.sessions,
                    "config": dataclasses.asdict(self.cfg), "world_size": self.world,
                    "device": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"}
        # inherited through --init-from, so an evaluation knows FD-ENL0 is not independent of this model
        training["enl0_in_training"] = any(
            p.get("enl0_in_training") or any(s.get("config", {}).get("perc_weight", 0) > 0 for s in sessions_of(p))
            for p in lineage(training))
        final.save_pretrained(folder, extra_config={"training": training})
        self.sample_grid(folder / "samples.png")
        write_model_card(folder, self.mcfg, training, dataset_size=len(self.pack))
        return folder

    def plot_losses(self) -> None:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return
        if not self.log:
            return
        keys = [k for k in self.log[0] if k not in ("step", "it_s")]
        fig, ax = plt.subplots(figsize=(8, 4))
        for k in keys:
            ax.plot([r["step"] for r in self.log], [r[k] for r in self.log], label=k)
        ax.set_xlabel("step")
        ax.legend(ncol=4, fontsize=7)
        fig.tight_layout()
        fig.savefig(self.out / "losses.png", dpi=100)
        plt.close(fig)

    # --- the loop ---
    def fit(self) -> Path:
        from tqdm import tqdm

        cfg, lead = self.cfg, self.rank == 0
        self.out.mkdir(parents=True, exist_ok=True)
        t0, acc, n = time.time(), {}, 0
        session = {"from_step": self.step, "to_step": self.step, "minutes": 0.0, "config": dataclasses.asdict(cfg)}
        self.sessions.append(session)
        if lead:  # rows a stopped run logged after its last checkpoint are trained again: drop them
            (self.out / "log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in self.log))
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not lead, unit="step", dynamic_ncols=True)
        tlog = time.time()
        while self.step < cfg.steps:
            stats = self.train_step()
            for k, v in stats.items():
                acc[k] = acc.get(k, 0.0) + v.float()
            n += 1
            bar.update(1)
            if self.step % cfg.log_every == 0:
                row = {"step": self.step, **{k: round(float(v) / n, 4) for k, v in acc.items()},
                       "it_s": round(n / (time.time() - tlog), 2)}
                acc, n, tlog = {}, 0, time.time()
                self.log.append(row)
                bar.set_postfix({k: row[k] for k in ("d_adv", "g_adv", "d_match", "recon", "perc", "it_s")})
                if lead:
                    with open(self.out / "log.jsonl", "a") as f:
                        f.write(json.dumps(row) + "\n")
            if lead and self.step % cfg.sample_every == 0:
                with self.fork_rng():
                    self.sample_grid(self.out / "samples" / f"step_{self.step:06d}.png")
            stop = cfg.max_minutes > 0 and (time.time() - t0) > cfg.max_minutes * 60
            if self.world > 1:
                flag = torch.tensor([float(stop)], device=self.device)
                dist.broadcast(flag, 0)
                stop = bool(flag.item())
            session.update(to_step=self.step, minutes=round((time.time() - t0) / 60, 1))
            if lead and (self.step % cfg.ckpt_every == 0 or stop or self.step == cfg.steps):
                self.save_checkpoint()
                with self.fork_rng():  # exporting must not shift the training RNG stream
                    self.export(self.out / "export")
            if stop:
                break
        bar.close()
        if lead:
            self.plot_losses()
            if cfg.push_to_hub:
                from ..hub import push_to_hub
                print(push_to_hub(self.out / "export", cfg.push_to_hub))
        return self.out / "export"


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    return parse_dataclass(TrainConfig, argv, __doc__.splitlines()[0])


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg)
    out = trainer.fit()
    if trainer.rank == 0:
        print(f"exported {out} at step {trainer.step}")
    if dist.is_initialized():
        dist.barrier()  # rank 0 may still be exporting: leave together, or gloo aborts the late one
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
