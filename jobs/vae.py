"""Variational autoencoder on an image dataset (784 -> 64 -> 16 MLP, squared error + KL, Adam 1e-3, batch 32),
scored by its loss on held-out images: the best epoch by the validation loss, the test loss reported at it; writes a
grid of samples and a latent interpolation grid. Run alone: `python jobs/vae.py --help`."""
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

HELD_OUT = 0.1  # share of the train split held out for each of test and validation where a dataset lacks that split
EVAL_DRAWS = 4  # z draws per held-out image for its loss, averaged (our choice: the spread of one draw is ~1 nat)
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


def splits(cfg: VAEConfig) -> dict[str, torch.Tensor]:
    """train, val and test uint8 images: the dataset's own test and val splits where it has them (PathMNIST has
    both), else a fixed 10% of its train split for each, disjoint (data.limit subsets what training is left)."""
    d = cfg.data
    train = load_images(d.name, d.root or None, "train", d.image_size).images
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))  # mnist5k is sorted by label
    cut, taken = int(len(train) * HELD_OUT), 0
    out = {}
    for split in ("test", "val"):
        if split in DATASETS[d.name].splits:
            out[split] = load_images(d.name, d.root or None, split, d.image_size).images
        else:
            out[split] = train[order[taken:taken + cut]]
            taken += cut
    train = train[order[taken:]] if taken else train
    if d.limit:
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: d.limit]]
    return {"train": train, **out}


class VAEJob(Job):
    name = "vae"
    Config = VAEConfig
    images = MappingProxyType({"samples": "samples.png", "interpolation": "interpolation.png"})

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__(cfg)
        # From build, on the trial's device: the val and test images, and each one's fixed draws of the noise that
        # samples z from q(z|x) when scoring it, so that every epoch is scored on the same draws.
        self.held_out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def primary_metric(cls, cfg):
        return "val_loss", "min"

    @classmethod
    def test_metrics(cls, cfg):
        return "test_loss", "test_mse", "test_kl"

    @classmethod
    def prepare(cls, cfg):
        splits(cfg)  # a missing dataset fails here, with its prepare command, before any trial starts

    @cached_property
    def data(self) -> dict[str, torch.Tensor]:
        """This trial's train, val and test images, read once for load_data and build."""
        return splits(self.cfg)

    def load_data(self):
        return [self.data["train"]]

    def build(self, ctx: Context):
        cfg = self.cfg
        spec = DATASETS[cfg.data.name]
        shape = (spec.channels, cfg.data.image_size, cfg.data.image_size)
        vae = VAE(shape, cfg.model.hidden, cfg.model.latent_dim)
        for k, split in enumerate(("val", "test")):  # a generator of its own: scoring never shifts the training RNG
            gen = torch.Generator().manual_seed(cfg.train.seed + seeds.VAE_EVAL_NOISE + k)
            eps = torch.randn(EVAL_DRAWS, len(self.data[split]), cfg.model.latent_dim, generator=gen)
            self.held_out[split] = (self.data[split].to(ctx.device), eps.to(ctx.device))
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
        out = {}
        for split, (images, eps) in self.held_out.items():
            mse, kl, n = self.held_out_loss(vae, images, eps, ctx)
            out |= {f"{split}_loss": (mse + kl) / n, f"{split}_mse": mse / n, f"{split}_kl": kl / n}
        if ctx.rank == 0:
            self.write_grids(vae, ctx)
        return out

    @staticmethod
    def held_out_loss(vae: VAE, images: torch.Tensor, eps: torch.Tensor, ctx: Context) -> tuple[float, float, float]:
        """Summed squared error and KL over the images (every rank its share), and their count. The loss training
        minimises: z sampled from q(z|x), here with the fixed noise `eps` (EVAL_DRAWS draws, averaged); decoding
        the posterior mean instead would flatter large latent codes."""
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)
        for idx in ctx.eval_indices(len(images)).split(1000):
            idx = idx.to(ctx.device)
            x = images[idx].float() / 255
            mu, logvar = vae.encode(x)
            for draw in eps[:, idx]:
                losses = vae_loss(x, vae.decode(mu + draw * (0.5 * logvar).exp()), mu, logvar)
                sums += torch.stack([losses["loss_mse"] * len(x), losses["loss_kl"] * len(x),
                                     torch.tensor(float(len(x)), device=ctx.device)]).double() / len(eps)
        mse, kl, n = ctx.sum_over_ranks(sums).tolist()
        return mse, kl, round(n)

    def write_grids(self, vae: VAE, ctx: Context) -> None:
        gen = torch.Generator().manual_seed(ctx.cfg.train.seed + seeds.SAMPLE_GRID)
        z = torch.randn(SAMPLES, vae.latent_dim, generator=gen).to(ctx.device)
        for name in (f"samples/epoch_{ctx.epoch + 1:04d}.png", "samples.png"):
            write_grid(vae.decode(z), 8, ctx.run_dir / name)
        rows, steps = INTERPOLATION
        ends, _ = vae.encode(self.held_out["test"][0][: 2 * rows].float() / 255)
        write_grid(vae.decode(interpolate(ends[0::2], ends[1::2], steps)), steps, ctx.run_dir / "interpolation.png")


JOB = VAEJob

if __name__ == "__main__":
    from library.cli import run_job

    run_job("vae")
