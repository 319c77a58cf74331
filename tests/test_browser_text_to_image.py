"""The Text to image tab as a person uses it (headless Chromium, each test on its own fresh page of the
real app.py served on a TINY model): drawing, refused prompts, other readings, reusing a seed,
the send buttons on an empty gallery, progress, a narrow window; screenshots go to tests/output/."""
from __future__ import annotations

import re

import pytest
from browser_helpers import (OUTPUT, assert_captions_uncut, assert_inside_horizontally, gallery_images,
                             go_to_generate_and_draw, open_tab, shown_numbers)

from model.serving.sheet import sheet_parameters

pytestmark = pytest.mark.browser


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
    meta = sheet_parameters(path)
    assert meta["prompt"] == "red apple" and sorted(meta["seeds"]) == shown, (meta, captions)
    page.screenshot(path=str(OUTPUT / "7b_sheet.png"), full_page=True)
    go_to_generate_and_draw(page, seed=60)  # a new result: the last one's sheet goes
    sheet.wait_for(state="hidden")
    page.locator("#gallery").get_by_text(re.compile(r"seed 6\d")).first.wait_for()
    page.locator("#examples").get_by_text("dog face", exact=True).first.click()  # a cached example (seeds 0-15)
    page.locator("#gallery").get_by_text(re.compile(r"seed (\d|1[0-5]) ·")).first.wait_for()
    page.get_by_role("button", name="Make a PNG sheet of these images").click()
    page.get_by_text("Nothing to put on a sheet yet").first.wait_for()
    assert not sheet.is_visible()


def test_what_the_user_reads_when_every_candidate_is_rejected(page):
    page.get_by_role("tab", name="Text to image").click()
    page.get_by_label("Prompt", exact=True).fill("rocket")
    gate = page.get_by_label("Gate: discard candidates with P(real) below").first
    page.get_by_label("Seed (-1 = random)", exact=True).first.fill("500")
    page.get_by_role("button", name="Generate", exact=True).click()  # a first result at the default gate
    # this click's own result (seeds 500-515): a second click while this one runs would be dropped
    page.locator("#gallery").get_by_text(re.compile(r"seed 5\d\d")).first.wait_for()
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


def test_send_before_generating_warns_and_leaves_no_error_badges(page):
    """A fresh page (empty gallery): the send buttons warn, switch nothing, mark nothing failed."""
    for name in ("Send the first image to scoring", "Vary the first image", "Edit the first image"):
        page.get_by_role("button", name=name).click()
        page.get_by_text("Generate images first: the gallery is empty.").first.wait_for()
    page.get_by_role("tab", name="Discriminator scoring").click()
    page.get_by_role("button", name="Score", exact=True).wait_for()
    page.wait_for_timeout(500)
    assert page.locator(".error").filter(has_text="Error").count() == 0, "error badges over the scoring tab"
    assert shown_numbers(page, "realism", "match") == {"realism": None, "match": None}
    assert "Not scored yet" in page.locator("#verdict").inner_text()
    assert page.locator("#upload img").count() == 0  # nothing was put in the upload box
    page.screenshot(path=str(OUTPUT / "13_send_before_generating.png"), full_page=True)
    # the badge's selector is real: a failed Score (no image) does put one up
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("Upload an image first").first.wait_for()
    page.locator(".error").filter(has_text="Error").first.wait_for()
    assert shown_numbers(page, "realism", "match") == {"realism": None, "match": None}
    page.screenshot(path=str(OUTPUT / "13b_score_without_an_image.png"), full_page=True)


def test_progress_is_shown_while_generating(page, server, monkeypatch):
    """While the images are drawn, the gallery says so and counts the seconds; then it goes away."""
    draw = server.pipeline.text_to_image.generate

    def slow_generate(*args, **kwargs):  # the tiny model draws in milliseconds: make the wait visible
        import time

        time.sleep(3)
        return draw(*args, **kwargs)

    monkeypatch.setattr(server.pipeline.text_to_image, "generate", slow_generate)
    page.get_by_label("Prompt", exact=True).fill("rocket")
    page.get_by_role("button", name="Generate", exact=True).click()
    tracker = page.locator("#gallery [data-testid=status-tracker]")
    # "processing | 1.2s", or "processing | 1.2/0.3s" once gradio has timed earlier calls
    clock = re.compile(r"processing \| (\d+\.\d)(/\d+\.\d)?s")
    tracker.get_by_text(clock).wait_for()
    first = float(clock.search(tracker.inner_text()).group(1))
    page.screenshot(path=str(OUTPUT / "16_progress_while_generating.png"), full_page=True)
    page.wait_for_timeout(700)
    if "processing" in tracker.inner_text():  # still drawing: the clock moved on
        assert float(clock.search(tracker.inner_text()).group(1)) > first
    page.locator("#gen-status").get_by_text("Drew").wait_for()
    gallery_images(page, "gallery").first.wait_for()
    for _ in range(50):
        if "processing" not in tracker.inner_text():
            break
        page.wait_for_timeout(100)
    assert "processing" not in tracker.inner_text()


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
