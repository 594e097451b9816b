"""Images as tensors: uint8 pixels <-> floats in [-1, 1] (what generators output and the domain classifier
reads), and a batch of images saved as one PNG grid."""
from __future__ import annotations

import os

import torch
from torchvision.utils import save_image

from library.files import atomic_write


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> floats in [-1, 1], the scaling used in training and feature extraction alike."""
    return images.float() / 127.5 - 1


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Floats in [-1, 1] (clamped) -> uint8 images: what a generated image is once saved."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def write_grid(images: torch.Tensor, nrow: int, path: str | os.PathLike) -> None:
    """N x C x H x W floats in [0, 1] as one PNG, `nrow` images a row with 2 px padding, written atomically."""
    atomic_write(path, lambda tmp: save_image(images.float().cpu(), tmp, nrow=nrow, padding=2, format="png"))
