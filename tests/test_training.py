"""The latent model's trainer (model.training) on a 16 px colour imagefolder: steps, resume,
export, the gate calibration and the model card."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import write_colour_folder

from model.dataset import load_dataset
from model.evaluator import image_names
from model.hub import load_folder
from model.training.trainer import TrainConfig, Trainer, partners, prior_captions


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_colour_folder(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def pack(folder):
    return load_dataset(folder, size=16)


def _cfg(out, folder, **kw) -> TrainConfig:
    base = dict(data=str(folder), out=str(out), model_config="tiny", batch_size=4, steps=3, adv_start=1,
                log_every=1, sample_every=1000, ckpt_every=1000, threads=2, device="cpu", amp="none", holdout=0.25)
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
    card = (out / "README.md").read_text()
    assert "python -m model.training" in card and "--adv-start 1" in card and "--holdout 0.25" in card


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
