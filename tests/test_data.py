"""Tests of model.data (packages, catalog, render, build, records, cli) on a tiny fake copy of the
four npm packages (no network, no npm)."""
from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from model import data as D
from model.data import packages as P
from model.data.render import render_job
from model.paths import ROOT



def _png(size=(64, 64), color=(255, 0, 0, 255), fmt="PNG") -> bytes:
    """Transparent square with an opaque disc in the middle (corners stay transparent)."""
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    w, h = size
    ImageDraw.Draw(im).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=color)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def _svg(color="#00ff00") -> bytes:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 72 72" width="72" height="72">'
            f'<circle cx="36" cy="36" r="20" fill="{color}"/></svg>').encode()


def _tgz(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


EMOJI_JSON = [
    {"name": "GRINNING FACE", "unified": "1F600", "image": "1f600.png", "short_names": ["grinning"],
     "category": "Smileys & Emotion", "subcategory": "face-smiling",
     "has_img_google": True, "has_img_twitter": True},
    {"name": "WAVING HAND SIGN", "unified": "1F44B", "image": "1f44b.png", "short_names": ["wave"],
     "category": "People & Body", "subcategory": "hand-fingers-open",
     "has_img_google": True, "has_img_twitter": True,
     "skin_variations": {
         "1F3FD": {"unified": "1F44B-1F3FD", "image": "1f44b-1f3fd.png",
                   "has_img_google": True, "has_img_twitter": True},
     }},
    {"name": "HASH KEY", "unified": "0023-FE0F-20E3", "image": "0023-fe0f-20e3.png",
     "short_names": ["hash"], "category": "Symbols", "subcategory": "keycap",
     "has_img_google": True, "has_img_twitter": True},
    # in emoji.json only (no OpenMoji entry): the caption falls back to its lowercased name
    {"name": "ROCKET", "unified": "1F680", "image": "1f680.png", "short_names": ["rocket_ship"],
     "category": "Travel & Places", "subcategory": "transport-air",
     "has_img_google": True, "has_img_twitter": False},
]


def _om(hexcode, annotation, group, tags="", om_tags="", skintone="", base=""):
    return {"emoji": "", "hexcode": hexcode, "group": group, "subgroups": "", "annotation": annotation,
            "tags": tags, "openmoji_tags": om_tags, "skintone": skintone,
            "skintone_base_hexcode": base}


OPENMOJI_JSON = [
    _om("1F600", "grinning face", "smileys-emotion", "face, grin, happy", "smile"),
    _om("1F44B", "waving hand", "people-body", "hand, wave, waving"),
    _om("1F44B-1F3FD", "waving hand: medium skin tone", "people-body", skintone=3, base="1F44B"),
    _om("0023-FE0F-20E3", "keycap: #", "symbols", "keycap"),
    _om("1FAEA", "distorted face", "smileys-emotion", "distorted"),  # not in emoji.json
    _om("E000", "openmoji logo", "extras-openmoji"),  # skipped: extras-openmoji, private use
]


def make_cache(cache: Path, broken_svg: bool = False) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    for style, holder in (("google", "G"), ("twitter", "T")):
        files = {"package/emoji.json": json.dumps(EMOJI_JSON).encode(),
                 "package/LICENSE": f"The MIT License (MIT) {holder}".encode(),
                 f"package/img/{style}/64/unused.txt": b"x"}
        for e in EMOJI_JSON:
            if e[f"has_img_{style}"]:
                files[f"package/img/{style}/64/{e['image']}"] = _png()
            for v in (e.get("skin_variations") or {}).values():
                files[f"package/img/{style}/64/{v['image']}"] = _png()
        # the 128 px sheet is never read
        files[f"package/img/{style}/sheets-128/64.png"] = _png((128, 128))
        _tgz(cache / D.PACKAGES[style].tarball, files)
    _tgz(cache / D.PACKAGES["fluent3d"].tarball, {
        "package/package.json": b'{"license": "MIT"}',
        "package/README.md": b"# Fluent\n\n## License\n\nCopyright 2023 LobeHub. MIT licensed.\n",
        "package/assets/1f600.webp": _png((256, 256), fmt="WEBP"),
        # the package swaps medium-light/medium: its "1f3fc" file is the medium (1f3fd) image
        "package/assets/1f44b-1f3fc.webp": _png((256, 256), fmt="WEBP"),
        # two files for one code: emoji.json's spelling wins
        "package/assets/23-fe0f-20e3.webp": _png((256, 256), (0, 0, 255, 255), fmt="WEBP"),
        "package/assets/0023-fe0f-20e3.webp": _png((256, 264), (255, 255, 0, 255), fmt="WEBP"),
        "package/assets/ffff.webp": _png((256, 256), fmt="WEBP"),  # no such emoji
    })
    svgs = {f"package/color/svg/{o['hexcode']}.svg": _svg() for o in OPENMOJI_JSON}
    if broken_svg:
        svgs["package/color/svg/1F600.svg"] = b"<svg this is not xml"
    _tgz(cache / D.PACKAGES["openmoji"].tarball, {
        "package/data/openmoji.json": json.dumps(OPENMOJI_JSON).encode(),
        "package/LICENSE.txt": b"Attribution-ShareAlike 4.0 International",
        **svgs,
        "package/black/svg/1F600.svg": _svg("#000"),
    })
    return cache


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("emoji")
    cache = make_cache(root / "cache")
    out = root / "out"
    res = D.build(out=out, cache=cache, workers=1, progress=False)
    return out, cache, res


def _by(records, style):
    return {r["code"]: r for r in records if r["style"] == style}


def test_counts_per_style(built):
    out, _, res = built
    assert res["counts"] == {
        64: {"google": 5, "twitter": 4, "fluent3d": 3, "openmoji": 5},
        128: {"fluent3d": 3, "openmoji": 5},
    }
    assert res["unmatched"] == ["ffff.webp"]
    recs = D.read_metadata(out / "64")
    assert len(recs) == 17
    # deterministic order: styles in canonical order, then code
    keys = [(D.STYLES.index(r["style"]), r["code"]) for r in recs]
    assert keys == sorted(keys)
    assert {r["style"] for r in D.read_metadata(out / "128")} == {"fluent3d", "openmoji"}
    assert not (out / "128" / "images" / "google").exists()
    assert not (out / "128" / "images" / "twitter").exists()


def test_names_codes_and_skin_tones(built):
    out, _, _ = built
    recs = D.read_metadata(out / "64")
    g = _by(recs, "google")
    assert set(g) == {"1f600", "1f44b", "1f44b-1f3fd", "0023-20e3", "1f680"}
    assert g["1f600"]["text"] == "grinning face"
    assert g["1f680"]["text"] == "rocket"  # UPPER CASE emoji.json name, lowercased
    assert g["1f44b-1f3fd"]["text"] == "waving hand: medium skin tone"
    assert g["1f44b-1f3fd"]["skin_tone"] == "medium skin tone"
    assert g["1f44b"]["skin_tone"] is None
    assert g["1f44b-1f3fd"]["file_name"] == "images/google/1f44b-1f3fd.png"
    assert g["0023-20e3"]["text"] == "keycap: #"
    for r in recs:
        assert r["text"] == r["text"].lower()
        assert all(k == k.lower() for k in r["keywords"])
        assert set(r) >= {"file_name", "text", "style", "keywords", "category", "code", "skin_tone"}
    o = _by(recs, "openmoji")
    assert set(o) == {"1f600", "1f44b", "1f44b-1f3fd", "0023-20e3", "1faea"}  # no e000
    assert o["1f44b-1f3fd"]["skin_tone"] == "medium skin tone"
    assert o["1faea"]["category"] == "Smileys & Emotion"
    f = _by(recs, "fluent3d")
    assert set(f) == {"1f600", "1f44b-1f3fd", "0023-20e3"}
    assert f["1f44b-1f3fd"]["text"] == "waving hand: medium skin tone"  # from "1f44b-1f3fc.webp"
    assert D.match_fluent(["a/1f44b-1f3fc.webp", "a/1f44b-1f3fd.webp"], {
        D.code_key("1f44b-1f3fc"): D.Entry(D.code_key("1f44b-1f3fc")),
        D.code_key("1f44b-1f3fd"): D.Entry(D.code_key("1f44b-1f3fd"))})[0] == {
        D.code_key("1f44b-1f3fd"): "a/1f44b-1f3fc.webp", D.code_key("1f44b-1f3fc"): "a/1f44b-1f3fd.webp"}


def test_unicode_names(tmp_path):
    cache = make_cache(tmp_path / "cache")
    D.build(out=tmp_path / "o", cache=cache, sizes=[64], styles=["twitter"], workers=1,
            progress=False, names="unicode")
    t = _by(D.read_metadata(tmp_path / "o" / "64"), "twitter")
    assert t["1f44b"]["text"] == "waving hand sign"
    assert t["1f44b-1f3fd"]["text"] == "waving hand sign: medium skin tone"
    assert t["1f600"]["text"] == "grinning face"


def test_keywords_reuse_openmoji_tags(built):
    out, _, _ = built
    recs = D.read_metadata(out / "64")
    for style in D.STYLES:
        r = _by(recs, style)["1f600"]
        assert r["keywords"] == ["grinning", "face", "grin", "happy", "smile"], style
    # skin-tone variants reuse their base's tags; short names get "_" -> " "
    assert _by(recs, "google")["1f44b-1f3fd"]["keywords"] == ["wave", "hand", "waving"]
    assert _by(recs, "google")["1f680"]["keywords"] == ["rocket ship"]


def test_descriptions_reach_base_records_only(tmp_path):
    descs = tmp_path / "d.jsonl"
    descs.write_text(json.dumps({"code": "1F600", "name": "grinning face",
                                 "descriptions": ["A Big  Toothy Smile", "beaming yellow head"]}) + "\n\n"
                     + json.dumps({"code": "1f44b", "descriptions": ["a palm saying hello"]}) + "\n")
    cache = make_cache(tmp_path / "cache")
    D.build(out=tmp_path / "o", cache=cache, sizes=[64], styles=["google"], workers=1, progress=False,
            descriptions=descs)
    g = _by(D.read_metadata(tmp_path / "o" / "64"), "google")
    assert g["1f600"]["descriptions"] == ["a big toothy smile", "beaming yellow head"]
    assert g["1f44b"]["descriptions"] == ["a palm saying hello"]
    assert g["1f44b-1f3fd"]["descriptions"] == []  # a skin tone reads as its base
    assert g["1f680"]["descriptions"] == []
    assert D.caption_variants(g["1f600"])[-2:] == ["a big toothy smile", "beaming yellow head"]
    D.build(out=tmp_path / "n", cache=cache, sizes=[64], styles=["google"], workers=1, progress=False,
            descriptions=None)
    assert all(r["descriptions"] == [] for r in D.read_metadata(tmp_path / "n" / "64"))
    descs.write_text('{"code": "1f600", "descriptions": ["ok"]}\n{"name": "no code"}\n')
    with pytest.raises(ValueError, match=r"d.jsonl:2"):
        D.read_descriptions(descs)


def test_shipped_descriptions_are_apart_from_the_held_out_prompts():
    """The project's descriptions train the prior; the natural descriptions the evaluation
    reads (assets/prompts/natural.jsonl) must never be among them."""
    descs = D.read_descriptions()
    rows = [json.loads(l) for l in open(D.DESCRIPTIONS, encoding="utf-8") if l.strip()]
    assert len(descs) == len(rows) > 2000  # one row per base emoji code
    assert all(descs.values()) and sum(map(len, descs.values())) > 3500
    texts = {t for ts in descs.values() for t in ts}
    held = [json.loads(l)["prompt"] for l in open(ROOT / "assets" / "prompts" / "natural.jsonl", encoding="utf-8")]
    norm = lambda s: " ".join(s.lower().split())
    assert len(held) >= 200 and not {norm(p) for p in held} & texts
    assert not {norm(r["name"]) for r in rows} & texts  # never a name (its own or another emoji's)
    # nor a near-copy: no description of an emoji shares half the content words of a held-out
    # prompt (or a grid row) for that emoji; independent writers often converge on one phrase
    from model.evaluation.grid import NATURAL_EXAMPLES, NATURAL_TARGETS
    stop = set("a an the of with and in on to for its it is that one two his her their at by from as or like".split())
    words = lambda s: {w for w in re.findall(r"[a-z0-9']+", s.lower()) if w not in stop}
    tests = [(json.loads(l)["name"], json.loads(l)["prompt"]) for l in open(ROOT / "assets/prompts/natural.jsonl")]
    tests += list(zip(NATURAL_TARGETS, NATURAL_EXAMPLES))
    by_name = {r["name"]: r["descriptions"] for r in rows}
    for name, prompt in tests:
        p = words(prompt)
        near = [t for t in by_name.get(name, []) if len(p & words(t)) >= 0.5 * len(p)]
        assert not near, (name, prompt, near)


def test_images_white_background_and_sizes(built):
    out, _, _ = built
    for size in (64, 128):
        for r in D.read_metadata(out / str(size)):
            im = Image.open(r["path"])
            assert im.mode == "RGB" and im.size == (size, size), r["path"]
            assert im.getpixel((0, 0)) == (255, 255, 255), r["path"]  # transparent -> white
            assert im.getpixel((size // 2, size // 2)) != (255, 255, 255), r["path"]
    # duplicate fluent3d files: the one spelled like emoji.json's image wins (yellow, 256x264)
    im = Image.open(out / "128" / "images" / "fluent3d" / "0023-20e3.png")
    r, g, b = im.getpixel((64, 64))
    assert r > 200 and g > 200 and b < 80


def test_attribution(built):
    out, _, _ = built
    text = (out / "64" / "ATTRIBUTION.md").read_text()
    for lic in ("Apache-2.0", "CC-BY-4.0", "MIT", "CC-BY-SA-4.0"):
        assert lic in text
    for pkg in D.PACKAGES.values():
        assert f"{pkg.name}@{pkg.version}" in text
    assert "Attribution-ShareAlike 4.0 International" in text  # copied license text
    assert "The MIT License (MIT) G" in text and "The MIT License (MIT) T" in text
    assert "Copyright 2023 LobeHub" in text
    text128 = (out / "128" / "ATTRIBUTION.md").read_text()
    assert "openmoji@17.0.0" in text128 and "@lobehub/fluent-emoji-3d@1.1.0" in text128
    assert "emoji-datasource-twitter" not in text128


def test_idempotent(built):
    out, cache, _ = built
    before = {p: p.stat().st_mtime_ns for p in (out / "64").rglob("*.png")}
    meta = (out / "64" / "metadata.jsonl").read_text()
    res = D.build(out=out, cache=cache, workers=1, progress=False)
    assert res["written"] == 0
    after = {p: p.stat().st_mtime_ns for p in (out / "64").rglob("*.png")}
    assert after == before
    assert (out / "64" / "metadata.jsonl").read_text() == meta
    # a deleted image is rebuilt
    victim = out / "64" / "images" / "openmoji" / "1f600.png"
    victim.unlink()
    assert D.build(out=out, cache=cache, workers=1, progress=False)["written"] == 1
    assert victim.is_file()


def test_cli_no_skin_tones_limit_and_workers(tmp_path, capsys):
    cache = make_cache(tmp_path / "cache")
    rc = D.main(["--cache", str(cache), "--out", str(tmp_path / "o"), "--sizes", "32",
                 "--styles", "google,openmoji", "--no-skin-tones", "--limit", "3"])
    assert rc == 0
    recs = D.read_metadata(tmp_path / "o" / "32")
    assert [r["style"] for r in recs] == ["google"] * 3 + ["openmoji"] * 3
    assert all(r["skin_tone"] is None for r in recs)
    assert all(Image.open(r["path"]).size == (32, 32) for r in recs)
    assert "google 3" in capsys.readouterr().out
    # two worker processes give the same files
    D.build(out=tmp_path / "p", cache=cache, sizes=[64], styles=["openmoji"], workers=2, progress=False)
    assert len(list((tmp_path / "p" / "64" / "images" / "openmoji").glob("*.png"))) == 5


def test_missing_npm_and_failed_pack(tmp_path, monkeypatch):
    monkeypatch.setattr(P.shutil, "which", lambda name: None)
    with pytest.raises(D.DataBuildError, match="npm"):
        D.ensure_tarball(D.PACKAGES["openmoji"], tmp_path)

    class Proc:
        returncode = 1
        stdout = ""
        stderr = "npm ERR! 404 Not Found"

    monkeypatch.setattr(P.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(P.subprocess, "run", lambda *a, **k: Proc())
    with pytest.raises(D.DataBuildError, match="openmoji@17.0.0.*failed"):
        D.ensure_tarball(D.PACKAGES["openmoji"], tmp_path)
    assert D.PACKAGES["fluent3d"].tarball == "lobehub-fluent-emoji-3d-1.1.0.tgz"


def test_caption_variants():
    rec = {"text": "Grinning Face", "style": "google",
           "keywords": ["grinning", "face", "cheerful", "happy", "smile", "grinning face"]}
    caps = D.caption_variants(rec)
    assert caps == [
        "grinning face",
        "an emoji of grinning face",
        "grinning face emoji",
        "grinning face in google style",
        "grinning face, cheerful",
        "grinning face, happy",
        "grinning face, smile",  # every keyword that adds a word, not the first two
    ]
    assert D.caption_variants(rec) == caps  # deterministic
    toned = {**rec, "text": "waving hand: dark skin tone", "skin_tone": "dark skin tone"}
    assert not any(", " in c[len("waving hand: dark skin tone"):] for c in D.caption_variants(toned))  # its base has them
    # user datasets: "caption" column, no style, no keywords
    assert D.caption_variants({"caption": "A Cat"}) == ["a cat", "an emoji of a cat", "a cat emoji"]
    assert len(set(caps)) == len(caps) and all(c == c.lower() for c in caps)


def test_read_metadata_errors(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    meta = tmp_path / "metadata.jsonl"
    meta.write_text('{"file_name": "a.png", "caption": "a red disc"}\n\n')
    recs = D.read_metadata(tmp_path)
    assert recs[0]["text"] == "a red disc" and recs[0]["path"].endswith("a.png")

    meta.write_text('{"file_name": "a.png", "text": "ok"}\n{not json}\n')
    with pytest.raises(ValueError, match=r"metadata\.jsonl:2.*JSON"):
        D.read_metadata(tmp_path)
    meta.write_text('{"file_name": "a.png", "label": 3}\n')
    with pytest.raises(ValueError, match=r"metadata\.jsonl:1.*text"):
        D.read_metadata(tmp_path)
    meta.write_text('{"file_name": "a.png", "text": "ok"}\n{"file_name": "b.png", "text": "x"}\n')
    with pytest.raises(ValueError, match=r"metadata\.jsonl:2.*b\.png"):
        D.read_metadata(tmp_path)
    meta.unlink()
    with pytest.raises(FileNotFoundError):
        D.read_metadata(tmp_path)


def test_svg_with_missing_marker_renders(tmp_path):
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 72 72">'
           b'<path d="M10 10 L60 60" stroke="#f00" stroke-width="8" marker-end="url(#Dot)"/></svg>')
    path = tmp_path / "x.png"
    job_id, n, err = render_job(("svg", svg, [(64, str(path))], "x"))
    assert (n, err) == (1, None)
    assert Image.open(path).getpixel((0, 0)) == (255, 255, 255)


def test_unrenderable_image_is_skipped(tmp_path, capsys):
    cache = make_cache(tmp_path / "cache", broken_svg=True)
    res = D.build(out=tmp_path / "o", cache=cache, sizes=[64], styles=["openmoji"], workers=1,
                  progress=False)
    assert res["failed"] == ["images/openmoji/1f600.png"]
    assert res["counts"] == {64: {"openmoji": 4}}
    assert "skipped images/openmoji/1f600.png" in capsys.readouterr().err
    assert "1f600" not in {r["code"] for r in D.read_metadata(tmp_path / "o" / "64")}


def test_cli_reports_a_build_error_without_a_traceback(tmp_path, monkeypatch, capsys):
    """The library raises DataBuildError; only the command line turns it into exit status 1."""
    from model.data import cli

    monkeypatch.setattr(P.shutil, "which", lambda name: None)
    assert cli.main(["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "empty-cache"), "--styles", "openmoji"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "npm is not installed" in err and "Traceback" not in err
