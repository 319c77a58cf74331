"""The app as a person uses it: headless Debian Chromium (never `playwright install`) drives the five
tabs of the real app.py served on a TINY model, in a desktop and a 420-px-wide window, and reads what
the page shows; screenshots go to tests/output/."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw


pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
OUTPUT = Path(__file__).resolve().parent / "output"
TIMEOUT_MS = 60_000  # 2 shared cores: generous, but a hang still fails


@pytest.fixture(scope="module")
def page(server):
    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium` "
                    "(the browser tests never download one with `playwright install`)")
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(server.url, wait_until="domcontentloaded")
        pg.get_by_text("Emoji text-to-image").first.wait_for()
        yield pg
        browser.close()


def gallery_images(page, elem_id: str):
    return page.locator(f"#{elem_id} img")


def new_page(page, server, width: int = 1280, height: int = 1000):
    """A fresh page of the app (its own session: nothing generated or scored yet)."""
    pg = page.context.browser.new_page(viewport={"width": width, "height": height})
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(server.url, wait_until="domcontentloaded")
    pg.get_by_text("Emoji text-to-image").first.wait_for()
    return pg


def open_tab(page, name: str):
    """Click a tab; in a narrow window gradio moves the tabs that do not fit into a "More tabs" menu."""
    tab = page.get_by_role("tab", name=name)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
    else:
        page.get_by_role("button", name="More tabs").first.click()
        page.locator(".overflow-dropdown button").get_by_text(name, exact=True).click()


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


def test_text_to_image(page):
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("🍎 red apple")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator("#gen-status").get_by_text("candidates").wait_for()
    gallery_images(page, "gallery").nth(3).wait_for()
    assert gallery_images(page, "gallery").count() >= 4
    # a results gallery is an output: no Upload / Clear / per-image Delete controls on it
    gal = page.locator("#gallery")
    assert gal.locator("input[type=file]").count() == 0
    assert gal.get_by_role("button", name=re.compile(r"^(Upload|Clear|Delete)", re.I)).count() == 0
    # each caption sits under its image, not over it (a wrapped caption hid half the emoji)
    boxes = page.locator("#gallery .thumbnail-item").evaluate_all(
        "els => els.map(e => [e.querySelector('img').getBoundingClientRect().bottom,"
        " e.querySelector('.caption-label').getBoundingClientRect().top])")
    assert boxes and all(cap_top >= img_bottom - 1 for img_bottom, cap_top in boxes), boxes
    page.get_by_text("Model ").first.wait_for()
    assert "device" in page.locator("#header").inner_text()
    page.screenshot(path=str(OUTPUT / "1_text_to_image.png"), full_page=True)


def test_bad_input_shows_message_and_keeps_working(page):
    page.get_by_label("Prompt", exact=True).fill("")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("The prompt is empty").first.wait_for()
    # the status line says the request was refused, and no "Error" badge sits on the gallery
    page.locator("#gen-status").get_by_text("Not drawn").wait_for()
    page.wait_for_timeout(300)
    badges = page.locator("#gallery .error, #gen-status .error").filter(has_text="Error")
    assert badges.count() == 0, "error badges over the results after a refused prompt"
    page.screenshot(path=str(OUTPUT / "2_error_message.png"), full_page=True)
    page.get_by_label("Prompt", exact=True).fill("red heart")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator("#gen-status").get_by_text("Drew").wait_for()


def wait_status_change(page, old: str) -> str:
    page.wait_for_function("([sel, old]) => { const e = document.querySelector(sel);"
                           " return e && e.innerText.includes('Read the prompt as') && e.innerText !== old; }",
                           arg=["#gen-status", old])
    return page.locator("#gen-status").inner_text()


def test_picking_another_reading_draws_it(page, server):
    """After a generation whose reading is unsure, "Not what you meant?" lists the other
    readings; picking one draws it and leaves the typed prompt as it was ("a frog playing
    guitar" must not become "frog"); a sure reading or a refused prompt clears them."""
    from helpers import TINY_NAMES
    from model.serving.events import alternatives

    unsure = [p for p in ("a spaceship blasting off", "a yellow smiley wearing dark shades", "something to eat",
                          "a happy animal", "a shiny thing", "weather") if alternatives(server.pipeline, p)]
    assert unsure, "the tiny model read every prompt with certainty"
    offered = alternatives(server.pipeline, unsure[0])
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill(unsure[0])
    status = page.locator("#gen-status")
    before = status.inner_text()
    page.get_by_role("button", name="Generate", exact=True).click()
    read = wait_status_change(page, before)
    choices = page.locator("#did-you-mean label")
    # the choices arrive after the images (a chained event): wait for this prompt's
    page.wait_for_function("want => JSON.stringify([...document.querySelectorAll('#did-you-mean label')]"
                           ".map(e => e.innerText.trim())) === JSON.stringify(want)", arg=offered)
    assert all(name in read for name in offered)  # each is one of the readings the line names
    choices.first.click()
    page.wait_for_function("want => (document.querySelector('#gen-status')?.innerText || '').includes(want)",
                           arg=f"Drawing the reading {offered[0]}")
    assert prompt.input_value() == unsure[0]
    gallery_images(page, "gallery").first.wait_for()
    page.screenshot(path=str(OUTPUT / "1b_other_reading.png"), full_page=True)
    sure = next(p for p in ("a spaceship blasting off", *TINY_NAMES) if not alternatives(server.pipeline, p))
    prompt.fill(sure)  # a prompt read with certainty clears the last prompt's choices
    page.get_by_role("button", name="Generate", exact=True).click()
    choices.first.wait_for(state="hidden")
    prompt.fill(unsure[0])
    page.get_by_role("button", name="Generate", exact=True).click()
    choices.first.wait_for()
    prompt.fill("")  # and so does a refused one
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("The prompt is empty").first.wait_for()
    choices.first.wait_for(state="hidden")


def test_send_to_scoring(page):
    page.get_by_role("button", name="Send the first image to scoring").click()
    page.locator("#verdict").get_by_text("Judged").wait_for()
    page.locator("#heatmap img").wait_for()
    page.screenshot(path=str(OUTPUT / "3_sent_to_scoring.png"), full_page=True)


def test_interpolation(page):
    page.get_by_role("tab", name="Latent interpolation").click()
    page.get_by_role("button", name="Interpolate", exact=True).click()
    gallery_images(page, "frames").nth(7).wait_for()  # the default: 8 steps
    page.locator("#gif img").wait_for()
    assert gallery_images(page, "frames").count() >= 8
    assert_gif_shown_whole(page, "gif")
    page.screenshot(path=str(OUTPUT / "4_interpolation.png"), full_page=True)


def test_scoring_upload(page, tmp_path):
    im = Image.new("RGBA", (200, 120), (0, 0, 0, 0))  # transparent, not square
    ImageDraw.Draw(im).ellipse((50, 10, 150, 110), fill=(30, 160, 30, 255))
    path = tmp_path / "green circle.png"
    im.save(path)
    page.get_by_role("tab", name="Discriminator scoring").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.locator("#upload img").wait_for()
    page.get_by_label("Prompt (optional, for the text-match score)").fill("green circle")
    page.get_by_role("button", name="Score", exact=True).click()
    page.locator("#verdict").get_by_text("matches the prompt").wait_for()
    page.screenshot(path=str(OUTPUT / "5_scoring.png"), full_page=True)


def test_scoring_rejects_a_text_file(page, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image\n")
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("is not an image this app can read").first.wait_for()
    page.screenshot(path=str(OUTPUT / "6_upload_error.png"), full_page=True)


def go_to_generate_and_draw(page, seed: int = 0):
    page.get_by_role("tab", name="Text to image").click()
    page.get_by_label("Prompt", exact=True).fill("red apple")
    page.get_by_label("Seed (-1 = random)", exact=True).first.fill(str(seed))
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator("#gen-status").get_by_text("Drew").wait_for()
    gallery_images(page, "gallery").first.wait_for()


def test_click_a_result_reuses_its_seed(page):
    go_to_generate_and_draw(page, seed=100)
    page.locator("#gallery").get_by_text(re.compile(r"seed 1\d\d")).first.wait_for()  # the new result
    seed = int(page.locator("#gallery .caption-label, #gallery figcaption").first.inner_text().split("seed ")[1].split(" ")[0])
    assert seed >= 100
    seed_box = page.get_by_label("Seed (-1 = random)", exact=True).first
    seed_box.fill("5")  # changed by hand after generating; clicking the image puts its seed back
    gallery_images(page, "gallery").first.click()
    for _ in range(100):
        if seed_box.input_value() == str(seed):
            break
        page.wait_for_timeout(100)
    assert seed_box.input_value() == str(seed)
    page.screenshot(path=str(OUTPUT / "7_reuse_seed.png"), full_page=True)


def test_the_sheet_is_made_when_asked_of_the_images_shown(page, tmp_path):
    """No sheet comes with a result; the button makes one of the images shown (their seeds in its
    metadata), a new result takes the old sheet away, and a cached example's images have none."""
    import json

    go_to_generate_and_draw(page, seed=40)
    page.locator("#gallery").get_by_text(re.compile(r"seed 4\d")).first.wait_for()
    sheet = page.locator("#sheet")
    assert not sheet.is_visible()
    page.get_by_role("button", name="Make a PNG sheet of these images").click()
    page.locator("#sheet a").first.wait_for()
    with page.expect_download() as download:
        page.locator("#sheet a").first.click()
    path = tmp_path / "sheet.png"
    download.value.save_as(path)
    captions = page.locator("#gallery .caption-label, #gallery figcaption").all_inner_texts()
    shown = sorted({int(c.split("seed ")[1].split(" ")[0]) for c in captions})
    with Image.open(path) as im:
        meta = json.loads(im.text["parameters"])
    assert meta["prompt"] == "red apple" and sorted(meta["seeds"]) == shown, (meta, captions)
    page.screenshot(path=str(OUTPUT / "7b_sheet.png"), full_page=True)
    go_to_generate_and_draw(page, seed=60)  # a new result: the last one's sheet goes
    sheet.wait_for(state="hidden")
    page.locator("#gallery").get_by_text(re.compile(r"seed 6\d")).first.wait_for()
    page.locator("#examples").get_by_text("rocket", exact=True).first.click()  # a cached example (seeds 0-15)
    page.locator("#gallery").get_by_text(re.compile(r"seed (\d|1[0-5]) ·")).first.wait_for()
    page.get_by_role("button", name="Make a PNG sheet of these images").click()
    page.get_by_text("Nothing to put on a sheet yet").first.wait_for()
    assert not sheet.is_visible()


def test_variations_and_restyle_tab(page):
    go_to_generate_and_draw(page)
    page.get_by_role("button", name="Vary the first image").click()
    page.locator("#var-status").get_by_text("looks like").wait_for()
    gallery_images(page, "gallery-v").nth(3).wait_for()
    page.screenshot(path=str(OUTPUT / "8_variations.png"), full_page=True)
    page.get_by_role("button", name="Restyle in every style").click()
    page.locator("#var-status").get_by_text("Drawn in each of the 4 styles").wait_for()
    page.screenshot(path=str(OUTPUT / "9_restyle.png"), full_page=True)


def test_text_edit_tab(page):
    go_to_generate_and_draw(page)
    page.get_by_role("button", name="Edit the first image").click()
    page.locator("#upload-e img").wait_for()
    page.get_by_label("Make it ... (the new prompt)").fill("rocket")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.locator("#edit-status").get_by_text('toward "rocket"').wait_for()
    gallery_images(page, "frames-e").nth(5).wait_for()
    page.locator("#gif-e img").wait_for()
    assert_gif_shown_whole(page, "gif-e")
    page.screenshot(path=str(OUTPUT / "10_text_edit.png"), full_page=True)


def test_image_interpolation(page, tmp_path):
    paths = []
    for name, rgb in (("red", (220, 30, 30, 255)), ("blue", (30, 60, 220, 255))):
        im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        ImageDraw.Draw(im).ellipse((8, 8, 56, 56), fill=rgb)
        im.save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    page.get_by_role("tab", name="Latent interpolation").click()
    page.get_by_role("tab", name="Between two images").click()
    page.locator("#image-a input[type=file]").set_input_files(str(paths[0]))
    page.locator("#image-b input[type=file]").set_input_files(str(paths[1]))
    page.locator("#image-b img").wait_for()
    page.get_by_role("button", name="Interpolate the images").click()
    gallery_images(page, "frames").nth(7).wait_for()
    page.screenshot(path=str(OUTPUT / "11_image_interpolation.png"), full_page=True)


def test_what_the_user_reads_when_every_candidate_is_rejected(page):
    page.get_by_role("tab", name="Text to image").click()
    page.get_by_label("Prompt", exact=True).fill("rocket")
    gate = page.get_by_label("Gate: discard candidates with P(real) below").first
    page.get_by_role("button", name="Generate", exact=True).click()  # a first result at the default gate
    page.locator("#gen-status").get_by_text("Drew").wait_for()
    page.locator("input[aria-label='number input for Gate: discard candidates with P(real) below']").fill("1")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator("#gen-status").get_by_text("None passed the gate").wait_for()
    close_preview = page.locator("#gallery button[aria-label='Close']")
    if close_preview.count() and close_preview.first.is_visible():  # a clicked image opened the large view
        close_preview.first.click()
    # the summary stands above the gallery, whose label points at it
    status_box, gallery_box = page.locator("#gen-status").bounding_box(), page.locator("#gallery").bounding_box()
    assert status_box["y"] < gallery_box["y"]
    assert "the line above says which passed the gate" in page.locator("#gallery").inner_text()
    assert "16 judged fake" in page.locator("#gen-status").inner_text()
    assert "all shown are the best of the discarded" in page.locator("#gen-status").inner_text()
    assert gate.count() == 1
    # nothing the user reads calls these images kept: the label, and each caption says so
    label = page.locator("#gallery [data-testid=block-label]")
    assert label.is_visible()
    assert "kept" not in label.inner_text().lower()
    assert "the line above says which passed the gate" in label.inner_text()
    page.locator("#gallery .caption-label").first.wait_for()
    captions = [c.inner_text() for c in page.locator("#gallery .caption-label").all() if c.is_visible()]
    assert len(captions) == 4  # the default number of images
    assert all(c.endswith("below the gate") for c in captions), captions
    assert_captions_uncut(page, "gallery")
    page.screenshot(path=str(OUTPUT / "12_none_passed_the_gate.png"), full_page=True)


def test_send_before_generating_warns_and_leaves_no_error_badges(page, server):
    """A fresh page (empty gallery): the send buttons warn, switch nothing, mark nothing failed."""
    pg = new_page(page, server)
    try:
        for name in ("Send the first image to scoring", "Vary the first image", "Edit the first image"):
            pg.get_by_role("button", name=name).click()
            pg.get_by_text("Generate images first: the gallery is empty.").first.wait_for()
        pg.get_by_role("tab", name="Discriminator scoring").click()
        pg.get_by_role("button", name="Score", exact=True).wait_for()
        pg.wait_for_timeout(500)
        assert pg.locator(".error").filter(has_text="Error").count() == 0, "error badges over the scoring tab"
        assert shown_numbers(pg, "realism", "match") == {"realism": None, "match": None}
        assert "Not scored yet" in pg.locator("#verdict").inner_text()
        assert pg.locator("#upload img").count() == 0  # nothing was put in the upload box
        pg.screenshot(path=str(OUTPUT / "13_send_before_generating.png"), full_page=True)
        # the badge's selector is real: a failed Score (no image) does put one up
        pg.get_by_role("button", name="Score", exact=True).click()
        pg.get_by_text("Upload an image first").first.wait_for()
        pg.locator(".error").filter(has_text="Error").first.wait_for()
        assert shown_numbers(pg, "realism", "match") == {"realism": None, "match": None}
        pg.screenshot(path=str(OUTPUT / "13b_score_without_an_image.png"), full_page=True)
    finally:
        pg.close()


def test_no_score_is_shown_before_one_is_computed(page, server, tmp_path):
    """The realism and text-match boxes show nothing (gradio draws an empty number box as 0) until a
    Score; then realism shows the verdict's number, and text match only when there was a prompt."""
    im = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(im).ellipse((8, 8, 56, 56), fill=(30, 160, 30))
    im.save(tmp_path / "circle.png")
    pg = new_page(page, server)
    try:
        pg.get_by_role("tab", name="Discriminator scoring").click()
        pg.get_by_role("button", name="Score", exact=True).wait_for()
        pg.wait_for_timeout(500)
        assert shown_numbers(pg, "realism", "match") == {"realism": None, "match": None}
        shown = pg.locator("input[type=number]").evaluate_all(  # every number box on the page, any tab
            "els => els.filter(e => e.offsetParent !== null).map(e => e.getAttribute('aria-label'))")
        assert not [label for label in shown if "Realism" in label or "match" in label], shown
        assert "Not scored yet" in pg.locator("#verdict").inner_text()
        pg.screenshot(path=str(OUTPUT / "14_scoring_before_a_score.png"), full_page=True)

        pg.locator("#upload input[type=file]").set_input_files(str(tmp_path / "circle.png"))
        pg.locator("#upload img").wait_for()
        pg.get_by_role("button", name="Score", exact=True).click()  # no prompt: no text-match score
        pg.locator("#verdict").get_by_text("give a prompt").wait_for()
        pg.locator("#realism input").wait_for()
        verdict_p = float(re.search(r"P\(real\) = ([01]\.\d+)", pg.locator("#verdict").inner_text()).group(1))
        shown = shown_numbers(pg, "realism", "match")
        assert shown["match"] is None and float(shown["realism"]) == pytest.approx(verdict_p, abs=6e-4)

        pg.get_by_label("Prompt (optional, for the text-match score)").fill("green circle")
        pg.get_by_role("button", name="Score", exact=True).click()
        pg.locator("#verdict").get_by_text("matches the prompt").wait_for()
        pg.locator("#match input").wait_for()
        verdict_m = float(re.search(r"prompt with P = ([01]\.\d+)", pg.locator("#verdict").inner_text()).group(1))
        assert float(shown_numbers(pg, "match")["match"]) == pytest.approx(verdict_m, abs=6e-4)
        pg.screenshot(path=str(OUTPUT / "15_scoring_after_a_score.png"), full_page=True)
    finally:
        pg.close()


def test_progress_is_shown_while_generating(page, server, monkeypatch):
    """While the images are drawn, the gallery says so and counts the seconds; then it goes away."""
    draw = server.pipeline.generate

    def slow_generate(*args, **kwargs):  # the tiny model draws in milliseconds: make the wait visible
        import time

        time.sleep(3)
        return draw(*args, **kwargs)

    monkeypatch.setattr(server.pipeline, "generate", slow_generate)
    pg = new_page(page, server)
    try:
        pg.get_by_label("Prompt", exact=True).fill("rocket")
        pg.get_by_role("button", name="Generate", exact=True).click()
        tracker = pg.locator("#gallery [data-testid=status-tracker]")
        # "processing | 1.2s", or "processing | 1.2/0.3s" once gradio has timed earlier calls
        clock = re.compile(r"processing \| (\d+\.\d)(/\d+\.\d)?s")
        tracker.get_by_text(clock).wait_for()
        first = float(clock.search(tracker.inner_text()).group(1))
        pg.screenshot(path=str(OUTPUT / "16_progress_while_generating.png"), full_page=True)
        pg.wait_for_timeout(700)
        if "processing" in tracker.inner_text():  # still drawing: the clock moved on
            assert float(clock.search(tracker.inner_text()).group(1)) > first
        pg.locator("#gen-status").get_by_text("Drew").wait_for()
        gallery_images(pg, "gallery").first.wait_for()
        for _ in range(50):
            if "processing" not in tracker.inner_text():
                break
            pg.wait_for_timeout(100)
        assert "processing" not in tracker.inner_text()
    finally:
        pg.close()


@pytest.fixture(scope="module")
def narrow_page(page, server):
    """A phone-sized window: 420 x 900."""
    pg = new_page(page, server, width=420, height=900)
    yield pg
    pg.close()


def test_galleries_fit_a_narrow_window(narrow_page):
    pg = narrow_page
    pg.get_by_label("Prompt", exact=True).fill("red apple")
    pg.get_by_role("button", name="Generate", exact=True).click()
    pg.locator("#gen-status").get_by_text("Drew").wait_for()
    gallery_images(pg, "gallery").nth(3).wait_for()
    assert_inside_horizontally(pg, "gallery", 420)
    assert_captions_uncut(pg, "gallery")
    pg.screenshot(path=str(OUTPUT / "17_narrow_gallery.png"), full_page=True)
    open_tab(pg, "Latent interpolation")
    pg.get_by_role("button", name="Interpolate", exact=True).click()
    gallery_images(pg, "frames").nth(7).wait_for()
    assert_inside_horizontally(pg, "frames", 420)


def test_gif_shown_whole_in_a_narrow_window(narrow_page):
    pg = narrow_page
    open_tab(pg, "Latent interpolation")
    if not gallery_images(pg, "frames").count():
        pg.get_by_role("button", name="Interpolate", exact=True).click()
    pg.locator("#gif img").wait_for()
    assert_gif_shown_whole(pg, "gif")
    pg.screenshot(path=str(OUTPUT / "18_narrow_interpolation.png"), full_page=True)
