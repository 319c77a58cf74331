"""Tests of the measuring code: model.evaluation (quick mode end to end on a TINY model and a
synthetic imagefolder), model.evaluator (model.bench, its DF-GAN peer and the load test: test_bench.py)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from model.bench import num_threads
from model.evaluation import metrics as M
from model.evaluation import protocol as P
from model.evaluation.cli import parse_args
from model.evaluation.config import RPREC_KEYS
from model.evaluation.report import fd_enl0_note
from model.dataset import image_names
from model.evaluator import (Evaluator, EvaluatorConfig, EvaluatorTrainConfig, base_name, fd, frechet_distance,
                             held_out_groups, train_evaluator)
from model.paths import ROOT

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (240, 220, 20),
           "black": (10, 10, 10), "white": (250, 250, 250), "purple": (140, 40, 180), "orange": (250, 140, 20)}


class FakeEncoder:
    """Deterministic bag-of-words stand-in for MiniLM: (B,) strings -> (B, 384) unit vectors."""

    def _word(self, w: str) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(hashlib.md5(w.encode()).hexdigest()[:8], 16))
        return torch.randn(384, generator=g)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        out = [sum((self._word(w) for w in t.lower().replace(",", " ").split()), torch.zeros(384)) for t in texts]
        return torch.nn.functional.normalize(torch.stack(out) + 1e-6, dim=1)

    def encode(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        return self(list(texts)) if texts else torch.zeros(0, 384)


@pytest.fixture(scope="module")
def colour_pack(tmp_path_factory):
    """A synthetic imagefolder (8 colours x 2 styles, 16 px: a solid square on white) packed with
    FakeEncoder embeddings; returns the pack file path."""
    from model.dataset import build_pack, save_pack

    root = tmp_path_factory.mktemp("colours")
    rows = []
    for style, inset in (("google", 2), ("twitter", 4)):
        (root / "images" / style).mkdir(parents=True)
        for name, rgb in COLOURS.items():
            im = Image.new("RGB", (16, 16), (255, 255, 255))
            im.paste(rgb, (inset, inset, 16 - inset, 16 - inset))
            im.save(root / "images" / style / f"{name}.png")
            rows.append({"file_name": f"images/{style}/{name}.png", "text": f"{name} square", "style": style,
                         "keywords": [name]})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return save_pack(build_pack(root, size=16, encoder=FakeEncoder()), root / "pack.safetensors")


@pytest.fixture(scope="module")
def quick_results(tiny_model_dir, colour_pack, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    cfg = parse_args(["--quick", "--model", str(tiny_model_dir), "--data", str(colour_pack), "--out", str(out),
                        "--evaluator", str(out / "evaluator"), "--retrain-evaluator", "--evaluator-steps", "40", "--evaluator-width", "8",
                        "--n-fd", "4", "--n-ref", "8", "--n-prompts", "3", "--per-prompt", "5", "--no-bench", "--threads", "1"])
    return P.run(cfg, encoder=FakeEncoder(), log=lambda *a: None), out


# --- the end-to-end quick run ---

def test_quick_run_writes_reports(quick_results):
    res, out = quick_results
    on_disk = json.loads((out / "results.json").read_text())
    assert set(on_disk["rows"]) == {"real", "model", "random_init", "retrieval"}
    assert (out / "results.md").read_text().count("| random_init |") == 4  # main, FD and R-prec per style, spectrum
    assert (out / "quality.png").stat().st_size > 1000
    w = out / "evaluator" / "evaluator.safetensors"
    assert w.is_file() and w.stat().st_size < 2 * 2**20
    assert json.loads((out / "evaluator" / "config.json").read_text())["split"]["test_base_names"]


def test_quick_run_values_are_sane(quick_results):
    res, _ = quick_results
    rows = res["rows"]
    for name, row in rows.items():
        for key in ("rprec_exact_test", "rprec_paraphrase_test", "rprec_exact_train", "rprec_paraphrase_train"):
            assert 0.0 <= row[key] <= 1.0, key
        assert row["fd_eval"] >= 0 and row["fd_enl0"] >= 0
        assert set(row["fd_eval_per_style"]) <= {"google", "twitter"}
        for key in ("rprec_exact_test", "rprec_paraphrase_test", "rprec_exact_train", "rprec_paraphrase_train"):
            per = row[key + "_per_style"]
            assert per and set(per) <= set(res["model"]["styles"]), key
            if name in ("real", "retrieval"):  # images of the data, which has two styles
                assert set(per) <= {"google", "twitter"}, key
            assert min(per.values()) - 1e-9 <= row[key] <= max(per.values()) + 1e-9  # the overall is a mix of them
    for name, row in rows.items():
        for split in ("test", "train"):
            # 8 colours: the 9 nearest and the 99 random distractors are both all 7 other names, so they agree
            assert row[f"rprec_nearest_{split}"] == pytest.approx(row[f"rprec_exact_{split}"])
            per = row[f"rprec_nearest_{split}_per_style"]
            assert min(per.values()) - 1e-9 <= row[f"rprec_nearest_{split}"] <= max(per.values()) + 1e-9
    # 5 seeds per prompt are drawn in styles 0, 1, 2, 3, 0 of the tiny model's four: every style is measured
    assert set(rows["model"]["rprec_exact_train_per_style"]) == set(res["model"]["styles"]) and len(res["model"]["styles"]) == 4
    assert res["checks"]["fd_eval_ref_vs_itself"] < 1e-6
    # a random network is far from real images in ImageNet features (tiny latent model: 340 vs 77). Not
    # asserted for FD-eval: 4 queries against 8 references with a 40-step evaluator is noise there
    # (real 23.4, retrieval 20.0, random_init 20.2 on this pack)
    assert rows["random_init"]["fd_enl0"] > 2 * rows["real"]["fd_enl0"]
    assert rows["real"]["diversity_embed_l2"] > 0  # two styles of one colour differ
    assert rows["real"]["seed_diversity_pixel_std"] is None  # only generators have seeds
    assert 0.0 < rows["model"]["seed_diversity_pixel_std"] <= 0.5  # 5 seeds in 4 styles: style 0 twice
    assert set(rows["real"]["spectrum_ratio"]) == {"0.0625-0.125", "0.125-0.25", "0.25-0.5", "0.5 x", "0.5 y"}
    assert all(row["spectrum_ratio"][b] > 0 for row in rows.values() for b in ("0.0625-0.125", "0.125-0.25", "0.25-0.5"))
    assert np.isnan(rows["real"]["spectrum_ratio"]["0.5 x"])  # flat colours have no one-pixel stripes to compare
    gate = res["gate"]
    assert gate["images"] == 4 and 0 <= gate["kept_real"] <= 1 and 0 <= gate["kept_model"] <= 1
    assert 0 <= gate["realism_auc"] <= 1 and 0 <= gate["match_auc"] <= 1


def test_quick_run_reuses_a_saved_evaluator(quick_results, tiny_model_dir, colour_pack, tmp_path):
    res, out = quick_results
    weights = out / "evaluator" / "evaluator.safetensors"
    stamp = weights.stat().st_mtime_ns
    cfg = parse_args(["--quick", "--model", str(tiny_model_dir), "--data", str(colour_pack), "--out", str(tmp_path),
                        "--evaluator", str(out / "evaluator"), "--n-fd", "4", "--n-ref", "8", "--n-prompts", "3",
                        "--per-prompt", "3", "--no-bench", "--no-enl0", "--threads", "1",
                        "--compare-to", str(out / "results.json")])
    again = P.run(cfg, encoder=FakeEncoder(), log=lambda *a: None)
    assert weights.stat().st_mtime_ns == stamp  # loaded, not retrained
    # 3 images per prompt against the first run's 5: no pairing, said in the report, and this run's results kept
    assert "sizes" in again["compared_to"]["error"] and "paired" not in again["compared_to"]
    assert "not compared: the two results differ in sizes" in (tmp_path / "results.md").read_text()
    assert "fd_enl0" not in again["rows"]["model"]
    for row in res["rows"]:
        assert again["rows"][row]["fd_eval"] == pytest.approx(res["rows"][row]["fd_eval"], rel=1e-6)


def test_quick_run_keeps_per_prompt_hits_and_standard_errors(quick_results):
    res, out = quick_results
    # 8 colours: one name is held out from the evaluator, so the held-out split has one prompt
    assert {split: len(p) for split, p in res["prompts"].items()} == {"test": 1, "train": 3}
    model = res["rows"]["model"]
    for key in RPREC_KEYS:
        per = model["by_prompt"][key]
        assert len(per) == len(res["prompts"][key.rsplit("_", 1)[1]]) and all(0.0 <= v <= 1.0 for v in per)
        assert np.mean(per) == pytest.approx(model[key], abs=1e-3)  # 5 images per prompt: the mean of the means
        if len(per) > 1:
            assert model[key + "_se"] == pytest.approx(M.standard_error(per), abs=1e-3)
        else:
            assert np.isnan(model[key + "_se"])  # one prompt has no spread to measure
    assert "by_prompt" not in res["rows"]["real"]  # only the model row is paired
    md = (out / "results.md").read_text()
    assert "Standard errors of the model row's R-precision over its 3 prompts" in md
    # a run paired with itself: every difference and its standard error are zero
    same = M.paired_difference(res, M.load_results(out))  # the folder stands for its results.json
    assert set(same) == set(RPREC_KEYS)
    assert all(d["diff"] == 0.0 and d["a"] == d["b"] for d in same.values())
    assert all(same[k]["se"] == 0.0 for k in RPREC_KEYS if k.endswith("_train"))


def test_fd_enl0_note_says_when_a_perceptual_loss_trained_the_model(quick_results, tiny_model_dir, tmp_path):
    import shutil

    from model.hub import load_folder

    res, _ = quick_results
    assert "independent of training" in res["notes"]["fd_enl0"] and "CAUTION" not in res["notes"]["fd_enl0"]
    folder = shutil.copytree(tiny_model_dir, tmp_path / "perc")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.setdefault("training", {})["enl0_in_training"] = True
    (folder / "config.json").write_text(json.dumps(cfg))
    model = load_folder(folder)
    note = fd_enl0_note(model, folder)
    assert "CAUTION" in note and "perceptual loss" in note
    assert "CAUTION" not in fd_enl0_note(model, tiny_model_dir)
    assert "CAUTION" not in fd_enl0_note(model, tmp_path / "missing")  # no config: nothing recorded


def test_compare_to_a_missing_file_fails_before_the_run(tmp_path):
    cfg = parse_args(["--quick", "--compare-to", str(tmp_path / "nowhere.json"), "--no-bench"])
    with pytest.raises(FileNotFoundError, match="no results file"):
        P.run(cfg, encoder=FakeEncoder(), log=lambda *a: None)
    (tmp_path / "other.json").write_text('{"speed": {}}')
    with pytest.raises(ValueError, match="not a model.evaluate results.json"):
        M.load_results(tmp_path / "other.json")


# --- metrics ---

def test_prompt_means_and_standard_error():
    hits = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    owner = torch.tensor([0, 0, 1, 1, 2, 2])
    assert M.prompt_means(hits, owner, 4).tolist() == [0.5, 1.0, 0.0, 0.0]  # prompt 3 has no images
    assert M.standard_error([0.5, 1.0, 0.0]) == pytest.approx(0.5 / np.sqrt(3))
    assert np.isnan(M.standard_error([0.7]))


def _results(by_prompt: list[float], prompts=("a", "b", "c", "d"), seed=0) -> dict:
    return {"prompts": {"test": list(prompts)}, "sizes": {"n_prompts": 4, "per_prompt": 8}, "config": {"seed": seed},
            "evaluator": {"folder": "ev"}, "rows": {"model": {"by_prompt": {"rprec_exact_test": by_prompt}}}}


def test_paired_difference_cancels_prompt_difficulty():
    # b is a everywhere minus 0.25 except one prompt: the prompts' spread (0 .. 1) does not enter the s.e.
    a, b = _results([1.0, 0.75, 0.25, 0.0]), _results([0.75, 0.5, 0.0, 0.0])
    d = M.paired_difference(a, b)["rprec_exact_test"]
    assert d["a"] == pytest.approx(0.5) and d["b"] == pytest.approx(0.3125)
    assert d["diff"] == pytest.approx(0.1875)
    assert d["se"] == pytest.approx(np.std([0.25, 0.25, 0.25, 0.0], ddof=1) / 2)
    assert d["se"] < M.standard_error([1.0, 0.75, 0.25, 0.0]) / 3
    with pytest.raises(ValueError, match="prompts"):
        M.paired_difference(a, _results([0.5] * 4, prompts=("a", "b", "c", "e")))
    with pytest.raises(ValueError, match="seed"):
        M.paired_difference(a, _results([0.5] * 4, seed=1))
    with pytest.raises(ValueError, match="re-run"):
        M.paired_difference(a, {**_results([0.5] * 4), "rows": {"model": {}}})

def test_group_means_per_style():
    hits = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    styles = torch.tensor([0, 0, 1, 2, 2])  # 2 = 'any': no name, left out
    assert M.group_means(hits, styles, ["google", "twitter"]) == {"google": 0.5, "twitter": 1.0}
    assert M.group_means(hits[:2], styles[:2], ["google", "twitter"]) == {"google": 0.5}  # no twitter images


def test_frechet_distance_identical_gaussians_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 6))
    assert fd(x, x) == pytest.approx(0.0, abs=1e-8)
    mu, s = np.ones(6), np.cov(x, rowvar=False)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_known_cases():
    # 1-D: N(0, 4) vs N(1, 1): (0 - 1)^2 + 4 + 1 - 2 * sqrt(4 * 1) = 2
    assert frechet_distance(np.zeros(1), np.eye(1) * 4, np.ones(1), np.eye(1)) == pytest.approx(2.0)
    # diagonal: sum of per-dimension distances
    a, b = np.array([1.0, 9.0]), np.array([4.0, 1.0])
    want = 3 ** 2 + sum(a + b - 2 * np.sqrt(a * b))
    assert frechet_distance(np.zeros(2), np.diag(a), np.array([3.0, 0.0]), np.diag(b)) == pytest.approx(want)


def test_frechet_distance_sample_space_matches_covariance_form():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 10)), rng.normal(size=(9, 10)) * 2 + 1  # fewer samples than dimensions
    from model.evaluator import gaussian_stats
    assert fd(a, b) == pytest.approx(frechet_distance(*gaussian_stats(a), *gaussian_stats(b)), rel=1e-6)


def test_r_precision_ranks_the_true_caption():
    txt = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    cands = torch.stack([txt[[i] + [j for j in range(5) if j != i]] for i in range(5)])  # (5, 5, 8)
    assert M.r_precision(txt, cands).tolist() == [1.0] * 5
    assert M.r_precision(txt[[1, 0, 3, 2, 0]], cands).sum() == 0


# --- the evaluator ---

def test_seed_diversity_compares_only_images_of_one_style():
    black, white = torch.zeros(3, 4, 4, dtype=torch.uint8), torch.full((3, 4, 4), 255, dtype=torch.uint8)
    # styles 0 and 1 differ wildly from each other, but each style's two seeds agree: no seed diversity
    same = torch.stack([black, white, black, white])
    assert M.seed_diversity(same, torch.tensor([0, 1, 0, 1])) == 0.0
    # style 0's seeds are black and white: per-pixel std of {0, 1} = 0.7071; style 1's agree (0): mean 0.354
    mixed = torch.stack([black, white, white, white])
    assert M.seed_diversity(mixed, torch.tensor([0, 1, 0, 1])) == pytest.approx(0.5 * 2 ** -0.5, abs=1e-4)
    assert np.isnan(M.seed_diversity(same, torch.tensor([0, 1, 2, 3])))  # one image per style: nothing to compare


def test_spectrum_ratio_sees_crosshatch_and_blur():
    g = torch.Generator().manual_seed(0)
    # flat regions with sharp edges, like emoji: 8x8 noise blown up to 32 px
    smooth = F.interpolate(torch.rand(64, 3, 8, 8, generator=g), size=32, mode="nearest")
    smooth = (smooth + 0.02 * torch.rand(smooth.shape, generator=g)).clamp(0, 1)  # a little grain everywhere
    real = (smooth * 255).to(torch.uint8)
    same = M.spectrum_ratio(real, real)
    assert all(v == pytest.approx(1.0) for v in same.values())
    board = (torch.arange(32).view(32, 1) + torch.arange(32).view(1, 32)) % 2 * 2.0 - 1.0  # 1-px checkerboard
    hatched = ((smooth + 0.1 * board).clamp(0, 1) * 255).to(torch.uint8)
    r = M.spectrum_ratio(hatched, real)
    assert r["0.25-0.5"] > 2.5 and r["0.0625-0.125"] == pytest.approx(1.0, abs=0.1)  # the top band only
    assert r["0.5 x"] < 3  # a checkerboard sits in the corner (0.5, 0.5), not on the axes
    stripes = ((smooth + 0.1 * board[:1]).clamp(0, 1) * 255).to(torch.uint8)  # one-pixel vertical stripes
    r = M.spectrum_ratio(stripes, real)
    assert r["0.5 x"] > 10 * r["0.5 y"] and r["0.5 x"] > 10
    blurred = (F.avg_pool2d(smooth, 3, 1, 1, count_include_pad=False) * 255).to(torch.uint8)
    r = M.spectrum_ratio(blurred, real)
    assert r["0.25-0.5"] < 0.2 < r["0.125-0.25"] < 0.7 < r["0.0625-0.125"] < 1.0  # blur bites the top most


def test_auc_counts_ordered_pairs():
    assert M.auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert M.auc(torch.tensor([0.0]), torch.tensor([1.0, 2.0])) == 0.0
    assert M.auc(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0])) == pytest.approx(0.625)  # 2 wins + 1 tie of 4


def test_split_holds_out_whole_base_names():
    names = ["waving hand", "waving hand: dark skin tone", "red apple", "rocket", "dog face", "cat face"]
    held = held_out_groups(names, 0.3, seed=0)
    assert held and held == held_out_groups(list(reversed(names)), 0.3, seed=0)
    assert held <= {base_name(n) for n in names} and base_name("waving hand: dark skin tone") == "waving hand"
    assert base_name("kiss: woman, man, light skin tone, medium-dark skin tone") == "kiss: woman, man"
    assert base_name("handshake: light skin tone, dark skin tone") == "handshake"
    assert base_name("flag: japan") == "flag: japan"  # a colon alone is not a skin tone
    assert held_out_groups(names, 0.3, seed=1) != held or len(held) == 1  # the seed moves the split


def test_evaluator_trains_and_round_trips(colour_pack, tmp_path):
    from model.dataset import load_pack

    pack = load_pack(colour_pack)
    assert image_names(pack)[0] == "red square"
    with num_threads(1):
        ev, info = train_evaluator(pack, EvaluatorConfig(image_size=16, channels=(8, 16, 32, 64)),
                                   EvaluatorTrainConfig(steps=3), log=None)
    ev.save(tmp_path, info)
    ev2, info2 = Evaluator.load(tmp_path)
    x = pack.images[:4].float() / 127.5 - 1
    assert torch.allclose(ev.image_features(x).half().float(), ev2.image_features(x), atol=1e-2)
    assert ev2.image_embed(ev2.image_features(x)).norm(dim=1).sub(1).abs().max() < 1e-5
    assert info2["training"]["steps"] == 3


def test_shipped_evaluator_is_small_and_loads():
    folder = ROOT / "assets" / "evaluator"
    if not (folder / "evaluator.safetensors").is_file():
        pytest.skip("no shipped evaluator yet (python -m model.evaluate --retrain-evaluator)")
    assert (folder / "evaluator.safetensors").stat().st_size < 2 * 2**20
    ev, info = Evaluator.load(folder)
    assert info["split"]["test_base_names"] and ev.cfg.image_size == 64


def test_evaluation_samples_are_the_apps_images(tiny_model_dir):
    """P.sample draws what TextToImage.generate shows for the same prompt, style and seeds."""
    from model.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(str(tiny_model_dir), device="cpu")
    pipe.stages.encoder = FakeEncoder()
    out = pipe.text_to_image.generate("red apple", n=3, seed=7, style=pipe.checks.styles[1], gate=0.0, fill=True, upscale=False)
    emb = pipe.stages.embed(["red apple"]).expand(3, -1)
    raw = P.sample(pipe, pipe.model, emb, torch.zeros(3, dtype=torch.long), [7, 8, 9], batch=2)
    shown = {s.seed: torch.from_numpy(np.array(s.image)).permute(2, 0, 1) for s in out.images}
    assert sorted(shown) == [7, 8, 9]
    for k, seed in enumerate((7, 8, 9)):
        assert torch.equal(raw[k], shown[seed])
    assert not torch.equal(raw[0], raw[1])  # the seeds differ, so do the images


def test_colour_blind_training_rotates_hue_and_keeps_white_and_luma():
    import math

    from model.evaluator import colour_blind, rotate_hue

    x = torch.tensor([[1.0, 1.0, 1.0], [0.8, -0.8, -0.8], [-1.0, -1.0, -1.0]]).t()[None, :, :, None]  # white, red, black
    y = rotate_hue(x, torch.tensor([2 * math.pi / 3]))
    assert torch.allclose(y[0, :, 0], x[0, :, 0], atol=1e-3) and torch.allclose(y[0, :, 2], x[0, :, 2], atol=1e-3)
    red, moved = x[0, :, 1], y[0, :, 1]
    assert moved.argmax() != 0 and red.argmax() == 0  # red is no longer the largest channel
    luma = lambda v: 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]  # noqa: E731
    assert abs(float(luma(moved) - luma(red))) < 0.1  # kept, up to the clamp into the RGB cube
    g = torch.Generator().manual_seed(0)
    out = colour_blind(x.expand(64, -1, -1, -1), g, grey=0.5)
    grey = (out.max(1).values - out.min(1).values).amax((1, 2)) < 1e-6
    assert 10 < int(grey.sum()) < 54  # about half made grey, the rest rotated
