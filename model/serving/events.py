"""The app's event functions: plain Python over `model.pipeline.Pipeline`'s tasks, one per UI
event (app.py lays out the Blocks and wires each event to one of these). Each task checks every
bound and raises ValueError; `user_errors` turns that into a `gr.Error` with the same message,
so a bad request gets a clear answer and the app keeps serving."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import gradio as gr
from PIL import Image

from ..outputs import Generation, Scored
from ..pipeline import Pipeline
from ..stages import OUTPUT_SIZE
from .files import first_gallery_file, new_file_path, slug, trusted_upload
from .sheet import PNG_LEVEL, KeptResults, SheetSource, contact_sheet, frames_to_gif

DISPLAY_SIZE = OUTPUT_SIZE  # the super-resolution stage's output; raw 64-px images are shown enlarged by nearest neighbour
CAPTION_RE = re.compile(r"^(?P<style>\w+) · seed (?P<seed>\d+)")


@contextmanager
def user_errors():
    """The pipeline's ValueError (bad input) becomes a message shown to the user or API caller."""
    try:
        yield
    except ValueError as e:
        raise gr.Error(str(e), duration=6, print_exception=False) from e  # a toast, gone before the next result


def upscale(image: Image.Image, size: int = DISPLAY_SIZE) -> Image.Image:
    """Display size: a 256-px image as it is, a raw 64-px one enlarged by nearest neighbour."""
    return image if image.size == (size, size) else image.resize((size, size), Image.NEAREST)


def write_png(image: Image.Image, name: str = "emoji") -> str:
    """A gallery image as a PNG file written at zlib level 1 (gradio would encode a PIL image at
    level 6 itself: 4x the time, and that was a third of a request under load), named for its
    download (e.g. red-apple-twitter-seed5.png)."""
    path = new_file_path(".png", name)
    save_png(image, path)
    return path


def save_png(image: Image.Image, target) -> None:
    """A shown image at display size as a PNG at zlib level PNG_LEVEL, into a path or a binary file."""
    upscale(image).save(target, format="PNG", compress_level=PNG_LEVEL)


def file_name(what: str, s: Scored) -> str:
    """A shown image's download name: what was asked, its style and seed."""
    return f"{slug(what)}-{s.style}-seed{s.seed}"


# PIL's PNG encoder releases the GIL: a result's images are written two at a time (4 default images
# in 15 ms instead of 24 when a second core is free, the same when none is: model/bench/encode.py)
_WRITERS = ThreadPoolExecutor(2, thread_name_prefix="gallery-png")


def gallery(what: str, images: list[Scored]) -> list[tuple[str, str]]:
    paths = _WRITERS.map(lambda s: write_png(s.image, file_name(what, s)), images)
    return [(path, caption(s)) for path, s in zip(paths, images)]


def caption(s: Scored) -> str:
    text = f"{s.style} · seed {s.seed} · realism {s.realism:.2f} · match {s.match:.2f}"
    if s.redrawn_from:  # another set's design of the emoji, moved into this style
        text += f" · {s.redrawn_from}'s design"
    return text if s.kept else text + " · below the gate"


def summary(out: Generation, gate: float | None = None) -> str:
    gate = out.gate if gate is None else float(gate)
    below = sum(not s.kept for s in out.images)
    text = ""
    if out.plan is not None and out.plan.other is None:  # a colour on one object
        text += f"Drawn as {out.plan.subject}, made {out.plan.colour}.  \n"
    elif out.plan is not None:
        text += f"Drawn from its parts: {out.plan}.  \n"
    elif out.reading is not None:
        text += f"Read the prompt as: {out.reading}.  \n"
    text += (f"Drew {out.candidates} candidates; {out.discarded} judged fake "
             f"(realism < {gate:.2f}) and discarded.")
    if below == len(out.images):
        text += " **None passed the gate**: all shown are the best of the discarded."
    elif below:
        text += f" Too few passed the gate: the last {below} shown are the best of the discarded."
    return text


# the shown results' images, for the sheet button: ~80 default results (4 x 256 px), least recently used go first
RESULTS = KeptResults(max_bytes=64 * 2**20)
NO_RESULT = "Nothing to put on a sheet yet: press Generate (an example's cached images have no sheet)."
RESULT_GONE = ("That result is no longer kept (the app keeps only the latest ones): draw it again for its sheet "
               "(each caption names its seed).")


def sheet_source(pipeline: Pipeline, images: list[Scored], name: str = "emoji", **metadata) -> SheetSource:
    """What the sheet of the shown images needs: the images (256 px each), their captions, and what
    reproduces them in its metadata."""
    meta = {**metadata, "seeds": [s.seed for s in images], "styles": [s.style for s in images],
            "model": str(pipeline.info.model_id), "revision": pipeline.info.revision or "",
            "upsampler": pipeline.stages.upsampler_name}
    return SheetSource(slug(name), tuple(s.image for s in images), tuple(caption(s) for s in images), meta)


def write_sheet(source: SheetSource) -> str:
    """The PNG sheet, written into the app's output folder -> its path."""
    return str(contact_sheet(list(source.images), list(source.captions), source.metadata,
                             new_file_path(".png", f"{source.name}-sheet")))


def keep_result(pipeline: Pipeline, images: list[Scored], name: str = "emoji", **metadata) -> str | None:
    """A result's sheet source kept server-side for the sheet button -> its key, for the event's
    gr.State (None: no images). The sheet itself waits until someone asks for it (`sheet_of`)."""
    return RESULTS.put(sheet_source(pipeline, images, name, **metadata)) if images else None


def sheet_of(key) -> str:
    """The sheet button: the PNG sheet of the result kept under `key` (the session's gr.State, which
    the client cannot set) -> its path in the app's output folder."""
    source = RESULTS.get(key)
    if source is None:
        raise gr.Error(NO_RESULT if key is None else RESULT_GONE, print_exception=False)
    return write_sheet(source)


def result_sheet(pipeline: Pipeline, images: list[Scored], name: str = "emoji", **metadata) -> str:
    """A PNG sheet of the shown images, built at once (what every call did before the sheet button;
    the bench times it)."""
    return write_sheet(sheet_source(pipeline, images, name, **metadata))


def run_generate(pipeline: Pipeline, prompt: str, style: str, n: int, seed: int | None, random_seed: bool,
                 diversity: float, candidates: int, gate: float | None, upscale_: bool = True,
                 other_designs: bool = False) -> Generation:
    """/generate's inputs (model.serving.api.GENERATE_PARAMS) -> the pipeline's Generation; raises
    ValueError with a user's message on bad input (the gradio event and the REST route share it)."""
    random_seed = pipeline.checks.boolean(random_seed, "random seed")
    return pipeline.text_to_image.generate(prompt, n=n, seed=None if random_seed else seed, style=style,
                                           truncation=diversity, candidates=candidates, gate=gate, upscale=upscale_,
                                           other_designs=other_designs)


def generate_images(pipeline: Pipeline, prompt: str, style: str, n: int, seed: int | None,
                    random_seed: bool, diversity: float, candidates: int, gate: float, upscale_: bool = True,
                    other_designs: bool = False, *, keep: bool = True):
    """-> (gallery [(image, caption)], summary line, key of the result's sheet source (None without
    keep: cached examples have none))."""
    with user_errors():
        out = run_generate(pipeline, prompt, style, n, seed, random_seed, diversity, candidates, gate, upscale_,
                           other_designs)
    prompt = " ".join(prompt.split())
    key = keep_result(pipeline, out.images, prompt, prompt=prompt, style=style, diversity=diversity,
                      candidates=candidates, gate=out.gate, upscale=upscale_,
                      other_designs=bool(other_designs)) if keep else None
    return gallery(prompt, out.images), summary(out), key


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
        rd = pipeline.text_to_image.read(prompt)
    except ValueError:
        return []
    return [n for n, w in zip(rd.names[1:], rd.weights[1:]) if w >= ALTERNATIVE_MIN][:MAX_ALTERNATIVES]


def offer_alternatives(pipeline: Pipeline, prompt: str | None):
    """The "Not what you meant?" choices for a prompt, as a component update (hidden when none)."""
    names = alternatives(pipeline, prompt)
    return gr.Radio(choices=names, value=None, visible=bool(names), label=ALTERNATIVES_LABEL)


REFUSED = "**Not drawn**: the request was refused (the message says why). The images below are from before."


def refused_status():
    """After a refused generate request: the status line says so; the gallery keeps its images
    (gr.skip) and, being an output of this step, loses the error badge."""
    return gr.skip(), REFUSED


def checked_reading(pipeline: Pipeline, name) -> str:
    """A picked reading, checked against the prior's names (the choice list lives in the browser)."""
    if not isinstance(name, str) or name not in pipeline.model.prior.names:
        raise gr.Error("Pick one of the listed readings.", print_exception=False)
    return name


def draw_reading(pipeline: Pipeline, name, *generate_args):
    """A picked "Not what you meant?" reading drawn with the tab's settings; the prompt box keeps
    what the user typed ("a frog playing guitar" stays, so a second pick or an edit starts from
    it). -> the same outputs as generate_images."""
    name = checked_reading(pipeline, name)
    images, text, key = generate_images(pipeline, name, *generate_args)
    return images, f"Drawing the reading **{name}** (the prompt box still holds your prompt).  \n" + text, key


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


def gif_of(frames: list[Image.Image], name: str = "frames") -> str:
    return str(frames_to_gif(frames, new_file_path(".gif", slug(name), keep=64), size=DISPLAY_SIZE))


def frame_gallery(frames: list[Image.Image], labels: list[str] | None = None):
    labels = labels or [f"{i + 1}/{len(frames)}" for i in range(len(frames))]
    return [(upscale(f), lab) for f, lab in zip(frames, labels)]


def interpolate_frames(pipeline: Pipeline, prompt_a: str, prompt_b: str | None, seed_a: int | None,
                       seed_b: int | None, steps: int, style: str, diversity: float, upscale_: bool = True):
    """-> (gallery of frames, path of an animated GIF)."""
    with user_errors():
        frames = pipeline.text_to_image.interpolate(prompt_a, prompt_b, steps=steps, seed_a=seed_a, seed_b=seed_b,
                                      style=style, truncation=diversity, upscale=upscale_)
    name = f"{prompt_a}-to-{prompt_b}" if isinstance(prompt_b, str) and prompt_b.strip() else str(prompt_a)
    return frame_gallery(frames), gif_of(frames, name)


def need_image(image, what: str = "an image") -> str:
    """An event's raw file input -> the path of a file the app may open (model.serving.files:
    an upload Gradio received, or a file this app wrote); anything else is refused."""
    path = trusted_upload(image, "the image" if what == "an image" else what)
    if path is None:
        raise gr.Error(f"Upload {what} first (or send one from the text-to-image tab).", print_exception=False)
    return path


def interpolate_uploads(pipeline: Pipeline, image_a, image_b, steps: int, style: str, upscale_: bool = True):
    """Two images -> (gallery of frames, GIF path)."""
    a, b = need_image(image_a, "the first image"), need_image(image_b, "the second image")
    with user_errors():
        frames = pipeline.image_tasks.interpolate_images(a, b, steps=steps, style=style, upscale=upscale_)
    return frame_gallery(frames), gif_of(frames, "interpolation")


def vary_upload(pipeline: Pipeline, image, n: int, seed: int | None, strength: float, style: str,
                candidates: int, gate: float, upscale_: bool = True):
    """-> (gallery, summary, key of the result's sheet source)."""
    return vary_file(pipeline, need_image(image), n, seed, strength, style, candidates, gate, upscale_)


def vary_file(pipeline: Pipeline, image: str, n: int, seed: int | None, strength: float, style: str,
              candidates: int, gate: float, upscale_: bool = True):
    with user_errors():
        out, looks = pipeline.image_tasks.variations(image, n=n, seed=seed, strength=strength, style=style,
                                         candidates=candidates, gate=gate, upscale=upscale_)
    text = f"The image looks like: {looks}.  \n" + summary(out).split("  \n")[-1]
    what = f"{looks.reading.names[0]} variation"
    key = keep_result(pipeline, out.images, what, task="variations", looks_like=str(looks), strength=strength,
                      style=style, gate=out.gate, upscale=upscale_)
    return gallery(what, out.images), text, key


def restyle_upload(pipeline: Pipeline, image, upscale_: bool = True):
    """-> (gallery: the image in every style, summary, key of the result's sheet source)."""
    image = need_image(image)
    with user_errors():
        images, looks = pipeline.image_tasks.restyle(image, upscale=upscale_)
    text = (f"The image looks like: {looks}. Drawn in each of the {len(images)} styles "
            f"(realism against the gate {pipeline.gate.default:.2f}).")
    what = f"{looks.reading.names[0]} restyled"
    key = keep_result(pipeline, images, what, task="restyle", looks_like=str(looks), upscale=upscale_)
    return gallery(what, images), text, key


def edit_upload(pipeline: Pipeline, image, prompt: str, source: str | None, strength: float, steps: int,
                style: str, upscale_: bool = True):
    """Text edit: -> (gallery of frames, GIF path, summary)."""
    image = need_image(image)
    with user_errors():
        frames, used, looks = pipeline.image_tasks.edit(image, prompt, source=source, strength=strength, steps=steps,
                                            style=style, upscale=upscale_)
    strengths = [strength * i / (len(frames) - 1) for i in range(len(frames))]
    text = (f"The image looks like: {looks}. Moved from \"{used}\" toward \"{' '.join(prompt.split())}\" "
            f"(strength 0 to {strength:g}).")
    return frame_gallery(frames, [f"strength {s:.2f}" for s in strengths]), gif_of(frames, f"edit-{prompt}"), text


def score_upload(pipeline: Pipeline, image, prompt: str | None, style: str):
    """image: gradio's raw upload record -> (realism, match or None, heatmap overlay, verdict line)."""
    return score_file(pipeline, need_image(image), prompt, style)


def score_file(pipeline: Pipeline, path: str, prompt: str | None, style: str):
    """A trusted file (need_image / first_gallery_file) scored. The verdict uses the generation
    gate, so "real" here means what passes the gate on the first tab."""
    with user_errors():
        r = pipeline.gate.score(path, prompt=prompt, style=style)
    gate = pipeline.gate.default
    verdict = (f"Judged **{'real' if r.realism >= gate else 'fake'}**: P(real) = {r.realism:.3f}, "
               f"{'at or above' if r.realism >= gate else 'below'} the gate {gate:.2f} that decides "
               "which generated images are shown")
    patch_note = (f"  \nPatch map: red where the discriminator finds the image least real (P {r.patch.min():.2f}), "
                  f"green where most (P {r.patch.max():.2f}).")
    if r.match is not None:
        verdict += f"; matches the prompt with P = {r.match:.3f}."
    else:
        verdict += "; give a prompt to get a text-match score."
    verdict += patch_note
    return round(r.realism, 4), None if r.match is None else round(r.match, 4), r.heatmap, verdict


NOT_SCORED = "Not scored yet: upload an image (or send one from the text-to-image tab) and press Score."


def score_boxes(realism: float | None, match: float | None):
    """The realism and text-match boxes as the page shows them: each one visible only when it holds
    a computed score (an empty number box reads 0 in the browser; no prompt, no text-match box)."""
    return gr.Number(value=realism, visible=realism is not None), gr.Number(value=match, visible=match is not None)


EMPTY_GALLERY = "Generate images first: the gallery is empty."


def nothing_to_send(n_outputs: int) -> tuple:
    """An empty gallery: a warning toast, and every output left as it was. Not a gr.Error: that
    would mark each output box of the event as failed ("Error" badges over the controls)."""
    gr.Warning(EMPTY_GALLERY)
    return (gr.skip(),) * n_outputs


def send_and_score(pipeline: Pipeline, gallery, prompt: str, style: str):
    """The first generated image (with its prompt and style) goes to the scoring tab, scored:
    -> (upload, prompt, style, tabs, realism, match, heatmap, verdict)."""
    image = first_gallery_file(gallery)
    if image is None:
        return nothing_to_send(8)
    realism, match, heatmap, verdict = score_file(pipeline, image, prompt, style)
    return (image, prompt, style, gr.Tabs(selected="score"), *score_boxes(realism, match), heatmap, verdict)


def send_and_vary(pipeline: Pipeline, gallery, n, seed, strength, style, candidates, gate, upscale_=True):
    """The first generated image goes to the variations tab, varied:
    -> (upload, tabs, gallery, summary, key of the result's sheet source)."""
    image = first_gallery_file(gallery)
    if image is None:
        return nothing_to_send(5)
    return (image, gr.Tabs(selected="variations"),
            *vary_file(pipeline, image, n, seed, strength, style, candidates, gate, upscale_))


def send_to_edit(gallery):
    """The first generated image goes to the text-edit tab: -> (upload, tabs)."""
    image = first_gallery_file(gallery)
    return nothing_to_send(2) if image is None else (image, gr.Tabs(selected="edit"))


def header(pipeline: Pipeline) -> str:
    info = pipeline.info
    revision = info.revision or ("main" if info.source == "hub" else "–")
    text = (f"Model **{info.model_id}** · revision {revision} · "
            f"source {info.source} · device **{pipeline.stages.device}**")
    if info.note:
        text += f"  \n⚠️ {info.note.splitlines()[0]}"
    return text
