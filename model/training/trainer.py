"""Train the latent model: ``python -m model.train --data .pack/emoji64-one.safetensors --out runs/vae``.

Phase 1 trains the image VAE on reconstruction (same-style and cross-style pairs: an emoji's
image in style A, encoded, decoded in style B, against its image in style B); from
``adv_start`` on the discriminator joins. The export encodes every training image into the
prior's latent tables, calibrates the gate on real images D never trained on, and writes a
model folder. Checkpoints resume exactly (``ckpt.pt``: tensors only, read with weights_only).

Data-parallel: ``torchrun --nproc_per_node N -m model.train --data ... --out ...`` runs N
processes under DistributedDataParallel (gloo on CPU, nccl on CUDA); --batch-size is per process.
"""
from __future__ import annotations

import contextlib
import gc
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cli import parse_dataclass
from ..config import config_dict, config_from_dict
from ..augment import diff_augment
from ..dataset import Pack, image_names, load_dataset
from ..device import cpu_has_fast_bf16, pick_device
from ..latent import TINY_LATENT, LatentConfig
from ..latent_model import LatentModel
from ..text_encoder import MINILM
from . import distributed as ddp
from .card import write_card
from .objective import Weights, generator_loss
from .text_tables import text_tables
from ..pixels import to_uint8, to_unit
from ..refine import refine_latents


@dataclass(kw_only=True)
class TrainConfig:
    data: str = ".pack/emoji64-one.safetensors"  # pack file or imagefolder (metadata.jsonl with a text column)
    out: str = "runs/vae"  # checkpoint, samples, log.jsonl and the exported model folder (OUT/export)
    model_config: str = ""  # LatentConfig fields as a JSON object, "" = defaults, "tiny" = the test size
    skin_tones: str = "one"  # all | one | none (imagefolder input only)
    batch_size: int = 64
    steps: int = 4000  # total steps (a resumed run continues to this number)
    max_minutes: float = 0.0  # stop cleanly (checkpoint + export) after this wall time; 0 = off
    lr: float = 2e-4  # autoencoder Adam learning rate
    lr_d: float = 2e-4  # discriminator Adam learning rate
    cross_style: float = 0.25  # share of pairs decoded in another style of the same emoji (teaches restyling)
    adv_start: int = 2500  # step from which D trains and the decoder gets the adversarial term
    recon_weight: float = Weights.recon  # pixel L1
    edge_weight: float = Weights.edge  # L1 on image x/y differences: sharper outlines
    kl_weight: float = Weights.kl  # latent KL
    adv_weight: float = Weights.adv  # adversarial term on the decoder (after adv_start)
    match_weight: float = Weights.match  # D's text-match head
    r1_gamma: float = Weights.r1_gamma  # R1 on real images
    augment: str = "translation"  # DiffAugment policy for what D sees ("" = off)
    gate_keep: float = 0.9  # the exported gate keeps this share of held-out real images
    query_map_steps: int = 400  # steps of the prior's query map on the descriptions at export (0 = plain MiniLM)
    holdout: float = 0.05  # share of images D never trains on (the gate is calibrated on them)
    log_every: int = 50
    sample_every: int = 500
    ckpt_every: int = 250
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16 on cuda and on CPUs with native bf16) | bf16 | none
    threads: int = 0  # torch CPU threads; 0 = torch's default
    refine_steps: int = 16  # at export, Adam steps fitting each stored latent to its image through the frozen decoder (semi-amortised inference; 0 = the encoder's means)
    refine_lr: float = 0.1
    prior_data: str = ""  # pack or imagefolder whose images fill the prior's latent tables at export ("" = --data); e.g. data/emoji/64 with every skin tone
    card_notes: str = ""  # a markdown file appended to the exported model card (the recipe's limits, measurements)

    def __post_init__(self) -> None:
        if self.skin_tones not in ("all", "one", "none"):
            raise ValueError(f"skin_tones must be all, one or none, got {self.skin_tones!r}")
        if self.amp not in ("auto", "bf16", "none"):
            raise ValueError(f"amp must be auto, bf16 or none, got {self.amp!r}")
        if self.batch_size < 2 or self.steps < 1:
            raise ValueError(f"batch_size must be >= 2 and steps >= 1, got {self.batch_size}, {self.steps}")
        if not 0 <= self.cross_style <= 1 or not 0 < self.gate_keep < 1 or not 0 < self.holdout < 0.5:
            raise ValueError("cross_style must be in [0, 1], gate_keep in (0, 1), holdout in (0, 0.5)")

    def weights(self) -> Weights:
        return Weights(recon=self.recon_weight, edge=self.edge_weight, kl=self.kl_weight, adv=self.adv_weight,
                       match=self.match_weight, r1_gamma=self.r1_gamma)

    def model_fields(self) -> dict:
        if self.model_config == "tiny":
            return dict(TINY_LATENT)
        return json.loads(self.model_config) if self.model_config else {}


EXPORT_FIELDS = ("refine_steps", "refine_lr")  # set at export, never during training


def held_out(n: int, frac: float, seed: int) -> torch.Tensor:
    """(n,) bool: a fixed hash of (seed, index) picks the images D never trains on."""
    h = [int.from_bytes(hashlib.md5(f"{seed}:{i}".encode()).digest()[:4], "big") / 2**32 for i in range(n)]
    return torch.tensor(h) < frac


def partners(names: list[str]) -> list[list[int]]:
    """For each image, the indices of the same emoji's images (all styles, itself included)."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n, []).append(i)
    return [groups[n] for n in names]


class Trainer:
    def __init__(self, tcfg: TrainConfig, pack: Pack | None = None) -> None:
        self.cfg = tcfg
        dev = pick_device(tcfg.device)
        self.world = w = ddp.setup(dev)  # World() (rank 0 of 1) unless started by torchrun
        self.device = torch.device(f"cuda:{w.local_rank}" if dev == "cuda" and w.on else dev)
        if tcfg.threads:
            torch.set_num_threads(tcfg.threads)
        amp = tcfg.amp if tcfg.amp != "auto" else ("bf16" if dev == "cuda" or cpu_has_fast_bf16() else "none")
        self.autocast = (lambda: torch.autocast(dev, dtype=torch.bfloat16)) if amp == "bf16" else contextlib.nullcontext
        fields = tcfg.model_fields()
        self.pack = pack if pack is not None else load_dataset(
            tcfg.data, size=fields.get("image_size", LatentConfig().image_size), skin_tones=tcfg.skin_tones,
            text_encoder=fields.get("text_encoder", MINILM))  # --model-config names the encoder
        self.mcfg = config_from_dict(LatentConfig, {**fields, "styles": tuple(self.pack.style_names),
                                            "image_size": self.pack.images.shape[-1]})
        self.out = Path(tcfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(tcfg.seed)
        self.model = LatentModel(self.mcfg).to(self.device)
        seed = tcfg.seed if w.split else tcfg.seed + w.rank  # each rank its own batches (rank 0: as one process)
        if seed != tcfg.seed:
            torch.manual_seed(seed)  # and its own DiffAugment draws
        self.names = image_names(self.pack)
        self.partners = partners(self.names)
        self.holdout = held_out(len(self.pack), tcfg.holdout, tcfg.seed)
        self.d_pool = torch.nonzero(~self.holdout)[:, 0]
        ae = [*self.model.encoder.parameters(), *self.model.decoder.parameters()]
        self.opt = torch.optim.Adam(ae, lr=tcfg.lr, betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(self.model.discriminator.parameters(), lr=tcfg.lr_d, betas=(0.0, 0.99))
        self.gen = torch.Generator().manual_seed(seed)
        self.step, self.log, self.seconds, self.images = 0, [], 0.0, 0
        ckpt = self.out / "ckpt.pt"
        if ckpt.is_file():
            self.load_state(torch.load(ckpt, map_location=self.device, weights_only=True))
        # What is optimised, wrapped in DDP when distributed (the same modules, unwrapped, otherwise).
        self.ae = ddp.wrap(ddp.Autoencoder(self.model.encoder, self.model.decoder), w, self.device)
        self.d_objective = ddp.wrap(ddp.DiscriminatorObjective(self.model.discriminator), w, self.device)

    # --- state ---
    def state(self) -> dict:
        m = self.model
        return {"encoder": m.encoder.state_dict(), "decoder": m.decoder.state_dict(),
                "discriminator": m.discriminator.state_dict(), "opt": self.opt.state_dict(),
                "opt_d": self.opt_d.state_dict(), "step": self.step, "gen": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(),  # DiffAugment draws from the global generator
                "seconds": self.seconds, "images": self.images, "config": json.dumps(config_dict(self.mcfg))}

    def load_state(self, s: dict) -> None:
        defaults = config_dict(LatentConfig())  # fields a checkpoint written before they existed lacks
        saved = {**{k: defaults[k] for k in EXPORT_FIELDS}, **json.loads(s["config"])}
        if saved != config_dict(self.mcfg):
            raise ValueError(f"{self.out / 'ckpt.pt'} was trained with another model config; use another --out")
        for k in ("encoder", "decoder", "discriminator"):
            getattr(self.model, k).load_state_dict(s[k])
        self.opt.load_state_dict(s["opt"])
        self.opt_d.load_state_dict(s["opt_d"])
        self.step, self.seconds = int(s["step"]), float(s["seconds"])
        self.images = int(s.get("images", self.step * self.cfg.batch_size))
        w = self.world
        if w.rank == 0 or w.split:
            self.gen.set_state(s["gen"])
            if "torch_rng" in s:  # checkpoints written before the field existed resume with a fresh one
                torch.set_rng_state(s["torch_rng"].cpu())
        elif len(s.get("rank_gen", ())) == w.size:  # this rank's own generators, saved by save_checkpoint
            self.gen.set_state(s["rank_gen"][w.rank].cpu().clone())  # clone: set_state on a row view segfaults
            torch.set_rng_state(s["rank_torch_rng"][w.rank].cpu().clone())
        else:  # saved by another world size: fresh streams, distinct per rank and per resume step
            self.gen.manual_seed(self.cfg.seed + w.rank + 1_000_003 * self.step)
            torch.manual_seed(self.cfg.seed + w.rank + 1_000_003 * self.step)
        log = self.out / "log.jsonl"
        self.log = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
        self.log = [r for r in self.log if r["step"] <= self.step]

    def save_checkpoint(self) -> None:
        """Rank 0 writes (the unwrapped networks' state dicts); when distributed, every rank must call
        it, as it gathers each rank's generators so that a resume continues every rank's stream."""
        rngs = ddp.gather((self.gen.get_state(), torch.get_rng_state()), self.world)
        if not self.world.main:
            return
        s = self.state()
        if self.world.on:
            s.update(rank_gen=torch.stack([g for g, _ in rngs]), rank_torch_rng=torch.stack([t for _, t in rngs]))
        tmp = self.out / "ckpt.pt.tmp"
        torch.save(s, tmp)
        tmp.replace(self.out / "ckpt.pt")
        (self.out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.log))

    # --- one step ---
    def batch(self) -> dict[str, torch.Tensor]:
        w, p = self.world, self.pack
        b = self.cfg.batch_size * (w.size if w.split else 1)
        src = torch.randint(len(p), (b,), generator=self.gen)
        cross = torch.rand(b, generator=self.gen) < self.cfg.cross_style
        pick = torch.rand(b, generator=self.gen)
        tgt = torch.tensor([self.partners[i][int(u * len(self.partners[i]))] if c else i
                            for i, c, u in zip(src.tolist(), cross.tolist(), pick.tolist())])
        d_idx = self.d_pool[torch.randint(len(self.d_pool), (b,), generator=self.gen)]
        off = p.cap_offsets
        k = (off[d_idx] + (torch.rand(b, generator=self.gen) * (off[d_idx + 1] - off[d_idx])).long())
        e = p.cap_emb[p.cap_index[k]].float()  # (B, 384): a caption of each D image
        to = lambda idx: to_unit(p.images[idx]).to(self.device)  # noqa: E731
        bt = {"x": to(src), "y": to(tgt), "style": p.styles[tgt].to(self.device), "real": to(d_idx),
              "real_style": p.styles[d_idx].to(self.device), "e": e.to(self.device),
              "e_wrong": e.roll(1, 0).to(self.device),  # another image's caption: the mismatched pair
              "eps": torch.randn(b, *self.mcfg.latent_shape, generator=self.gen).to(self.device)}
        if w.split:  # test-only: this rank's slice of the whole batch
            n = self.cfg.batch_size
            bt = {k: v[w.rank * n:(w.rank + 1) * n] for k, v in bt.items()}
        return bt

    def train_step(self) -> dict[str, float]:
        m, w, bt = self.model, self.cfg.weights(), self.batch()
        adv = self.step >= self.cfg.adv_start
        if adv and self.step == self.cfg.adv_start and self.world.main and not (self.out / "ckpt-recon.pt").exists():
            torch.save(self.state(), self.out / "ckpt-recon.pt")  # the reconstruction-only autoencoder, kept
        with self.autocast():
            mu, logvar, y = self.ae(bt["x"], bt["eps"], bt["style"])  # DDP: averages the AE's gradients
            d_fake = None
            if adv:
                # The adversarial term runs the plain D (not its DDP wrapper, whose forward would arm
                # its reducer to expect D gradients this backward never makes, and fail or all-reduce
                # for nothing); requires_grad off keeps D's .grad untouched: only y gets a gradient.
                m.discriminator.requires_grad_(False)
                phi, patch = m.discriminator.features(diff_augment(y, self.cfg.augment))
                d_fake = m.discriminator.realism_logit(phi, patch)
        g_loss, stats = generator_loss(y, bt["y"], mu, logvar, d_fake, w)
        self.opt.zero_grad(set_to_none=True)
        g_loss.backward()
        m.discriminator.requires_grad_(True)
        self.opt.step()
        if adv:  # D on real images it may train on vs this step's decodes (detached)
            with self.autocast():
                d_loss, d_stats = self.d_objective(bt["real"], y.detach().float(), bt["e"], bt["e_wrong"],
                                                   bt["real_style"], self.step, w, self.cfg.augment)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            stats.update(d_stats)
        self.step += 1
        self.images += self.cfg.batch_size * self.world.size
        return stats

    # --- outputs ---
    @torch.no_grad()
    def sample_grid(self, path: Path, n: int = 8) -> Path:
        """Rows: real images, their reconstructions, and the same latents decoded in each style."""
        from PIL import Image
        idx = torch.linspace(0, len(self.pack) - 1, n).long()
        x = to_unit(self.pack.images[idx]).to(self.device)
        m = self.model.eval()
        with self.autocast():
            mu, _ = m.encoder(x)
            rows = [x, m.decoder(mu, self.pack.styles[idx].to(self.device)).float()]
            rows += [m.decoder(mu, torch.full((n,), s, device=self.device)).float() for s in range(self.mcfg.num_styles)]
        m.train()
        grid = torch.cat([torch.cat(list(r.clamp(-1, 1)), dim=2) for r in rows], dim=1)  # (3, R*S, n*S)
        arr = to_uint8(grid).permute(1, 2, 0).cpu().numpy()
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).resize((arr.shape[1] * 2, arr.shape[0] * 2), Image.NEAREST).save(path)
        return path

    @torch.no_grad()
    def build_prior(self) -> int:
        """Encode every image of --prior-data (default: the training data) into the prior's tables:
        posterior means, each refined by --refine-steps through the frozen decoder, and stds; fit
        the query map on the table's descriptions. Returns how many descriptions it learned from."""
        m, p = self.model.eval(), self.pack
        names = self.names
        if self.cfg.prior_data:
            p = load_dataset(self.cfg.prior_data, size=self.mcfg.image_size, skin_tones="all",
                             text_encoder=self.mcfg.text_encoder, known=self.pack)
            if p.style_names != self.pack.style_names:
                raise ValueError(f"--prior-data has styles {p.style_names}, the model {self.pack.style_names}")
            names = image_names(p)
        from tqdm import tqdm

        mus, sig, w = [], [], self.cfg.weights()
        for i in tqdm(range(0, len(p), 256), desc=f"prior latents (refine {self.cfg.refine_steps} steps)", unit="x256",
                      disable=not self.world.main):
            x = to_unit(p.images[i:i + 256]).to(self.device)
            mu, logvar = m.encoder(x)
            for j in range(0, len(x), 32):  # small batches: 3x the img-steps/s of 256 on a CPU
                mu[j:j + 32] = refine_latents(m.decoder, x[j:j + 32], p.styles[i + j:i + j + 32].to(self.device),
                                              mu[j:j + 32], steps=self.cfg.refine_steps, lr=self.cfg.refine_lr,
                                              recon=w.recon, edge=w.edge, autocast=self.autocast,
                                              channels_last=self.device.type == "cpu")
            mus.append(mu.float().cpu())
            sig.append(torch.exp(0.5 * logvar.float()).mean(dim=(2, 3)).cpu())  # (b, C)
        text = text_tables(p, names, self.cfg.query_map_steps)
        eid = {n: i for i, n in enumerate(text.names)}
        m.prior.fill(names=text.names, cap_emb=text.cap_emb, cap_entry=text.cap_entry, query_map=text.query_map,
                     latents=torch.cat(mus), sigmas=torch.cat(sig),
                     lat_entry=torch.tensor([eid[n] for n in names]), lat_style=p.styles.clone())
        m.train()
        return text.described

    @torch.no_grad()
    def calibrate_gate(self) -> dict:
        """The realism threshold that keeps gate_keep of the real images D never trained on,
        and what share of decoded images (their reconstructions) it keeps."""
        m, p = self.model.eval(), self.pack
        idx = torch.nonzero(self.holdout)[:, 0]
        x = to_unit(p.images[idx]).to(self.device)
        with self.autocast():
            real = torch.sigmoid(m.discriminator(x)[0].float()).cpu()
            y = m.decoder(m.encoder(x)[0], p.styles[idx].to(self.device)).float().clamp(-1, 1)
            fake = torch.sigmoid(m.discriminator(y)[0].float()).cpu()
        m.train()
        gate = float(torch.quantile(real, 1 - self.cfg.gate_keep))
        return {"gate": round(gate, 4), "held_out_real": len(idx), "real_kept": float((real >= gate).float().mean()),
                "decoded_kept": float((fake >= gate).float().mean())}

    def export(self) -> Path:
        described = self.build_prior()
        cal = self.calibrate_gate() if self.step > self.cfg.adv_start else {"gate": 0.5, "note": "D never trained"}
        self.model.cfg = self.mcfg = dataclasses.replace(self.mcfg, gate=cal["gate"], refine_steps=self.cfg.refine_steps,
                                                         refine_lr=self.cfg.refine_lr)  # uploads are refined alike
        folder = self.out / "export"
        training = {"config": dataclasses.asdict(self.cfg), "steps": self.step, "minutes": round(self.seconds / 60, 1),
                    "device": str(self.device), "images": len(self.pack), "gate_calibration": cal,
                    "world_size": self.world.size, "images_seen": self.images,  # batch_size x steps x world
                    "prior_images": len(self.model.prior.latents),
                    "query_map_descriptions": described,
                    "last_log": self.log[-1] if self.log else {}}
        self.model.save_pretrained(folder, extra_config={"training": training})
        self.sample_grid(folder / "samples.png")
        notes = Path(self.cfg.card_notes).read_text() if self.cfg.card_notes else ""
        write_card(folder, self.mcfg, training, TrainConfig, notes=notes)
        return folder

    def fit(self) -> Path:
        t0, last = time.time(), self.seconds
        while self.step < self.cfg.steps:
            stats = self.train_step()
            self.seconds = last + time.time() - t0
            if self.step % self.cfg.log_every == 0 or self.step == 1:
                stats = ddp.mean_stats(stats, self.world, self.device)  # over ranks (every rank logs this step)
                row = {"step": self.step, "seconds": round(self.seconds, 1), **{k: round(v, 5) for k, v in stats.items()}}
                self.log.append(row)
                if self.world.main:
                    print(json.dumps(row), flush=True)
            if self.step % self.cfg.sample_every == 0 and self.world.main:
                self.sample_grid(self.out / "samples" / f"step_{self.step:06d}.png")
            timeout = bool(self.cfg.max_minutes and self.seconds - last > self.cfg.max_minutes * 60)
            if self.cfg.max_minutes:
                timeout = ddp.agree(timeout, self.world)  # rank 0's clock decides for all
            if self.step % self.cfg.ckpt_every == 0 or timeout:
                self.save_checkpoint()
            if timeout:
                break
        self.save_checkpoint()
        folder = self.export() if self.world.main else self.out / "export"
        ddp.barrier(self.world)
        return folder


def main(argv: list[str] | None = None) -> None:
    cfg = parse_dataclass(TrainConfig, argv, "Train the latent model (image VAE + prior + discriminator).")
    trainer = Trainer(cfg)
    folder = trainer.fit()
    world = trainer.world
    # the DDP wrappers (their reducers hold the process group) go before the group does: destroyed
    # at interpreter exit instead, a rank sometimes aborts ("terminate called without an active
    # exception", 1 run in 3 here)
    del trainer
    gc.collect()
    ddp.finish(world)
    if world.main:
        print(f"exported {folder}")
