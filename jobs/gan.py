"""DCGAN on an image dataset, scored by a Fréchet distance. Run alone: `python jobs/gan.py --help`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from library.config import AdamConfig, DataConfig, EvalConfig, TrainConfig, section
from library.data import DATASETS, default_root, load_images
from library.files import atomic_write
from library.metrics import FrechetScorer, metric_name
from library.models.gan import DCGANConfig, build, sample_noise
from library.train import Context, Job


@dataclass(kw_only=True)
class GANConfig:
    data: DataConfig = section(DataConfig)
    model: DCGANConfig = section(DCGANConfig)
    optim: AdamConfig = section(AdamConfig)
    train: TrainConfig = section(TrainConfig)
    eval: EvalConfig = section(EvalConfig)


def to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class GANJob(Job):
    name = "gan"
    Config = GANConfig
    images = {"samples": "samples.png"}

    def primary_metric(self, cfg):
        return metric_name(cfg.eval.extractor), "min"

    def prepare(self, cfg):
        self.scorer(cfg, "cpu").prepare()

    def load_data(self, cfg):
        images = load_images(cfg.data.name, cfg.data.root or None, "train", cfg.data.image_size).images
        if cfg.data.limit:  # a fixed random subset: files such as mnist5k are sorted by label
            images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[: cfg.data.limit]]
        return [images]

    def scorer(self, cfg, device) -> FrechetScorer:
        d = cfg.data
        data = load_images(d.name, d.root or None, "train", d.image_size)
        return FrechetScorer(data.images, data.labels, data.num_classes, f"{d.name}-train-{d.image_size}",
                             cfg.eval.extractor, Path(d.root or default_root()) / "metric_cache", device)

    def build(self, cfg, ctx: Context):
        g, d = build(cfg.model, cfg.data.image_size, DATASETS[cfg.data.name].channels)
        betas = (cfg.optim.beta1, cfg.optim.beta2)
        opts = {"g": torch.optim.Adam(g.parameters(), cfg.optim.lr, betas),
                "d": torch.optim.Adam(d.parameters(), cfg.optim.lr, betas)}
        if ctx.rank == 0:  # evaluation noise has its own generator so scoring never shifts the training RNG
            gen = torch.Generator().manual_seed(cfg.train.seed + 12345)
            self.grid_noise = sample_noise(cfg.model, 16, "cpu", gen).to(ctx.device)
            self._scorer = None
        return {"g": g, "d": d}, opts

    def step(self, batch, ctx: Context):
        real = to_float(batch[0])
        g, d = ctx.models["g"], ctx.models["d"]
        opt_g, opt_d = ctx.optimizers["g"], ctx.optimizers["d"]
        z = sample_noise(ctx.cfg.model, len(real), ctx.device)
        ones, zeros = torch.ones(len(real), device=ctx.device), torch.zeros(len(real), device=ctx.device)

        # Discriminator: real -> 1, fake -> 0. One backward per forward, as in pytorch/examples' dcgan.
        opt_d.zero_grad(set_to_none=True)
        with ctx.autocast():
            fake = g(z)
            d_real = d(real)
            loss_d_real = F.binary_cross_entropy_with_logits(d_real, ones)
        ctx.backward(loss_d_real)
        with ctx.autocast():
            d_fake = d(fake.detach())
            loss_d_fake = F.binary_cross_entropy_with_logits(d_fake, zeros)
        ctx.backward(loss_d_fake)
        ctx.step(opt_d)

        # Generator: non-saturating loss, fake -> 1.
        opt_g.zero_grad(set_to_none=True)
        with ctx.autocast():
            loss_g = F.binary_cross_entropy_with_logits(d(fake), ones)
        ctx.backward(loss_g)
        ctx.step(opt_g)
        return {"loss_d": loss_d_real + loss_d_fake, "loss_g": loss_g,
                "d_real": torch.sigmoid(d_real.float()).mean(), "d_fake": torch.sigmoid(d_fake.float()).mean()}

    def evaluate(self, ctx: Context, final: bool):
        if ctx.rank != 0:  # the Fréchet distance needs all samples in one place
            return {}
        cfg = ctx.cfg
        g = ctx.model("g")
        grid = to_uint8(g(self.grid_noise)).float() / 255
        for name in (f"samples/epoch_{ctx.epoch + 1:04d}.png", "samples.png"):
            atomic_write(ctx.run_dir / name, lambda tmp: save_image(grid, tmp, nrow=4, padding=2, format="png"))
        if self._scorer is None:
            self._scorer = self.scorer(cfg, str(ctx.device))
        n = cfg.eval.final_num_samples if final else cfg.eval.num_samples
        gen = torch.Generator().manual_seed(cfg.train.seed + 54321)
        fakes = [to_uint8(g(sample_noise(cfg.model, len(chunk), "cpu", gen).to(ctx.device))).cpu()
                 for chunk in torch.arange(n).split(500)]
        return self._scorer.score(torch.cat(fakes))


JOB = GANJob()

if __name__ == "__main__":
    from library.cli import run_job

    run_job("gan")
