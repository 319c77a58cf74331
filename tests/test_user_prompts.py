"""The 'what users type' protocol: the natural-description set and the measures' helpers."""
from __future__ import annotations

import re

import pytest
import torch

from model.evaluation.user_prompts import nearest_distance, paired, per_style, read_natural


def test_natural_set_is_large_covers_every_category_and_avoids_the_names_words():
    rows = read_natural()
    assert len(rows) >= 200
    assert len({r["name"] for r in rows}) == len(rows)  # one prompt per emoji
    cats = {r["category"] for r in rows}
    assert {"Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
            "Activities", "Objects", "Symbols", "Flags"} <= cats
    for r in rows:
        words = {w for w in re.findall(r"[a-z0-9']+", r["prompt"].lower())}
        name_words = {w for w in re.findall(r"[a-z0-9']+", r["name"].lower()) if len(w) >= 3}
        clash = {w for w in name_words if w in words or w + "s" in words or w.rstrip("s") in words}
        assert not clash, f"{r['prompt']!r} uses words of its name {r['name']!r}: {clash}"
        assert "emoji" not in words and r["prompt"].strip() != r["name"]


def test_nearest_distance_is_zero_for_a_training_image_and_grows_with_change():
    train = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    query = torch.stack([train[2], (train[3].int() + 30).clamp(0, 255).to(torch.uint8)])
    d = nearest_distance(query, train)
    assert d[0] == pytest.approx(0.0, abs=1e-3) and 0.05 < d[1] < 0.2


def test_per_style_and_paired():
    assert per_style(torch.tensor([1.0, 0.0, 1.0]), ["a", "b", "a"]) == {"a": 1.0, "b": 0.0}
    p = paired([1.0, 0.5, 0.0], [0.5, 0.5, 0.5])
    assert p["diff"] == 0.0 and p["se"] > 0


def test_two_idea_prompts_name_emojis_for_every_part():
    from model.evaluation.generative import read_two_ideas

    items = read_two_ideas()
    assert len(items) >= 20 and len({it["prompt"] for it in items}) == len(items)
    for it in items:
        assert 1 <= len(it["parts"]) <= 2 and all(part and all(isinstance(n, str) for n in part) for part in it["parts"])


def test_crops_are_the_image_then_windows_over_it():
    from model.evaluation.judge import crops

    x = torch.zeros(2, 3, 10, 10, dtype=torch.uint8)
    x[:, 0, :4, :4] = 255  # a red top-left corner
    v = crops(x)
    assert v.shape == (2, 10, 3, 10, 10) and v.dtype == torch.uint8
    assert torch.equal(v[:, 0], x)  # the whole image first
    assert v[0, 1, 0].float().mean() > 2 * x[0, 0].float().mean()  # the top-left window holds it larger
    assert v[0, 9, 0].max() == 0  # the bottom-right window misses it


def test_part_hits_finds_each_part_in_a_window_and_not_a_missing_one():
    from types import SimpleNamespace

    from model.evaluation.judge import Judge

    names = ["red", "blue", "green", "grey", "black"]
    colours = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0], [0.5, 0.5, 0.5], [-1.0, -1, -1]])
    j = object.__new__(Judge)
    j.uniq, j.idx = names, {n: i for i, n in enumerate(names)}
    j.name_txt = torch.nn.functional.normalize(colours - colours.mean(0), dim=1)
    unit = lambda f: torch.nn.functional.normalize(f - colours.mean(0), dim=1)  # noqa: E731
    j.ev = SimpleNamespace(image_features=lambda x: x.mean((2, 3)), image_embed=unit)
    j.candidates = lambda name, seed: [j.idx[name]] + [i for i, n in enumerate(names) if n != name]
    img = torch.full((1, 3, 20, 20), 255, dtype=torch.uint8)  # white, a red block left, a blue block right
    img[:, :, 6:14, 0:9] = torch.tensor([255, 0, 0], dtype=torch.uint8)[:, None, None]
    img[:, :, 6:14, 11:20] = torch.tensor([0, 0, 255], dtype=torch.uint8)[:, None, None]
    hits = j.part_hits(img, [[["red"], ["blue"]]])
    assert hits.tolist() == [[1.0, 1.0]]
    assert j.part_hits(img, [[["red"], ["green"]]]).tolist() == [[1.0, 0.0]]  # no green anywhere
    assert torch.isnan(j.part_hits(img, [[["red"]]]))[0].sum() == 0
