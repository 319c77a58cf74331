"""The pixel style classifier (model.evaluation.style_judge): it learns a style from pixels on
names it never saw, its split keeps names apart, its augmentations soften images, its cache is
keyed by the pack, and nothing that trains the generator can import it."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from model.dataset import Pack
from model.evaluation import style_judge as sj
from model.paths import ROOT

TINY = sj.StyleJudgeConfig(channels=(8, 16, 32), strides=(2, 2, 2), image_size=32, steps=120, batch_size=32,
                           lr=5e-3, p_down=0.5, p_blur=0.25, p_noise=0.5)


def synthetic(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 'styles' of random discs and squares on white: 0 = drawn with a black 3-px outline,
    1 = flat filled. Colour, shape, size and place are drawn the same way for both."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    imgs, labels = [], []
    for i in range(n):
        style = i % 2
        cy, cx = rng.uniform(0.35, 0.65, 2) * size
        r = rng.uniform(0.22, 0.33) * size
        if rng.random() < 0.5:
            d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        else:
            d = np.maximum(abs(yy - cy), abs(xx - cx))
        img = np.full((size, size, 3), 255, np.uint8)
        img[d < r] = rng.integers(60, 255, 3)
        if style == 0:
            img[(d < r) & (d >= r - 3)] = 0
        imgs.append(img)
        labels.append(style)
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels)


def tiny_pack(n: int = 12, size: int = 16, styles=("google", "openmoji")) -> tuple[Pack, list[str]]:
    g = torch.Generator().manual_seed(0)
    names = [f"thing {i // len(styles)}" for i in range(n)]
    captions = sorted(set(names))
    pack = Pack(images=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
                styles=torch.arange(n) % len(styles), cap_offsets=torch.arange(n + 1),
                cap_index=torch.tensor([captions.index(x) for x in names]),
                cap_emb=torch.zeros(len(captions), 384, dtype=torch.float16), captions=captions,
                style_names=list(styles))
    return pack, names


def test_learns_outline_vs_flat_on_held_out_items():
    x, y = synthetic(160, seed=1)
    xt, yt = synthetic(80, seed=2)  # other shapes, colours and places
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small gains nothing from a second thread (and loses a lot on a busy CPU)
    try:
        net, info = sj.train_style_net(x, y, 2, TINY, log=None)
    finally:
        torch.set_num_threads(threads)
    judge = sj.StyleJudge(net, ["outlined", "flat"], info)
    acc = float((judge.predict(xt) == yt).float().mean())
    assert acc > 0.9, acc
    # softened through 16 px (of 32), the outline is still read
    assert float((judge.predict(sj.blur_through(xt, 16)) == yt).float().mean()) > 0.8


def test_name_split_keeps_every_base_name_on_one_side():
    names = []
    for i in range(60):
        names += [f"hand {i}", f"hand {i}: dark skin tone", f"hand {i}: light skin tone"]
    names += ["flag: japan", "kiss: woman, man, light skin tone", "kiss: woman, man"]
    tr, te = sj.name_split(names, 0.2, seed=0)
    assert sorted(tr.tolist() + te.tolist()) == list(range(len(names)))
    base_tr = {sj.base_name(names[i]) for i in tr.tolist()}
    base_te = {sj.base_name(names[i]) for i in te.tolist()}
    assert base_tr and base_te and not base_tr & base_te
    assert 0.15 < len(base_te) / (len(base_tr) + len(base_te)) < 0.25
    tr2, te2 = sj.name_split(names, 0.2, seed=0)
    assert torch.equal(te, te2)
    assert not torch.equal(te, sj.name_split(names, 0.2, seed=1)[1])


def test_blur_and_augmentations_soften_and_change_images():
    x, _ = synthetic(16, seed=3)

    def sharpness(im: torch.Tensor) -> float:  # mean absolute horizontal gradient
        f = im.float()
        return float((f[..., 1:] - f[..., :-1]).abs().mean())

    b = sj.blur_through(x, 8)
    assert b.dtype == torch.uint8 and b.shape == x.shape
    assert sharpness(b) < 0.8 * sharpness(x)
    y = sj.to_unit(x)
    g = sj.gaussian_blur(y, torch.full((len(y),), 1.5))
    assert sharpness(g) < 0.8 * sharpness(y)
    assert torch.allclose(g.mean(), y.mean(), atol=0.05)  # a blur, not a darkening
    assert torch.allclose(sj.gaussian_blur(y, torch.full((len(y),), 1e-4)), y, atol=1e-5)
    soft = sj.StyleJudgeConfig(p_down=1.0, p_blur=1.0, p_noise=0.0)
    a = sj.augment(x, torch.Generator().manual_seed(0), soft)
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert sharpness(a) < 0.8 * sharpness(y)
    none = sj.StyleJudgeConfig(p_down=0.0, p_blur=0.0, p_noise=0.0)
    a0 = sj.augment(x, torch.Generator().manual_seed(0), none)
    assert (a0 - y).abs().mean() > 0.01  # the flips, shifts and scales alone change them too


def test_cache_key_changes_with_the_pack_and_cache_round_trip(tmp_path, monkeypatch):
    pack, names = tiny_pack()
    key = sj.cache_key(pack, names, TINY)
    assert key == sj.cache_key(pack, names, TINY)
    one_pixel = Pack(**{**pack.__dict__, "images": pack.images.clone()})
    one_pixel.images[3, 0, 0, 0] ^= 1
    relabel = Pack(**{**pack.__dict__, "styles": pack.styles.flip(0)})
    renamed = Pack(**{**pack.__dict__, "style_names": ["google", "twitter"]})
    shorter = Pack(**{**pack.__dict__, "images": pack.images[:-2], "styles": pack.styles[:-2]})
    keys = {key, sj.cache_key(one_pixel, names, TINY), sj.cache_key(relabel, names, TINY),
            sj.cache_key(renamed, names, TINY), sj.cache_key(shorter, names[:-2], TINY),
            sj.cache_key(pack, names, sj.StyleJudgeConfig(**{**TINY.__dict__, "steps": 5}))}
    assert len(keys) == 6
    monkeypatch.setattr(sj, "CODE_VERSION", sj.CODE_VERSION + "-next")
    assert sj.cache_key(pack, names, TINY) not in keys
    monkeypatch.undo()

    cfg = sj.StyleJudgeConfig(**{**TINY.__dict__, "steps": 3, "batch_size": 4})
    first = sj.load_or_train(pack, names, tmp_path, cfg, log=None)
    assert (tmp_path / sj.cache_key(pack, names, cfg) / "style_judge.safetensors").is_file()

    def no_training(*a, **k):
        raise AssertionError("retrained although the weights were cached")

    monkeypatch.setattr(sj, "train_style_net", no_training)
    again = sj.load_or_train(pack, names, tmp_path, cfg, log=None)
    assert torch.equal(first.probs(pack.images), again.probs(pack.images))
    assert again.style_names == pack.style_names
    with pytest.raises(AssertionError, match="retrained"):
        sj.load_or_train(one_pixel, names, tmp_path, cfg, log=None)


def test_instrument_report_counts_per_style_and_blur_drift():
    styles = ["google", "twitter", "fluent3d", "openmoji"]
    x = torch.zeros(8, 3, 16, 16, dtype=torch.uint8)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    rep = sj.instrument_report({"truth": lambda im: y.clone(), "all_f3d": lambda im: torch.full((len(im),), 2)},
                               x, y, styles, blur_sizes=(8,))
    assert rep["truth"]["clean"]["acc"] == 1.0 and rep["truth"]["blur8"]["per_style"]["openmoji"] == 1.0
    assert rep["all_f3d"]["clean"]["per_style"] == {"google": 0.0, "twitter": 0.0, "fluent3d": 1.0, "openmoji": 0.0}
    assert rep["all_f3d"]["blur8"]["read_as_fluent3d"]["google"] == 1.0
    assert rep["all_f3d"]["clean"]["confusion"][0] == [0, 0, 2, 0]
    assert "| fluent3d |" in sj.report_markdown(rep)


def test_training_code_never_imports_the_style_judge():
    """A measuring instrument: no loss, discriminator or latent model may train against it."""
    files = sorted((ROOT / "model" / "training").glob("*.py")) + [
        ROOT / "model" / "discriminator.py", ROOT / "model" / "latent.py", ROOT / "model" / "losses.py",
        ROOT / "model" / "train.py"]
    assert len(files) > 4
    for f in files:
        if f.is_file():
            text = f.read_text(encoding="utf-8")
            assert not re.search(r"style_judge|StyleJudge|StyleNet", text), f"{f} refers to the style judge"


def test_user_prompts_reports_both_instruments_split_by_seen_and_unseen_pairs():
    from model.evaluation.user_prompts import judged_drawn_style, to_markdown

    pack, names = tiny_pack(n=4, styles=("google", "openmoji"))  # thing 0 and thing 1, each in both styles
    pack.styles = torch.tensor([0, 1, 0, 0])  # thing 1 exists only in google
    sc = {"styles": torch.tensor([0, 1, 1, 0]), "styles_probe": torch.tensor([1, 1, 1, 1])}
    drawn = ["google", "openmoji", "openmoji", "google"]
    out = judged_drawn_style(sc, drawn, ["thing 0", "thing 0", "thing 1", "thing 1"], pack)
    assert out["images_seen"] == 3 and out["images_unseen"] == 1
    assert out["cnn_seen"] == {"google": 1.0, "openmoji": 1.0, "all": 1.0}
    assert out["cnn_unseen"] == {"openmoji": 1.0, "all": 1.0}
    assert out["cnn_seen_confusion"] == [[2, 0], [0, 1]]
    assert out["probe_seen"] == {"google": 0.0, "openmoji": 1.0, "all": pytest.approx(1 / 3, abs=1e-4)}

    s = {"mean": 0.5, "se": 0.1}
    row = {"rprec": s}
    model = {"model": "m", "kind": "latent", "gate": 0.3, "natural": {**row, "shown_passed_gate": 1.0, "prior_top1": 0.3},
             "exact": {**row, "shown_passed_gate": 1.0, "prior_top1": 1.0, "judged_drawn_style": out},
             "unseen": {"pairs": 3, "rprec": s, "judged_style": 0.61, "judged_style_probe": 0.74, "shown_passed_gate": 0.9},
             "nearest_train_rms": {"median": 0.07}, "vs_search": {}}
    acc = {"google": 0.96, "openmoji": 0.99}
    md = to_markdown({"rows": {"search": {"natural": row, "exact": row}, "real": {"natural": row, "exact": row}},
                      "models": [model], "style_judge_real_acc": acc, "style_judge_blur16_acc": acc,
                      "style_probe_names_real_acc": acc, "style_probe_names_blur16_acc": acc})
    assert "style classifier (CNN on pixels, held-out names)" in md
    assert "judged fluent3d by the style classifier (CNN on pixels, held-out names) 0.61 (old feature probe: 0.74)" in md
