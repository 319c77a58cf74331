"""The latent model's trainer (model.train) on a 16 px colour imagefolder: steps, resume,
export, the gate calibration and the model card."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import write_colour_folder

from model.dataset import load_dataset
from model.dataset import image_names
from model.hub import load_folder
from model.paths import ROOT
from model.training.distributed import SPLIT_ENV
from model.training.text_tables import prior_captions
from model.training.trainer import TrainConfig, Trainer, partners



@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_colour_folder(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def pack(folder):
    return load_dataset(folder, size=16)


def _cfg(out, folder, **kw) -> TrainConfig:
    base = dict(data=str(folder), out=str(out), model_config="tiny", batch_size=4, steps=3, adv_start=1,
                log_every=1, sample_every=1000, ckpt_every=1000, device="cpu", amp="none", holdout=0.25,
                query_map_steps=20)  # threads: conftest's (TEST_THREADS); 20 map steps: 400 took most of an export

    return TrainConfig(**{**base, **kw})


def test_partners_and_prior_captions(pack):
    names = image_names(pack)
    for i, group in enumerate(partners(names)):
        assert i in group and {names[j] for j in group} == {names[i]} and len(group) == 2  # two styles each
    entries, pairs = prior_captions(pack, names)
    assert entries == sorted(set(names))
    texts = {pack.captions[c] for c, _ in pairs}
    assert "red apple" in texts and "red apple, thing" in texts
    assert not any(t.endswith(" style") or t.endswith(" emoji") for t in texts)  # templates left out
    # a description that happens to end like a template stays: only the name's templates go
    p2 = copy.copy(pack)
    k = pack.cap_offsets[0].item()
    p2.captions = list(pack.captions) + ["a crisp red fruit, japanese style"]
    p2.cap_index = pack.cap_index.clone()
    p2.cap_index[k] = len(pack.captions)  # the first image's name caption becomes a description
    texts2 = {p2.captions[c] for c, _ in prior_captions(p2, names)[1]}
    assert "a crisp red fruit, japanese style" in texts2


def test_only_descriptions_are_the_query_maps_training_queries():
    from model.data.records import caption_variants, is_description
    rec = {"text": "Red Apple", "style": "google", "keywords": ["fruit"], "descriptions": ["a crisp fruit"]}
    kinds = {c: is_description(c, "red apple") for c in caption_variants(rec)}
    assert kinds == {"red apple": False, "an emoji of red apple": False, "red apple emoji": False,
                     "red apple in google style": False, "red apple, fruit": False, "a crisp fruit": True}


def test_steps_train_every_network_and_export_loads(tmp_path, folder, pack):
    t = Trainer(_cfg(tmp_path, folder), pack=pack)
    before = {k: [p.detach().clone() for p in getattr(t.model, k).parameters()]
              for k in ("encoder", "decoder", "discriminator")}
    out = t.fit()
    for k, ps in before.items():
        assert any(not torch.equal(a, b) for a, b in zip(ps, getattr(t.model, k).parameters())), k
    m = load_folder(out)
    cfg = json.loads((out / "config.json").read_text())
    cal = cfg["training"]["gate_calibration"]
    assert cfg["gate"] == cal["gate"] and m.cfg.gate == pytest.approx(cal["gate"])
    assert cal["real_kept"] >= 0.5 and 0 <= cal["decoded_kept"] <= 1
    assert sorted(m.prior.names) == sorted(set(image_names(pack))) and len(m.prior.latents) == len(pack)
    rd = m.prior.read(pack.embedding_of("blue heart")[None])[0]
    assert rd.names[0] == "blue heart"
    # the query map trained on the folder's three descriptions and travelled with the prior
    assert cfg["training"]["query_map_descriptions"] == 3 and m.prior.query_map.abs().max() > 0
    card = (out / "README.md").read_text()
    assert "python -m model.train" in card and "--adv-start 1" in card and "--holdout 0.25" in card


def test_resume_is_exact(tmp_path, folder, pack):
    whole = Trainer(_cfg(tmp_path / "a", folder, steps=4), pack=pack)
    whole.fit()
    part = Trainer(_cfg(tmp_path / "b", folder, steps=2), pack=pack)
    part.fit()
    resumed = Trainer(_cfg(tmp_path / "b", folder, steps=4), pack=pack)
    assert resumed.step == 2
    resumed.fit()
    for k in ("encoder", "decoder", "discriminator"):
        for a, b in zip(getattr(whole.model, k).parameters(), getattr(resumed.model, k).parameters()):
            assert torch.allclose(a, b, atol=1e-6), k


def test_flags_map_to_fields_and_bad_values_are_refused():
    from model.cli import dataclass_parser

    ap = dataclass_parser(TrainConfig, "x")
    assert ap.parse_args(["--cross-style", "0.5"]).cross_style == 0.5
    with pytest.raises(SystemExit):
        ap.parse_args(["--no-such-flag", "1"])
    with pytest.raises(ValueError, match="cross_style"):
        TrainConfig(cross_style=2.0)


def _torchrun(out, folder, *flags, split=False) -> subprocess.CompletedProcess:
    """python -m torch.distributed.run: 2 gloo processes of python -m model.train (tiny model, CPU)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop(SPLIT_ENV, None)
    env.update({SPLIT_ENV: "1"} if split else {})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "model.train", "--data", str(folder), "--out", str(out), "--model-config", "tiny",
           "--log-every", "1", "--sample-every", "1000", "--ckpt-every", "1000", "--device", "cpu",
           "--amp", "none", "--threads", "1", "--holdout", "0.25", "--query-map-steps", "20", *flags]
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


@pytest.mark.slow
def test_two_processes_average_gradients_like_one_batch_of_both(tmp_path, folder, pack):
    """DistributedDataParallel, 2 gloo processes x batch 2, each on its half of the same batch of 4
    (the test-only SPLIT_ENV; DiffAugment off, as its draws depend on the batch size): the averaged
    gradients are the batch-4 gradients, so the losses (averaged over ranks) match one process at
    batch 4 at every step, D's steps and R1 (step 5) included. Without the all-reduce they drift
    by up to ~2e-2 within 5 steps; with it they agree to ~2e-5 (the log's rounding)."""
    r = _torchrun(tmp_path / "ddp", folder, "--batch-size", "2", "--steps", "5", "--adv-start", "2", "--augment", "",
                  split=True)
    one = Trainer(_cfg(tmp_path / "one", folder, batch_size=4, steps=5, adv_start=2, augment="", threads=1), pack=pack)
    one.fit()
    two = [json.loads(x) for x in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in two] == [1, 2, 3, 4, 5] and "r1" in two[-1] and "d_adv" in two[2]
    for a, b in zip(one.log, two):
        assert set(a) == set(b)
        for k in a.keys() - {"seconds"}:
            assert b[k] == pytest.approx(a[k], abs=1e-4), (a["step"], k)
    assert r.stdout.count("exported ") == 1  # rank 0 alone prints, logs and exports
    training = json.loads((tmp_path / "ddp" / "export" / "config.json").read_text())["training"]
    assert training["world_size"] == 2 and training["images_seen"] == 2 * 5 * 2
    assert json.loads((tmp_path / "one" / "export" / "config.json").read_text())["training"]["world_size"] == 1


@pytest.mark.slow
def test_two_process_resume_is_exact(tmp_path, folder):
    """torchrun, each rank on its own batches: 2 steps then a resume to 4 gives the weights of 4 straight
    steps (the checkpoint keeps every rank's generators); one checkpoint, written by rank 0."""
    _torchrun(tmp_path / "a", folder, "--batch-size", "2", "--steps", "4", "--adv-start", "1")
    _torchrun(tmp_path / "b", folder, "--batch-size", "2", "--steps", "2", "--adv-start", "1")
    ckpt = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=True)
    assert ckpt["rank_gen"].shape[0] == 2 and not torch.equal(ckpt["rank_gen"][0], ckpt["rank_gen"][1])
    _torchrun(tmp_path / "b", folder, "--batch-size", "2", "--steps", "4", "--adv-start", "1")
    a, b = load_folder(tmp_path / "a" / "export"), load_folder(tmp_path / "b" / "export")
    for k in ("encoder", "decoder", "discriminator"):
        for x, y in zip(getattr(a, k).parameters(), getattr(b, k).parameters()):
            assert torch.equal(x, y), k


def test_reprior_rebuilds_only_the_text_side(tmp_path, folder, pack):
    """New descriptions reach an exported model's prior without retraining: the networks and
    latent tables stay byte for byte, the caption table and query map come from the new data."""
    from model.training.reprior import rebuild_text_side

    out = Trainer(_cfg(tmp_path / "run", folder), pack=pack).fit()
    data = write_colour_folder(tmp_path / "described")
    meta = data / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    for r in rows:
        if r["text"] == "blue heart":
            r["descriptions"] = ["a sapphire love symbol"]
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    new = rebuild_text_side(out, data, tmp_path / "re")
    kept = ["encoder", "decoder", "discriminator", *(f"latents-{s}" for s in ("google", "openmoji"))]
    for k in kept:
        assert (new / f"{k}.safetensors").read_bytes() == (out / f"{k}.safetensors").read_bytes(), k
    before, after = load_folder(out), load_folder(new)
    assert len(after.prior.cap_emb) == len(before.prior.cap_emb) + 1
    assert not torch.equal(after.prior.query_map, before.prior.query_map)
    training = json.loads((new / "config.json").read_text())["training"]
    assert training["query_map_descriptions"] == 4 and training["prior_rebuilt"]["prior_data"] == str(data)
    card = (new / "README.md").read_text()
    assert training["steps"] == 3 and "python -m model.train " in card and "model.training.reprior" in card
    assert "model.training.reprior" not in (out / "README.md").read_text()
    # a data folder with other emojis cannot reuse the latent tables
    other = write_colour_folder(tmp_path / "other")
    meta = other / "metadata.jsonl"
    meta.write_text(meta.read_text().replace('"red apple"', '"green apple"'))
    with pytest.raises(ValueError, match="does not hold the model's emojis"):
        rebuild_text_side(out, other, tmp_path / "bad")


def test_distilling_an_upsampler_trains_a_smaller_net_toward_its_teacher(tmp_path, tiny_model_dir):
    from model.training import upsampler as sr
    from model.upsample import Upsampler, UpsamplerConfig

    torch.manual_seed(0)
    Upsampler(UpsamplerConfig(features=8, convs=2, name="teacher")).save_pretrained(tmp_path / "teacher")
    teacher = Upsampler.from_folder(tmp_path / "teacher")
    low, names = sr.prior_drawings(tiny_model_dir)
    assert low.dtype == torch.uint8 and low.shape[1:] == (3, 16, 16) and len(names) == len(low)
    high = sr.teacher_targets(teacher, low)
    assert high.shape[1:] == (3, 64, 64)
    assert sr.psnr(teacher, low, high) > 35  # the teacher against its own (rounded) output
    before = Upsampler(UpsamplerConfig(features=4, convs=1))
    sr.main(["--teacher", str(tmp_path / "teacher"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "sr"),
             "--features", "4", "--convs", "1", "--steps", "80", "--crop", "8", "--lr", "3e-3", "--threads", "1"])
    cfg = json.loads((tmp_path / "sr" / "export" / "config.json").read_text())
    assert (cfg["features"], cfg["convs"], cfg["steps"]) == (4, 1, 80)
    assert cfg["name"] == "teacher, distilled (4x3 convs)" and "--teacher" in cfg["source"]
    student = Upsampler.from_folder(tmp_path / "sr" / "export")
    assert sr.psnr(student, low, high) > sr.psnr(before, low, high) + 1  # it learned the teacher's map


def test_distillation_pairs_are_cached_per_model_and_teacher(tmp_path, tiny_model_dir):
    from model.training import upsampler as sr
    from model.upsample import Upsampler, UpsamplerConfig

    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        Upsampler(UpsamplerConfig(features=4, convs=1, name=name)).save_pretrained(tmp_path / name)
    cache = tmp_path / "pairs.pt"
    (lo, hi), _, name = sr.distil_pairs(tiny_model_dir, tmp_path / "a", cache)
    assert cache.is_file() and name == "a"
    (lo2, hi2), _, _ = sr.distil_pairs(tiny_model_dir, tmp_path / "a", cache)
    assert torch.equal(lo, lo2) and torch.equal(hi, hi2)
    (lo3, hi3), _, name = sr.distil_pairs(tiny_model_dir, tmp_path / "b", cache)  # another teacher: made again
    assert name == "b" and torch.equal(lo, lo3) and not torch.equal(hi, hi3)
