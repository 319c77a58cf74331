"""The app's event functions: plain Python over `model.pipeline.Pipeline`, one per UI event
(app.py lays out the Blocks and wires each event to one of these). The pipeline checks every
bound and raises ValueError; `user_errors` turns that into a `gr.Error` with the same message,
so a bad request gets a clear answer and the app keeps serving."""
from __future__ import annotations

import functools
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
from PIL import Image

from .pipeline import Generation, Pipeline, Scored
from .sheet import PNG_LEVEL, contact_sheet, frames_to_gif

DISPLAY_SIZE = 256  # the super-resolution stage's output; raw 64-px images are shown enlarged by nearest neighbour
CAPTION_RE = re.compile(r"^(?P<style>\w+) · seed (?P<seed>\d+)")


@contextmanager
def user_errors():
    """The pipeline's ValueError (bad input) becomes a message shown to the user or API caller."""
    try:
        yield
    except ValueError as e:
        raise gr.Error(str(e), print_exception=False) from e


def upscale(image: Image.Image, size: int = DISPLAY_SIZE) -> Image.Image:
    """Display size: a 256-px image as it is, a raw 64-px one enlarged by nearest neighbour."""
    return image if image.size == (size, size) else image.resize((size, size), Image.NEAREST)


def shown(image: Image.Image) -> str:
    """A gallery image as a PNG file written at zlib level 1 (gradio would encode a PIL image at
    level 6 itself: 4x the time, and that was a third of a request under load)."""
    path = new_file_path(".png")
    upscale(image).save(path, compress_level=PNG_LEVEL)
    return path


def caption(s: Scored) -> str:
    text = f"{s.style} · seed {s.seed} · realism {s.realism:.2f} · match {s.match:.2f}"
    return text if s.kept else text + " · below the gate"


def summary(out: Generation, gate: float | None = None) -> str:
    gate = out.gate if gate is None else float(gate)
    below = sum(not s.kept for s in out.images)
    text = ""
    if out.reading is not None:
        text += f"Read the prompt as: {out.reading}.  \n"
    text += (f"Drew {out.candidates} candidates; {out.discarded} judged fake "
             f"(realism < {gate:.2f}) and discarded.")
    if below == len(out.images):
        text += " **None passed the gate**: all shown are the best of the discarded."
    elif below:
        text += f" Too few passed the gate: the last {below} shown are the best of the discarded."
    return text


def result_sheet(pipeline: Pipeline, images: list[Scored], **metadata) -> str:
    """A PNG sheet of the shown images (256 px each), with what reproduces them in its metadata."""
    meta = {**metadata, "seeds": [s.seed for s in images], "styles": [s.style for s in images],
            "model": str(pipeline.info.model_id), "revision": pipeline.info.revision or "",
            "upsampler": pipeline.upsampler_name}
    return str(contact_sheet([s.image for s in images], [caption(s) for s in images], meta,
                             new_file_path(".png")))


def generate_images(pipeline: Pipeline, prompt: str, style: str, n: int, seed: int | None,
                    random_seed: bool, diversity: float, candidates: int, gate: float, upscale_: bool = True):
    """-> (gallery [(image, caption)], summary line, path of the PNG sheet)."""
    with user_errors():
        out = pipeline.generate(prompt, n=n, seed=None if random_seed else seed, style=style,
                                truncation=diversity, candidates=candidates, gate=gate, upscale=upscale_)
    sheet = result_sheet(pipeline, out.images, prompt=" ".join(prompt.split()), style=style, diversity=diversity,
                         candidates=candidates, gate=out.gate, upscale=upscale_) if out.images else None
    return [(shown(s.image), caption(s)) for s in out.images], summary(out), sheet


ALTERNATIVE_MIN = 0.02  # other readings at least this likely are offered instead
MAX_ALTERNATIVES = 4
ALTERNATIVES_LABEL = "Not what you meant? Draw one of the prompt's other readings"


def alternatives(pipeline: Pipeline, prompt: str | None) -> list[str]:
    """The prior's other readings of a prompt ("a spaceship blasting off" read as collision 0.81:
    rocket, bomb, ...), at least ALTERNATIVE_MIN likely, best first: the emoji names the app
    offers to draw instead when the first reading was not what the user meant. [] for a
    confident reading, a model without a prior, or a prompt the pipeline refuses (generate
    reports that one)."""
    try:
        rd = pipeline.read(prompt)
    except ValueError:
        return []
    return [n for n, w in zip(rd.names[1:], rd.weights[1:]) if w >= ALTERNATIVE_MIN][:MAX_ALTERNATIVES]


def offer_alternatives(pipeline: Pipeline, prompt: str | None):
    """The "Not what you meant?" choices for a prompt, as a component update (hidden when none)."""
    names = alternatives(pipeline, prompt)
    return gr.Radio(choices=names, value=None, visible=bool(names), label=ALTERNATIVES_LABEL)


def pick_alternative(pipeline: Pipeline, name) -> str:
    """A picked reading -> the prompt that draws it (its emoji name); the choice list lives in the
    browser, so the value is checked here against the prior's names."""
    if not isinstance(name, str) or name not in pipeline.model.prior.names:
        raise gr.Error("Pick one of the listed readings.", print_exception=False)
    return name


# the gallery's label is fixed (an API caller gets the images, not a component update), so it
# points at the summary, which stands above the gallery and says whether any image passed
GALLERY_LABEL = "Images, best first (the line above says which passed the gate; click one to reuse its seed)"


def controls_from_caption(caption_text: str | None):
    """A gallery caption ("twitter · seed 5 · ...") -> (style, seed, random seed off), the values
    that put the controls back to that one image; raises gr.Error on anything else."""
    m = CAPTION_RE.match(caption_text or "")
    if not m:
        raise gr.Error("That image has no seed to reuse (pick an image from a generated result).",
                       print_exception=False)
    return m.group("style"), int(m.group("seed")), False


def gif_of(frames: list[Image.Image]) -> str:
    return str(frames_to_gif(frames, new_gif_path(), size=DISPLAY_SIZE))


def frame_gallery(frames: list[Image.Image], labels: list[str] | None = None):
    labels = labels or [f"{i + 1}/{len(frames)}" for i in range(len(frames))]
    return [(upscale(f), lab) for f, lab in zip(frames, labels)]


def interpolate_frames(pipeline: Pipeline, prompt_a: str, prompt_b: str | None, seed_a: int | None,
                       seed_b: int | None, steps: int, style: str, diversity: float, upscale_: bool = True):
    """-> (gallery of frames, path of an animated GIF)."""
    with user_errors():
        frames = pipeline.interpolate(prompt_a, prompt_b, steps=steps, seed_a=seed_a, seed_b=seed_b,
                                      style=style, truncation=diversity, upscale=upscale_)
    return frame_gallery(frames), gif_of(frames)


def upload_path(image):
    """gradio's raw upload record {"path": ...} (preprocess=False) -> its path; None stays None."""
    return image.get("path") if isinstance(image, dict) else image


def need_image(image, what: str = "an image"):
    image = upload_path(image)
    if image is None or image == "":
        raise gr.Error(f"Upload {what} first (or send one from the text-to-image tab).", print_exception=False)
    return image


def interpolate_uploads(pipeline: Pipeline, image_a, image_b, steps: int, style: str, upscale_: bool = True):
    """Two images -> (gallery of frames, GIF path)."""
    a, b = need_image(image_a, "the first image"), need_image(image_b, "the second image")
    with user_errors():
        frames = pipeline.interpolate_images(a, b, steps=steps, style=style, upscale=upscale_)
    return frame_gallery(frames), gif_of(frames)


def vary_upload(pipeline: Pipeline, image, n: int, seed: int | None, strength: float, style: str,
                candidates: int, gate: float, upscale_: bool = True):
    """-> (gallery, summary, PNG sheet path)."""
    image = need_image(image)
    with user_errors():
        out, looks = pipeline.variations(image, n=n, seed=seed, strength=strength, style=style,
                                         candidates=candidates, gate=gate, upscale=upscale_)
    text = f"The image looks like: {looks}.  \n" + summary(out).split("  \n")[-1]
    sheet = result_sheet(pipeline, out.images, task="variations", looks_like=str(looks), strength=strength,
                         style=style, gate=out.gate, upscale=upscale_)
    return [(shown(s.image), caption(s)) for s in out.images], text, sheet


def restyle_upload(pipeline: Pipeline, image, upscale_: bool = True):
    """-> (gallery: the image in every style, summary, PNG sheet path)."""
    image = need_image(image)
    with user_errors():
        images, looks = pipeline.restyle(image, upscale=upscale_)
    text = (f"The image looks like: {looks}. Drawn in each of the {len(images)} styles "
            f"(realism against the gate {pipeline.default_gate:.2f}).")
    sheet = result_sheet(pipeline, images, task="restyle", looks_like=str(looks), upscale=upscale_)
    return [(shown(s.image), caption(s)) for s in images], text, sheet


def edit_upload(pipeline: Pipeline, image, prompt: str, source: str | None, strength: float, steps: int,
                style: str, upscale_: bool = True):
    """Text edit: -> (gallery of frames, GIF path, summary)."""
    image = need_image(image)
    with user_errors():
        frames, used, looks = pipeline.edit(image, prompt, source=source, strength=strength, steps=steps,
                                            style=style, upscale=upscale_)
    strengths = [strength * i / (len(frames) - 1) for i in range(len(frames))]
    text = (f"The image looks like: {looks}. Moved from \"{used}\" toward \"{' '.join(prompt.split())}\" "
            f"(strength 0 to {strength:g}).")
    return frame_gallery(frames, [f"strength {s:.2f}" for s in strengths]), gif_of(frames), text


def score_upload(pipeline: Pipeline, image: str | dict | None, prompt: str | None, style: str):
    """image: a file path, or gradio's raw upload record {"path": ...} -> (realism, match or None,
    heatmap overlay, verdict line)."""
    if isinstance(image, dict):
        image = image.get("path")
    with user_errors():
        r = pipeline.score(image, prompt=prompt, style=style)
    verdict = f"Judged **{'real' if r.realism >= 0.5 else 'fake'}** (P(real) = {r.realism:.3f})"
    if r.match is not None:
        verdict += f"; matches the prompt with P = {r.match:.3f}."
    else:
        verdict += "; give a prompt to get a text-match score."
    return round(r.realism, 4), None if r.match is None else round(r.match, 4), r.heatmap, verdict


NOT_SCORED = "Not scored yet: upload an image (or send one from the text-to-image tab) and press Score."


def score_boxes(realism: float | None, match: float | None):
    """The realism and text-match boxes as the page shows them: each one visible only when it holds
    a computed score (an empty number box reads 0 in the browser; no prompt, no text-match box)."""
    return gr.Number(value=realism, visible=realism is not None), gr.Number(value=match, visible=match is not None)


EMPTY_GALLERY = "Generate images first: the gallery is empty."


def first_image(gallery):
    """The first gallery image's file, or None for an empty gallery."""
    if not gallery:
        return None
    return gallery[0][0] if isinstance(gallery[0], (tuple, list)) else gallery[0]


def nothing_to_send(n_outputs: int) -> tuple:
    """An empty gallery: a warning toast, and every output left as it was. Not a gr.Error: that
    would mark each output box of the event as failed ("Error" badges over the controls)."""
    gr.Warning(EMPTY_GALLERY)
    return (gr.skip(),) * n_outputs


def send_and_score(pipeline: Pipeline, gallery, prompt: str, style: str):
    """The first generated image (with its prompt and style) goes to the scoring tab, scored:
    -> (upload, prompt, style, tabs, realism, match, heatmap, verdict)."""
    image = first_image(gallery)
    if image is None:
        return nothing_to_send(8)
    realism, match, heatmap, verdict = score_upload(pipeline, image, prompt, style)
    return (image, prompt, style, gr.Tabs(selected="score"), *score_boxes(realism, match), heatmap, verdict)


def send_and_vary(pipeline: Pipeline, gallery, n, seed, strength, style, candidates, gate, upscale_=True):
    """The first generated image goes to the variations tab, varied:
    -> (upload, tabs, gallery, summary, sheet)."""
    image = first_image(gallery)
    if image is None:
        return nothing_to_send(5)
    return (image, gr.Tabs(selected="variations"),
            *vary_upload(pipeline, image, n, seed, strength, style, candidates, gate, upscale_))


def send_to_edit(gallery):
    """The first generated image goes to the text-edit tab: -> (upload, tabs)."""
    image = first_image(gallery)
    return nothing_to_send(2) if image is None else (image, gr.Tabs(selected="edit"))


def header(pipeline: Pipeline) -> str:
    info = pipeline.info
    revision = info.revision or ("main" if info.source == "hub" else "–")
    text = (f"Model **{info.model_id}** · revision {revision} · "
            f"source {info.source} · device **{pipeline.device}**")
    if info.note:
        text += f"  \n⚠️ {info.note.splitlines()[0]}"
    return text


# --- files served to the browser ---

@functools.cache
def gif_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="emoji-t2i-files-"))  # GIFs and PNG sheets; one per process


_ROTATE = threading.Lock()


def new_file_path(suffix: str, keep: int = 256) -> str:
    """A fresh file for a gallery image, a GIF or a PNG sheet; only the newest `keep` of each kind
    are kept (gradio copies each one into its own cache when the request's outputs are
    processed, so a file only has to outlive its own request; 256 covers 50 requests at once)."""
    with _ROTATE:  # concurrent requests: one rotation at a time
        old = []
        for p in gif_dir().glob(f"*{suffix}"):
            try:
                old.append((p.stat().st_mtime, p))
            except FileNotFoundError:  # removed since the listing
                pass
        old.sort()
        for _, p in old[: max(0, len(old) - keep + 1)]:
            p.unlink(missing_ok=True)
        fd, path = tempfile.mkstemp(suffix=suffix, dir=gif_dir())
    os.close(fd)
    return path


def new_gif_path(keep: int = 64) -> str:
    return new_file_path(".gif", keep)
