"""What ``python -m model.evaluate`` measures with: its config (one flag per field) and the
protocol's constants (rows, paraphrase templates, distractor counts)."""
from __future__ import annotations

from dataclasses import dataclass

from ..evaluator import DEFAULT_EVALUATOR_DIR, EvaluatorConfig, EvaluatorTrainConfig

PARAPHRASES = ("a picture of a {}", "{} icon", "an image showing {}", "a small drawing of {}",
               "{} symbol", "the {} sticker")  # none of these is a training caption template
ROWS = ("real", "model", "random_init", "retrieval")
DISTRACTORS = 99  # R-precision ranks the true name among 1 + 99 (AttnGAN)
NEAREST = 9  # hard R-precision: among 1 + the 9 other names nearest the prompt's (grinning vs smiling face)

RPREC_KEYS = [f"rprec_{kind}_{split}" for split in ("test", "train") for kind in ("exact", "paraphrase", "nearest")]


@dataclass(kw_only=True)
class EvalConfig:
    model: str = ""  # model folder or Hub repo id; "" = env MODEL_ID, else assets/model
    data: str = "data/emoji/64"  # imagefolder (metadata.jsonl) or pack file: the real images
    out: str = "assets/results"  # results.json, results.md, quality.png
    quick: bool = False  # fewer prompts and images: a few minutes on 2 CPU threads
    evaluator: str = str(DEFAULT_EVALUATOR_DIR)  # evaluator folder; trained there when missing
    retrain_evaluator: bool = False  # train the evaluator again (on --data) and overwrite it
    evaluator_steps: int = EvaluatorTrainConfig.steps  # training steps when (re)training
    evaluator_width: int = EvaluatorConfig.channels[0]  # first-stage channels when (re)training (x2 per stage)
    n_fd: int = 0  # generated (and real query) images per row for FD; 0 = 200 quick / 1000 full
    n_ref: int = 0  # real reference images for FD; 0 = 600 quick / 3000 full
    n_prompts: int = 0  # R-precision prompts per name split; 0 = 24 quick / 150 full
    per_prompt: int = 0  # images per R-precision prompt; 0 = 4 quick / 8 full
    enl0: bool = True  # also FD-ENL0 (the slowest part: 224 px EfficientNet-Lite0)
    bench: bool = True  # also run model.bench (speed and cost) into the same results
    app_url: str = ""  # running app for the bench's API latency (gradio_client), "" = skip
    start_app: bool = False  # the bench launches app.py itself: start time, app RSS, API latency
    device: str = "cpu"  # cpu | cuda | auto
    threads: int = 2  # torch CPU threads
    seed: int = 0  # prompts, noise seeds, the data halves and the distractors
    compare_to: str = ""  # results.json (or its folder) of another model on the same data, prompts and seeds: paired R-precision differences with standard errors in results.md

    def sizes(self) -> dict:
        q = self.quick
        return dict(n_fd=self.n_fd or (200 if q else 1000), n_ref=self.n_ref or (600 if q else 3000),
                    n_prompts=self.n_prompts or (24 if q else 150), per_prompt=self.per_prompt or (4 if q else 8))
