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
