"""Nothing on the page covers the images: every tab's main action, in a 1280-px and a 400-px wide
window, each on its own fresh page, screenshot to tests/output/layout/, and no label box may
overlap an output or uploaded image."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from browser_helpers import OUTPUT, TIMEOUT_MS, open_page, open_tab_ready

pytestmark = pytest.mark.browser

IMAGES = ("#gallery img, #gallery-v img, #frames-e img, #frames img, #gif-e img, #gif img, #heatmap img, "
          ".upload-box img")
OVERLAPS = """sel => {
    const shown = e => { const r = e.getBoundingClientRect(); return r.width > 1 && r.height > 1
        && getComputedStyle(e).visibility !== 'hidden' && e.offsetParent !== null; };
    const labels = [...document.querySelectorAll('label[data-testid="block-label"]')].filter(shown);
    const images = [...document.querySelectorAll(sel)].filter(shown);
    const out = [];
    for (const l of labels) for (const i of images) {
        const a = l.getBoundingClientRect(), b = i.getBoundingClientRect();
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 1 && h > 1) out.push(`${l.innerText.slice(0, 40)} over ${i.closest('[id]')?.id}: ${w.toFixed(0)}x${h.toFixed(0)} px`);
    }
    return [out, images.length];
}"""


@pytest.fixture(scope="module")
def emoji_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("upload") / "disc.png"
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse((8, 8, 56, 56), fill=(230, 180, 20, 255))
    im.save(path)
    return path


def click_then_wait(pg, button: str, shown: str, nth: int = 0):
    """Click a button and wait for `shown` (its nth match); a click that reached the page before
    gradio had wired the button (seen once in a full run on the shared CPU) is given one more try."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in (1, 2):
        pg.get_by_role("button", name=button, exact=True).click()
        try:
            pg.locator(shown).nth(nth).wait_for(timeout=TIMEOUT_MS // 2)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def generate(pg):
    click_then_wait(pg, "Generate", "#gallery img", 3)


def vary(pg, path):
    generate(pg)
    click_then_wait(pg, "Vary the first image", "#gallery-v img", 3)


def restyle(pg, path):
    open_tab_ready(pg, "Variations & restyle")
    pg.locator("#upload-v input[type=file]").set_input_files(str(path))
    pg.locator("#upload-v img").wait_for()
    click_then_wait(pg, "Restyle in every style", "#gallery-v img", 3)


def edit(pg, path):
    open_tab_ready(pg, "Text edit")
    pg.locator("#upload-e input[type=file]").set_input_files(str(path))
    pg.locator("#upload-e img").wait_for()
    click_then_wait(pg, "Edit", "#frames-e img", 5)
    pg.locator("#gif-e img").wait_for()


def interpolate(pg, path):
    open_tab_ready(pg, "Latent interpolation")
    click_then_wait(pg, "Interpolate", "#frames img", 7)
    pg.locator("#gif img").wait_for()


def score(pg, path):
    open_tab_ready(pg, "Discriminator scoring")
    pg.locator("#upload input[type=file]").set_input_files(str(path))
    pg.locator("#upload img").wait_for()
    click_then_wait(pg, "Score", "#heatmap img")
    pg.locator("#verdict").get_by_text("Judged").wait_for()


ACTIONS = {"generate": lambda pg, p: generate(pg), "variations": vary, "restyle": restyle, "edit": edit,
           "interpolate": interpolate, "score": score}


@pytest.mark.parametrize("width", [1280, 400])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_no_label_covers_an_image(browser, server, emoji_file, action, width):
    (OUTPUT / "layout").mkdir(parents=True, exist_ok=True)
    pg = open_page(browser, server.url, width=width, height=900)
    try:
        ACTIONS[action](pg, emoji_file)
        pg.wait_for_timeout(700)  # images settle into their final size
        pg.screenshot(path=str(OUTPUT / "layout" / f"{action}-{width}.png"), full_page=True)
        overlaps, n_images = pg.evaluate(OVERLAPS, IMAGES)
        assert n_images >= 2, f"{action}: only {n_images} images on the page"
        assert not overlaps, overlaps
    finally:
        pg.close()

