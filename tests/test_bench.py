"""Tests of model.bench: the FLOP counter, the DF-GAN peer, a bench run on a TINY model, and the
load test's bookkeeping (moved here from test_evaluate.py with the bench's move into model/bench/)."""
from __future__ import annotations

import pytest
import torch
from test_evaluate import FakeEncoder
from torch import nn

from model.bench import BenchConfig, count_macs, run_bench, speed_markdown
from model.bench.dfgan import DFGANGenerator
from model.bench.loadtest import classify, summarize


def test_count_macs_of_known_layers():
    assert count_macs(nn.Linear(10, 20), torch.zeros(3, 10)) == 3 * 20 * 10
    assert count_macs(nn.Conv2d(3, 8, 3, padding=1), torch.zeros(2, 3, 5, 5)) == 2 * 8 * 5 * 5 * 3 * 9
    assert count_macs(nn.Conv2d(8, 8, 3, groups=4), torch.zeros(1, 8, 5, 5)) == 8 * 3 * 3 * 2 * 9
    seq = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    assert count_macs(seq, torch.zeros(1, 4)) == 24 + 12


def test_dfgan_peer_size_and_output():
    g = DFGANGenerator(nf=32)
    n = sum(p.numel() for p in g.parameters())
    assert abs(n - 4.87e6) / 4.87e6 < 0.05
    with torch.inference_mode():
        y = g(torch.randn(2, 100), torch.randn(2, 256))
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1
    assert 2 * count_macs(g, torch.randn(1, 100), torch.randn(1, 256)) / 1e9 == pytest.approx(0.89, abs=0.02)


def test_bench_runs_on_a_tiny_model(tiny_model_dir):
    from model.pipeline import Pipeline

    threads = torch.get_num_threads()

    pipe = Pipeline.from_pretrained(str(tiny_model_dir), device="cpu")
    pipe.encoder = FakeEncoder()
    r = run_bench(BenchConfig(batch_sizes="1,2", seconds=0.01, latency_calls=3, matmul_size=256, threads=1), pipe=pipe, log=lambda *a: None)
    assert r["params"]["dfgan_peer"] == 4_868_867
    assert r["gflop_per_image"]["generator"] > 0 and r["matmul_gflops"]["fp32"] > 0
    for who in ("ours", "dfgan_peer"):
        assert r["throughput"][who]["fp32"]["2"] > 0
        assert r["throughput"][who]["channels_last"]["max_abs_diff_vs_fp32"] < 1e-4  # same math
    lat = r["pipeline_latency_4_images"]
    assert lat["calls"] == 3 and 0 < lat["p50_ms"] <= lat["p95_ms"]
    assert r["targets"]["latency_p50_ms"]["met"] in (True, False)
    assert r["targets"]["app_start_s"]["met"] is None
    assert torch.get_num_threads() == threads  # restored
    md = speed_markdown(r)
    assert "| ours | channels_last_bf16 |" in md and "| dfgan_peer | fp32 |" in md


def test_loadtest_classifies_and_summarizes():
    from gradio_client.utils import QueueError

    assert classify(None) == "ok"
    assert classify(QueueError("Queue is full! Please try again.")) == "refused"
    assert classify(RuntimeError("boom")) == "failed"
    recs = [{"outcome": "ok", "seconds": s, "error": None} for s in (0.1, 0.2, 0.3)]
    recs.append({"outcome": "refused", "seconds": 0.01, "error": "QueueError: full"})
    s = summarize(recs, 1.0)
    assert s["ok"] == 3 and s["refused"] == 1 and s["all_answered_or_refused"]
    assert s["latency"]["p50_ms"] == pytest.approx(200.0)
    assert not summarize(recs + [{"outcome": "failed", "seconds": 1, "error": "x"}], 1.0)["all_answered_or_refused"]


def test_load_run_against_a_served_app_measures_memory_after_settling(server):
    """run_load on the tests' own served app (its process is this one): every request answered, and
    the app's memory measured before, after, and again after an idle wait."""
    import os

    from model.bench.loadtest import LoadConfig, run_load

    r = run_load(LoadConfig(url=server.url, pid=os.getpid(), clients=2, requests=2, warmup=False,
                            settle_minutes=0.01), log=lambda *a: None)
    assert (r["requests"], r["ok"], r["failed"]) == (4, 4, 0)
    for key in ("app_rss_before", "app_rss_after", "app_rss_after_settling"):
        assert r[key]["rss_mib"] > 50, key
    assert r["app_rss_after_settling"]["minutes"] == 0.01
