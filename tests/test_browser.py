"""The app as a person uses it: headless Debian Chromium (never `playwright install`) drives the three
tabs of the real app.py served on a TINY model; screenshots go to tests/output/."""
from __future__ import annotations

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
