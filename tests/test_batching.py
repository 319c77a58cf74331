"""Dynamic batching of generate calls: concurrent requests are drawn together, each gets its own
result (or its own error), and a request's images do not depend on its batch mates."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from helpers import TINY_NAMES, make_tiny_model
from model.batching import Batcher
from model.hub import ModelInfo
from model.pipeline import Pipeline


class NoEncoder:
    def __call__(self, texts):
        raise AssertionError(f"MiniLM was asked to embed {texts!r}")


def run_threads(fn, args: list) -> list:
    """Call fn(a) for each a in its own thread, all released together -> results or exceptions, in order."""
    out = [None] * len(args)
    go = threading.Barrier(len(args))

    def worker(i, a):
        go.wait()
        try:
            out[i] = fn(a)
        except Exception as e:  # noqa: BLE001
            out[i] = e

    ts = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out


def test_lone_call_runs_at_once_in_a_batch_of_one():
    b = Batcher(lambda items: [x * 2 for x in items], max_batch=8)
    t = time.perf_counter()
    assert b(21) == 42 and time.perf_counter() - t < 0.5
    assert b.batch_sizes == [1]


def burst(waiting: int, max_batch: int, on_idle=None) -> tuple[Batcher, dict]:
    """A "first" call holds the model busy until `waiting` more calls have queued, then all run.
    -> the batcher and {i: result of call i}."""
    started, release, results = threading.Event(), threading.Event(), {}

    def fn(items):
        if items == ["first"]:
            started.set()
            release.wait(10)
        return [f"{x}!" for x in items]

    b = Batcher(fn, max_batch=max_batch, on_idle=on_idle and (lambda: on_idle(b)))
    first = threading.Thread(target=lambda: b("first"))
    first.start()
    assert started.wait(10)
    ts = [threading.Thread(target=lambda i=i: results.__setitem__(i, b(i))) for i in range(waiting)]
    for t in ts:
        t.start()
    deadline = time.time() + 10
    while len(b._pending) < waiting and time.time() < deadline:
        time.sleep(0.01)
    release.set()
    for t in ts + [first]:
        t.join(10)
    return b, results


def test_calls_arriving_while_busy_are_batched_and_get_their_own_results():
    b, results = burst(6, max_batch=4)
    assert results == {i: f"{i}!" for i in range(6)}
    assert b.batch_sizes[0] == 1 and sorted(b.batch_sizes[1:]) == [2, 4], b.batch_sizes  # 6 waiting -> 4 + 2


def test_an_error_entry_reaches_only_its_own_caller():
    def fn(items):
        time.sleep(0.05)
        return [ValueError(f"bad {x}") if x < 0 else x for x in items]

    b = Batcher(fn, max_batch=8)
    res = run_threads(b, [1, -2, 3, -4, 5])
    assert [r for r in res if not isinstance(r, Exception)] == [1, 3, 5]
    assert [str(r) for r in res if isinstance(r, Exception)] == ["bad -2", "bad -4"]


def test_a_failing_batch_fails_its_callers_and_the_batcher_keeps_serving():
    calls = []

    def fn(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return items

    b = Batcher(fn)
    with pytest.raises(RuntimeError, match="boom"):
        b("x")
    assert b("y") == "y"
    with pytest.raises(ValueError):
        Batcher(fn, max_batch=0)


@pytest.fixture
def pipe(tmp_path):
    tiny = make_tiny_model()
    p = Pipeline(model=tiny, info=ModelInfo("tiny", None, tmp_path, "local"), device=torch.device("cpu"),
                 encoder=NoEncoder(), upsampler=None)
    for i, name in enumerate(TINY_NAMES):
        p.stages.set_embedding(name, tiny.prior.cap_emb[i])
    return p


def as_array(g):
    return [np.asarray(s.image, dtype=np.int16) for s in g.images]


def test_a_batch_of_requests_equals_each_request_alone(pipe):
    calls = [dict(prompt="red apple", n=2, seed=0, candidates=6),
             dict(prompt="rocket", n=3, seed=7, style="openmoji", candidates=5, truncation=0.5),
             dict(prompt="red apple", n=1, seed=3, candidates=4, gate=1.0, upscale=False),
             dict(prompt="dog face", n=2, seed=1, style="openmoji", candidates=2)]  # style lacks it
    alone = [pipe.text_to_image.generate(**c) for c in calls]
    together = pipe.text_to_image.generate_batch([req_of(pipe, c) for c in calls])
    for a, t in zip(alone, together):
        assert [(s.seed, s.style, s.kept) for s in a.images] == [(s.seed, s.style, s.kept) for s in t.images]
        assert (a.candidates, a.discarded, str(a.reading)) == (t.candidates, t.discarded, str(t.reading))
        for x, y in zip(as_array(a), as_array(t)):
            assert x.shape == y.shape and np.abs(x - y).max() <= 2  # batch size may change float rounding
    assert [s.image.size for s in together[2].images] == [(16, 16)]  # its own upscale=False


def test_concurrent_generate_calls_share_batches_and_bad_ones_fail_alone(pipe):
    seen = []
    orig = pipe.text_to_image.generate_batch

    def slow_batch(rs):
        seen.append(len(rs))
        time.sleep(0.2)  # keep the model busy, so the other threads queue up
        return orig(rs)

    pipe.text_to_image.generate_batch = slow_batch
    args = [dict(prompt="red apple", n=2, seed=i, candidates=4) for i in range(6)] + [dict(prompt="", n=2)]
    res = run_threads(lambda kw: pipe.text_to_image.generate(**kw), args)
    assert isinstance(res[-1], ValueError) and "empty" in str(res[-1])  # refused before it reaches a batch
    assert all(len(g.images) == 2 for g in res[:-1])
    assert sum(seen) == 6 and max(seen) > 1, seen  # some requests were drawn together
    pipe.text_to_image.generate_batch = orig  # the batcher calls whatever generate_batch is now
    for kw, g in zip(args[:3], res[:3]):
        solo = pipe.text_to_image.generate(**kw)
        assert [s.seed for s in solo.images] == [s.seed for s in g.images]


def req_of(pipe, call):
    """The validated request pipe.text_to_image.generate would batch."""
    got = []
    orig = pipe.text_to_image.generate_batch
    pipe.text_to_image.generate_batch = lambda rs: (got.extend(rs), orig(rs))[1]
    try:
        pipe.text_to_image.generate(**call)
    finally:
        pipe.text_to_image.generate_batch = orig
    return got[0]


def test_on_idle_runs_once_a_burst_is_over():
    """The app trims the heap after a burst: on_idle runs after a batch only when nobody waits."""
    idle = []
    b, results = burst(4, max_batch=2, on_idle=lambda b: idle.append(list(b.batch_sizes)))
    assert len(results) == 4
    assert b.batch_sizes == [1, 2, 2] and idle == [[1, 2, 2]]  # not after the first two batches: others waited
    b2 = Batcher(lambda items: items, on_idle=lambda: 1 / 0)  # a failing housekeeping step loses nothing
    assert b2("x") == "x" and b2("y") == "y"


def test_the_rest_of_the_candidates_is_drawn_only_when_the_first_half_falls_short(tiny_model_dir):
    """16 candidates, 4 shown: a gate every image passes stops after the first 8; one none passes
    draws all 16 (and fills); the shown images of a first round are those the same 8 would give."""
    from model.pipeline import Pipeline

    p = Pipeline.from_pretrained(str(tiny_model_dir), device="cpu", upsampler=None)
    t2i = p.text_to_image
    easy = t2i.generate("rocket", n=4, seed=3, style="google", candidates=16, gate=0.0, upscale=False)
    assert easy.candidates == 8 and easy.discarded == 0
    same = t2i.generate("rocket", n=8, seed=3, style="google", candidates=8, gate=0.0, upscale=False)  # all 8
    assert same.candidates == 8 and [s.seed for s in easy.images] == [s.seed for s in same.images[:4]]
    hard = t2i.generate("rocket", n=4, seed=3, style="google", candidates=16, gate=1.0, upscale=False)
    assert hard.candidates == 16 and hard.discarded == 16 and len(hard.images) == 4
    assert all(not s.kept for s in hard.images)  # filled, and marked


def test_the_second_round_draws_what_the_first_left_short():
    import torch

    from model.outputs import GenerateRequest
    from model.text_to_image import first_round, second_round

    r = GenerateRequest(prompt="x", n=4, candidates=16, seed=0, style=4, truncation=1.0, gate=0.5, fill=True,
                        upscale=False)
    assert first_round(r.n, r.candidates) == 8
    style = torch.arange(16) % 4  # style "any": seed k in style k mod 4
    first = style[:8]
    assert second_round(r, torch.full((8,), 0.9), style, any_style=4) == []  # 8 pass, every style
    assert second_round(r, torch.where(first == 0, 0.9, 0.1), style, any_style=4) == list(range(8, 16))  # 2 pass
    # 6 pass, but no fluent3d (2) among them: only the remaining fluent3d candidates
    assert second_round(r, torch.where(first == 2, 0.1, 0.9), style, any_style=4) == [10, 14]
    r.style = 0  # a named style: any 4 that pass are enough
    assert second_round(r, torch.where(first < 2, 0.9, 0.1), torch.zeros(16, dtype=torch.long), any_style=4) == []
    assert first_round(6, 8) == 6  # never fewer than the n shown
