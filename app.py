"""Gradio web app: text to image, variations and restyling, text edits, latent interpolation and
discriminator scoring. `python app.py [--host 127.0.0.1] [--port 7860] [--share]`; the model: env
MODEL_ID / MODEL_REVISION (a Hub repo or a local folder), else the default in assets/model.

This file lays out the Blocks, one function per tab, and wires each event to a function of
`model.serving.events` (plain Python over the parts of `model.pipeline.Pipeline`, whose tasks check
every bound and raise ValueError; the app shows that as a message and keeps serving)."""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home; set before gradio loads
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":  # before gradio and torch are imported: all their temp files go into one
    from model.serving.tmp import own_temp_dir  # folder of this process's, removed at exit

    TEMP_DIR, STALE_TEMP_DIRS = own_temp_dir()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gradio as gr  # noqa: E402

from model.paths import ASSETS, ROOT  # noqa: E402
from model.pipeline import Pipeline  # noqa: E402
from model.serving import server  # noqa: E402
from model.serving.api import GENERATE_PARAMS, default_args, generate_args  # noqa: E402
from model.serving.memory import IdleTrim, limit_malloc_arenas  # noqa: E402
from model.serving.components import gif_output, image_input, results, sheet_button, sheet_output  # noqa: E402
from model.serving.events import ALTERNATIVES_LABEL, DISPLAY_SIZE, GALLERY_LABEL, NOT_SCORED, header  # noqa: E402,F401
from model.serving.handlers import event_handlers, wire_events  # noqa: E402
from model.serving.rest import add_rest_api  # noqa: E402

log = logging.getLogger("app")

EXAMPLES_FILE = ASSETS / "examples.txt"
CSS_FILE = ASSETS / "style.css"
# where gradio keeps cached example outputs, one sub-folder per model (see examples_cache_dir):
# outside the app folder, which the server never serves from (server.launch_options)
EXAMPLES_CACHE_ROOT = Path(os.environ.get("GRADIO_EXAMPLES_CACHE") or server.user_cache() / "examples")

QUEUE_CONCURRENCY = 1  # per event: torch already uses every core, parallel calls only thrash
# generate calls run up to the pipeline's max_batch at once: they wait inside the pipeline's
# batcher while the model is busy and are drawn together (model/batching.py)
MAX_BATCH = int(os.environ.get("MAX_BATCH", 8))
QUEUE_MAX_SIZE = 32  # waiting requests beyond this are refused with "queue is full"
MAX_FILE_SIZE = "50mb"  # uploads above this are refused by gradio before the app sees them
# gradio deletes the files it served (images, GIFs, sheets, uploads) every 10 minutes once they are
# half an hour old (tests/test_serving_files.py watches it happen at (1, 2)); server.CACHE_BUDGET_MB bounds
# the folder's size in between
DELETE_CACHE = (600, 1800)
# the first tab's defaults after the prompt, in GENERATE_PARAMS order, also used for the cached
# examples; gate None = the model's calibrated threshold (gen_defaults)
GEN_DEFAULTS = generate_args("")[1:]
# what a cached example holds (part of its cache key: a cache written with other outputs, e.g. the
# sheet every call made until 2026-12-07, is not reused)
EXAMPLE_OUTPUTS = ("gallery", "status")
UPSCALE_LABEL = "256 px (super-resolution; off = the model's raw 64 px)"
# a set draws an emoji once: in a named style, seeds otherwise show one design
OTHER_DESIGNS_LABEL = ("Other sets' designs too, redrawn in this style (more variety in one style; "
                       "they keep some of their set's look)")


def gen_defaults(pipeline: Pipeline) -> tuple:
    """GEN_DEFAULTS with the gate the model was calibrated at (model.serving.api.calibrated_gate)."""
    return default_args(pipeline, "")[1:]


def read_examples(path: Path = EXAMPLES_FILE) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def examples_cache_dir(pipeline: Pipeline, prompts: list[str]) -> Path:
    """Cached example outputs belong to one model: key the folder by a hash of the model files
    (so a new model with the same file names gets new examples), the prompts, the defaults and
    the outputs cached."""
    h = hashlib.sha256(f"{prompts}{gen_defaults(pipeline)}{pipeline.stages.device}{EXAMPLE_OUTPUTS}".encode())
    for p in sorted(pipeline.info.folder.iterdir()):
        if p.suffix in (".json", ".safetensors"):
            h.update(p.name.encode() + p.read_bytes())
    h.update(pipeline.stages.upsampler_name.encode())  # the examples are shown at 256 px: the upsampler is part of them
    if pipeline.stages.upsampler is not None:
        for v in pipeline.stages.upsampler.state_dict().values():
            h.update(v.detach().float().cpu().numpy().tobytes())
    return EXAMPLES_CACHE_ROOT / h.hexdigest()[:16]


# --- the Blocks ---

def text_to_image_tab(lim, styles: list[str], defaults: tuple, prompts: list[str], example) -> SimpleNamespace:
    """The first tab's components, built inside its gr.Tab (cached examples drawn by `example`)."""
    style0, n0, seed0, random0, div0, cand0, gate0, up0, other0 = defaults
    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox(label="Prompt", placeholder="e.g. red apple", max_lines=2,
                                value="grinning face")
            with gr.Row():
                style = gr.Dropdown(styles, value=style0, label="Style")
                n = gr.Slider(1, lim.max_images, value=n0, step=1, label="Number of images")
            with gr.Row():
                seed = gr.Number(value=seed0, precision=0, label="Seed (-1 = random)")
                random_seed = gr.Checkbox(value=random0, label="Random seed")
            diversity = gr.Slider(0, lim.max_truncation, value=div0, step=0.05,
                                  label="Diversity (0 = the best reading, no noise)")
            upscale_g = gr.Checkbox(value=up0, label=UPSCALE_LABEL)
            other_designs = gr.Checkbox(value=other0, label=OTHER_DESIGNS_LABEL)
            with gr.Accordion("Discriminator gate", open=True):
                candidates = gr.Slider(1, lim.max_candidates, value=cand0, step=1,
                                       label="Candidates, at most (half are drawn first)")
                gate = gr.Slider(0, 1, value=gate0, step=0.01,
                                 label="Gate: discard candidates with P(real) below")
            run = gr.Button("Generate", variant="primary")
        with gr.Column(scale=3):
            status = gr.Markdown("Press Generate: what the prompt was read as and how many "
                                 "candidates passed the gate will show here.", elem_id="gen-status")
            did_you_mean = gr.Radio([], label=ALTERNATIVES_LABEL, visible=False, elem_id="did-you-mean")
            gallery = results(GALLERY_LABEL, "gallery")
            with gr.Row():
                to_vary = gr.Button("Vary the first image", size="sm")
                to_edit = gr.Button("Edit the first image", size="sm")
                to_score = gr.Button("Send the first image to scoring", size="sm")
                make_sheet = sheet_button("make-sheet")
            sheet, result = sheet_output("sheet")
    components = dict(prompt=prompt, style=style, n=n, seed=seed, random_seed=random_seed,
                      diversity=diversity, candidates=candidates, gate=gate, upscale=upscale_g,
                      other_designs=other_designs)
    gen_inputs = [components[k] for k in GENERATE_PARAMS]  # the API's argument order
    examples = gr.Examples([[p, *defaults] for p in prompts], inputs=gen_inputs, outputs=[gallery, status],
                           fn=example, cache_examples=True, cache_mode="eager", visible_columns=[0],
                           label="Examples (cached)", elem_id="examples")

    return SimpleNamespace(prompt=prompt, style=style, n=n, seed=seed, random_seed=random_seed,
                           diversity=diversity, upscale_g=upscale_g, candidates=candidates, gate=gate,
                           run=run, status=status, did_you_mean=did_you_mean, gallery=gallery, sheet=sheet,
                           make_sheet=make_sheet, result=result, examples=examples,
                           to_vary=to_vary, to_edit=to_edit, to_score=to_score, gen_inputs=gen_inputs)


def variations_tab(lim, styles: list[str], gate0: float) -> SimpleNamespace:
    """Variations & restyle."""
    with gr.Row():
        with gr.Column(scale=2):
            upload_v = image_input("Image (an emoji, or any picture; transparency goes on white)", "upload-v")
            with gr.Row():
                n_v = gr.Slider(1, lim.max_images, value=4, step=1, label="Number of variations")
                seed_v = gr.Number(value=0, precision=0, label="Seed (-1 = random)")
            strength_v = gr.Slider(0, lim.max_truncation, value=1.0, step=0.05,
                                   label="How different (0 = the image as the model redraws it)")
            style_v = gr.Dropdown(styles, value="any", label="Style (any = the one it looks like)")
            with gr.Accordion("Discriminator gate", open=False):
                cand_v = gr.Slider(1, lim.max_candidates, value=8, step=1, label="Candidates drawn")
                gate_v = gr.Slider(0, 1, value=gate0, step=0.01,
                                   label="Gate: discard candidates with P(real) below")
            upscale_v = gr.Checkbox(value=True, label=UPSCALE_LABEL)
            with gr.Row():
                run_v = gr.Button("Variations", variant="primary")
                run_r = gr.Button("Restyle in every style")
        with gr.Column(scale=3):
            gallery_v = results("Variations / the image in each style", "gallery-v")
            status_v = gr.Markdown(elem_id="var-status")
            make_sheet_v = sheet_button("make-sheet-v")
            sheet_v, result_v = sheet_output("sheet-v")

    return SimpleNamespace(upload_v=upload_v, n_v=n_v, seed_v=seed_v, strength_v=strength_v,
                           style_v=style_v, cand_v=cand_v, gate_v=gate_v, upscale_v=upscale_v, run_v=run_v,
                           run_r=run_r, gallery_v=gallery_v, status_v=status_v, sheet_v=sheet_v,
                           make_sheet_v=make_sheet_v, result_v=result_v)


def edit_tab(lim, styles: list[str]) -> SimpleNamespace:
    """Text edit."""
    gr.Markdown("\"Make it ...\": the image's latent moves by the difference between what the prior "
                "draws for the new prompt and for what the image is (DALL·E 2's text diffs).")
    with gr.Row():
        with gr.Column(scale=2):
            upload_e = image_input("Image to edit", "upload-e")
            prompt_e = gr.Textbox(label="Make it ... (the new prompt)", value="crying face", max_lines=2)
            source_e = gr.Textbox(label="What the image is (empty = what it looks like to the model)",
                                  value="", max_lines=2)
            with gr.Row():
                strength_e = gr.Slider(0, lim.max_truncation, value=1.0, step=0.05, label="Strength")
                steps_e = gr.Slider(2, lim.max_steps, value=6, step=1, label="Frames")
            style_e = gr.Dropdown(styles, value="any", label="Style (any = the one it looks like)")
            upscale_e = gr.Checkbox(value=True, label=UPSCALE_LABEL)
            run_e = gr.Button("Edit", variant="primary")
        with gr.Column(scale=3):
            frames_e = results("From the image (strength 0) to the edit", "frames-e", columns=6)
            status_e = gr.Markdown(elem_id="edit-status")
            gif_e = gif_output("gif-e")

    return SimpleNamespace(upload_e=upload_e, prompt_e=prompt_e, source_e=source_e, strength_e=strength_e,
                           steps_e=steps_e, style_e=style_e, upscale_e=upscale_e, run_e=run_e,
                           frames_e=frames_e, status_e=status_e, gif_e=gif_e)


def interpolation_tab(lim, styles: list[str]) -> SimpleNamespace:
    """Latent interpolation, between prompts and seeds or between two images."""
    with gr.Tabs():
        with gr.Tab("Between prompts and seeds"):
            with gr.Row():
                prompt_a = gr.Textbox(label="First prompt", value="grinning face", max_lines=2)
                prompt_b = gr.Textbox(label="Second prompt (empty = the same)", value="red heart",
                                      max_lines=2)
            with gr.Row():
                seed_a = gr.Number(value=0, precision=0, label="First seed (-1 = random)")
                seed_b = gr.Number(value=1, precision=0, label="Second seed (empty = the same)")
                steps = gr.Slider(2, lim.max_steps, value=8, step=1, label="Steps")
                style_i = gr.Dropdown(styles, value="any", label="Style")
                diversity_i = gr.Slider(0, lim.max_truncation, value=1.0, step=0.05, label="Diversity")
            upscale_i = gr.Checkbox(value=True, label=UPSCALE_LABEL)
            run_i = gr.Button("Interpolate", variant="primary")
        with gr.Tab("Between two images"):
            with gr.Row():
                image_a = image_input("First image", "image-a")
                image_b = image_input("Second image", "image-b")
            with gr.Row():
                steps_ii = gr.Slider(2, lim.max_steps, value=8, step=1, label="Steps")
                style_ii = gr.Dropdown(styles, value="any", label="Style (any = the first image's)")
                upscale_ii = gr.Checkbox(value=True, label=UPSCALE_LABEL)
            run_ii = gr.Button("Interpolate the images", variant="primary")
    frames = results("Frames", "frames", columns=8)
    gif = gif_output("gif")

    return SimpleNamespace(prompt_a=prompt_a, prompt_b=prompt_b, seed_a=seed_a, seed_b=seed_b, steps=steps,
                           style_i=style_i, diversity_i=diversity_i, upscale_i=upscale_i, run_i=run_i,
                           image_a=image_a, image_b=image_b, steps_ii=steps_ii, style_ii=style_ii,
                           upscale_ii=upscale_ii, run_ii=run_ii, frames=frames, gif=gif)


def scoring_tab(styles: list[str]) -> SimpleNamespace:
    """Discriminator scoring."""
    with gr.Row():
        with gr.Column():
            upload = image_input("Image (any size; transparency goes on white)", "upload")
            prompt_s = gr.Textbox(label="Prompt (optional, for the text-match score)", value="", max_lines=2)
            style_s = gr.Dropdown(styles, value="any", label="Style")
            run_s = gr.Button("Score", variant="primary")
        with gr.Column():
            # hidden until a score fills them: gradio's number box draws an empty value
            # as 0, a score nobody computed; the verdict line says so meanwhile
            realism = gr.Number(None, label="Realism: P(real)", precision=4, elem_id="realism",
                                interactive=False, visible=False)
            match = gr.Number(None, label="Text match: P(fits the prompt)", precision=4,
                              elem_id="match", interactive=False, visible=False)
            verdict = gr.Markdown(NOT_SCORED, label="Verdict", elem_id="verdict")
            heat = gr.Image(label="Patch map (green = looks real, red = looks fake)",
                            format="png", elem_classes="pixelated", elem_id="heatmap")

    return SimpleNamespace(upload=upload, prompt_s=prompt_s, style_s=style_s, run_s=run_s, realism=realism,
                           match=match, verdict=verdict, heat=heat)


def build_demo(pipeline: Pipeline, *, examples_cache: str | Path | None = None) -> gr.Blocks:
    """The whole UI over one loaded pipeline (tests pass a tiny one). Examples are cached in
    `examples_cache` (default: ~/.cache/emoji-t2i/examples/<model hash>, see EXAMPLES_CACHE_ROOT)."""
    lim = pipeline.checks.limits
    styles = pipeline.checks.styles
    prompts = read_examples()
    # gradio reads this when gr.Examples is built and when it serves the cached files
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(examples_cache or examples_cache_dir(pipeline, prompts))
    defaults = gen_defaults(pipeline)
    gate0 = defaults[GENERATE_PARAMS.index("gate") - 1]
    h = event_handlers(pipeline)
    with gr.Blocks(title="Emoji text-to-image", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("# Emoji text-to-image\nA prior reads your prompt, an image VAE's decoder draws it in "
                    "the style you pick, a discriminator's verdict decides which images you see, and an "
                    "upsampler takes them from 64 to 256 px.")
        gr.Markdown(header(pipeline), elem_id="header")
        with gr.Tabs() as tabs:
            with gr.Tab("Text to image", id="generate"):
                tg = text_to_image_tab(lim, styles, defaults, prompts, h.example)
            with gr.Tab("Variations & restyle", id="variations"):
                tv = variations_tab(lim, styles, gate0)
            with gr.Tab("Text edit", id="edit"):
                te = edit_tab(lim, styles)
            with gr.Tab("Latent interpolation", id="interpolate"):
                ti = interpolation_tab(lim, styles)
            with gr.Tab("Discriminator scoring", id="score"):
                ts = scoring_tab(styles)
        wire_events(pipeline, h, tg, tv, te, ti, ts, tabs)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


def launch(demo: gr.Blocks, pipeline: Pipeline, **options) -> None:
    """Start serving (returns at once): gradio's app and API, and the one-request REST route
    (model.serving.rest: POST /rest/generate), which refuses calls beyond as many as gradio's queue
    holds plus those being drawn."""
    demo.launch(**options, prevent_thread_lock=True)
    add_rest_api(demo, pipeline, max_waiting=QUEUE_MAX_SIZE + pipeline.text_to_image.max_batch)


def launch_options(host: str | None = None, port: int | None = None, share: bool = False) -> dict:
    """Keyword arguments of demo.launch(), shared by main() and the tests (gradio 6 takes
    theme and css here, not in Blocks()); server.launch_options adds the app folder as a blocked
    path and a 404 for unknown API names."""
    return dict(server_name=host, server_port=port, share=share, theme=gr.themes.Soft(),
                css_paths=[CSS_FILE], max_file_size=MAX_FILE_SIZE, **server.launch_options(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Serve the emoji text-to-image demo "
                                "(model from env MODEL_ID / MODEL_REVISION, else assets/model).")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to listen on; 0.0.0.0 for every interface (default: "
                        "$GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                   help="port to listen on (default: $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--share", action="store_true", default=os.environ.get("SHARE", "") == "1",
                   help="also ask for a temporary public gradio.live link (env SHARE=1 does the same); "
                        "without network the app says so and keeps serving locally")
    p.add_argument("--max-batch", type=int, default=MAX_BATCH,
                   help="generate requests drawn together when they arrive while the model is busy; 1 = one "
                        "at a time (default: $MAX_BATCH or 8)")
    args = p.parse_args(argv)
    if args.max_batch < 1:
        p.error("--max-batch must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for d in STALE_TEMP_DIRS:
        log.info("removed %s (left by an app process that no longer runs)", d)
    server.prepare_process()  # gradio's cache in our temp folder (removed at exit, SIGTERM too), under a budget
    t0 = time.perf_counter()
    limit_malloc_arenas(2)  # before the server's threads: bounds what the load leaves behind (model/serving/memory.py)
    pipeline = Pipeline.from_pretrained()
    pipeline.text_to_image.max_batch = args.max_batch
    # once requests stop for 10 s, freed heap memory goes back to the system
    pipeline.text_to_image.on_idle = IdleTrim()
    info = pipeline.info
    log.info("model %s (revision %s, %s, %s) on %s loaded in %.1f s", info.model_id, info.revision,
             info.source, info.folder, pipeline.stages.device, time.perf_counter() - t0)
    cache = examples_cache_dir(pipeline, read_examples())
    server.drop_unfinished_cache(cache)  # a start that was killed while caching left a partial one
    demo = build_demo(pipeline, examples_cache=cache)
    launch(demo, pipeline, **launch_options(args.host, args.port, args.share))
    server.mark_cache_when_finished(cache, len(read_examples()))
    t0 = time.perf_counter()
    pipeline.stages.embed(["warm up"])  # load the sentence encoder now, not in the first request
    log.info("text encoder ready in %.1f s", time.perf_counter() - t0)
    demo.block_thread()


if __name__ == "__main__":
    main()
