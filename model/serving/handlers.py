"""The event functions over one pipeline, under the parameter names the API shows, and the page's
wiring: which component feeds which event (app.py builds the components; the work itself is in
events.py)."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..pipeline import Pipeline
from .events import (controls_from_caption, draw_reading, edit_upload, generate_images, interpolate_frames,
                     interpolate_uploads, offer_alternatives, refused_status, restyle_upload, score_boxes,
                     score_upload, send_and_score, send_and_vary, send_to_edit, sheet_of, vary_upload)


def event_handlers(pipeline: Pipeline) -> SimpleNamespace:
    """The event functions over one pipeline, under the parameter names the API shows."""
    # no gr.Progress: each call is one pipeline step that cannot report part-way, and a bar that
    # sits at 0 % until it vanishes says nothing; gradio's own tracker shows the queue position
    # and the elapsed time instead
    def generate(prompt, style, n, seed, random_seed, diversity, candidates, gate, upscale=True, other_designs=False):
        return generate_images(pipeline, prompt, style, n, seed, random_seed, diversity, candidates, gate, upscale,
                               other_designs)

    def example(prompt, style, n, seed, random_seed, diversity, candidates, gate, upscale=True, other_designs=False):
        return generate_images(pipeline, prompt, style, n, seed, random_seed, diversity, candidates, gate, upscale,
                               other_designs, keep=False)[:2]  # a cached example: gallery and summary only

    def sheet(key):  # key: the session's gr.State; the API gets the file's path
        return sheet_of(key)

    def show_sheet():  # then the page shows the file box (hidden while it holds no sheet)
        return gr.File(visible=True)

    def hide_sheet():  # new images: the sheet shown was the last result's
        return gr.File(value=None, visible=False)

    def forget_result():  # an example's cached images replace the result: no sheet of those
        return None

    def interpolate(prompt_a, prompt_b, seed_a, seed_b, steps, style, diversity, upscale=True):
        return interpolate_frames(pipeline, prompt_a, prompt_b, seed_a, seed_b, steps, style, diversity, upscale)

    def interpolate_images(image_a, image_b, steps, style, upscale=True):
        return interpolate_uploads(pipeline, image_a, image_b, steps, style, upscale)

    def variations(image, n, seed, strength, style, candidates, gate, upscale=True):
        return vary_upload(pipeline, image, n, seed, strength, style, candidates, gate, upscale)

    def restyle(image, upscale=True):
        return restyle_upload(pipeline, image, upscale)

    def edit(image, prompt, source, strength, steps, style, upscale=True):
        return edit_upload(pipeline, image, prompt, source, strength, steps, style, upscale)

    def score(image, prompt, style):
        return score_upload(pipeline, image, prompt, style)

    def reuse(evt: gr.SelectData):  # a clicked result puts its style and seed back into the controls
        value = evt.value if isinstance(evt.value, dict) else {}
        return controls_from_caption(value.get("caption"))

    def sync_candidates(n, candidates):  # the gate needs at least n candidates
        try:
            n = int(n)
        except (TypeError, ValueError):
            return gr.Slider()
        return gr.Slider(minimum=n, value=max(n, int(candidates or n)))

    return SimpleNamespace(generate=generate, example=example, sheet=sheet, show_sheet=show_sheet,
                           hide_sheet=hide_sheet, forget_result=forget_result, interpolate=interpolate,
                           interpolate_images=interpolate_images, variations=variations, restyle=restyle,
                           edit=edit, score=score, reuse=reuse, sync_candidates=sync_candidates)


def wire_events(pipeline: Pipeline, h: SimpleNamespace, tg, tv, te, ti, ts, tabs) -> None:
    """Every event of the page: the tabs' components (tg, tv, te, ti, ts) wired to the handlers."""
    # preprocess=False: the values reach the pipeline as sent, so the pipeline is the one
    # place that checks them (its messages name the field), and an upload reaches it as a
    # file path that it opens itself (gr.Image would open it with PIL first and fail silently)
    gen_event = dict(fn=h.generate, inputs=tg.gen_inputs, outputs=[tg.gallery, tg.status, tg.result], preprocess=False,
                     concurrency_id="generate", concurrency_limit=pipeline.text_to_image.max_batch)
    offer = dict(fn=lambda p: offer_alternatives(pipeline, p), inputs=[tg.prompt], outputs=[tg.did_you_mean],
                 api_visibility="private", queue=False, show_progress="hidden")
    # then: the new prompt's other readings (read from the embedding generate cached); the last
    # prompt's are hidden at once, so a refused prompt does not leave them standing
    hide = dict(fn=lambda: gr.Radio(visible=False), inputs=None, outputs=[tg.did_you_mean],
                api_visibility="private", queue=False, show_progress="hidden")
    tg.run.click(**hide, api_name="hide_alternatives")
    tg.prompt.submit(**hide, api_name="hide_alternatives_on_submit")
    # a refused request: the message is a toast; this step then says so in the status line and
    # clears the "Error" badge gradio put on the gallery (the old images stay)
    refused = dict(fn=refused_status, inputs=None, outputs=[tg.gallery, tg.status], api_visibility="private",
                   queue=False, show_progress="hidden")
    gen = tg.run.click(**gen_event, api_name="generate")
    gen.then(**offer, api_name="offer_alternatives")
    gen.failure(**refused, api_name="refused")
    gen_submit = tg.prompt.submit(**gen_event, api_name="generate_on_submit", api_visibility="private")
    gen_submit.then(**offer, api_name="offer_alternatives_on_submit")
    gen_submit.failure(**refused, api_name="refused_on_submit")
    # picking another reading draws it with the tab's settings; the prompt box keeps what the
    # user typed (preprocess=False: the choices were set in the browser; draw_reading checks the name)
    tg.did_you_mean.input(lambda name, *a: draw_reading(pipeline, name, *a), [tg.did_you_mean, *tg.gen_inputs[1:]],
                       [tg.gallery, tg.status, tg.result], api_name="draw_reading", api_visibility="private",
                       preprocess=False, concurrency_id="generate", concurrency_limit=pipeline.text_to_image.max_batch)
    tg.n.change(h.sync_candidates, [tg.n, tg.candidates], tg.candidates, api_name="sync_candidates",
             api_visibility="private", queue=False, show_progress="hidden")
    tg.gallery.select(h.reuse, None, [tg.style, tg.seed, tg.random_seed], api_name="reuse", api_visibility="private",
                   queue=False, show_progress="hidden")
    ti.run_i.click(h.interpolate, [ti.prompt_a, ti.prompt_b, ti.seed_a, ti.seed_b, ti.steps, ti.style_i, ti.diversity_i, ti.upscale_i],
                [ti.frames, ti.gif], api_name="interpolate", preprocess=False)
    ti.run_ii.click(h.interpolate_images, [ti.image_a, ti.image_b, ti.steps_ii, ti.style_ii, ti.upscale_ii], [ti.frames, ti.gif],
                 api_name="interpolate_images", preprocess=False)
    vary_event = dict(fn=h.variations, inputs=[tv.upload_v, tv.n_v, tv.seed_v, tv.strength_v, tv.style_v, tv.cand_v, tv.gate_v, tv.upscale_v],
                      outputs=[tv.gallery_v, tv.status_v, tv.result_v], preprocess=False)
    tv.run_v.click(**vary_event, api_name="variations")
    tv.run_r.click(h.restyle, [tv.upload_v, tv.upscale_v], [tv.gallery_v, tv.status_v, tv.result_v], api_name="restyle",
                preprocess=False)
    edit_event = dict(fn=h.edit, inputs=[te.upload_e, te.prompt_e, te.source_e, te.strength_e, te.steps_e, te.style_e, te.upscale_e],
                      outputs=[te.frames_e, te.gif_e, te.status_e], preprocess=False)
    te.run_e.click(**edit_event, api_name="edit")
    score_event = dict(fn=h.score, inputs=[ts.upload, ts.prompt_s, ts.style_s], outputs=[ts.realism, ts.match, ts.heat, ts.verdict],
                       preprocess=False)
    # the API returns the plain numbers; a second, private step shows each box that holds one
    ts.run_s.click(**score_event, api_name="score").success(
        score_boxes, [ts.realism, ts.match], [ts.realism, ts.match], api_name="show_scores", api_visibility="private",
        queue=False, show_progress="hidden")
    # one event each (not a send chained to the task): an empty gallery only warns, and no
    # output box of the target tab is marked failed. preprocess=False: the gallery's raw file
    # records reach model.serving.files.first_gallery_file, which opens only uploads and our files
    tg.to_score.click(lambda g, p, s: send_and_score(pipeline, g, p, s), [tg.gallery, tg.prompt, tg.style],
                   [ts.upload, ts.prompt_s, ts.style_s, tabs, ts.realism, ts.match, ts.heat, ts.verdict],
                   api_name="send_to_scoring", api_visibility="private", preprocess=False)
    tg.to_vary.click(lambda g, *a: send_and_vary(pipeline, g, *a),
                  [tg.gallery, tv.n_v, tv.seed_v, tv.strength_v, tv.style_v, tv.cand_v, tv.gate_v, tv.upscale_v],
                  [tv.upload_v, tabs, tv.gallery_v, tv.status_v, tv.result_v], api_name="send_to_variations",
                  api_visibility="private", preprocess=False)
    tg.to_edit.click(send_to_edit, [tg.gallery], [te.upload_e, tabs], api_name="send_to_edit", api_visibility="private",
                  preprocess=False)
    wire_sheets(h, tg, tv)


def wire_sheets(h: SimpleNamespace, tg, tv) -> None:
    """The sheet buttons: each builds the PNG sheet of the result its tab's gr.State names (the API:
    /sheet and /sheet_variations, after /generate or /variations, /restyle in the same session). A
    new result hides the last sheet; a cached example's images have no sheet."""
    quiet = dict(api_visibility="private", queue=False, show_progress="hidden")
    for make, result, sheet, gallery, name in ((tg.make_sheet, tg.result, tg.sheet, tg.gallery, "sheet"),
                                               (tv.make_sheet_v, tv.result_v, tv.sheet_v, tv.gallery_v,
                                                "sheet_variations")):
        make.click(h.sheet, [result], [sheet], api_name=name, concurrency_id="sheet").success(
            h.show_sheet, None, [sheet], api_name=f"show_{name}", **quiet)
        gallery.change(h.hide_sheet, None, [sheet], api_name=f"hide_{name}", **quiet)
    tg.examples.dataset.click(h.forget_result, None, [tg.result], api_name="forget_result", **quiet)
