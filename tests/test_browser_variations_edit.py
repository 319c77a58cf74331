"""The Variations & restyle and Text edit tabs as a person uses them (headless Chromium, each test
on its own fresh page of the real app.py served on a TINY model); screenshots go to tests/output/."""
from __future__ import annotations

import pytest
from browser_helpers import OUTPUT, assert_gif_shown_whole, gallery_images, go_to_generate_and_draw

pytestmark = pytest.mark.browser


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
