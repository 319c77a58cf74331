"""The Latent interpolation tab as a person uses it (headless Chromium, each test on its own fresh
page of the real app.py served on a TINY model), between prompts and between images, in a desktop
and a narrow window; screenshots go to tests/output/."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from browser_helpers import OUTPUT, assert_gif_shown_whole, gallery_images, open_tab_ready

pytestmark = pytest.mark.browser


def test_interpolation(page):
    page.get_by_role("tab", name="Latent interpolation").click()
    page.get_by_role("button", name="Interpolate", exact=True).click()
    gallery_images(page, "frames").nth(7).wait_for()  # the default: 8 steps
    page.locator("#gif img").wait_for()
    assert gallery_images(page, "frames").count() >= 8
    assert_gif_shown_whole(page, "gif")
    page.screenshot(path=str(OUTPUT / "4_interpolation.png"), full_page=True)


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


def test_gif_shown_whole_in_a_narrow_window(narrow_page):
    pg = narrow_page
    open_tab_ready(pg, "Latent interpolation")
    pg.get_by_role("button", name="Interpolate", exact=True).click()
    pg.locator("#gif img").wait_for()
    assert_gif_shown_whole(pg, "gif")
    pg.screenshot(path=str(OUTPUT / "18_narrow_interpolation.png"), full_page=True)
