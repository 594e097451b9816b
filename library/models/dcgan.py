"""DCGAN (Radford et al., 2015) generator and discriminator for 28, 32 and 64 px images, with the variants the
studies need: self-attention (SAGAN), the PathMNIST discriminator's attention branch, and label conditioning.

The 64 px pair with g_width=128, d_width=64 (and model.attention=branch) is the PathMNIST study's architecture, built
module for module as report 000 prints it:
G = project Linear(z -> 1024*4*4, with bias), conv1-conv3 ConvTranspose 1024->512->256->128 (+ BatchNorm, LeakyReLU),
conv4 ConvTranspose 128->C + Tanh; D = conv1-conv4 Conv C->64->128->256->512 (+ BatchNorm from conv2, LeakyReLU,
Dropout2d), final Conv(512, 1, k4), attention Conv(256, 1, k1) + Sigmoid; every convolution without bias.
28 px starts from 7x7 instead of 4x4 so that two k4 s2 p1 up-convolutions land exactly on 28.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from library.models.gan_layers import SelfAttention, attention_branch, label_planes

BASE = {28: 7, 32: 4, 64: 4}  # spatial size of the generator's first feature map
STAGES = {28: 2, 32: 3, 64: 4}  # k4 s2 p1 (de)convolutions between BASE and the image


class Generator(nn.Module):
    """z (+ a label embedding, concatenated as in Mirza & Osindero, 2014) -> C x size x size in [-1, 1].
    With self_attention, a SAGAN block attends over the last hidden feature map (size/2 x size/2).
    Blocks are conv1 ... conv{STAGES}, as report 000 names the 64 px generator's."""

    def __init__(self, image_size: int, channels: int, noise_dim: int, width: int, num_classes: int = 0,
                 self_attention: bool = False):
        super().__init__()
        base, stages = BASE[image_size], STAGES[image_size]
        top = width * 2 ** (stages - 1)
        self.first = (top, base, base)
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None  # as wide as a one-hot y
        self.project = nn.Linear(noise_dim + num_classes, top * base * base)  # z -> top*base*base, viewed as top x base x base
        for i in range(1, stages):  # each block doubles the side and halves the channels
            c = top // 2 ** (i - 1)
            self.add_module(f"conv{i}", nn.Sequential(  # c x s x s -> c/2 x 2s x 2s
                nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.LeakyReLU(0.2, inplace=True),
            ))
        # -> width x size/2 x size/2
        self.attention = SelfAttention(width) if self_attention else None
        self.add_module(f"conv{stages}", nn.Sequential(  # -> C x size x size
            nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        ))
        self.blocks = [f"conv{i}" for i in range(1, stages + 1)]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        # Report 000's listing shows `project` as a bare Linear and no module between it and conv1; it cannot show
        # what forward does in between. The LeakyReLU(0.2) here (functional, so not a listed module) is our choice,
        # kept from the generator we had before.
        x = F.leaky_relu(self.project(z), 0.2).view(-1, *self.first)  # -> top x base x base
        for name in self.blocks:
            if name == self.blocks[-1] and self.attention is not None:
                x = self.attention(x)
            x = getattr(self, name)(x)
        return x


class Discriminator(nn.Module):
    """C x size x size (+ the label as num_classes one-hot planes) -> one logit. Blocks are conv1 ... conv{STAGES}
    and `final`, as report 000 names the 64 px discriminator's. attention: "self" puts a SAGAN block after conv1
    (size/2 x size/2); "branch" gates the feature map that enters the last block by a 1x1-conv sigmoid. In the 64 px
    pair that map is conv3's output, the only 256-channel map, as report 000's listing gives the branch's conv 256
    input channels; that the sigmoid multiplies the map (the gating, in forward) is kept from before, as a module
    listing cannot show it. batch_norm=False is for spectral normalization, which takes over
    batch norm's job of keeping D's scale in check (Miyato et al.)."""

    def __init__(self, image_size: int, channels: int, width: int, dropout: float, num_classes: int = 0,
                 attention: str = "none", batch_norm: bool = True):
        super().__init__()
        base, stages = BASE[image_size], STAGES[image_size]
        top = width * 2 ** (stages - 1)
        self.num_classes = num_classes
        # With batch norm every convolution is bias-free, as in report 000's listing. Without it (spectral norm, which
        # report 000's listing does not cover) the convolutions keep a bias, as they did before: our choice.
        bias = not batch_norm
        c_in = channels + num_classes
        for i in range(1, stages + 1):  # each block halves the side and doubles the channels
            c_out = width * 2 ** (i - 1)
            norm = [nn.BatchNorm2d(c_out)] if batch_norm and i > 1 else []
            self.add_module(f"conv{i}", nn.Sequential(  # c_in x s x s -> c_out x s/2 x s/2
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias),
                *norm,
                nn.LeakyReLU(0.2, inplace=True),
                nn.Dropout2d(dropout),
            ))
            if i == 1 and attention == "self":
                self.attention = SelfAttention(width)  # at width x size/2 x size/2
            c_in = c_out
        # -> top x base x base
        self.final = nn.Conv2d(top, 1, base, bias=bias)  # -> 1 x 1 x 1
        if attention == "branch":  # registered after `final`, where report 000's listing prints it
            self.attention = attention_branch(top // 2, bias)  # top/2 x 2base x 2base -> 1 x 2base x 2base
        self.blocks = [f"conv{i}" for i in range(1, stages + 1)]
        # The block whose output the attention reads; for 28 and 32 px, which report 000 does not cover, the branch's
        # place (the input of the last block, as conv3's output is in the 64 px pair) is our choice.
        self.attend_after = {"self": "conv1", "branch": self.blocks[-2]}.get(attention)
        self.gate = attention == "branch"

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            x = torch.cat([x, label_planes(labels, self.num_classes, x.shape[-1]).to(x.dtype)], 1)
        for name in self.blocks:
            x = getattr(self, name)(x)
            if name == self.attend_after:
                x = x * self.attention(x) if self.gate else self.attention(x)
        return self.final(x).flatten()
