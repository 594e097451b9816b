"""A fully connected GAN (Goodfellow et al. 2014): G = z -> 4w -> 8w -> 16w -> 32w -> C*size*size (Tanh), batch
norm from G's second layer on; D = C*size*size -> 16w -> 8w -> 1 (one logit); LeakyReLU 0.2 throughout.

With w = 32 (the default g_width and d_width) and model.dropout=0 these are the layers of the template that
report 002 says its G and D follow ("designed following the template"): G 128-256-512-1024, D 512-256. The report
does not print the layers. They come from the template's comments as it circulates in public copies of the same
assignment (LSTM on palindromes, an MNIST GAN, images every 500 batches, interpolation): G "Linear
args.latent_dim -> 128, LeakyReLU(0.2), Linear 128 -> 256, Bnorm, LeakyReLU(0.2), ... Linear 1024 -> 768" (sic:
the 784 pixels are meant), "Output non-linearity"; D "Linear 784 -> 512, LeakyReLU(0.2), Linear 512 -> 256,
LeakyReLU(0.2), Linear 256 -> 1, Output non-linearity". Ours gives D's logit, which the loss reads through its
own sigmoid; D's dropout is ours (model.dropout; the template has none). The same layers with conditional=true,
the label joined to z and to the image, are our linear conditional GAN (report 003 says its G and D are "built
with linear layers" and does not give their sizes)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
    def __init__(self, image_size: int, channels: int, noise_dim: int, width: int, num_classes: int = 0):
        super().__init__()
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None  # as wide as a one-hot y
        self.net = nn.Sequential(
            nn.Linear(noise_dim + num_classes, 4 * width), nn.LeakyReLU(0.2, inplace=True),  # -> 4w
            nn.Linear(4 * width, 8 * width), nn.BatchNorm1d(8 * width), nn.LeakyReLU(0.2, inplace=True),  # -> 8w
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
