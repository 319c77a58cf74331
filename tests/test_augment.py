"""DiffAugment: whole-pixel translation, one cutout square, policy parsing."""
import pytest
import torch
import torch.nn.functional as F

from model.augment import cutout, diff_augment, translation


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x (C, H, W) moved by (dy, dx) pixels, the border pixels filling the gap."""
    c, h, w = x.shape
    pad = F.pad(x[None], (abs(dx), abs(dx), abs(dy), abs(dy)), mode="replicate")[0]
    return pad[:, abs(dy) + dy:abs(dy) + dy + h, abs(dx) + dx:abs(dx) + dx + w]


def test_translation_is_a_whole_pixel_shift_within_the_ratio():
    torch.manual_seed(0)
    x = torch.rand(32, 3, 16, 16)
    out = translation(x, ratio=0.125)  # up to 2 px at 16 px
    shifts = []
    for xi, oi in zip(x, out):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(_shifted(xi, dy, dx), oi)]
        assert found, "output is not an exact whole-pixel shift of its input (resampled?)"
        shifts.append(found[0])
    assert len(set(shifts)) > 5  # each image draws its own shift
    assert {s[0] > 0 for s in shifts} == {True, False}


def test_translation_keeps_a_one_pixel_checkerboard_for_the_discriminator():
    # the finest pattern G can draw; a bilinear half-pixel shift would average it to zero
    board = (torch.arange(16).view(16, 1) + torch.arange(16).view(1, 16)) % 2 * 2.0 - 1.0
    x = board.expand(64, 3, 16, 16).contiguous()
    out = translation(x)
    interior = out[:, :, 3:-3, 3:-3]  # away from the replicated border
    assert torch.equal(interior.abs(), torch.ones_like(interior))


def test_translation_and_cutout_pass_gradients():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    diff_augment(x, "translation,cutout").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_cutout_blanks_exactly_one_square_per_image():
    torch.manual_seed(1)
    x = torch.rand(8, 3, 16, 16) + 0.5  # no zeros of its own
    out = cutout(x, ratio=0.25)
    for xi, oi in zip(x, out):
        hole = (oi == 0).all(0)  # (H, W)
        ys, xs = hole.nonzero(as_tuple=True)
        assert hole.sum() == 16  # 4 x 4
        assert ys.max() - ys.min() == 3 and xs.max() - xs.min() == 3
        assert torch.equal(oi[:, ~hole], xi[:, ~hole])


def test_policy_parsing():
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(diff_augment(x, ""), x)
    with pytest.raises(ValueError, match="unknown augmentation"):
        diff_augment(x, "translation,colour")
