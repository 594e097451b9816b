"""Variational autoencoder on an image dataset (784 -> 64 -> 16 MLP, squared error + KL, Adam 1e-3, batch 32),
scored by its loss on held-out images; writes a grid of samples and a latent interpolation grid.
Run alone: `python jobs/vae.py --help`."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import torch

from library import seeds
from library.config import AdamConfig, DataConfig, TrainConfig, require, section
from library.data import DATASETS, load_images
from library.job import Context, Job
from library.models.vae import VAE, VAEModelConfig, interpolate, vae_loss
from library.pixels import write_grid

HELD_OUT = 0.1  # share of the train split held out for the test loss when a dataset has no test split
SAMPLES = 64  # sample grid: 8 x 8 decoded draws of z ~ N(0, I)
INTERPOLATION = (8, 10)  # rows (pairs of held-out images) x steps from one image's code to the other's


@dataclass(kw_only=True)
class VAEEvalConfig:
    every: int = 1
    """Held-out loss and image grids every N epochs (and always after the last one)."""

    def check(self, prefix: str) -> None:
        require(self.every >= 1, f"{prefix}every", self.every, "an integer >= 1")


@dataclass(kw_only=True)
class VAEConfig:
    data: DataConfig = section(DataConfig)
    model: VAEModelConfig = section(VAEModelConfig)
    optim: AdamConfig = field(default_factory=lambda: AdamConfig(lr=1e-3, beta1=0.9))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=32))
    eval: VAEEvalConfig = section(VAEEvalConfig)


def splits(cfg: VAEConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) uint8 images: the dataset's test split, else a fixed 10% of its train split."""
    d = cfg.data
    train = load_images(d.name, d.root or None, "train", d.image_size).images
    if "test" in DATASETS[d.name].splits:
        test = load_images(d.name, d.root or None, "test", d.image_size).images
    else:  # a fixed permutation: files such as mnist5k are sorted by label
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        cut = int(len(train) * HELD_OUT)
        train, test = train[order[cut:]], train[order[:cut]]
    if d.limit:
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: d.limit]]
    return train, test


class VAEJob(Job):
    name = "vae"
    Config = VAEConfig
    images = MappingProxyType({"samples": "samples.png", "interpolation": "interpolation.png"})

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__(cfg)
        self.held_out: torch.Tensor | None = None  # the held-out images on the trial's device, from build

    @classmethod
    def primary_metric(cls, cfg):
        return "test_loss", "min"

    @classmethod
    def prepare(cls, cfg):
        splits(cfg)  # a missing dataset fails here, with its prepare command, before any trial starts

    @cached_property
    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This trial's (train, held-out) images, read once for load_data and build."""
        return splits(self.cfg)

    def load_data(self):
        return [self.data[0]]

    def build(self, ctx: Context):
        cfg = self.cfg
        spec = DATASETS[cfg.data.name]
        shape = (spec.channels, cfg.data.image_size, cfg.data.image_size)
        vae = VAE(shape, cfg.model.hidden, cfg.model.latent_dim)
        self.held_out = self.data[1].to(ctx.device)
        return {"vae": vae}, {"vae": torch.optim.Adam(vae.parameters(), cfg.optim.lr, (cfg.optim.beta1, cfg.optim.beta2))}

    def step(self, batch, ctx: Context):
        x = batch[0].float() / 255
        ctx.optimizers["vae"].zero_grad(set_to_none=True)
        with ctx.autocast():
            recon, mu, logvar = ctx.models["vae"](x)
        losses = vae_loss(x, recon.float(), mu.float(), logvar.float())
        ctx.backward(losses["loss"])
        ctx.step(ctx.optimizers["vae"])
        return losses

    def evaluate(self, ctx: Context, final: bool):
        vae = ctx.model("vae")
        # Every rank scores its share of the held-out images; z at the posterior mean keeps the number
        # deterministic (and the training RNG untouched).
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)
        for idx in ctx.eval_indices(len(self.held_out)).split(1000):
            x = self.held_out[idx.to(ctx.device)].float() / 255
            mu, logvar = vae.encode(x)
            losses = vae_loss(x, vae.decode(mu), mu, logvar)
            sums += torch.stack([losses["loss_mse"] * len(x), losses["loss_kl"] * len(x),
                                 torch.tensor(float(len(x)), device=ctx.device)]).double()
        mse, kl, n = ctx.sum_over_ranks(sums).tolist()
        if ctx.rank == 0:
            self.write_grids(vae, ctx)
        return {"test_loss": (mse + kl) / n, "test_mse": mse / n, "test_kl": kl / n}

    def write_grids(self, vae: VAE, ctx: Context) -> None:
        gen = torch.Generator().manual_seed(ctx.cfg.train.seed + seeds.SAMPLE_GRID)
        z = torch.randn(SAMPLES, vae.latent_dim, generator=gen).to(ctx.device)
        for name in (f"samples/epoch_{ctx.epoch + 1:04d}.png", "samples.png"):
            write_grid(vae.decode(z), 8, ctx.run_dir / name)
        rows, steps = INTERPOLATION
        ends, _ = vae.encode(self.held_out[: 2 * rows].float() / 255)
        write_grid(vae.decode(interpolate(ends[0::2], ends[1::2], steps)), steps, ctx.run_dir / "interpolation.png")


JOB = VAEJob

if __name__ == "__main__":
    from library.cli import run_job

    run_job("vae")
