"""Report 000's 64x64 DCGAN pair for PathMNIST, module for module as the report prints it (G 12,672,768
parameters, D 2,765,824 at noise_dim 100): every convolution without a bias, the generator's Linear with one,
no batch norm after that Linear, and D's attention branch, a bias-free Conv2d(256, 1, 1x1) + Sigmoid whose 256
input channels can only be conv3's output. Module names and order are the printed ones, so `print(model)`
reproduces the listing (tests/golden/report000_pathmnist64.txt).

The listing shows modules, not `forward`; where it leaves the data flow open, the choice below is ours:
- G: nothing between `project` and conv1 (no activation is printed there); the Linear's output is reshaped to
  1024 x 4 x 4.
- D: the attention map gates conv3's output (h * attention(h), a weight in (0, 1) per position) before conv4;
  `final` (k4, no padding) turns conv4's 4x4 map into one score per image, with no sigmoid after it (the
  report's D losses go negative: a critic, or logits under a loss that applies its own sigmoid).
Also ours: the weight init (DCGAN's, in gan.py) and the dropout rate as a setting (model.dropout; its default
0.2 is the printed p).
"""
from __future__ import annotations

import torch
from torch import nn


def _up(c_in: int, c_out: int) -> nn.Sequential:  # doubles the side
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.2, inplace=True))


def _down(c_in: int, c_out: int, dropout: float, batch_norm: bool = True) -> nn.Sequential:  # halves the side
    norm = [nn.BatchNorm2d(c_out)] if batch_norm else []
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), *norm, nn.LeakyReLU(0.2, inplace=True),
                         nn.Dropout2d(dropout))


class Generator(nn.Module):
    """z -> 3 x 64 x 64 in [-1, 1]."""

    def __init__(self, noise_dim: int = 100):
        super().__init__()
        self.project = nn.Linear(noise_dim, 1024 * 4 * 4)  # z -> 16384 = 1024 x 4 x 4
        self.conv1 = _up(1024, 512)  # -> 512 x 8 x 8
        self.conv2 = _up(512, 256)  # -> 256 x 16 x 16
        self.conv3 = _up(256, 128)  # -> 128 x 32 x 32
        self.conv4 = nn.Sequential(nn.ConvTranspose2d(128, 3, 4, 2, 1, bias=False), nn.Tanh())  # -> 3 x 64 x 64

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.project(z).view(-1, 1024, 4, 4)
        return self.conv4(self.conv3(self.conv2(self.conv1(h))))


class Discriminator(nn.Module):
    """3 x 64 x 64 -> one score per image."""

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        self.conv1 = _down(3, 64, dropout, batch_norm=False)  # -> 64 x 32 x 32
        self.conv2 = _down(64, 128, dropout)  # -> 128 x 16 x 16
        self.conv3 = _down(128, 256, dropout)  # -> 256 x 8 x 8
        self.conv4 = _down(256, 512, dropout)  # -> 512 x 4 x 4
        self.final = nn.Conv2d(512, 1, 4, 1, bias=False)  # -> 1 x 1 x 1
        self.attention = nn.Sequential(nn.Conv2d(256, 1, 1, 1, bias=False), nn.Sigmoid())  # conv3's map -> 1 x 8 x 8

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv3(self.conv2(self.conv1(x)))
        h = h * self.attention(h)  # each of the 8 x 8 positions weighted in (0, 1)
        return self.final(self.conv4(h)).flatten()
