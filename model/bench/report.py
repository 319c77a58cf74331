"""bench.md: the speed and cost section of the results."""


def speed_markdown(r: dict) -> str:
    bss = [k for k in r["throughput"]["ours"]["fp32"] if k.isdigit()]
    lines = [f"## Speed and cost ({r['device']}, {r['threads']} threads, {r['cpu']}"
             + (f", {r['gpu']}" if r.get("gpu") else "") + ")", "",
             f"Load average (1 min) {r['loadavg_1m_at_start']:.1f} at the start, {r['loadavg_1m_at_end']:.1f} at the "
             f"end, on {r['cpu_count']} CPUs: other processes slow every number here.", "",
             "Throughput: images/s of the fastest timed call at each batch size (the median call is in bench.json).", "",
             "| generator | variant | " + " | ".join(f"images/s @ {b}" for b in bss)
             + " | % of matmul peak | mean / max abs diff vs fp32 |", "|---" * (len(bss) + 4) + "|"]
    for who in ("ours", "dfgan_peer", "ldm_peer"):
        for var, row in r["throughput"].get(who, {}).items():
            if isinstance(row, dict):
                lines.append(f"| {who} | {var} | " + " | ".join(f"{row[b]:.0f}" for b in bss)
                             + f" | {row['pct_of_matmul_peak']:.1f} | {row['mean_abs_diff_vs_fp32']:.2g} / "
                             f"{row['max_abs_diff_vs_fp32']:.2g} |")
    p, g = r["params"], r["gflop_per_image"]
    lat = r["pipeline_latency_4_images"]
    latent = r.get("generator_kind", "").startswith("latent")
    head = "retrieval prior (similarity, per image)" if latent else "text head"
    lines += ["", f"- ours: {r.get('generator_kind', 'generator')}; peers with random weights, timed only: "
              "DF-GAN generator (dfgan.py), VQGAN / latent-diffusion decoder from an 8x8x16 latent (ldm_decoder.py)",
              f"- parameters: generator {p['generator']:,}, text head {p['text_head']:,}, discriminator "
              f"{p['discriminator']:,}, MiniLM {p['minilm']:,} (frozen); DF-GAN peer generator {p['dfgan_peer']:,}"
              + (f"; LDM peer decoder {p['ldm_peer']:,} ({p['ldm_peer'] / p['generator']:.2f}x ours)"
                 if "ldm_peer" in p else ""),
              f"- GFLOP per image (2 x conv/linear MACs): generator {g['generator']:.3f}, {head} {g['text_head']:.4f}, "
              f"discriminator {g['discriminator']:.3f}, DF-GAN peer {g['dfgan_peer']:.3f}"
              + (f", LDM peer {g['ldm_peer']:.3f} (attention matmuls included)" if "ldm_peer" in g else "")
              + (f"; MiniLM {g['minilm_per_prompt']:.3f} per prompt" if "minilm_per_prompt" in g else ""),
              "- measured matmul GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in r["matmul_gflops"].items()),
              f"- fastest variant at the largest batch: ours {r['throughput']['ours']['fastest_at_largest_batch']}, "
              f"DF-GAN peer {r['throughput']['dfgan_peer']['fastest_at_largest_batch']}"
              + (f", LDM peer {r['throughput']['ldm_peer']['fastest_at_largest_batch']}"
                 if "ldm_peer" in r["throughput"] else ""),
              f"- prompt -> 4 images through the pipeline: p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms "
              f"({lat['calls']} calls, text encoding {lat['text_encoding']}; first call {lat['first_call_ms']:.0f} ms); "
              f"one request is {lat['gflop_per_request']:.2f} GFLOP, so even at the measured matmul rate it needs "
              f">= {lat['flop_bound_ms']:.0f} ms"]
    if "default_call_flop_bound" in r:
        lines.append(flop_bound_line(r["default_call_flop_bound"]))
    if "pipeline_latency_4_images_256" in r:
        l2 = r["pipeline_latency_4_images_256"]
        lines.append(f"- the same at 256 px (the app's default: {l2['upsampler']}): p50 {l2['p50_ms']:.1f} ms, "
                     f"p95 {l2['p95_ms']:.1f} ms, {l2['ratio_p50_vs_raw']:.1f}x the 64-px p50 in the same run")
    if "request_stages_4_images" in r:
        st = r["request_stages_4_images"]
        lines.append("- one request's stages, each timed alone (p50, ms): "
                     + ", ".join(f"{k.replace('_', ' ')} {v['p50_ms']:.2f}" for k, v in st.items())
                     + f"; without the upsampler they sum to {sum(v['p50_ms'] for k, v in st.items() if k != 'upsampler'):.1f}")
    if "app" in r:
        a = r["app"]
        if "start_s" in a:
            lines.append(f"- app start: answers HTTP after {a['start_s']:.1f} s, ready (sentence encoder loaded, "
                         f"examples cached) after {a['ready_s']:.1f} s, first generate answered after "
                         f"{a['first_answer_s']:.1f} s; app RSS {a['rss_after_start']['rss_mib']:.0f} MiB after start, "
                         f"{a['rss_after_calls']['rss_mib']:.0f} MiB (peak {a['rss_after_calls']['peak_rss_mib']:.0f}) "
                         "after the calls")
        if "default_call" in a:
            lines += default_call_lines(a["default_call"])
        elif "skipped" in a:
            lines.append(f"- the app: skipped ({a['skipped']})")
    lines.append(f"- peak RSS of this process: {r['peak_rss_mib']:.0f} MiB")
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for k, t in r["targets"].items():
        v = "not measured" if t["value"] is None else f"{t['value']:.3g}"
        lines.append(f"| {k} | {v} | {t['goal']} | {'–' if t['met'] is None else 'yes' if t['met'] else 'NO'} |")
    lines.append("| failed requests under load | see `python -m model.loadtest` | 0 | – |")
    return "\n".join(lines) + "\n"


def default_call_lines(d: dict) -> list[str]:
    """The default /generate call through the pipeline, the event function and the API, and its stages."""
    call = ", ".join(f"{k} {v}" for k, v in d["call"].items())
    rows = [("TextToImage.generate", "pipeline"), ("the event function (+ gallery files)", "event"),
            ("the API (gradio_client, a started app)", "api"), ("the same over plain HTTP", "api_http"),
            ("the app's REST route (one request)", "api_rest")]
    rows = [(name, k) for name, k in rows if k in d]  # a bench run before the REST route has no such row
    out = [f"- the app's default /generate call ({call}; {d['prompts']}), interleaved call by call "
           f"({d['pipeline']['calls']} each), p50 / p95 ms: "
           + "; ".join(f"{name} {d[k]['p50_ms']:.1f} / {d[k]['p95_ms']:.1f}" for name, k in rows)
           + f". **API / pipeline p50 = {d['api_vs_pipeline_p50']:.2f}** (plain HTTP / pipeline "
           f"{d['api_http_vs_pipeline_p50']:.2f}, REST route / pipeline {d.get('api_rest_vs_pipeline_p50', float('nan')):.2f}, "
           f"event / pipeline {d['event_vs_pipeline_p50']:.2f}); the app's "
           f"first call {d['first_api_call_ms']:.0f} ms"]
    st = d.get("stages", {})
    if st:
        out.append("- that call's stages, each timed alone (p50, ms): "
                   + ", ".join(f"{k.replace('_', ' ')} {v['p50_ms']:.2f}" for k, v in st.items())
                   + " (the sheet: built only when asked for)")
    return out


def flop_bound_line(b: dict) -> str:
    """The default call's model stages at the measured matmul rate (their lower bound)."""
    return (f"- the default call's model work at the measured {b['precision']} matmul rate "
            f"({b['matmul_gflops']:.0f} GFLOP/s): " + ", ".join(
                f"{k.replace('_', ' ')} {b['gflop'][k]:.2f} GFLOP >= {v:.1f} ms" for k, v in b["bound_ms"].items())
            + f"; together >= {b['total_bound_ms']:.0f} ms, or >= {b['first_round_only_bound_ms']:.0f} ms when the "
              "first half of the candidates is enough")
