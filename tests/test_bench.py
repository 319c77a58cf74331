"""Tests of model.bench: the FLOP counter, the DF-GAN and LDM-decoder peers, a bench run on a tiny
model, and the load test's bookkeeping."""
from __future__ import annotations

import pytest
import torch
from test_evaluate import FakeEncoder
from torch import nn

from model.bench import BenchConfig, count_macs, run_bench, speed_markdown
from model.bench.dfgan import DFGANGenerator
from model.bench.ldm_decoder import LDMDecoder
from model.bench.loadtest import classify, cpu_split, summarize
from model.bench.measure import proc_cpu_s
from model.paths import ROOT


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


def test_ldm_peer_output_and_size_near_our_shipped_decoder():
    from model.latent import Decoder, LatentConfig
    from model.paths import DEFAULT_MODEL_DIR

    ours = Decoder(LatentConfig.load(DEFAULT_MODEL_DIR / "config.json"))
    n_ours = sum(p.numel() for p in ours.parameters())
    peer = LDMDecoder()
    n = sum(p.numel() for p in peer.parameters())
    assert n == 3_118_147 and abs(n - n_ours) / n_ours < 0.2, (n, n_ours)
    with torch.inference_mode():
        y = peer(torch.randn(2, 16, 8, 8))  # the shipped latent shape
    assert y.shape == (2, 3, 64, 64) and torch.isfinite(y).all()
    # conv MACs from the hooks; the middle attention's two 64 x 64 x 128 matmuls added by hand
    assert peer.attention_macs(1, 8) == 2 * 64 * 64 * 128
    gflop = 2 * (count_macs(peer, torch.randn(1, 16, 8, 8)) + peer.attention_macs(1, 8)) / 1e9
    assert gflop == pytest.approx(2.43, abs=0.02)
    # the attention block mixes positions: moving one latent position changes far-away pixels
    torch.manual_seed(0)
    z = torch.randn(1, 16, 8, 8)
    z2 = z.clone()
    z2[0, :, 0, 0] += 1
    with torch.inference_mode():
        d = (peer(z2) - peer(z)).abs()
    assert d[0, :, 56:, 56:].max() > 0


def test_bench_runs_on_a_tiny_model(tiny_model_dir):
    from model.pipeline import Pipeline

    threads = torch.get_num_threads()

    pipe = Pipeline.from_pretrained(str(tiny_model_dir), device="cpu")
    pipe.stages.encoder = FakeEncoder()
    r = run_bench(BenchConfig(batch_sizes="1,2", seconds=0.01, latency_calls=3, matmul_size=256, threads=1), pipe=pipe, log=lambda *a: None)
    assert r["params"]["dfgan_peer"] == 4_868_867 and r["params"]["ldm_peer"] == 3_118_147
    assert r["gflop_per_image"]["generator"] > 0 and r["matmul_gflops"]["fp32"] > 0
    assert r["gflop_per_image"]["ldm_peer"] == pytest.approx(2.43, abs=0.02)
    for who in ("ours", "dfgan_peer", "ldm_peer"):
        assert r["throughput"][who]["fp32"]["2"] > 0
        assert r["throughput"][who]["channels_last"]["max_abs_diff_vs_fp32"] < 1e-4  # same math
    lat = r["pipeline_latency_4_images"]
    assert lat["calls"] == 3 and 0 < lat["p50_ms"] <= lat["p95_ms"]
    assert r["targets"]["latency_p50_ms"]["met"] in (True, False)
    assert r["targets"]["app_start_s"]["met"] is None
    assert r["targets"]["throughput_vs_ldm_b16"]["met"] in (True, False)
    assert torch.get_num_threads() == threads  # restored
    md = speed_markdown(r)
    assert "| ours | channels_last_bf16 |" in md and "| dfgan_peer | fp32 |" in md
    assert "| ldm_peer | fp32 |" in md and "| ldm_peer | channels_last_bf16 |" in md
    assert "| throughput_vs_ldm_b16 |" in md and "LDM peer decoder 3,118,147" in md
    # "ours" is the decoder, and the prior's read and sample are timed
    assert r["generator_kind"].startswith("latent decoder")
    assert r["params"]["generator"] == sum(p.numel() for p in pipe.model.decoder.parameters())
    assert r["params"]["text_head"] == 0
    st = r["request_stages_4_images"]
    assert list(st) == ["text_encoding", "prior_read", "prior_sample", "decoder", "gate", "upsampler"]
    assert all(v["calls"] == 3 and v["p50_ms"] > 0 for v in st.values())
    assert "retrieval prior (similarity, per image)" in md and "prior read" in md and "prior sample" in md
    b = r["default_call_flop_bound"]  # the default call: 16 candidates decoded and judged, 4 upscaled
    g = r["gflop_per_image"]
    assert b["gflop"]["decoder"] == pytest.approx(16 * g["generator"]) and b["gflop"]["gate"] == pytest.approx(16 * g["discriminator"])
    assert sum(b["bound_ms"].values()) == pytest.approx(b["total_bound_ms"])
    half = (b["bound_ms"]["decoder"] + b["bound_ms"]["gate"]) / 2  # the first round draws 8 of 16
    assert b["first_round_only_bound_ms"] == pytest.approx(b["total_bound_ms"] - half)
    assert b["precision"] in ("fp32", "bf16") and "the default call's model work at the measured" in md


def test_default_call_is_the_same_work_three_ways(server):
    """The bench's default call: the app's defaults (4 of 16 candidates, the calibrated gate, 256 px)
    through the pipeline, the event function and the API of a served app (gradio_client and plain
    HTTP), with their ratios and the stages of that same call (16 candidates decoded and judged, 4 upscaled)."""
    from model.bench.default_call import call_pipeline, compare_default_call
    from model.bench.report import default_call_lines
    from model.bench.speed import request_stages
    from model.serving.api import default_args

    pipe = server.pipeline
    stages = lambda p, prompt, seed: request_stages(p, prompt, seed, True, n=4, candidates=16)  # noqa: E731
    d = compare_default_call(pipe, server.url, 3, stages, log=lambda *a: None)
    assert d["call"] == {"style": "any", "n": 4, "seed": 0, "random_seed": False, "diversity": 1.0, "candidates": 16,
                         "gate": round(pipe.gate.default, 2), "upscale": True, "other_designs": False}
    assert [d[k]["calls"] for k in ("pipeline", "event", "api", "api_http", "api_rest")] == [3, 3, 3, 3, 3]
    assert d["api_vs_pipeline_p50"] == pytest.approx(d["api"]["p50_ms"] / d["pipeline"]["p50_ms"])
    assert d["api_http_vs_pipeline_p50"] == pytest.approx(d["api_http"]["p50_ms"] / d["pipeline"]["p50_ms"])
    assert d["api_rest_vs_pipeline_p50"] == pytest.approx(d["api_rest"]["p50_ms"] / d["pipeline"]["p50_ms"])
    assert d["event_vs_pipeline_p50"] == pytest.approx(d["event"]["p50_ms"] / d["pipeline"]["p50_ms"])
    assert {"text_encoding", "decoder", "gate", "upsampler", "gallery_files", "sheet"} <= set(d["stages"])
    out = call_pipeline(pipe, default_args(pipe, "red apple", seed=5))
    assert len(out.images) == 4 and out.candidates == 16 and out.gate == round(pipe.gate.default, 2)
    assert out.images[0].image.size == (256, 256)
    md = "\n".join(default_call_lines(d))
    assert "API / pipeline p50 = " in md and "gallery files" in md


def test_started_app_is_waited_for_and_does_the_bench_pipelines_work(monkeypatch):
    """The bench starts the app with its model, thread count and device, and waits until its
    start-up work (the sentence encoder, the examples) is over before timing it."""
    from model.bench.app_client import READY
    from model.bench.speed import BenchConfig, app_env
    from model.serving import server as srv

    assert READY[1] == srv.EXAMPLES_CACHED and READY[0] in (ROOT / "app.py").read_text()
    env = app_env(BenchConfig(model="some/model", threads=3, device="cpu"))
    assert env["OMP_NUM_THREADS"] == "3" and env["MODEL_ID"] == "some/model"
    assert "MODEL_ID" not in app_env(BenchConfig())


def test_loadtest_classifies_and_summarizes():
    from gradio_client.utils import QueueError

    assert classify(None) == "ok"
    assert classify(QueueError("Queue is full! Please try again.")) == "refused"
    assert classify(RuntimeError("boom")) == "failed"
    import httpx

    full = httpx.HTTPStatusError("Server error '503 Service Unavailable' for url 'http://x/gradio_api/call/generate'",
                                 request=httpx.Request("POST", "http://x"), response=httpx.Response(503))
    assert classify(full) == "refused"  # the plain-HTTP client's "queue is full"
    recs = [{"outcome": "ok", "seconds": s, "error": None} for s in (0.1, 0.2, 0.3)]
    recs.append({"outcome": "refused", "seconds": 0.01, "error": "QueueError: full"})
    s = summarize(recs, 1.0)
    assert s["ok"] == 3 and s["refused"] == 1 and s["all_answered_or_refused"]
    assert s["latency"]["p50_ms"] == pytest.approx(200.0)
    assert not summarize(recs + [{"outcome": "failed", "seconds": 1, "error": "x"}], 1.0)["all_answered_or_refused"]


def test_cpu_accounting_counts_this_process_and_splits_the_cores():
    import os
    import time

    t = time.process_time()
    while time.process_time() - t < 0.2:  # burn 0.2 s of CPU in this process
        pass
    a, b = proc_cpu_s(), proc_cpu_s(os.getpid())
    assert a >= 0.2 and abs(a - b) < 0.1  # getrusage and /proc/PID/stat agree
    c = cpu_split((10.0, 2.0), (16.0, 3.0), wall_s=4.0, requests=12)
    assert c == {"load_generator_s": 1.0, "load_generator_cores": 0.25, "app_s": 6.0, "app_cores": 1.5,
                 "app_cpu_ms_per_request": 500.0}
    assert "app_s" not in cpu_split((None, 2.0), (None, 3.0), wall_s=4.0, requests=12)


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
    assert r["cpu"]["app_s"] > 0 and r["cpu"]["app_cpu_ms_per_request"] > 0  # the app served 4 requests
    assert r["cpu"]["connect_s"] >= 0 and r["wall_s"] > 0  # connecting is timed apart from the load


def test_load_run_with_plain_http_clients_against_a_served_app(server):
    import os

    from model.bench.loadtest import LoadConfig, run_load

    r = run_load(LoadConfig(url=server.url, pid=os.getpid(), clients=2, requests=2, warmup=False, client="http"),
                 log=lambda *a: None)
    assert (r["requests"], r["ok"], r["failed"], r["client"]) == (4, 4, 0, "http")
    r = run_load(LoadConfig(url=server.url, pid=os.getpid(), clients=2, requests=2, warmup=False, client="rest"),
                 log=lambda *a: None)
    assert (r["requests"], r["ok"], r["failed"], r["client"]) == (4, 4, 0, "rest")
    assert classify(RuntimeError("/rest/generate answered 503: busy")) == "refused"
    with pytest.raises(ValueError, match="--client must be"):
        run_load(LoadConfig(url=server.url, client="curl"), log=lambda *a: None)


def test_load_levels_run_in_turn_against_a_served_app(server):
    """--levels runs each client count against the same app; each level answers every request."""
    import os

    from model.bench.loadtest import LoadConfig, run_load

    r = run_load(LoadConfig(url=server.url, pid=os.getpid(), levels="1,3", requests=1, warmup=False),
                 log=lambda *a: None)
    assert [lv["clients"] for lv in r["levels"]] == [1, 3]
    assert [(lv["requests"], lv["ok"], lv["failed"]) for lv in r["levels"]] == [(1, 1, 0), (3, 3, 0)]


def test_compare_batches_starts_one_app_per_setting_and_reports_ratios(monkeypatch):
    from model.bench import loadtest

    started = []

    def fake_run(cfg, log=print, app_args=()):
        b = int(app_args[1])
        started.append(app_args)
        return {"levels": [{"clients": c, "answered_per_s": float(c * (2 if b > 1 else 1))} for c in (1, 8)]}

    monkeypatch.setattr(loadtest, "run_load", fake_run)
    out = loadtest.compare_batches(loadtest.LoadConfig(start_app=True, levels="1,8", compare_batch="1,8"))
    assert started == [("--max-batch", "1"), ("--max-batch", "8")]
    assert out["throughput_ratio_vs_first"] == {"1": {"1": 1.0, "8": 1.0}, "8": {"1": 2.0, "8": 2.0}}
    with pytest.raises(SystemExit):
        loadtest.parse_args(["--compare-batch", "1,8"])  # it starts the app itself: needs --start-app


def test_malloc_arenas_can_be_capped_here():
    """The app caps glibc's arenas (model/serving/memory.py); on this Linux both calls reach glibc."""
    from model.serving.memory import limit_malloc_arenas

    assert limit_malloc_arenas(2) is True


def test_the_heap_is_trimmed_once_requests_stop(monkeypatch):
    """The app trims the heap when a burst is over (pipeline.text_to_image.on_idle = memory.IdleTrim): not between
    the requests of a burst (the next one would fault the memory in again), once after it."""
    import time

    from model.batching import Batcher
    from model.serving import memory

    trims = []
    monkeypatch.setattr(memory, "trim", lambda: trims.append(time.monotonic()))
    b = Batcher(lambda items: [x * 2 for x in items], on_idle=memory.IdleTrim(delay=1.0))
    t0 = time.monotonic()
    for i in range(5):  # a burst: one request every 0.1 s
        assert b(i) == 2 * i
        time.sleep(0.1)
    assert trims == []
    deadline = time.monotonic() + 5
    while not trims and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)
    assert len(trims) == 1 and trims[0] - t0 >= 0.4 + 1.0 - 0.1


def test_encoding_measurement_writes_and_sizes_every_format(tmp_path):
    """model/bench/encode.py: every format written, read back and sized; zlib level 0 stores, so it
    is the largest PNG, and level 6 is no larger than level 1."""
    from PIL import Image, ImageDraw

    from model.bench.encode import FORMATS, measure

    images = []
    for i in range(2):  # emoji-like: flat colours, an outline, a gradient
        im = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
        ImageDraw.Draw(im).ellipse((8, 8, 56, 56), fill=(230, 180 - 40 * i, 20), outline=(40, 40, 40), width=3)
        images.append(im)
    r = measure(images, 1, tmp_path)
    assert set(r) == set(FORMATS) and all(v["write_ms"] > 0 and v["kib"] > 0 for v in r.values())
    assert r["png-0"]["kib"] > r["png-1"]["kib"] >= r["png-6"]["kib"]
    assert r["png-1"]["kib"] == r["png-1-2-threads"]["kib"]  # the same files, written on two threads
    assert not list(tmp_path.iterdir())  # nothing left behind
