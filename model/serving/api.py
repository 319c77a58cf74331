"""The app's generate call, named in one place: the order of its inputs (the app's components
and the API's positional arguments) and their defaults. The app, the benchmark, the load test
and the tests all build the call from here.

/generate answers (gallery, summary): the gallery a list of {"image": file, "caption": "style ·
seed · realism · match"}. The PNG sheet of that result is built only when asked for: /sheet, with
no arguments, in the same session (one gradio_client Client), makes it of the session's last
result (model.serving.events.sheet_of)."""
from __future__ import annotations

GENERATE_PARAMS = ("prompt", "style", "n", "seed", "random_seed", "diversity", "candidates", "gate", "upscale",
                   "other_designs")
# gate None: the model's calibrated threshold (the app fills it in from the loaded model)
GENERATE_DEFAULTS = {"style": "any", "n": 4, "seed": 0, "random_seed": False, "diversity": 1.0,
                     "candidates": 16, "gate": None, "upscale": True, "other_designs": False}


def generate_args(prompt: str, **kw) -> tuple:
    """/generate's positional arguments, defaults filled in: generate_args("rocket", n=1)."""
    unknown = set(kw) - set(GENERATE_DEFAULTS)
    if unknown:
        raise TypeError(f"generate has no parameter {sorted(unknown)}; it takes {', '.join(GENERATE_PARAMS)}")
    values = {**GENERATE_DEFAULTS, **kw, "prompt": prompt}
    return tuple(values[k] for k in GENERATE_PARAMS)


def calibrated_gate(pipeline) -> float:
    """The gate the app's slider starts at: the model's calibrated threshold (it keeps ~90 % of
    held-out real images), to the slider's step of 0.01."""
    return round(pipeline.gate.default, 2)


def default_args(pipeline, prompt: str, **kw) -> tuple:
    """/generate's arguments as a user who changes nothing sends them (the app's defaults, the
    calibrated gate); kw as in generate_args."""
    return generate_args(prompt, **{"gate": calibrated_gate(pipeline), **kw})
