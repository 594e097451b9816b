"""GAN objectives on the discriminator's raw outputs, split into the terms a training step backpropagates.

The discriminator's loss is d_real(D(x)) + d_fake(D(G(z))) (+ gradient_penalty times `gradient_penalty()` for
WGAN-GP) and the generator's is g(D(G(z))). Each term is computed in float32 whatever the autocast dtype: squared
errors and margins lose too much in bf16/fp16.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.amp import GradScaler

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
    gradient_penalty: float = 0.0
    """Weight of the gradient penalty on D (0: none). A penalised D is a critic: no batch norm (see build)."""


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
    # Gulrajani et al. (2017), WGAN-GP: the critic raises D(x) - D(G(z)) under a penalty of weight 10 (their
    # lambda, Algorithm 1) on the gradient norm at points between real and fake; G raises D(G(z)).
    "wgan-gp": GANLoss(d_real=lambda out: -out.float().mean(), d_fake=lambda out: out.float().mean(),
                       g=lambda out: -out.float().mean(), readout=lambda out: out.float(), gradient_penalty=10.0),
}


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     scaler: GradScaler) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] with x_hat = e x + (1 - e) G(z), e ~ U[0, 1] per sample (Gulrajani et al.
    2017, eq. 3). `critic` runs D under the step's autocast. Under fp16 the gradient is taken of the scaled
    output and unscaled before its norm (PyTorch's AMP recipe "gradient penalty"), so small gradients do not
    underflow; an inf in it makes the penalty inf, and the scaler skips that step as for any overflow."""
    e = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
    x_hat = (e * real + (1 - e) * fake.detach()).requires_grad_(True)
    # The gradient of the mean, times the batch size, is each sample's own gradient; differentiating the mean keeps
    # the scaled gradient flowing into fp16 outputs at scale / batch (the initial scale 65536 itself overflows fp16).
    (grad,) = torch.autograd.grad(scaler.scale(critic(x_hat).float().mean()), x_hat, create_graph=True)
    grad = grad.float() * (len(real) / scaler.get_scale())  # get_scale() is 1.0 with the scaler off (bf16, fp32)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()
