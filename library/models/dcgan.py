"""DCGAN (Radford et al., 2015) generator and discriminator for 28, 32 and 64 px images, with the variants the
studies need: self-attention (SAGAN), an attention branch, label conditioning, and the critic's norms.

The 64 px pair with g_width=128, d_width=64 has the channel plan of report 000's PathMNIST pair
(G = Linear(z -> 1024x4x4), ConvTranspose 1024->512->256->128->C; D = Conv C->64->128->256->512, Conv(512, 1, k4))
but not its layers (biases, the norm after the Linear, where the attention branch reads): the printed pair
itself is pathmnist64.py. 28 px starts from 7x7 instead of 4x4 so that two k4 s2 p1 up-convolutions land
exactly on 28.
"""
from __future__ import annotations

import torch
from torch import nn

from library.models.gan_layers import AttentionBranch, SelfAttention, label_planes

BASE = {28: 7, 32: 4, 64: 4}  # spatial size of the generator's first feature map
STAGES = {28: 2, 32: 3, 64: 4}  # k4 s2 p1 (de)convolutions between BASE and the image


class Generator(nn.Module):
    """z (+ a label embedding, concatenated as in Mirza & Osindero, 2014) -> C x size x size in [-1, 1].
    With self_attention, a SAGAN block attends over the last hidden feature map (size/2 x size/2)."""

    def __init__(self, image_size: int, channels: int, noise_dim: int, width: int, num_classes: int = 0,
                 self_attention: bool = False):
        super().__init__()
        base, stages = BASE[image_size], STAGES[image_size]
        top = width * 2 ** (stages - 1)
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None  # as wide as a one-hot y
        self.project = nn.Sequential(  # z -> top x base x base
            nn.Linear(noise_dim + num_classes, top * base * base, bias=False),
            nn.Unflatten(1, (top, base, base)),
            nn.BatchNorm2d(top),
            nn.LeakyReLU(0.2, inplace=True),
        )
        blocks = []
        for i in range(stages - 1):  # each block doubles the side and halves the channels
            c = top // 2**i
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.LeakyReLU(0.2, inplace=True)]
        self.upsample = nn.Sequential(*blocks)  # -> width x image_size/2 x image_size/2
        self.attention = SelfAttention(width) if self_attention else nn.Identity()
        self.to_image = nn.Sequential(nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())  # -> C x size x size

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.to_image(self.attention(self.upsample(self.project(z))))


class Discriminator(nn.Module):
    """C x size x size (+ the label as num_classes one-hot planes) -> one logit. attention: "self" puts a SAGAN block after the first block
    (size/2 x size/2), "branch" gates the last feature map by a 1x1-conv sigmoid. norm after blocks 2.. :
    "batch"; "none" under spectral normalization, which takes over batch norm's job of keeping D's scale in check
    (Miyato et al.); "layer" for a WGAN-GP critic, whose penalty is per sample and so must not mix the samples
    of a batch (Gulrajani et al. 2017, section 4, recommend layer norm in place of batch norm)."""

    def __init__(self, image_size: int, channels: int, width: int, dropout: float, num_classes: int = 0,
                 attention: str = "none", norm: str = "batch"):
        super().__init__()
        base, stages = BASE[image_size], STAGES[image_size]
        top = width * 2 ** (stages - 1)
        self.num_classes = num_classes
        layers = [nn.Conv2d(channels + num_classes, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(dropout)]
        if attention == "self":
            layers.append(SelfAttention(width))
        for i in range(stages - 1):  # each block halves the side and doubles the channels
            c = width * 2**i
            # GroupNorm with one group: layer norm over C x h x w, with a scale and shift per channel
            normalize = {"batch": [nn.BatchNorm2d(2 * c)], "layer": [nn.GroupNorm(1, 2 * c)], "none": []}[norm]
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=norm == "none"), *normalize, nn.LeakyReLU(0.2, inplace=True),
                       nn.Dropout2d(dropout)]
        if attention == "branch":
            layers.append(AttentionBranch(top))
        self.features = nn.Sequential(*layers)  # -> top x base x base
        self.logit = nn.Conv2d(top, 1, base)  # -> 1 x 1 x 1

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            x = torch.cat([x, label_planes(labels, self.num_classes, x.shape[-1]).to(x.dtype)], 1)
        return self.logit(self.features(x)).flatten()
