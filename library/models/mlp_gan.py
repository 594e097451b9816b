"""The fully connected GAN of Goodfellow et al. (2014), in the form PyTorch-GAN's gan.py popularised:
G = z -> 8w -> 16w -> 32w -> C*size*size (Tanh), D = C*size*size -> 16w -> 8w -> 1, LeakyReLU 0.2 throughout.
With w = 32 that is 256-512-1024 for G and 512-256 for D."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn



class Generator(nn.Module):
    def __init__(self, image_size: int, channels: int, noise_dim: int, width: int, num_classes: int = 0):
        super().__init__()
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None  # as wide as a one-hot y
        self.net = nn.Sequential(
            nn.Linear(noise_dim + num_classes, 8 * width), nn.LeakyReLU(0.2, inplace=True),  # -> 8w
            nn.Linear(8 * width, 16 * width), nn.BatchNorm1d(16 * width), nn.LeakyReLU(0.2, inplace=True),  # -> 16w
            nn.Linear(16 * width, 32 * width), nn.BatchNorm1d(32 * width), nn.LeakyReLU(0.2, inplace=True),  # -> 32w
            nn.Linear(32 * width, channels * image_size**2), nn.Tanh(),  # -> C*size*size
            nn.Unflatten(1, (channels, image_size, image_size)),  # -> C x size x size
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, image_size: int, channels: int, width: int, dropout: float, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(  # input: the flattened image (+ the one-hot label), C*size*size (+ num_classes)
            nn.Linear(channels * image_size**2 + num_classes, 16 * width), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout),  # -> 16w
            nn.Linear(16 * width, 8 * width), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout),  # -> 8w
            nn.Linear(8 * width, 1),  # -> 1
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = x.flatten(1)
        if self.num_classes:
            x = torch.cat([x, F.one_hot(labels, self.num_classes).to(x.dtype)], 1)
        return self.net(x).flatten()
