"""Component builders the app's tabs share: an upload box, a results gallery, a GIF output, the
sheet of a result."""
from __future__ import annotations

import gradio as gr

from .files import upload_image


def image_input(label, elem_id):
    # upload_image: a value that is not a file record gets a message, not a silent failure;
    # every event that takes one passes it through model.serving.files.trusted_upload
    return upload_image(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"],
                        elem_id=elem_id, elem_classes="upload-box")


def results(label, elem_id, columns=4):
    # CSS hooks (assets/style.css): "results" galleries shrink their columns to fit the window,
    # and a narrow window shows 2 images a row, or 4 frames ("frames": strips of 6 or more)
    kind = "frames" if columns > 4 else "images"
    # interactive=False: a results gallery is an output (it is also an input of the send
    # buttons, which would otherwise give it Upload / Clear / Delete buttons)
    return gr.Gallery(label=label, columns=columns, format="png", object_fit="contain", elem_id=elem_id,
                      elem_classes=["results", kind], buttons=["download", "fullscreen"], interactive=False)


def gif_output(elem_id):  # "gif-output": shown whole, below its label and buttons (style.css)
    return gr.Image(label="Animated GIF", type="filepath", format="gif", elem_id=elem_id,
                    elem_classes="gif-output")


# the sheet of a result is built only when asked for (model.serving.events.sheet_of): a button, the
# file it makes (hidden until then), and a gr.State with the key of the result shown, which the
# events that draw images set (its value stays on the server: the browser never sends it)

def sheet_button(elem_id):
    return gr.Button("Make a PNG sheet of these images", size="sm", elem_id=elem_id)


def sheet_output(elem_id):
    """-> (the sheet's file box, the gr.State of the result shown)."""
    return (gr.File(label="PNG sheet (prompt, style and seeds in its metadata)", elem_id=elem_id, visible=False),
            gr.State(None))
