"""What a generator is for, measured: variety within one style, compounds kept out of the prior
drawn from their parts, a colour bound to an object, and grids to look at.

    python -m model.evaluation.generative --out runs/generative            # every measure
    python -m model.evaluation.generative --out runs/generative --only colour compounds

Every row is the app's default call (4 shown of 16 candidates, seed 0, the model's gate) at the
model's size, with one named style per prompt (prompt i in style i mod 4), so the four images of
a prompt can differ only by design, not by style. Rows are paired: the same prompts with the
composer off (`TextToImage.compose = False`: the prior's reading of the whole prompt, today's
model) and on.

* **variety**: the held-out natural descriptions and the same emojis' exact names, by version
  (VERSIONS: each of the generator's switches added in turn). R-precision
  (the evaluator: target among 1 + 99 names), diversity (mean pairwise cosine distance of
  EfficientNet-Lite0 features among a prompt's 4 images), judged the asked style (the pixel
  style classifier), and the share of prompts the composer split.
* **unseen**: in every style, the emojis that set lacks (drawn by >= 2 other sets) asked by
  name in it: recognised, judged the asked style by the style classifier, and the same emojis'
  real images (in a set that draws them) recognised, the row the bar is taken against.
* **compounds**: COMPOUNDS asked by name, with their own entries taken out of the prior's
  tables (captions and latents: the prior cannot retrieve them; the image VAE did see them in
  training). R-precision among 100 names; the retrieval row draws the nearest other emoji.
* **colour**: assets/prompts/colour_objects.jsonl ("a purple banana": colours no set gives
  these objects), every prompt in every style. An image counts when the object is recognised by
  a colour-blind evaluator (the evaluator's network trained with random hue rotations and greys:
  the shipped evaluator reads colour as identity, a real banana made purple is recognised 0.12)
  and most of its coloured pixels carry the asked hue (the nearest of the named hues of
  model.compose.COLOURS). Rows: today, the composer, the real image (its own colour), the real
  image hue-rotated to the asked colour (the ceiling).
* **two_ideas**: assets/prompts/two_ideas.jsonl ("an owl and a moon", "two cats": each with the
  emoji names that count as each part it names), prompt i in style i mod 4. Both parts
  recognised: each part's best name beats 99 other names (none of them the other part's) with
  the evaluator (`Judge.part_hits`); diversity in one style; judged the asked style. Rows: the
  whole prompt read by the prior (composer off), the composer (the default), and the real
  images of the parts laid side by side (the instrument's ceiling on a collage).
* **grids** (PNG, 2x): TWO_IDEAS in every style; one prompt in one style, four seeds; UNSEEN in
  fluent3d; ONE_STYLE_NAMES, each one default call without and with other sets' designs. To be
  looked at.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .. import paths
from ..compose import COLOURS, COLOURED_SATURATION, COLOURED_VALUE, compose, main_hue, nearest_colour
from ..dataset import image_names, load_dataset
from ..evaluator import ENL0Features, Evaluator, EvaluatorTrainConfig, encode_images, train_evaluator
from ..pipeline import Pipeline
from ..pixels import hsv_to_rgb, rgb_to_hsv, to_uint8, to_unit
from ..prior import RetrievalPrior
from . import style_judge
from .judge import Judge, to_uint8_pil
from .metrics import prompt_means, r_precision
from .user_prompts import read_natural

COLOUR_PROMPTS = paths.ASSETS / "prompts" / "colour_objects.jsonl"
TWO_IDEA_PROMPTS = paths.ASSETS / "prompts" / "two_ideas.jsonl"
COLOUR_BLIND_CACHE = Path("runs/evaluator_colour_blind")
# compound emojis whose names name their parts; kept out of the prior when measured
COMPOUNDS = ["heart on fire", "cloud with lightning", "cloud with rain", "cloud with snow", "sun behind cloud",
             "sun behind large cloud", "umbrella with rain drops", "smiling face with sunglasses", "eye in speech bubble",
             "face in clouds", "heart with arrow", "heart with ribbon", "bow and arrow", "fork and knife",
             "hammer and wrench", "hammer and pick", "skull and crossbones", "star and crescent", "two hearts",
             "money with wings", "locked with key", "bowl with spoon", "nest with eggs", "couch and lamp",
             "person with crown"]
TWO_IDEAS = ["a cat wearing sunglasses", "a frog playing guitar", "two cats", "a penguin wearing a top hat",
             "an owl and a moon", "a robot holding a flower"]
ONE_STYLE = ("a cute puppy's head", "google")
UNSEEN = ["phoenix", "harp", "shovel", "lime"]
ONE_STYLE_NAMES = [("dog face", "google"), ("ghost", "twitter"), ("rocket", "fluent3d"), ("cat face", "openmoji"),
                   ("christmas tree", "twitter"), ("desert island", "fluent3d")]


def default_call(pipe: Pipeline, prompt: str, style: str, other_designs: bool | None = None) -> list[Image.Image]:
    g = pipe.text_to_image.generate(prompt, n=4, seed=0, style=style, candidates=16, upscale=False,
                                    other_designs=other_designs)
    return [s.image for s in g.images]


def diversity(features: torch.Tensor, k: int = 4) -> torch.Tensor:
    """(P * k, D) features of P prompts' k images -> (P,) mean pairwise cosine distance."""
    f = F.normalize(features, dim=1).view(-1, k, features.shape[1])
    iu = torch.triu_indices(k, k, 1)
    return (1 - (f @ f.transpose(1, 2))[:, iu[0], iu[1]]).mean(1)


def shown_rows(pipe: Pipeline, items: list[tuple[str, str]], judge: Judge, enl0) -> dict:
    """The default call for (prompt, target) items, prompt i in style i mod num_styles."""
    styles = pipe.model.cfg.styles
    images, owners, want, split = [], [], [], 0
    for i, (prompt, _) in enumerate(items):
        st = i % len(styles)
        shown = default_call(pipe, prompt, styles[st])
        split += pipe.text_to_image.plan(prompt) is not None
        images += shown
        owners += [i] * len(shown)
        want += [st] * len(shown)
    x = to_uint8_pil(images)
    sc = judge.score(x, torch.tensor(owners), [n for _, n in items])
    d = diversity(encode_images(enl0, x, 64))
    return {"rprec": round(float(sc["per_prompt"].mean()), 4), "diversity": round(float(d.mean()), 4),
            "judged_style": round(float((sc["styles"] == torch.tensor(want)).float().mean()), 4),
            "split_by_composer": round(split / len(items), 4), "by_prompt": [round(float(v), 4) for v in sc["per_prompt"]]}


VERSIONS = {"today": dict(compose=False, distinct=False, variety=False),
            "distinct designs": dict(compose=False, distinct=True, variety=False),
            "distinct designs + composer (the default)": dict(compose=True, distinct=True, variety=False),
            "+ other sets' designs (the app's switch)": dict(compose=True, distinct=True, variety=True)}


def switch(pipe: Pipeline, compose: bool = True, distinct: bool = True, variety: bool = False) -> None:
    """The generator's switches (default: as shipped; variety is the app's "other sets' designs")."""
    pipe.text_to_image.compose, pipe.gate.distinct, pipe.text_to_image.variety = compose, distinct, variety


def variety(pipe: Pipeline, judge: Judge, enl0, sets: dict) -> dict:
    out = {}
    for name, switches in VERSIONS.items():
        switch(pipe, **switches)
        out[name] = {kind: shown_rows(pipe, items, judge, enl0) for kind, items in sets.items()}
    switch(pipe)
    return out


def lacking_pairs(pack, names: list[str]) -> dict[str, list[str]]:
    """{style: the emojis that set lacks and at least two other sets draw}, names sorted."""
    by_name: dict[str, set[int]] = {}
    for n, s in zip(names, pack.styles.tolist()):
        by_name.setdefault(n, set()).add(s)
    return {sn: [n for n in sorted(by_name) if t not in by_name[n] and len(by_name[n]) >= 2]
            for t, sn in enumerate(pack.style_names)}


def unseen_pairs(pipe: Pipeline, judge: Judge, pack, names: list[str]) -> dict:
    """In every style, the emojis that set lacks (drawn by >= 2 other sets), asked by name in it:
    recognised and judged the asked style, beside the same emojis' real images in the sets that
    draw them (recognised: the bar is 0.8x that row)."""
    first_image: dict[str, int] = {}
    for i, n in enumerate(names):
        first_image.setdefault(n, i)
    out: dict = {}
    for style, lacking in lacking_pairs(pack, names).items():
        target = pack.style_names.index(style)
        images, owners = [], []
        for i, n in enumerate(lacking):
            shown = default_call(pipe, n, style)
            images += shown
            owners += [i] * len(shown)
        sc = judge.score(to_uint8_pil(images), torch.tensor(owners), lacking)
        real = judge.score(torch.stack([pack.images[first_image[n]] for n in lacking]),
                           torch.arange(len(lacking)), lacking)
        out[style] = {"pairs": len(lacking), "rprec": round(float(sc["per_prompt"].mean()), 4),
                      "real_rprec": round(float(real["per_prompt"].mean()), 4),
                      "judged_style": round(float((sc["styles"] == target).float().mean()), 4)}
    return out


def without(prior: RetrievalPrior, names: set[str]) -> RetrievalPrior:
    """A copy of the prior with the named entries' captions and latents taken out."""
    keep = [i for i, n in enumerate(prior.names) if n not in names]
    new_id = torch.full((len(prior.names),), -1, dtype=torch.long)
    new_id[keep] = torch.arange(len(keep))
    caps, lats = new_id[prior.cap_entry] >= 0, new_id[prior.lat_entry] >= 0
    out = RetrievalPrior(text_dim=prior.cap_emb.shape[1], latent_shape=tuple(prior.latents.shape[1:]),
                         num_styles=prior.num_styles, top_k=prior.top_k, temperature=prior.temperature,
                         moved_last=prior.moved_last, variety_from=prior.variety_from)
    return out.fill(names=[prior.names[i] for i in keep], cap_emb=prior.cap_emb[caps],
                    cap_entry=new_id[prior.cap_entry[caps]], latents=prior.latents[lats], sigmas=prior.sigmas[lats],
                    lat_entry=new_id[prior.lat_entry[lats]], lat_style=prior.lat_style[lats],
                    query_map=prior.query_map)


def compounds(pipe: Pipeline, judge: Judge, enl0, names: list[str]) -> dict:
    known = [c for c in COMPOUNDS if c in set(names) and c in set(pipe.model.prior.names)]
    items = [(c, c) for c in known for _ in pipe.model.cfg.styles]  # every compound in every style
    full = pipe.model.prior
    out = {"compounds": known, "in_the_prior": shown_rows(pipe, items, judge, enl0)}  # the emoji itself (reference)
    pipe.model.prior = without(full, set(known))  # the composer follows the prior
    try:
        for compose in (False, True):
            pipe.text_to_image.compose = compose
            out["composer" if compose else "retrieval"] = shown_rows(pipe, items, judge, enl0)
    finally:
        pipe.model.prior = full
        pipe.text_to_image.compose = True
    return out


# --- two ideas ---

def read_two_ideas(path: Path = TWO_IDEA_PROMPTS) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def two_idea_rows(pipe: Pipeline, pack, names: list[str], judge: Judge, enl0, items: list[dict] | None = None) -> dict:
    """Two-idea prompts, prompt i in style i mod 4: both parts recognised, diversity, judged style,
    by row: the whole prompt's reading (composer off), the composer, and the real parts side by side."""
    items = items or read_two_ideas()
    styles = pipe.model.cfg.styles
    image_of = {(n, int(s)): i for i, (n, s) in enumerate(zip(names, pack.styles.tolist()))}

    def real(part: list[str], st: int) -> torch.Tensor:  # the part's first name any set draws, in st if it can
        for n in part:
            for s in [st, *range(len(styles))]:
                if (n, s) in image_of:
                    return to_unit(pack.images[image_of[(n, s)]])
        raise KeyError(f"no image of {part}")

    def measure(images: list[Image.Image] | torch.Tensor, want: list[int], split: int) -> dict:
        x = images if isinstance(images, torch.Tensor) else to_uint8_pil(images)
        parts = [items[i // 4]["parts"] for i in range(len(x))]
        hits = judge.part_hits(x, parts)
        both = torch.nan_to_num(hits, nan=1.0).min(1).values
        return {"both_parts": round(float(both.mean()), 4), "each_part": round(float(hits.nanmean()), 4),
                "diversity": round(float(diversity(encode_images(enl0, x, 64)).mean()), 4),
                "judged_style": round(float((judge.style_judge.predict(x) == torch.tensor(want)).float().mean()), 4),
                "split_by_composer": round(split / len(items), 4),
                "both_by_prompt": [round(float(v), 4) for v in prompt_means(both, torch.arange(len(x)) // 4, len(items))]}

    out, want = {}, [i % len(styles) for i in range(len(items)) for _ in range(4)]
    for name, on in (("whole prompt (composer off)", False), ("composer (the default)", True)):
        pipe.text_to_image.compose = on
        shown, split = [], 0
        for i, it in enumerate(items):
            split += pipe.text_to_image.plan(it["prompt"]) is not None
            got = default_call(pipe, it["prompt"], styles[i % len(styles)])
            if len(got) != 4:  # the default call fills up to four; the rows index images by prompt
                raise RuntimeError(f"{it['prompt']!r}: {len(got)} images, not 4")
            shown += got
        out[name] = measure(shown, want, split)
    pipe.text_to_image.compose = True
    pairs = []
    for i, it in enumerate(items):
        a = real(it["parts"][0], i % len(styles))
        b = real(it["parts"][-1], i % len(styles))
        pairs += [compose(a, b, "two" if len(it["parts"]) == 1 else "beside", k) for k in range(4)]
    x = to_uint8(torch.stack(pairs))
    out["real parts side by side (ceiling)"] = measure(x, want, 0)
    return out


# --- colour ---

def hue_share(x: torch.Tensor, colour: str) -> torch.Tensor:
    """(N, 3, S, S) uint8 -> (N,) the share of each image's coloured pixels whose nearest named hue is `colour`."""
    h, s, v = rgb_to_hsv(x.float() / 255)
    coloured = (s > COLOURED_SATURATION) & (v > COLOURED_VALUE)
    hit = coloured & (nearest_colour(h) == list(COLOURS).index(colour))
    return hit.flatten(1).sum(1).float() / coloured.flatten(1).sum(1).clamp_min(1).float()


def hue_rotated(x: torch.Tensor, colour: str) -> torch.Tensor:
    """(N, 3, S, S) uint8 -> every hue rotated so that each image's most common named hue lands on
    `colour` (the ceiling row: a real emoji in another colour)."""
    h, s, v = rgb_to_hsv(x.float() / 255)
    coloured = (s > COLOURED_SATURATION) & (v > COLOURED_VALUE)
    out = []
    for hi, si, vi, ci in zip(h, s, v, coloured):
        shift = COLOURS[colour] - main_hue(hi, ci)
        out.append(hsv_to_rgb((hi + shift) % 360, si, vi))
    return (torch.stack(out) * 255).round().clamp(0, 255).to(torch.uint8)


def colour_blind_evaluator(pack, cache: Path = COLOUR_BLIND_CACHE, log=print) -> Evaluator:
    """The evaluator's network trained with random hue rotations (EvaluatorTrainConfig.hue):
    loaded from cache, else trained (~16 min on 2 idle cores) and saved there."""
    if (cache / "evaluator.safetensors").is_file():
        return Evaluator.load(cache)[0]
    ev, info = train_evaluator(pack, None, EvaluatorTrainConfig(hue=True), log=log)
    ev.save(cache, info)
    return ev


def colour_rows(pipe: Pipeline, pack, names: list[str], blind: Evaluator, judge: Judge) -> dict:
    rows = [json.loads(line) for line in COLOUR_PROMPTS.read_text().splitlines() if line.strip()]
    styles = pipe.model.cfg.styles
    name_txt = blind.text_embed(torch.stack([pack.embedding_of(n) for n in judge.uniq]))  # judge's name ids
    owners = torch.arange(len(rows)).repeat_interleave(len(styles))
    want = torch.arange(len(styles)).repeat(len(rows))

    def measure(x: torch.Tensor) -> dict:
        with torch.no_grad():
            emb = blind.image_embed(encode_images(blind.image_features, x))
        cands = torch.stack([name_txt[torch.tensor(judge.candidates(r["name"], 0))] for r in rows])
        hits = r_precision(emb, cands[owners]).float()
        hue = torch.cat([hue_share(x[j:j + 1], rows[int(o)]["colour"]) for j, o in enumerate(owners)]) > 0.5
        counted = hits * hue.float()
        return {"recognised": round(float(hits.mean()), 4), "asked_hue": round(float(hue.float().mean()), 4),
                "counted": round(float(counted.mean()), 4),
                "counted_by_prompt": [round(float(v), 4) for v in prompt_means(counted, owners, len(rows))],
                "judged_style": round(float((judge.style_judge.predict(x) == want).float().mean()), 4)}

    out = {}
    for compose in (False, True):
        pipe.text_to_image.compose = compose
        x = to_uint8_pil([im for r in rows for st in styles for im in default_call(pipe, r["prompt"], st)[:1]])
        out["composer" if compose else "today"] = measure(x)
    pipe.text_to_image.compose = True
    by = {}
    for i, (n, s) in enumerate(zip(names, pack.styles.tolist())):
        by.setdefault(n, {}).setdefault(s, i)
    real = torch.stack([pack.images[by[r["name"]].get(s, next(iter(by[r["name"]].values())))]
                        for r in rows for s in range(len(styles))])
    out["real"] = measure(real)
    out["real_hue_rotated"] = measure(torch.cat([hue_rotated(real[j:j + 1], rows[int(o)]["colour"])
                                                 for j, o in enumerate(owners)]))
    return out


# --- grids ---

def save_grid(images: list[Image.Image], path: Path, cols: int, scale: int = 2) -> None:
    size = images[0].width
    rows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * size, rows * size), "white")
    for i, im in enumerate(images):
        sheet.paste(im, ((i % cols) * size, (i // cols) * size))
    sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST).save(path)


def grids(pipe: Pipeline, out: Path) -> list[str]:
    styles = pipe.model.cfg.styles
    two = [im for p in TWO_IDEAS for st in styles for im in default_call(pipe, p, st)]
    save_grid(two, out / "two_ideas.png", cols=4 * len(styles))
    prompt, style = ONE_STYLE
    one = [im for seed in range(4) for im in [pipe.text_to_image.generate(prompt, n=1, seed=seed * 16, style=style,
                                                            candidates=16, upscale=False).images[0].image]]
    unseen = [im for name in UNSEEN for im in default_call(pipe, name, "fluent3d")]
    save_grid(one + unseen, out / "one_style_and_unseen.png", cols=4)
    # exact names in one style, one default call each, then the same call with other sets' designs
    names = [im for name, st in ONE_STYLE_NAMES for other in (False, True)
             for im in default_call(pipe, name, st, other_designs=other)]
    save_grid(names, out / "one_style_other_designs.png", cols=8)
    return ["two_ideas.png", "one_style_and_unseen.png", "one_style_other_designs.png"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Variety in one style, held-out compounds, colour binding, grids.")
    ap.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped model)")
    ap.add_argument("--data", default=".pack/emoji64-one.safetensors", help="pack of the real images")
    ap.add_argument("--out", default="runs/generative")
    ap.add_argument("--only", nargs="+", choices=["variety", "unseen", "compounds", "two_ideas", "colour", "grids"],
                    default=["variety", "unseen", "compounds", "two_ideas", "colour", "grids"])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = Pipeline.from_pretrained(a.model, device="cpu", upsampler=None)
    pack = load_dataset(a.data, size=64)
    names = image_names(pack)
    judge = Judge(pack, names, style_cache=style_judge.DEFAULT_CACHE)
    enl0 = ENL0Features().eval()
    res: dict = {"model": str(a.model or "default")}
    t = time.time()
    if "variety" in a.only:
        natural = [r for r in read_natural() if r["name"] in set(names)]
        res["variety"] = variety(pipe, judge, enl0, {"natural": [(r["prompt"], r["name"]) for r in natural],
                                                     "exact": [(r["name"], r["name"]) for r in natural]})
    if "unseen" in a.only:
        res["unseen"] = unseen_pairs(pipe, judge, pack, names)
    if "compounds" in a.only:
        res["compounds"] = compounds(pipe, judge, enl0, names)
    if "two_ideas" in a.only:
        res["two_ideas"] = two_idea_rows(pipe, pack, names, judge, enl0)
    if "colour" in a.only:
        res["colour"] = colour_rows(pipe, pack, names, colour_blind_evaluator(pack), judge)
    if "grids" in a.only:
        res["grids"] = grids(pipe, out)
    res["seconds"] = round(time.time() - t)
    (out / "generative.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(drop_lists(res), indent=1))


def drop_lists(d):
    """The results without their per-prompt lists (what is printed)."""
    if isinstance(d, dict):
        return {k: drop_lists(v) for k, v in d.items() if not k.endswith("by_prompt")}
    return d


if __name__ == "__main__":
    main()
