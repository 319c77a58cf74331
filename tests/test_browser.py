"""The app as a person uses it: headless Debian Chromium (never `playwright install`) drives the three
tabs of the real app.py served on a TINY model; screenshots go to tests/output/."""
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


def test_text_to_image(page):
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("🍎 red apple")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator("#gen-status").get_by_text("candidates").wait_for()
    gallery_images(page, "gallery").nth(3).wait_for()
    assert gallery_images(page, "gallery").count() >= 4
    page.get_by_text("Model ").first.wait_for()
    assert "device" in page.locator("#header").inner_text()
    page.screenshot(path=str(OUTPUT / "1_text_to_image.png"), full_page=True)


def test_bad_input_shows_message_and_keeps_working(page):
    page.get_by_label("Prompt", exact=True).fill("")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("The prompt is empty").first.wait_for()
    page.screenshot(path=str(OUTPUT / "2_error_message.png"), full_page=True)
    page.get_by_label("Prompt", exact=True).fill("red heart")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator("#gen-status").get_by_text("Drew").wait_for()


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
    page.locator("#sheet a").first.wait_for()  # the PNG sheet is offered for download
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
    page.screenshot(path=str(OUTPUT / "7_reuse_seed_and_sheet.png"), full_page=True)


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
    # the summary stands above the gallery, whose label points at it
    status_box, gallery_box = page.locator("#gen-status").bounding_box(), page.locator("#gallery").bounding_box()
    assert status_box["y"] < gallery_box["y"]
    assert "the line above says which passed the gate" in page.locator("#gallery").inner_text()
    assert "16 judged fake" in page.locator("#gen-status").inner_text()
    assert gate.count() == 1
    page.screenshot(path=str(OUTPUT / "12_none_passed_the_gate.png"), full_page=True)


def test_send_before_generating_warns_and_leaves_no_error_badges(page, server):
    """A fresh page (empty gallery): the send buttons warn, switch nothing, mark nothing failed."""
    pg = page.context.browser.new_page(viewport={"width": 1280, "height": 1000})
    pg.set_default_timeout(TIMEOUT_MS)
    try:
        pg.goto(server.url, wait_until="domcontentloaded")
        pg.get_by_text("Emoji text-to-image").first.wait_for()
        for name in ("Send the first image to scoring", "Vary the first image", "Edit the first image"):
            pg.get_by_role("button", name=name).click()
            pg.get_by_text("Generate images first: the gallery is empty.").first.wait_for()
        pg.get_by_role("tab", name="Discriminator scoring").click()
        pg.locator("#realism").wait_for()
        pg.wait_for_timeout(500)
        assert pg.locator(".error").filter(has_text="Error").count() == 0, "error badges over the scoring tab"
        # the badge's selector is real: a failed Score (no image) does put one up
        pg.get_by_role("button", name="Score", exact=True).click()
        pg.get_by_text("Please upload an image").first.wait_for()
        pg.locator(".error").filter(has_text="Error").first.wait_for()
        pg.screenshot(path=str(OUTPUT / "13_send_before_generating.png"), full_page=True)
    finally:
        pg.close()
