"""model.compose: prompts split into parts, parts laid out, a colour bound to an object; and the
pipeline drawing a composed prompt from its parts."""
from __future__ import annotations

import pytest
import torch

from model.compose import (COLOURS, LAYOUTS, Composer, Plan, arrangement, arrangements, compose, cutout,
                           nearest_colour, parse, recolour)
from model.pixels import rgb_to_hsv
from model.stages import image_tensor, to_pil


@pytest.mark.parametrize("prompt, plan", [
    ("a cat wearing sunglasses", Plan("cat", "sunglasses", "eyes")),
    ("A Dog wearing a crown.", Plan("dog", "crown", "head")),
    ("smiling face with sunglasses", Plan("smiling face", "sunglasses", "eyes")),
    ("a frog playing guitar", Plan("frog", "guitar", "corner")),
    ("an owl and a moon", Plan("owl", "moon", "beside")),
    ("a heart on fire", Plan("heart", "fire", "behind")),
    ("a cloud with snow", Plan("cloud", "snow", "below")),
    ("sun behind cloud", Plan("sun", "cloud", "in front")),
    ("a cat under an umbrella", Plan("cat", "umbrella", "above")),
    ("two cats", Plan("cat", "cat", "two")),
    ("two strawberries", Plan("strawberry", "strawberry", "two")),
    ("two snowmen", Plan("snowman", "snowman", "two")),
    ("2 mice", Plan("mouse", "mouse", "two")),
    ("a pair of foxes", Plan("fox", "fox", "two")),
    ("two peaches", Plan("peach", "peach", "two")),
    ("two tomatoes", Plan("tomato", "tomato", "two")),
    ("two leaves", Plan("leaf", "leaf", "two")),
    ("a purple banana", Plan("banana", None, None, "purple")),
    ("a blue cat wearing a top hat", Plan("cat", "top hat", "head", "blue")),
])
def test_parse_splits_at_the_relation_count_or_colour(prompt, plan):
    assert parse(prompt) == plan


@pytest.mark.parametrize("prompt", ["banana", "a red", "rolling eyes", "two", "two dogs playing", "cat with", ""])
def test_parse_leaves_one_thing_whole(prompt):
    assert parse(prompt) is None


def test_plan_describes_itself():
    assert str(Plan("cat face", "sunglasses", "eyes")) == "cat face + sunglasses (on its eyes)"
    assert str(Plan("cat", "cat", "two")) == "cat x 2"
    assert str(Plan("owl", "moon", "beside")) == "owl + moon (beside or behind it)"  # one of its arrangements
    assert str(Plan("banana", None, None, "purple")) == "purple banana"
    assert Plan("cat", "cat", "two").parts == ["cat"]
    assert Plan("cat", "moon", "beside").parts == ["cat", "moon"]


def fake_similarity(table: dict[str, float]):
    return lambda texts: torch.tensor([table.get(t, 0.3) for t in texts])


def test_composer_splits_only_when_the_parts_read_better_than_the_whole():
    names = ["cat", "cat face", "sunglasses", "blue heart", "yellow triangle", "exclamation mark"]
    sims = {"cat": 0.77, "sunglasses": 0.71, "a cat wearing sunglasses": 0.49, "apple": 0.50, "a blue apple": 0.56,
            "yellow triangle": 0.42, "exclamation point": 0.70, "yellow triangle with an exclamation point": 0.46,
            "an owl and a moon": 0.66, "owl": 0.69, "moon": 0.62}
    c = Composer(fake_similarity(sims), names)
    assert c.plan("a cat wearing sunglasses") == Plan("cat face", "sunglasses", "eyes")  # the face wears them
    assert c.plan("yellow triangle with an exclamation point") is None  # a part reads weakly: one emoji described
    assert c.plan("an owl and a moon") is None  # the whole reads within MARGIN of its weakest part
    assert c.plan("Blue heart") is None  # an emoji's own name is never split
    assert c.plan("a blue apple") == Plan("apple", None, None, "blue", reads="blue apple")  # the whole reads better
    assert c.plan("a blue apple").parts == ["blue apple"]
    assert Composer(fake_similarity({**sims, "apple": 0.6}), names).plan("a blue apple") == Plan("apple", colour="blue")
    assert Composer(fake_similarity({**sims, "apple": 0.3}), names).plan("a blue apple") is None  # no object read


def disc(rgb, size=32, radius=10, outline=True):
    """A filled disc of colour rgb (0-255) on white, with a black outline: (3, S, S) in [-1, 1]."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).sqrt()
    x = torch.ones(3, size, size)
    inside = r <= radius
    x[:, inside] = torch.tensor(rgb, dtype=torch.float)[:, None] / 255
    if outline:
        x[:, (r > radius) & (r <= radius + 1.5)] = 0.0
    return x * 2 - 1


def share_of(x, colour):
    h, s, v = rgb_to_hsv((x + 1) / 2)
    coloured = (s > 0.35) & (v > 0.3)
    return float((coloured & (nearest_colour(h) == list(COLOURS).index(colour))).sum() / coloured.sum().clamp_min(1))


@pytest.mark.parametrize("colour", ["purple", "blue", "green", "red", "pink"])
def test_recolour_moves_the_main_colour_and_keeps_ground_and_outline(colour):
    banana = disc((250, 210, 40))  # yellow
    assert share_of(banana, "yellow") > 0.95
    out = recolour(banana, colour)
    assert share_of(out, colour) > 0.95
    white = (banana == 1).all(0)
    black = (banana == -1).all(0)
    assert torch.allclose(out[:, white], banana[:, white], atol=1e-4)  # the ground stays white
    assert torch.allclose(out[:, black], banana[:, black], atol=1e-4)  # the outline stays black
    _, _, v_in = rgb_to_hsv((banana + 1) / 2)
    _, _, v_out = rgb_to_hsv((out + 1) / 2)
    assert torch.allclose(v_in, v_out, atol=1e-4)  # shading (value) kept


def test_recolour_tints_a_grey_drawing():
    elephant = disc((150, 150, 160))
    assert share_of(elephant, "pink") == 0.0
    assert share_of(recolour(elephant, "pink"), "pink") > 0.9


def test_the_ceiling_row_rotates_a_real_image_to_the_asked_colour():
    from model.evaluation.generative import hue_rotated, hue_share
    from model.pixels import to_uint8
    banana = to_uint8(disc((250, 210, 40)))[None]  # (1, 3, S, S) uint8, yellow
    assert hue_share(banana, "yellow")[0] > 0.95
    for colour in ("purple", "blue", "red"):
        assert hue_share(hue_rotated(banana, colour), colour)[0] > 0.95, colour
        assert hue_share(hue_rotated(banana, colour), "yellow")[0] < 0.05, colour


def test_compose_lays_both_parts_out_on_white():
    red, blue = disc((220, 30, 30), outline=False), disc((30, 60, 220), outline=False)
    for layout in ("eyes", "head", "corner", "beside", "two", "behind", "in front", "inside", "below", "above"):
        out = compose(red, blue, layout)
        assert out.shape == red.shape and out.min() >= -1 and out.max() <= 1
        assert share_of(out, "red") > 0.02 and share_of(out, "blue") > 0.02, layout  # both parts are visible
        assert (out[:, 0, 0] == 1).all()  # a corner stays ground
    side = compose(red, blue, "beside")
    assert share_of(side[:, :, :14], "red") > 0.9 and share_of(side[:, :, 18:], "blue") > 0.9  # subject left, other right
    assert cutout(torch.ones(3, 8, 8)).sum() == 0  # white is ground


def test_sideways_layouts_are_also_drawn_otherwise_and_placed_ones_are_not():
    red, blue = disc((220, 30, 30), outline=False), disc((30, 60, 220), outline=False)
    for layout in LAYOUTS:
        arr = arrangements(layout)
        assert arr[0] == LAYOUTS[layout] and len(set(arr)) == len(arr)
        assert [arrangement(layout, s) for s in range(len(arr))] == list(range(len(arr)))  # seeds in a row
    for layout in ("eyes", "head", "inside", "below", "above"):  # where the other goes is what it means
        assert len(arrangements(layout)) == 1
    assert len(arrangements("beside")) == 4 and len(arrangements("corner")) == 4
    two = arrangements("two")  # two of one thing: a pair swapped would be the same picture again
    assert len(two) >= 4 and not any((b, a) == (c, d) for a, b, _ in two for c, d, _ in two)
    mirrored = compose(red, blue, "beside", 1)
    assert share_of(mirrored[:, :, :14], "blue") > 0.9 and share_of(mirrored[:, :, 18:], "red") > 0.9
    outs = [compose(red, blue, "corner", k) for k in range(4)]
    assert all((outs[i] - outs[j]).abs().mean() > 0.05 for i in range(4) for j in range(i))  # four pictures
    for k in range(4):
        assert share_of(outs[k], "red") > 0.02 and share_of(outs[k], "blue") > 0.02  # both parts in each


@pytest.fixture
def tiny_pipe(tiny_model_dir):
    from model.pipeline import Pipeline

    p = Pipeline.from_pretrained(str(tiny_model_dir), device="cpu", upsampler=None)
    cap = p.model.prior.cap_emb
    for i, name in enumerate(p.model.prior.names):  # red apple, rocket, dog face
        p.stages.set_embedding(name, cap[i])
    g = torch.Generator().manual_seed(3)
    for text in ("a rocket and a red apple", "a purple rocket"):
        p.stages.set_embedding(text, torch.nn.functional.normalize(torch.randn(cap.shape[1], generator=g), dim=0))
    return p


def test_pipeline_draws_a_composed_prompt_from_its_parts(tiny_pipe):
    p = tiny_pipe
    g = p.text_to_image.generate("a rocket and a red apple", n=2, seed=5, style="google", candidates=2, upscale=False)
    assert g.plan == Plan("rocket", "red apple", "beside")
    sid = torch.tensor([0, 0])
    rd = p.model.prior.read(p.stages.embed(["rocket", "red apple"]).float().cpu())
    a = p.stages.decode(p.model.prior.sample([rd[0]] * 2, [0, 0], [5, 6]), sid)
    from model.text_to_image import OTHER_PART_SEED
    b = p.stages.decode(p.model.prior.sample([rd[1]] * 2, [0, 0], [5 + OTHER_PART_SEED, 6 + OTHER_PART_SEED]), sid)
    want = {s: compose(a[k], b[k], "beside", arrangement("beside", s)) for k, s in enumerate([5, 6])}
    for s in g.images:
        assert torch.equal(image_tensor(s.image)[0], image_tensor(to_pil(want[s.seed][None])[0])[0])
    p.text_to_image.compose = False
    assert p.text_to_image.generate("a rocket and a red apple", n=1, candidates=1, upscale=False).plan is None


def test_one_style_shows_a_composed_prompt_arranged_differently(tiny_pipe):
    p = tiny_pipe
    g = p.text_to_image.generate("a rocket and a red apple", n=4, seed=0, style="google", candidates=8, gate=0.0,
                                 upscale=False)
    assert g.plan is not None and g.plan.layout == "beside"
    assert {arrangement("beside", s.seed) for s in g.images} == {0, 1, 2, 3}  # one of each, best first
    x = [image_tensor(s.image)[0] for s in g.images]
    assert all(not torch.equal(x[i], x[j]) for i in range(4) for j in range(i))


def test_two_of_one_thing_is_the_same_drawing_twice(tiny_pipe):
    p = tiny_pipe
    noise = torch.randn(p.model.prior.cap_emb.shape[1], generator=torch.Generator().manual_seed(4))
    p.stages.set_embedding("two rockets", torch.nn.functional.normalize(noise, dim=0))  # reads worse than "rocket"
    g = p.text_to_image.generate("two rockets", n=4, seed=0, style="google", candidates=4, gate=0.0, upscale=False)
    assert g.plan == Plan("rocket", "rocket", "two")
    rd = p.model.prior.read(p.stages.embed(["rocket"]).float().cpu())
    for s in g.images:  # each image: the seed's rocket, and the same rocket again (not another draw)
        a = p.stages.decode(p.model.prior.sample(rd, [0], [s.seed]), torch.tensor([0]))[0]
        want = compose(a, a, "two", arrangement("two", s.seed))
        assert torch.equal(image_tensor(s.image)[0], image_tensor(to_pil(want[None])[0])[0])


def test_pipeline_keeps_an_emoji_name_whole_and_colours_an_object(tiny_pipe):
    p = tiny_pipe
    assert p.text_to_image.generate("red apple", n=1, candidates=1, upscale=False).plan is None
    g = p.text_to_image.generate("a purple rocket", n=1, seed=0, style="google", candidates=1, upscale=False)
    assert g.plan == Plan("rocket", None, None, "purple")
    plain = p.text_to_image.generate("rocket", n=1, seed=0, style="google", candidates=1, upscale=False)
    x, y = image_tensor(g.images[0].image)[0], image_tensor(plain.images[0].image)[0]
    assert not torch.equal(x, y) or share_of(y, "purple") > 0.5
    _, _, vx = rgb_to_hsv((x + 1) / 2)
    _, _, vy = rgb_to_hsv((y + 1) / 2)
    assert (vx - vy).abs().max() < 0.02  # only hue and saturation move


def test_distinct_first_puts_the_best_of_each_design_first():
    from model.outputs import Scored, distinct_first

    ranked = [Scored(None, seed, 0.9 - 0.1 * seed, 1.0, True, "google") for seed in range(5)]
    key = {id(s): d for s, d in zip(ranked, ["a", "a", "b", "a", "c"])}
    assert [s.seed for s in distinct_first(ranked, key)] == [0, 2, 4, 1, 3]


def test_generate_shows_different_designs_before_repeating_one(tiny_pipe):
    p = tiny_pipe
    prompt = "a purple rocket"  # a random embedding: every tiny emoji is a neighbour
    p.text_to_image.compose = p.text_to_image.variety = False  # the sets' own designs (variety: below)
    seeds = list(range(16))
    rd = p.text_to_image.read(prompt)
    _, rows = p.model.prior.sample_designs([rd] * 16, [0] * 16, seeds, 1.0)
    assert len(set(rows[:8])) >= 2  # the first round's candidates hold more than one design
    p.gate.distinct = False
    ranked = [s.seed for s in p.text_to_image.generate(prompt, n=8, seed=0, style="google", candidates=8, gate=0.0,
                                          upscale=False).images]  # the first 8, by realism x match
    # asked for 2 of 16 with every candidate passing: the first round (8) is enough
    p.gate.distinct = True
    shown = [s.seed for s in p.text_to_image.generate(prompt, n=2, seed=0, style="google", candidates=16, gate=0.0,
                                         upscale=False).images]
    second = next(k for k in ranked if rows[k] != rows[ranked[0]])
    assert shown == [ranked[0], second]  # the best, then the best of another design
    assert rows[ranked[0]] == rows[ranked[1]] or shown == ranked[:2]  # by score alone it may repeat one


def test_variety_last_keeps_a_moved_design_once_when_it_is_about_as_good():
    from types import SimpleNamespace

    from model.gate import Gate
    from model.latent import LatentConfig
    from model.outputs import Scored

    gate = Gate(SimpleNamespace(model=SimpleNamespace(cfg=LatentConfig(variety_gate=0.8))), checks=None)
    own, a1, a2, b = (Scored(None, seed, r, 1.0, True, "fluent3d") for seed, r in enumerate((0.5, 0.9, 0.8, 0.3)))
    moved = {id(a1): "A", id(a2): "A", id(b): "B"}  # b scores 0.3 < 0.8 x 0.5
    first, later = gate.variety_last([a1, own, a2, b], [own], moved)
    assert [s.seed for s in first] == [0, 1]  # own first, then A once
    assert [s.seed for s in later] == [2, 3]  # A's second and the weak B: after even rejected own images
    first, later = gate.variety_last([a1, a2], [own], moved)  # the own drawing failed the gate
    assert (first, later) == ([a1], [a2])
    assert gate.variety_last([a1, b], [], moved) == ([a1, b], [])  # no own design drawn: as it is
    assert gate.variety_last([], [own], moved) == ([], [])  # nothing passed the gate


def test_a_named_style_shows_the_sets_own_design_first_and_a_moved_one_once(tiny_pipe):
    """"rocket" in fluent3d: seeds draw fluent3d's rocket, and Google's and Twitter's moved into fluent3d."""
    import dataclasses

    p = tiny_pipe
    prior, cfg = p.model.prior, p.model.cfg
    st = cfg.styles.index("fluent3d")
    rd = p.text_to_image.read("rocket")
    _, rows = prior.sample_designs([rd] * 16, [st] * 16, list(range(16)), 1.0, variety=True)
    moved = [prior.is_variety(r, st) for r in rows]
    assert 0 < sum(moved) < 16  # both kinds drawn
    try:
        for bar in (0.0, 100.0):
            p.model.cfg = dataclasses.replace(cfg, variety_gate=bar)
            shown = [s.seed for s in p.text_to_image.generate("rocket", n=4, seed=0, style="fluent3d", candidates=16,
                                                              gate=0.0, upscale=False, other_designs=True).images]
            assert not moved[shown[0]]  # the set's own drawing first
            kinds = [rows[k] for k in shown if moved[k]]
            assert len(kinds) == len(set(kinds))  # each moved design at most once
            assert (len(kinds) > 0) == (bar == 0.0)  # a bar no moved design reaches shows the own design only
        p.model.cfg = cfg
        off = p.text_to_image.generate("rocket", n=4, seed=0, style="fluent3d", candidates=16, gate=0.0, upscale=False)
        assert not any(s.redrawn_from for s in off.images)  # off by default: the set's own design only
        on = p.text_to_image.generate("rocket", n=4, seed=0, style="fluent3d", candidates=16, gate=0.0, upscale=False,
                                      other_designs=True)
        assert {s.redrawn_from for s in on.images if moved[s.seed]} <= {"google", "twitter"}
        anyst = p.text_to_image.generate("rocket", n=4, seed=0, style="any", candidates=16, gate=0.0, upscale=False,
                                         other_designs=True)
        assert not any(s.redrawn_from for s in anyst.images)  # style "any" shows every set's own design
    finally:
        p.model.cfg = cfg


def test_the_composer_follows_a_new_prior(tiny_pipe):
    """A name taken out of the prior is no longer an emoji's own name: the composer may split it."""
    from model.evaluation.generative import without

    p = tiny_pipe
    p.stages.set_embedding("apple", p.model.prior.cap_emb[1])  # reads as the rocket: a part the prior knows
    assert p.text_to_image.plan("red apple") is None  # an emoji's own name stays whole
    full = p.model.prior
    p.model.prior = without(full, {"red apple"})  # an evaluation's swap
    assert "red apple" not in p.model.prior.names
    assert p.text_to_image.plan("red apple") == Plan("apple", colour="red")  # now a colour on an object
    p.model.prior = full
    assert p.text_to_image.plan("red apple") is None and p.model.prior is full


def test_lacking_pairs_lists_what_each_set_lacks_and_two_others_draw():
    """The unseen-pairs measure asks each style for the emojis it lacks that >= 2 other sets draw."""
    from types import SimpleNamespace

    from model.evaluation.generative import lacking_pairs

    names = ["cat", "cat", "cat", "dog", "dog", "owl", "owl", "owl", "owl", "fox"]
    styles = [0, 1, 2, 0, 3, 0, 1, 2, 3, 1]
    pack = SimpleNamespace(styles=torch.tensor(styles), style_names=["google", "twitter", "fluent3d", "openmoji"])
    out = lacking_pairs(pack, names)
    assert out == {"google": [], "twitter": ["dog"], "fluent3d": ["dog"], "openmoji": ["cat"]}


def test_a_switch_set_on_the_pipeline_instead_of_its_part_fails(tiny_pipe):
    """The parts hold the switches (pipe.gate.distinct, pipe.text_to_image.compose): setting one on
    the pipeline itself would silently change nothing, so it raises."""
    with pytest.raises(AttributeError):
        tiny_pipe.distinct = False
    tiny_pipe.gate.distinct = False  # where it lives
    assert tiny_pipe.gate.distinct is False
