"""The Discriminator scoring tab as a person uses it (headless Chromium, each test on its own fresh
page of the real app.py served on a TINY model): an image sent from the gallery, an upload, a
refused one, and no score shown before one is computed; screenshots go to tests/output/."""
from __future__ import annotations

import re

import pytest
from PIL import Image, ImageDraw

from browser_helpers import OUTPUT, go_to_generate_and_draw, shown_numbers

pytestmark = pytest.mark.browser


def test_send_to_scoring(page):
    go_to_generate_and_draw(page)
    page.get_by_role("button", name="Send the first image to scoring").click()
    page.locator("#verdict").get_by_text("Judged").wait_for()
    page.locator("#heatmap img").wait_for()
    page.screenshot(path=str(OUTPUT / "3_sent_to_scoring.png"), full_page=True)


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
    page.get_by_role("tab", name="Discriminator scoring").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("is not an image this app can read").first.wait_for()
    page.screenshot(path=str(OUTPUT / "6_upload_error.png"), full_page=True)


def test_no_score_is_shown_before_one_is_computed(page, tmp_path):
    """The realism and text-match boxes show nothing (gradio draws an empty number box as 0) until a
    Score; then realism shows the verdict's number, and text match only when there was a prompt."""
    im = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(im).ellipse((8, 8, 56, 56), fill=(30, 160, 30))
    im.save(tmp_path / "circle.png")
    page.get_by_role("tab", name="Discriminator scoring").click()
    page.get_by_role("button", name="Score", exact=True).wait_for()
    page.wait_for_timeout(500)
    assert shown_numbers(page, "realism", "match") == {"realism": None, "match": None}
    shown = page.locator("input[type=number]").evaluate_all(  # every number box on the page, any tab
        "els => els.filter(e => e.offsetParent !== null).map(e => e.getAttribute('aria-label'))")
    assert not [label for label in shown if "Realism" in label or "match" in label], shown
    assert "Not scored yet" in page.locator("#verdict").inner_text()
    page.screenshot(path=str(OUTPUT / "14_scoring_before_a_score.png"), full_page=True)

    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "circle.png"))
    page.locator("#upload img").wait_for()
    page.get_by_role("button", name="Score", exact=True).click()  # no prompt: no text-match score
    page.locator("#verdict").get_by_text("give a prompt").wait_for()
    page.locator("#realism input").wait_for()
    verdict_p = float(re.search(r"P\(real\) = ([01]\.\d+)", page.locator("#verdict").inner_text()).group(1))
    shown = shown_numbers(page, "realism", "match")
    assert shown["match"] is None and float(shown["realism"]) == pytest.approx(verdict_p, abs=6e-4)

    page.get_by_label("Prompt (optional, for the text-match score)").fill("green circle")
    page.get_by_role("button", name="Score", exact=True).click()
    page.locator("#verdict").get_by_text("matches the prompt").wait_for()
    page.locator("#match input").wait_for()
    verdict_m = float(re.search(r"prompt with P = ([01]\.\d+)", page.locator("#verdict").inner_text()).group(1))
    assert float(shown_numbers(page, "match")["match"]) == pytest.approx(verdict_m, abs=6e-4)
    page.screenshot(path=str(OUTPUT / "15_scoring_after_a_score.png"), full_page=True)
