"""Variational autoencoder (Kingma & Welling 2014) with MLP encoder and decoder: 784 -> 64 -> 16 by default,
trained on squared error + KL divergence to N(0, I)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from library.config import require


@dataclass(kw_only=True)
class VAEModelConfig:
    hidden: int = 64
    """Width of the encoder's and decoder's hidden layer."""
    latent_dim: int = 16
    """Dimension of the latent code z."""

    def check(self, prefix: str) -> None:
        require(1 <= self.hidden <= 8192, f"{prefix}hidden", self.hidden, "an integer in [1, 8192]")
        require(1 <= self.latent_dim <= 1024, f"{prefix}latent_dim", self.latent_dim, "an integer in [1, 1024]")


class VAE(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], hidden: int = 64, latent_dim: int = 16):
        super().__init__()
        self.image_shape, self.latent_dim = image_shape, latent_dim
        pixels = image_shape[0] * image_shape[1] * image_shape[2]
        self.encoder = nn.Sequential(
            nn.Flatten(),                      # C x H x W -> 784
            nn.Linear(pixels, hidden), nn.ReLU(),  # 64
            nn.Linear(hidden, 2 * latent_dim),  # mean and log-variance, 16 each
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(),  # 16 -> 64
            nn.Linear(hidden, pixels), nn.Sigmoid(),  # 784 pixels in [0, 1]
            nn.Unflatten(1, image_shape),  # C x H x W
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation: gradients reach mu and logvar
        return self.decode(z), mu, logvar


def vae_loss(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image sums, averaged over the batch: squared error over pixels and KL(q(z|x) || N(0, I)) over z."""
    mse = F.mse_loss(recon, x, reduction="none").flatten(1).sum(1)
    kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1)
    return {"loss": (mse + kl).mean(), "loss_mse": mse.mean(), "loss_kl": kl.mean()}


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Rows of `steps` latent codes on the straight line from each code in `a` to its partner in `b`:
    (rows * steps) x latent_dim, row by row."""
    t = torch.linspace(0, 1, steps, device=a.device)[None, :, None]
    return (a[:, None] * (1 - t) + b[:, None] * t).flatten(0, 1)
