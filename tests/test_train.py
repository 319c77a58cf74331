"""Training: one step on a tiny imagefolder, exact resume, and 2-process data parallel."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from model.dataset import load_dataset
from model.config import TINY
from model.gan import TextToImageGAN
from model.training.gan import Trainer, parse_args
from model.training.gan_config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"red apple": (220, 30, 30), "green apple": (40, 200, 40), "blue heart": (30, 60, 220),
           "yellow star": (240, 220, 20), "black cat": (10, 10, 10), "white cloud": (250, 250, 250)}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """Six solid-colour 'emoji' in two styles, as a captioned imagefolder."""
    root = tmp_path_factory.mktemp("tinyfolder")
    rows = []
    for i, (text, rgb) in enumerate(COLOURS.items()):
        style = ("google", "openmoji")[i % 2]
        (root / style).mkdir(exist_ok=True)
        im = Image.new("RGBA", (16, 16), rgb + (255,))
        im.putpixel((0, 0), (0, 0, 0, 0))  # a transparent corner: composited onto white
        im.save(root / style / f"{i}.png")
        rows.append({"file_name": f"{style}/{i}.png", "text": text, "style": style})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _cfg(tmp: Path, folder: Path, **kw) -> TrainConfig:
    base = dict(data=str(folder), out=str(tmp), model_config="tiny", batch_size=4, steps=2,
                log_every=1, sample_every=1000, ckpt_every=1000, threads=2, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def test_pack_reads_any_imagefolder(tiny_folder):
    pack = load_dataset(tiny_folder, size=16)
    assert pack.images.shape == (6, 3, 16, 16) and pack.images.dtype == torch.uint8
    assert pack.style_names == ["google", "openmoji"]
    assert tuple(pack.images[0, :, 0, 0].tolist()) == (255, 255, 255)  # alpha -> white
    assert pack.cap_emb.shape[1] == 384
    e = pack.embedding_of("red apple")
    assert e is not None and abs(float(e.norm()) - 1) < 1e-2
    # a second call reads the cached pack (same content)
    again = load_dataset(tiny_folder, size=16)
    assert torch.equal(again.images, pack.images) and again.captions == pack.captions


def test_pack_cache_is_rebuilt_when_the_captions_change(tiny_folder, monkeypatch):
    import model.data.records as records

    load_dataset(tiny_folder, size=16)
    before = set((tiny_folder / ".cache").glob("pack-*"))
    monkeypatch.setattr(records, "CAPTIONS_VERSION", records.CAPTIONS_VERSION + 1)
    load_dataset(tiny_folder, size=16)
    assert len(set((tiny_folder / ".cache").glob("pack-*")) - before) == 1  # a pack of the new captions


def test_one_step_changes_parameters(tmp_path, tiny_folder):
    tr = Trainer(_cfg(tmp_path, tiny_folder))
    before_g = [p.detach().clone() for p in tr.model.generator.parameters()]
    before_d = [p.detach().clone() for p in tr.model.discriminator.parameters()]
    stats = tr.train_step()
    assert all(torch.isfinite(v).all() for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before_g, tr.model.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, tr.model.discriminator.parameters()))


def test_resume_is_exact(tmp_path, tiny_folder):
    straight = Trainer(_cfg(tmp_path / "a", tiny_folder, steps=4, ckpt_every=2))
    straight.fit()
    first = Trainer(_cfg(tmp_path / "b", tiny_folder, steps=2, ckpt_every=2))
    first.fit()
    with open(tmp_path / "b" / "log.jsonl", "a") as f:  # a row logged after the checkpoint, then stopped
        f.write(json.dumps({"step": 3, "d_adv": 9.0}) + "\n")
    resumed = Trainer(_cfg(tmp_path / "b", tiny_folder, steps=4, ckpt_every=2))
    assert resumed.step == 2
    resumed.fit()
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    ea, eb = straight.ema.state_dict(), resumed.ema.state_dict()
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    # the export is a loadable model folder with a card and a sample grid
    export = tmp_path / "b" / "export"
    for name in ("config.json", "generator.safetensors", "discriminator.safetensors",
                 "text_head.safetensors", "README.md", "samples.png"):
        assert (export / name).is_file(), name
    assert json.loads((export / "config.json").read_text())["training"]["steps"] == 4
    sessions = json.loads((export / "config.json").read_text())["training"]["sessions"]
    assert [(r["from_step"], r["to_step"]) for r in sessions] == [(0, 2), (2, 4)]  # the resume is its own session
    assert (export / "README.md").read_text().count("| 1 | cpu | ") == 2
    rows = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[2]["d_adv"] != 9.0  # the stray row is gone


def test_flags_map_to_fields_and_reject_unknown():
    cfg = parse_args(["--batch-size", "8", "--lr-d", "0.001", "--augment", ""])
    assert (cfg.batch_size, cfg.lr_d, cfg.augment) == (8, 0.001, "")
    with pytest.raises(SystemExit):
        parse_args(["--no-such-flag", "1"])
    with pytest.raises(ValueError, match="skin_tones"):
        TrainConfig(skin_tones="some")


@pytest.mark.slow
def test_two_process_data_parallel(tmp_path, tiny_folder):
    """torchrun with 2 gloo processes: trains, exports once, counts both processes' images."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "model.train", "--data", str(tiny_folder), "--out", str(tmp_path), "--model-config", "tiny",
           "--batch-size", "2", "--steps", "3", "--device", "cpu", "--threads", "1"]
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    training = json.loads((tmp_path / "export" / "config.json").read_text())["training"]
    assert training["world_size"] == 2 and training["images_seen"] == 3 * 2 * 2


def test_reconstruction_phase_trains_generator_only(tmp_path, tiny_folder):
    """adv_weight=0: the VAE-GAN reconstruction phase moves G and the text head, never D."""
    tr = Trainer(_cfg(tmp_path, tiny_folder, adv_weight=0.0, recon_weight=1.0, style_dropout=0.0))
    d_before = {k: v.clone() for k, v in tr.model.discriminator.state_dict().items()}
    h_before = [p.detach().clone() for p in tr.model.text_head.parameters()]
    losses = [float(tr.train_step()["recon"]) for _ in range(3)]
    assert all(l > 0 for l in losses)
    assert all(torch.equal(d_before[k], v) for k, v in tr.model.discriminator.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(h_before, tr.model.text_head.parameters()))
    with pytest.raises(ValueError, match="nothing to train"):
        TrainConfig(adv_weight=0.0, recon_weight=0.0)


def test_grad_clip_bounds_both_networks(tmp_path, tiny_folder):
    """--grad-clip: after a step each network's gradient norm is at most the limit; the log keeps the raw norm."""
    clip = 1e-3
    tr = Trainer(_cfg(tmp_path, tiny_folder, grad_clip=clip, recon_weight=1.0))
    stats = tr.train_step()
    norm = lambda ps: float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in ps if p.grad is not None])))  # noqa: E731
    assert float(stats["g_norm"]) > clip  # the unclipped norm, as logged
    assert norm(tr.g_params) <= clip * 1.01
    assert norm(tr.d_params) <= clip * 1.01
    with pytest.raises(ValueError, match="grad_clip"):
        TrainConfig(grad_clip=-1.0)


def test_d_warmup_trains_only_the_discriminator(tmp_path, tiny_folder):
    """--d-warmup N: the first N steps move D and leave G, the text head and the EMA alone; then G trains."""
    tr = Trainer(_cfg(tmp_path, tiny_folder, d_warmup=2, recon_weight=1.0))
    g_before = {k: v.clone() for k, v in tr.model.generator.state_dict().items()}
    h_before = {k: v.clone() for k, v in tr.model.text_head.state_dict().items()}
    d_before = {k: v.clone() for k, v in tr.model.discriminator.state_dict().items()}
    ema_before = {k: v.clone() for k, v in tr.ema.state_dict().items()}
    for _ in range(2):
        stats = tr.train_step()
        assert float(stats["recon"]) == 0.0 and float(stats["d_adv"]) > 0
    assert all(torch.equal(g_before[k], v) for k, v in tr.model.generator.state_dict().items())
    assert all(torch.equal(h_before[k], v) for k, v in tr.model.text_head.state_dict().items())
    assert all(torch.equal(ema_before[k], v) for k, v in tr.ema.state_dict().items())
    assert any(not torch.equal(d_before[k], v) for k, v in tr.model.discriminator.state_dict().items())
    stats = tr.train_step()  # step 3: past the warm-up
    assert float(stats["recon"]) > 0
    assert any(not torch.equal(g_before[k], v) for k, v in tr.model.generator.state_dict().items())
    with pytest.raises(ValueError, match="d_warmup"):
        TrainConfig(d_warmup=5, adv_weight=0.0, recon_weight=1.0)


def test_init_from_may_switch_the_upsampling(tmp_path, tiny_folder):
    """--init-from a nearest-upsampling export with --model-config '{... "g_bilinear_blocks": 1}':
    the weights carry over, the run upsamples bilinearly, and the card's command says so."""
    first = Trainer(_cfg(tmp_path / "a", tiny_folder, steps=1, ckpt_every=1))
    first.fit()
    mc = json.dumps({**TINY, "g_bilinear_blocks": 1})
    tuned = Trainer(_cfg(tmp_path / "b", tiny_folder, steps=1, ckpt_every=1, model_config=mc,
                         init_from=str(tmp_path / "a" / "export")))
    assert tuned.mcfg.g_bilinear_blocks == 1
    assert [b.mode for b in tuned.model.generator.blocks if b.up] == ["nearest", "bilinear"]
    ga = TextToImageGAN.from_folder(tmp_path / "a" / "export").generator.state_dict()  # as exported (fp16)
    gb = tuned.model.generator.state_dict()
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
    tuned.fit()
    card = (tmp_path / "b" / "export" / "README.md").read_text()
    assert "--model-config '{" in card and '"g_bilinear_blocks": 1' in card
    inherit = Trainer(_cfg(tmp_path / "d", tiny_folder, init_from=str(tmp_path / "b" / "export")))
    assert inherit.mcfg.g_bilinear_blocks == 1  # not asked for: the start model's own resampling
    inherit.fit()
    resumed = Trainer(_cfg(tmp_path / "d", tiny_folder, steps=3, init_from=str(tmp_path / "b" / "export")))
    assert (resumed.step, resumed.mcfg.g_bilinear_blocks) == (2, 1)  # and its resume, as its checkpoint
    gain = json.dumps({**TINY, "text_gain": 5.0})  # any field not named is inherited, not only the resampling
    Trainer(_cfg(tmp_path / "g", tiny_folder, steps=1, ckpt_every=1, model_config=gain)).fit()
    assert Trainer(_cfg(tmp_path / "h", tiny_folder, init_from=str(tmp_path / "g" / "export"))).mcfg.text_gain == 5.0
    wide = json.dumps({**TINY, "w_dim": 64})  # a shape change is still refused
    with pytest.raises(ValueError, match="another architecture"):
        Trainer(_cfg(tmp_path / "c", tiny_folder, model_config=wide, init_from=str(tmp_path / "a" / "export")))


def test_checkpoint_from_before_a_new_model_field_resumes(tmp_path, tiny_folder):
    """A checkpoint saved before ModelConfig gained g_bilinear_blocks resumes (the field's default
    is what it was trained with); a checkpoint of another architecture is still refused."""
    first = Trainer(_cfg(tmp_path, tiny_folder, steps=1, ckpt_every=1))
    first.fit()
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    del state["model_config"]["g_bilinear_blocks"]
    torch.save(state, path)
    assert Trainer(_cfg(tmp_path, tiny_folder, steps=2)).step == 1
    state["model_config"]["w_dim"] = 64
    torch.save(state, path)
    with pytest.raises(ValueError, match="another model config"):
        Trainer(_cfg(tmp_path, tiny_folder, steps=2))


def test_channels_last_trains_as_contiguous_does(tmp_path, tiny_folder):
    """NHWC is a speed setting only: the same step gives the same losses and weights, up to rounding,
    and a checkpoint of either layout resumes in the other."""
    runs = {}
    for cl in (False, True):
        tr = Trainer(_cfg(tmp_path / str(cl), tiny_folder, channels_last=cl, steps=2, ckpt_every=1))
        w = tr.model.generator.blocks[1].conv1.weight
        assert w.is_contiguous(memory_format=torch.channels_last) == cl
        assert w.is_contiguous() != cl  # (C, 3, 3) kernels: the two layouts differ
        runs[cl] = (tr.train_step(), tr)
    (sa, ta), (sb, tb) = runs[False], runs[True]
    for k in sa:
        assert float(sa[k]) == pytest.approx(float(sb[k]), rel=1e-3, abs=1e-4), k
    for (k, a), b in zip(ta.model.state_dict().items(), tb.model.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), k
    ta.save_checkpoint()
    resumed = Trainer(_cfg(tmp_path / "False", tiny_folder, channels_last=True, steps=2))
    assert resumed.step == 1
    for p, st in resumed.opt_g.state.items():  # Adam's moments follow the parameters' new layout
        assert st["exp_avg"].stride() == p.stride()
    assert all(torch.isfinite(v).all() for v in resumed.train_step().values())


def test_init_d_from_takes_only_the_discriminator(tmp_path, tiny_folder):
    """--init-from G's folder --init-d-from another folder: generator and VAE head from the first,
    discriminator from the second (a trained judge for a reconstruction-only generator)."""
    Trainer(_cfg(tmp_path / "judge", tiny_folder, steps=1, ckpt_every=1)).fit()
    Trainer(_cfg(tmp_path / "recon", tiny_folder, steps=1, ckpt_every=1, adv_weight=0, recon_weight=1, seed=1)).fit()
    judge = TextToImageGAN.from_folder(tmp_path / "judge" / "export")
    recon = TextToImageGAN.from_folder(tmp_path / "recon" / "export")
    tr = Trainer(_cfg(tmp_path / "both", tiny_folder, steps=1, ckpt_every=1, d_warmup=1,
                      init_from=str(tmp_path / "recon" / "export"), init_d_from=str(tmp_path / "judge" / "export")))
    for mine, want, other in ((tr.model.discriminator, judge.discriminator, recon.discriminator),
                              (tr.model.generator, recon.generator, judge.generator)):
        a, b, c = mine.state_dict(), want.state_dict(), other.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert any(not torch.equal(a[k], c[k]) for k in a)  # the two sources differ, so the pick is seen
    tr.fit()
    card = (tmp_path / "both" / "export" / "README.md").read_text()
    assert "--init-d-from" in card
    wide = json.dumps({**TINY, "d_channels": [8, 16, 16]})
    Trainer(_cfg(tmp_path / "wide", tiny_folder, steps=1, ckpt_every=1, model_config=wide)).fit()
    with pytest.raises(ValueError, match="another discriminator"):
        Trainer(_cfg(tmp_path / "bad", tiny_folder, init_d_from=str(tmp_path / "wide" / "export")))


def test_perceptual_distance_is_zero_only_for_the_same_image_and_has_gradients():
    from model.perceptual import PerceptualDistance

    pd = PerceptualDistance(size=32)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    y = x.roll(1, 0).clone().requires_grad_(True)
    d_same, d_other = pd(x, x), pd(y, x)
    assert d_same.shape == (3,) and torch.allclose(d_same, torch.zeros(3), atol=1e-5)
    assert (d_other > 0.1).all()
    d_other.sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    assert all(p.grad is None for p in pd.parameters())  # frozen: nothing of it is trained
    pd.train()
    assert not pd.net.training  # BatchNorm statistics never move
    with pytest.raises(ValueError, match="taps"):
        PerceptualDistance(taps=(99,), net=pd.net)


def test_perceptual_reconstruction_trains_and_is_recorded(tmp_path, tiny_folder):
    """--perc-weight alone trains G through the perceptual term; the export records that
    EfficientNet-Lite0 features shaped the model, and a fine-tune of it inherits the record."""
    cfg = _cfg(tmp_path / "a", tiny_folder, adv_weight=0.0, recon_weight=0.0, perc_weight=1.0, style_dropout=0.0)
    tr = Trainer(cfg)
    g_before = [p.detach().clone() for p in tr.model.generator.parameters()]
    stats = [tr.train_step() for _ in range(2)]
    assert all(float(s["perc"]) > 0 and torch.isfinite(s["perc"]) for s in stats)
    assert any(not torch.equal(a, b) for a, b in zip(g_before, tr.model.generator.parameters()))
    assert not any(k.startswith("perceptual") for k in tr.model.state_dict())
    folder = tr.export(tmp_path / "a" / "export")
    assert json.loads((folder / "config.json").read_text())["training"]["enl0_in_training"] is True
    child = Trainer(_cfg(tmp_path / "b", tiny_folder, init_from=str(folder), adv_weight=0.0, recon_weight=1.0))
    child.train_step()
    out = child.export(tmp_path / "b" / "export")
    assert json.loads((out / "config.json").read_text())["training"]["enl0_in_training"] is True
    plain = Trainer(_cfg(tmp_path / "c", tiny_folder, adv_weight=0.0, recon_weight=1.0))
    assert json.loads((plain.export(tmp_path / "c" / "export") / "config.json").read_text())["training"][
        "enl0_in_training"] is False
    with pytest.raises(ValueError, match=">= 0"):
        TrainConfig(perc_weight=-1.0)
