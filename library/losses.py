"""GAN objectives on the discriminator's raw outputs, split into the terms a training step backpropagates.

The discriminator's loss is d_real(D(x)) + d_fake(D(G(z))) and the generator's is g(D(G(z))). Each term is
computed in float32 whatever the autocast dtype: squared errors and margins lose too much in bf16/fp16.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Term = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GANLoss:
    d_real: Term
    """Discriminator's loss on real samples' outputs."""
    d_fake: Term
    """Discriminator's loss on generated samples' outputs."""
    g: Term
    """Generator's loss on generated samples' outputs."""
    readout: Term
    """D's outputs as reported (d_real, d_fake): probabilities for bce, raw scores otherwise."""


def _bce(target: float) -> Term:
    return lambda out: F.binary_cross_entropy_with_logits(out.float(), torch.full_like(out, target, dtype=torch.float32))


def _squared_error(target: float) -> Term:
    return lambda out: 0.5 * (out.float() - target).square().mean()


LOSSES: dict[str, GANLoss] = {
    # Goodfellow et al. (2014) with the non-saturating generator loss: G maximises log D(G(z)).
    "bce": GANLoss(d_real=_bce(1.0), d_fake=_bce(0.0), g=_bce(1.0), readout=lambda out: torch.sigmoid(out.float())),
    # Mao et al. (2017), least squares with targets a=0 (fake), b=1 (real), c=1 (what G wants D to say).
    "lsgan": GANLoss(d_real=_squared_error(1.0), d_fake=_squared_error(0.0), g=_squared_error(1.0),
                     readout=lambda out: out.float()),
    # Lim & Ye (2017) / Miyato et al. (2018): D pushes real above +1 and fake below -1; G raises D(G(z)).
    "hinge": GANLoss(d_real=lambda out: F.relu(1 - out.float()).mean(), d_fake=lambda out: F.relu(1 + out.float()).mean(),
                     g=lambda out: -out.float().mean(), readout=lambda out: out.float()),
}
