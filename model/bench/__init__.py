"""Speed, cost and load of the model and the app: ``python -m model.bench`` (speed.py; its
report, report.py) times our generator (the latent model's decoder) against a DF-GAN peer (dfgan.py)
and a latent-diffusion decoder peer (ldm_decoder.py) at several batch sizes and variants
(throughput.py), the stages of one request (the retrieval prior's read and sample among them),
prompt -> 4 images through the pipeline, and the app's default call through the pipeline, the
event function and the API with their ratio (default_call.py, app_client.py), with the instruments
of measure.py; ``python -m model.loadtest`` (loadtest.py) runs many concurrent clients against
the app; ``python -m model.bench.disk`` watches its disk use, ``python -m model.bench.encode``
measures the gallery files' encodings."""
from .app_client import PROMPTS, READY, app_generate_args, free_port, start_app
from .default_call import compare_default_call
from .measure import (count_macs, has_text_encoder, matmul_flops, n_params, num_threads, peak_rss_mib, percentiles,
                      proc_rss_mib, time_call)
from .report import speed_markdown
from .speed import TARGETS, BenchConfig, check_targets, main, parse_args, run_bench
from .throughput import throughput, throughput_many

__all__ = ["PROMPTS", "READY", "TARGETS", "BenchConfig", "app_generate_args", "check_targets", "compare_default_call",
           "count_macs", "free_port", "has_text_encoder", "main", "matmul_flops", "n_params", "num_threads",
           "parse_args", "peak_rss_mib", "percentiles", "proc_rss_mib", "run_bench", "speed_markdown", "start_app",
           "throughput", "throughput_many", "time_call"]
