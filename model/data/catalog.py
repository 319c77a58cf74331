"""The catalog of codes: emoji.json and openmoji.json merged (names, short names, tags,
categories, skin tones), and the fluent3d assets matched to it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .packages import GROUP_CATEGORY, is_private_use, split_tags, tone_of, code_key, code_str

@dataclass
class Entry:
    """Everything known about one code (base emoji or skin-tone variant)."""

    key: tuple[int, ...]
    cldr_name: str | None = None
    unicode_name: str | None = None
    short_names: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    category: str | None = None
    skin_tone: str | None = None
    base: tuple[int, ...] | None = None  # base code of a skin-tone variant
    images: dict[str, str] = field(default_factory=dict)  # style -> tar member

    def name(self, names: str = "cldr") -> str:
        first, second = (self.cldr_name, self.unicode_name)
        if names == "unicode":
            first, second = second, first
        return first or second or code_str(self.key)


def build_catalog(emoji_json: list[dict], openmoji_json: list[dict]) -> dict[tuple[int, ...], Entry]:
    """Merge emoji.json (names, short names, categories, skin variants) with openmoji.json."""
    cat: dict[tuple[int, ...], Entry] = {}
    for e in emoji_json:
        key = code_key(e["unified"])
        name = (e.get("name") or "").lower().strip() or None
        shorts = [s.replace("_", " ") for s in e.get("short_names") or [e.get("short_name") or ""]]
        category = e.get("category")
        cat[key] = Entry(key, unicode_name=name, short_names=shorts, category=category,
                         skin_tone=None)
        cat[key].images.update(_ds_images(e))
        for mods, v in (e.get("skin_variations") or {}).items():
            vkey = code_key(v["unified"])
            tone = tone_of(code_key(mods))
            cat[vkey] = Entry(
                vkey, unicode_name=f"{name}: {tone}" if name else None, short_names=shorts,
                category=category, skin_tone=tone, base=key,
            )
            cat[vkey].images.update(_ds_images(v))
    om_tags: dict[tuple[int, ...], list[str]] = {}
    for o in openmoji_json:
        if o.get("group") == "extras-openmoji":
            continue
        key = code_key(o["hexcode"])
        if is_private_use(key):
            continue
        tags = split_tags(o.get("tags")) + split_tags(o.get("openmoji_tags"))
        om_tags[key] = tags
        ent = cat.get(key)
        tone = tone_of(key) if o.get("skintone") not in ("", None) else None
        if ent is None:
            group = o.get("group") or ""
            category = GROUP_CATEGORY.get(group) or GROUP_CATEGORY.get(o.get("subgroups") or "")
            base = code_key(o["skintone_base_hexcode"]) if o.get("skintone_base_hexcode") else None
            ent = cat[key] = Entry(key, category=category or "Extras", skin_tone=tone,
                                   base=base if tone else None)
        ent.cldr_name = " ".join((o.get("annotation") or "").lower().split()) or None
        ent.images["openmoji"] = f"package/color/svg/{o['hexcode']}.svg"
        if ent.base is None and tone and o.get("skintone_base_hexcode"):
            ent.base = code_key(o["skintone_base_hexcode"])
    for ent in cat.values():
        # skin-tone variants carry no tags of their own: reuse their base's
        ent.tags = om_tags.get(ent.key) or (om_tags.get(ent.base, []) if ent.base else [])
        if not ent.short_names and ent.base in cat:
            ent.short_names = cat[ent.base].short_names
        if ent.category is None and ent.base in cat:
            ent.category = cat[ent.base].category
    return cat


def _ds_images(e: dict) -> dict[str, str]:
    img = e.get("image")
    out = {}
    if img:
        for style in ("google", "twitter"):
            if e.get(f"has_img_{style}", True):
                out[style] = f"package/img/{style}/64/{img}"
    return out


# @lobehub/fluent-emoji-3d@1.1.0 names its medium-light (U+1F3FC) and medium (U+1F3FD) files
# the wrong way round: in 270 of 280 five-tone sets the "1f3fc" image is darker than the
# "1f3fd" one (0 of 281 in google/twitter/openmoji), and side by side "1f3fd" is the light
# peach that Microsoft's Fluent "Medium-Light" is. The builder swaps them back.
FLUENT3D_TONE_FIX = {0x1F3FC: 0x1F3FD, 0x1F3FD: 0x1F3FC}


def match_fluent(names: Iterable[str], cat: dict[tuple[int, ...], Entry],
                 tone_fix: dict[int, int] = FLUENT3D_TONE_FIX) -> tuple[dict, list[str]]:
    """Map fluent3d asset names to codes. Returns ({key: member}, unmatched file stems)."""
    by_key: dict[tuple[int, ...], list[str]] = {}
    for member in names:
        stem = member.rsplit("/", 1)[-1][: -len(".webp")]
        key = tuple(tone_fix.get(cp, cp) for cp in code_key(stem))
        # subdivision flags are named "1f3f4-e0067_e0062_..." without the cancel tag
        if key and key[0] == 0x1F3F4 and any(0xE0020 <= c <= 0xE007E for c in key) and key[-1] != 0xE007F:
            key = key + (0xE007F,)
        by_key.setdefault(key, []).append(member)
    matched, unmatched = {}, []
    for key, members in by_key.items():
        if key not in cat:
            unmatched += [m.rsplit("/", 1)[-1] for m in members]
            continue
        # several files per code (e.g. "23-fe0f-20e3" and "0023-fe0f-20e3"): prefer the
        # one named like emoji.json's image, else the first by name
        want = cat[key].images.get("google", "").rsplit("/", 1)[-1].replace(".png", ".webp")
        members.sort(key=lambda m: (m.rsplit("/", 1)[-1] != want, m))
        matched[key] = members[0]
    return matched, sorted(unmatched)
