"""DCGAN (Radford et al., 2015) generator and discriminator for 28, 32 and 64 px images.

The 64 px pair with g_width=128, d_width=64 is the PathMNIST study's architecture:
G = Linear(z -> 1024x4x4), ConvTranspose 1024->512->256->128->C; D = Conv C->64->128->256->512, Conv(512, 1, k4).
28 px starts from 7x7 instead of 4x4 so that two k4 s2 p1 up-convolutions land exactly on 28.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from library.config import require

BASE = {28: 7, 32: 4, 64: 4}  # spatial size of the generator's first feature map
STAGES = {28: 2, 32: 3, 64: 4}  # k4 s2 p1 (de)convolutions between BASE and the image


@dataclass(kw_only=True)
class DCGANConfig:
    noise_dim: int = 100
    """Length of the generator's input noise vector z."""
    noise: str = "normal"
    """Distribution of z: normal (N(0, 1)) or uniform (U(-1, 1))."""
    g_width: int = 32
    """Channels of the generator's last hidden layer; each earlier layer doubles it."""
    d_width: int = 32
    """Channels of the discriminator's first layer; each later layer doubles it."""
    dropout: float = 0.2
    """Dropout2d after each discriminator block."""

    def check(self, prefix: str) -> None:
        require(1 <= self.noise_dim <= 4096, f"{prefix}noise_dim", self.noise_dim, "an integer in [1, 4096]")
        require(self.noise in ("normal", "uniform"), f"{prefix}noise", self.noise, "normal or uniform")
        require(1 <= self.g_width <= 1024, f"{prefix}g_width", self.g_width, "an integer in [1, 1024]")
        require(1 <= self.d_width <= 1024, f"{prefix}d_width", self.d_width, "an integer in [1, 1024]")
        require(0 <= self.dropout < 1, f"{prefix}dropout", self.dropout, "a float in [0, 1)")


def sample_noise(cfg: DCGANConfig, n: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
    if cfg.noise == "uniform":
        return torch.rand(n, cfg.noise_dim, device=device, generator=generator) * 2 - 1
    return torch.randn(n, cfg.noise_dim, device=device, generator=generator)


class Generator(nn.Module):
    def __init__(self, image_size: int, channels: int, noise_dim: int, width: int):
        super().__init__()
        base, stages = BASE[image_size], STAGES[image_size]
        top = width * 2 ** (stages - 1)
        self.project = nn.Sequential(  # z -> top x base x base
            nn.Linear(noise_dim, top * base * base, bias=False),
            nn.Unflatten(1, (top, base, base)),
            nn.BatchNorm2d(top),
            nn.LeakyReLU(0.2, inplace=True),
        )
        blocks = []
        for i in range(stages - 1):  # each block doubles the side and halves the channels
            c = top // 2**i
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.LeakyReLU(0.2, inplace=True)]
        self.upsample = nn.Sequential(*blocks)  # -> width x image_size/2 x image_size/2
        self.to_image = nn.Sequential(nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())  # -> C x size x size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.upsample(self.project(z)))


class Discriminator(nn.Module):
    def __init__(self, image_size: int, channels: int, width: int, dropout: float):
        super().__init__()
        base, stages = BASE[image_size], STAGES[image_size]
        layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(dropout)]
        for i in range(stages - 1):  # each block halves the side and doubles the channels
            c = width * 2**i
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(dropout)]
        self.features = nn.Sequential(*layers)  # -> width*2^(stages-1) x base x base
        self.logit = nn.Conv2d(width * 2 ** (stages - 1), 1, base)  # -> 1 x 1 x 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x)).flatten()


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(cfg: DCGANConfig, image_size: int, channels: int) -> tuple[Generator, Discriminator]:
    g = Generator(image_size, channels, cfg.noise_dim, cfg.g_width)
    d = Discriminator(image_size, channels, cfg.d_width, cfg.dropout)
    g.apply(init_weights)
    d.apply(init_weights)
    return g, d
