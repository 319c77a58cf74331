"""What the browser tests share: where Chromium is and how it starts, a fresh page of the app, and
what a page shows (plain functions; the `browser`, `page` and `narrow_page` fixtures are in
conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
OUTPUT = Path(__file__).resolve().parent / "output"
TIMEOUT_MS = 60_000  # 2 shared cores: generous, but a hang still fails


# --- pages and tabs ---

def open_page(browser, url: str, width: int = 1280, height: int = 1000):
    """A fresh page of the app (its own session: nothing generated or scored yet), once gradio has
    drawn the title and laid out the tab bar (a tab is visible, or the narrow window's "More tabs"
    menu exists); the caller closes it."""
    pg = browser.new_page(viewport={"width": width, "height": height})
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url, wait_until="domcontentloaded")
    pg.get_by_text("Emoji text-to-image").first.wait_for()
    pg.wait_for_function("""() => [...document.querySelectorAll('button')].some(b =>
        (b.getAttribute('role') === 'tab' && b.offsetParent !== null)
        || (b.getAttribute('aria-label') || b.innerText).includes('More tabs'))""")
    return pg


def open_tab(page, name: str):
    """Click a tab; in a narrow window gradio moves the tabs that do not fit into a "More tabs" menu."""
    tab = page.get_by_role("tab", name=name)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
    else:
        page.get_by_role("button", name="More tabs").first.click()
        page.locator(".overflow-dropdown button").get_by_text(name, exact=True).click()


def open_tab_ready(pg, name: str):
    """open_tab once gradio has laid out its tab bar (the tab itself is visible, or the narrow
    window's "More tabs" menu exists): right after the page loads, neither may be there yet."""
    pg.wait_for_function("""name => [...document.querySelectorAll('button')].some(b =>
        (b.getAttribute('role') === 'tab' && b.innerText.trim() === name && b.offsetParent !== null)
        || (b.getAttribute('aria-label') || b.innerText).includes('More tabs'))""", arg=name)
    open_tab(pg, name)


def gallery_images(page, elem_id: str):
    return page.locator(f"#{elem_id} img")


def go_to_generate_and_draw(page, seed: int = 0):
    page.get_by_role("tab", name="Text to image").click()
    page.get_by_label("Prompt", exact=True).fill("red apple")
    page.get_by_label("Seed (-1 = random)", exact=True).first.fill(str(seed))
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator("#gen-status").get_by_text("Drew").wait_for()
    gallery_images(page, "gallery").first.wait_for()


# --- what the page shows ---

def shown_numbers(page, *elem_ids: str) -> dict:
    """What each number box shows the user: its text, or None when the box is not on the page."""
    out = {}
    for elem_id in elem_ids:
        box = page.locator(f"#{elem_id} input")
        out[elem_id] = box.input_value() if box.count() and box.is_visible() else None
    return out


def assert_gif_shown_whole(page, elem_id: str):
    """The GIF's image lies inside its box and every box around it that clips, keeps its aspect
    ratio (so object-fit crops nothing), and neither the label nor the buttons lie over it."""
    page.wait_for_function("id => { const i = document.querySelector(`#${id} img`); return i && i.complete; }",
                           arg=elem_id)
    geometry = page.locator(f"#{elem_id} img").first.evaluate("""img => {
        const box = e => {
            const r = e.getBoundingClientRect();
            return {x: r.left, y: r.top, r: r.right, b: r.bottom};
        };
        const clips = [];
        for (let e = img.parentElement; e; e = e.parentElement) {
            const s = getComputedStyle(e);
            if (s.overflowX !== 'visible' || s.overflowY !== 'visible') clips.push(box(e));
        }
        const block = img.closest('.block');
        const covers = [...block.querySelectorAll('[data-testid=block-label], .icon-button-wrapper')].map(box);
        return {img: box(img), nat: [img.naturalWidth, img.naturalHeight], clips, covers,
                container: box(img.closest('.image-container'))};
    }""")
    img, (w, h) = geometry["img"], geometry["nat"]
    assert w > 0 and h > 0, "the GIF did not load"
    for outer in [geometry["container"], *geometry["clips"]]:
        assert (img["x"] >= outer["x"] - 0.5 and img["r"] <= outer["r"] + 0.5 and img["y"] >= outer["y"] - 0.5
                and img["b"] <= outer["b"] + 0.5), f"#{elem_id}: the image {img} is clipped by {outer}"
    shown_w, shown_h = img["r"] - img["x"], img["b"] - img["y"]
    assert shown_w == pytest.approx(shown_h * w / h, abs=1.5), f"#{elem_id}: shown {shown_w}x{shown_h}, file {w}x{h}"
    assert shown_w >= min(w, geometry["container"]["r"] - geometry["container"]["x"]) * 0.8
    for cover in geometry["covers"]:
        apart = (cover["r"] <= img["x"] or cover["x"] >= img["r"] or cover["b"] <= img["y"] or cover["y"] >= img["b"])
        assert apart, f"#{elem_id}: {cover} lies over the image {img}"


def assert_captions_uncut(page, elem_id: str):
    """Each thumbnail's caption is shown whole, not cut off with an ellipsis."""
    sizes = page.locator(f"#{elem_id} .thumbnail-item .caption-label").evaluate_all(
        "els => els.map(e => [e.innerText, e.scrollWidth, e.clientWidth, e.scrollHeight, e.clientHeight])")
    assert sizes
    cut = [text for text, sw, cw, sh, ch in sizes if sw > cw + 1 or sh > ch + 1]
    assert not cut, f"#{elem_id}: captions cut off: {cut}"


def assert_inside_horizontally(page, elem_id: str, width: int):
    thumbs = page.locator(f"#{elem_id} .thumbnail-item")
    assert thumbs.count() >= 1
    for i in range(thumbs.count()):
        box = thumbs.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, \
            f"#{elem_id} thumbnail {i + 1} of {thumbs.count()} at x {box['x']:.0f}..{box['x'] + box['width']:.0f}, " \
            f"window {width}"
