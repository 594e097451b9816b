"""The GAN family's base: one model config, noise, weight init, spectral normalization and `build`.

The variants live one per file: dcgan.py (28/32/64 px, self-attention, an attention branch, conditioning),
pathmnist64.py (report 000's printed pair) and mlp_gan.py; the objectives are in library/losses.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from library.config import require
from library.losses import LOSSES
from library.models import dcgan, mlp_gan, pathmnist64


@dataclass(kw_only=True)
class GANModelConfig:
    arch: str = "dcgan"
    """dcgan (convolutional), mlp (fully connected, Goodfellow et al. 2014; with conditional=true the linear
    conditional GAN) or pathmnist64 (report 000's printed 64 px pair for 3-channel images; its widths and attention
    are fixed, so g_width, d_width and attention do not apply)."""
    noise_dim: int = 100
    """Length of the generator's input noise vector z."""
    noise: str = "normal"
    """Distribution of z: normal (N(0, 1)) or uniform (U(-1, 1))."""
    g_width: int = 32
    """Channels of the generator's last hidden layer; each earlier layer doubles it (mlp: hidden sizes 4, 8, 16, 32x)."""
    d_width: int = 32
    """Channels of the discriminator's first layer; each later layer doubles it (mlp: hidden sizes 16, 8x)."""
    dropout: float = 0.2
    """Dropout after each discriminator block."""
    attention: str = "none"
    """dcgan only: none, self (SAGAN self-attention in G and D, at half the image size) or branch (a 1x1-conv
    sigmoid gate on D's last feature map; report 000's own branch is part of arch=pathmnist64)."""
    spectral_norm: str = "off"
    """Spectral normalization (Miyato et al. 2018) of the weights: off, d (the discriminator's; replaces its batch
    norm) or both (G's too, as SAGAN does)."""
    conditional: bool = False
    """Condition G and D on the class label (label embedding into G's input, one-hot label planes into D's)."""
    loss: str = "bce"
    """bce (non-saturating), lsgan (least squares), hinge or wgan-gp (a critic with gradient penalty 10; the paper
    pairs it with d_steps=5 and Adam lr 1e-4, betas (0, 0.9), which are set in their own keys). With wgan-gp the
    dcgan critic has layer norm in place of batch norm; pathmnist64 keeps the batch norm the report prints."""
    d_steps: int = 1
    """Discriminator updates per generator update (each on fresh noise, with the step's real batch)."""

    def check(self, prefix: str) -> None:
        require(self.arch in ("dcgan", "mlp", "pathmnist64"), f"{prefix}arch", self.arch, "dcgan, mlp or pathmnist64")
        require(1 <= self.noise_dim <= 4096, f"{prefix}noise_dim", self.noise_dim, "an integer in [1, 4096]")
        require(self.noise in ("normal", "uniform"), f"{prefix}noise", self.noise, "normal or uniform")
        require(1 <= self.g_width <= 1024, f"{prefix}g_width", self.g_width, "an integer in [1, 1024]")
        require(1 <= self.d_width <= 1024, f"{prefix}d_width", self.d_width, "an integer in [1, 1024]")
        require(0 <= self.dropout < 1, f"{prefix}dropout", self.dropout, "a float in [0, 1)")
        require(self.attention in ("none", "self", "branch"), f"{prefix}attention", self.attention,
                "none, self or branch")
        require(self.attention == "none" or self.arch == "dcgan", f"{prefix}attention", self.attention,
                f"none with {prefix}arch={self.arch!r} (attention is for the convolutional dcgan; pathmnist64 has "
                f"its printed branch built in)")
        require(self.attention != "self" or min(self.g_width, self.d_width) >= 8, f"{prefix}attention",
                self.attention, f"self needs {prefix}g_width and {prefix}d_width >= 8 (its query/key have width/8 "
                f"channels; got {self.g_width} and {self.d_width})")
        require(self.spectral_norm in ("off", "d", "both"), f"{prefix}spectral_norm", self.spectral_norm,
                "off, d or both")
        require(self.loss in LOSSES, f"{prefix}loss", self.loss, ", ".join(LOSSES))
        require(not (self.conditional and self.arch == "pathmnist64"), f"{prefix}conditional", self.conditional,
                f"false with {prefix}arch='pathmnist64' (the printed pair takes no label)")
        require(1 <= self.d_steps <= 100, f"{prefix}d_steps", self.d_steps, "an integer in [1, 100]")


def sample_noise(cfg: GANModelConfig, n: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
    if cfg.noise == "uniform":
        return torch.rand(n, cfg.noise_dim, device=device, generator=generator) * 2 - 1
    return torch.randn(n, cfg.noise_dim, device=device, generator=generator)


def interpolation_noise(cfg: GANModelConfig, rows: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """rows x steps noise vectors: each row walks in a straight line from one random z to another."""
    ends = sample_noise(cfg, 2 * rows, "cpu", generator).view(rows, 2, 1, cfg.noise_dim)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    return (ends[:, 0] * (1 - t) + ends[:, 1] * t).flatten(0, 1)


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv and linear weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def add_spectral_norm(model: nn.Module) -> None:
    """Divide every weight by its largest singular value (one power iteration per training forward)."""
    for module in list(model.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            spectral_norm(module)


def build(cfg: GANModelConfig, image_size: int, channels: int, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator, initialised. num_classes is used when cfg.conditional."""
    classes = num_classes if cfg.conditional else 0
    if cfg.arch == "mlp":
        g = mlp_gan.Generator(image_size, channels, cfg.noise_dim, cfg.g_width, classes)
        d = mlp_gan.Discriminator(image_size, channels, cfg.d_width, cfg.dropout, classes)
    elif cfg.arch == "pathmnist64":
        g, d = pathmnist64.Generator(cfg.noise_dim), pathmnist64.Discriminator(cfg.dropout)
    else:
        norm = "none" if cfg.spectral_norm != "off" else "layer" if LOSSES[cfg.loss].gradient_penalty else "batch"
        g = dcgan.Generator(image_size, channels, cfg.noise_dim, cfg.g_width, classes, cfg.attention == "self")
        d = dcgan.Discriminator(image_size, channels, cfg.d_width, cfg.dropout, classes, cfg.attention, norm)
    g.apply(init_weights)
    d.apply(init_weights)
    if cfg.spectral_norm != "off":
        add_spectral_norm(d)
    if cfg.spectral_norm == "both":
        add_spectral_norm(g)
    return g, d
