"""The model card (README.md) an export of model.train writes, rendered from TrainConfig's own
fields: every field that differs from its default appears in the command, so the card reproduces
the run; a hand-written notes file (the recipe's limits, what was measured) can be appended."""
from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

from ..config import config_dict
from ..data.packages import SOURCES


def command_of(config: dict, cls) -> str:
    """`python -m model.train` with a flag for every field of cls whose value in config is not
    its default (data always: a command without data is not one anyone can rerun)."""
    flags = []
    for f in dataclasses.fields(cls):
        if f.name not in config or (f.name != "data" and config[f.name] == f.default):
            continue
        v = config[f.name]
        flag = "--" + f.name.replace("_", "-")
        flags.append(flag if v is True else f"--no-{f.name.replace('_', '-')}" if v is False
                     else f"{flag} {shlex.quote(str(v))}")
    return "python -m model.train " + " ".join(flags)


def front_matter(*tags: str) -> str:
    """The Hub card's YAML header (licence of the training data's strictest set, OpenMoji's)."""
    return ("---\nlicense: cc-by-sa-4.0\npipeline_tag: text-to-image\nlibrary_name: pytorch\ntags:\n"
            + "".join(f"- {t}\n" for t in tags) + "---\n")


def rebuilt_line(training: dict) -> str:
    """The card's note that the prior's text side was rebuilt after training (model.training.reprior)."""
    r = training.get("prior_rebuilt")
    if not r:
        return ""
    return (f"\nThe prior's caption table and query map were then rebuilt on the same networks and latents:\n\n"
            f"    python -m model.training.reprior --prior-data {r.get('prior_data')} "
            f"--query-map-steps {r.get('query_map_steps')}\n\n"
            f"({r.get('captions')} captions; the data's metadata.jsonl md5 {r.get('metadata_md5')}).\n")


def write_card(folder: Path, cfg, training: dict, cls, *, notes: str = "") -> Path:
    """folder/README.md for a latent model (cfg: LatentConfig, training: the export's record)."""
    rows = "\n".join(f"| {s} | `{p}` | {lic} | {who} |" for s, p, lic, who in SOURCES if s in cfg.styles)
    cal = training.get("gate_calibration", {})
    gate = (f"{cal['gate']:.3f}: it keeps {cal['real_kept']:.0%} of {cal['held_out_real']} real images the "
            f"discriminator never trained on, and {cal['decoded_kept']:.0%} of their reconstructions"
            if "real_kept" in cal else f"{cfg.gate} (not calibrated: the discriminator never trained)")
    text = front_matter("text-to-image", "vae", "emoji") + f"""
# Emoji latent text-to-image model ({cfg.image_size}x{cfg.image_size})

DALL·E 2's arrangement at emoji scale: a frozen all-MiniLM-L6-v2 sentence encoder reads the
prompt; a **retrieval prior** maps it to latents of an **image VAE** (the prompt's nearest known
captions, softmax-weighted; a seed picks a neighbour and adds the posterior noise); the VAE's
**decoder**, conditioned on the art style, draws the image; a **discriminator** (realism, text
match, patch map) gates what is shown. Every image is drawn by the decoder from a latent; no
stored image is ever returned. Load it with this repository's `model.hub.load_model`.

## Training data
{training.get('images', '?')} images (built by `python -m model.data` from pinned npm packages):

| style | package | license | copyright |
|---|---|---|---|
{rows}

The weights and latent tables are a derivative of CC-BY-SA-4.0 data (OpenMoji) and are released
under CC-BY-SA-4.0.

## Training
{training.get('steps')} steps in {training.get('minutes')} minutes on {training.get('device')}:

    {command_of(training.get('config', {}), cls)}
{rebuilt_line(training)}
Gate: P(real) >= {gate}.

## Architecture
`{json.dumps(config_dict(cfg))}`

## Samples
Rows: real images, their reconstructions, then the same latents decoded in each style
({', '.join(cfg.styles)}).

![samples](samples.png)
"""
    if notes:
        text += "\n" + notes.strip() + "\n"
    path = Path(folder) / "README.md"
    path.write_text(text)
    return path
