"""GANs on an image dataset, scored by a Fréchet distance: DCGAN (28/32/64 px, spectral norm, SAGAN
self-attention, an attention branch), report 000's printed PathMNIST pair, MLP GAN, conditional variants, and the
bce / lsgan / hinge / wgan-gp objectives, all chosen by `model.*` keys. Run alone: `python jobs/gan.py --help`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch

from library import seeds
from library.config import AdamConfig, DataConfig, EvalConfig, TrainConfig, require, section
from library.data import DATASETS, default_root, load_images
from library.job import Context, Job
from library.losses import LOSSES, gradient_penalty
from library.metrics import FrechetScorer, metric_name
from library.models.gan import GANModelConfig, build, interpolation_noise, sample_noise
from library.pixels import to_float, to_uint8, write_grid

GRID_COLUMNS = 8  # conditional grids: one row per label, this many fixed noise vectors per row
INTERPOLATION = (4, 8)  # rows (pairs of noise vectors) x steps from one end to the other


@dataclass(kw_only=True)
class GANConfig:
    data: DataConfig = section(DataConfig)
    model: GANModelConfig = section(GANModelConfig)
    optim: AdamConfig = section(AdamConfig)
    train: TrainConfig = section(TrainConfig)
    eval: EvalConfig = section(EvalConfig)

    def check(self, prefix: str) -> None:
        dataset = DATASETS[self.data.name]
        if self.model.arch == "pathmnist64":
            printed = f"{{}} for {prefix}model.arch='pathmnist64' (report 000's pair is 64 px, 3 channels)"
            require(self.data.image_size == 64, f"{prefix}data.image_size", self.data.image_size, printed.format(64))
            require(dataset.channels == 3, f"{prefix}data.name", self.data.name,
                    printed.format("a 3-channel dataset") + f"; {self.data.name!r} has {dataset.channels}")
        require(not (self.train.compile and LOSSES[self.model.loss].gradient_penalty), f"{prefix}train.compile",
                self.train.compile, f"false with {prefix}model.loss={self.model.loss!r} (torch.compile does not "
                "differentiate twice, which the gradient penalty needs)")
        if dataset.num_classes:
            return
        unlabelled = f"false: data.name={self.data.name!r} has no labels"
        require(not self.model.conditional, f"{prefix}model.conditional", self.model.conditional, unlabelled)
        require(self.eval.extractor == "inception", f"{prefix}eval.extractor", self.eval.extractor,
                f"inception for data.name={self.data.name!r}: the domain extractor is a classifier of labelled data")


def grid_inputs(cfg: GANConfig, num_classes: int, device) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """(noise, labels, images per row) of the progress grid: 16 fixed noise vectors in 4 rows, or for a
    conditional model one row per label with the same noise vectors in every row (style per column)."""
    gen = torch.Generator().manual_seed(cfg.train.seed + seeds.SAMPLE_GRID)
    if not cfg.model.conditional:
        return sample_noise(cfg.model, 16, "cpu", gen).to(device), None, 4
    z = sample_noise(cfg.model, GRID_COLUMNS, "cpu", gen).repeat(num_classes, 1)
    labels = torch.arange(num_classes).repeat_interleave(GRID_COLUMNS)
    return z.to(device), labels.to(device), GRID_COLUMNS


def write_generated(images: torch.Tensor, nrow: int, path: Path) -> None:
    """A grid of generated images as they are once saved and scored: uint8."""
    write_grid(to_uint8(images).float() / 255, nrow, path)


class GANJob(Job):
    name = "gan"
    Config = GANConfig
    images = MappingProxyType({"samples": "samples.png", "interpolation": "interpolation.png"})

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__(cfg)
        # Rank 0's evaluation state, made in build: fixed noise of the two grids, and the scorer (built at the
        # first evaluation: it loads the real images and the extractor, which training does not need).
        self.grid: tuple[torch.Tensor, torch.Tensor | None, int] | None = None
        self.interpolation: tuple[torch.Tensor, torch.Tensor | None, int] | None = None
        self.frechet: FrechetScorer | None = None

    @classmethod
    def primary_metric(cls, cfg):
        # The best epoch is chosen on the Fréchet distance to the real training images, the data the generator is
        # fitted to and the usual reference of FID. No test split is involved (nor scored: a GAN has no test score
        # here), so choosing on it is not choosing on test data, and it keeps the main job's numbers as they were.
        return metric_name(cfg.eval.extractor), "min"

    @classmethod
    def prepare(cls, cfg):
        cls.scorer(cfg, "cpu").prepare()

    def load_data(self):
        cfg = self.cfg
        data = load_images(cfg.data.name, cfg.data.root or None, "train", cfg.data.image_size)
        images, labels = data.images, data.labels
        if cfg.data.limit:  # a fixed random subset: files such as mnist5k are sorted by label
            keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[: cfg.data.limit]
            images, labels = images[keep], labels[keep]
        return [images, labels]

    @staticmethod
    def scorer(cfg: GANConfig, device) -> FrechetScorer:
        d = cfg.data
        data = load_images(d.name, d.root or None, "train", d.image_size)
        return FrechetScorer(data.images, data.labels, data.num_classes, f"{d.name}-train-{d.image_size}",
                             cfg.eval.extractor, Path(d.root or default_root()) / "metric_cache", device)

    def build(self, ctx: Context):
        cfg = self.cfg
        dataset = DATASETS[cfg.data.name]
        g, d = build(cfg.model, cfg.data.image_size, dataset.channels, dataset.num_classes)
        betas = (cfg.optim.beta1, cfg.optim.beta2)
        opts = {"g": torch.optim.Adam(g.parameters(), cfg.optim.lr, betas),
                "d": torch.optim.Adam(d.parameters(), cfg.optim.lr, betas)}
        if ctx.rank == 0:  # evaluation noise has its own generators so evaluating never shifts the training RNG
            self.grid = grid_inputs(cfg, dataset.num_classes, ctx.device)
            rows, steps = INTERPOLATION
            gen = torch.Generator().manual_seed(cfg.train.seed + seeds.INTERPOLATION)
            z = interpolation_noise(cfg.model, rows, steps, gen)
            labels = None
            if cfg.model.conditional:  # one label per row
                labels = (torch.arange(rows).repeat_interleave(steps) % dataset.num_classes).to(ctx.device)
            self.interpolation = (z.to(ctx.device), labels, steps)
        return {"g": g, "d": d}, opts

    def step(self, batch, ctx: Context):
        real = to_float(batch[0])
        labels = batch[1] if ctx.cfg.model.conditional else None  # fakes are drawn for the real batch's labels
        g, d = ctx.models["g"], ctx.models["d"]
        opt_g, opt_d = ctx.optimizers["g"], ctx.optimizers["d"]
        loss = LOSSES[ctx.cfg.model.loss]

        def critic(x):  # D on the gradient penalty's points, under the step's autocast
            with ctx.autocast():
                return ctx.model("d")(x, labels)

        # Discriminator, d_steps times. One backward per forward, as in pytorch/examples' dcgan: batch norm
        # sees real and fake batches separately.
        for _ in range(ctx.cfg.model.d_steps):
            z = sample_noise(ctx.cfg.model, len(real), ctx.device)
            opt_d.zero_grad(set_to_none=True)
            with ctx.autocast():
                fake = g(z, labels)
            if loss.gradient_penalty:
                # On D without its DDP wrapper (DDP cannot differentiate twice) and before D's DDP passes: the
                # penalty's gradient, accumulated locally, is then averaged over the ranks by the next synchronised
                # backward, as gradients accumulated under DDP's no_sync are.
                penalty = loss.gradient_penalty * gradient_penalty(critic, real, fake, ctx.scaler)
                ctx.backward(penalty)
            with ctx.autocast():
                d_real = d(real, labels)
            loss_d_real = loss.d_real(d_real)
            ctx.backward(loss_d_real)
            with ctx.autocast():
                d_fake = d(fake.detach(), labels)
            loss_d_fake = loss.d_fake(d_fake)
            ctx.backward(loss_d_fake)
            loss_d = loss_d_real + loss_d_fake
            if loss.gradient_penalty:
                # An fp16 overflow in the scaled gradient makes the penalty inf: the scaler skips this step and
                # lowers its scale. That is not a divergence, so it is not reported as one.
                loss_d = loss_d + (penalty.nan_to_num(0.0, 0.0, 0.0) if ctx.scaler.is_enabled() else penalty)
            ctx.step(opt_d)

        # Generator, on the last discriminator step's fakes.
        opt_g.zero_grad(set_to_none=True)
        with ctx.autocast():
            d_fooled = d(fake, labels)
        loss_g = loss.g(d_fooled)
        ctx.backward(loss_g)
        ctx.step(opt_g)
        return {"loss_d": loss_d, "loss_g": loss_g,
                "d_real": loss.readout(d_real).mean(), "d_fake": loss.readout(d_fake).mean()}

    def evaluate(self, ctx: Context, final: bool):
        if ctx.rank != 0:  # the Fréchet distance needs all samples in one place
            return {}
        grid = self.write_grids(ctx)
        cfg = ctx.cfg
        g = ctx.model("g")
        if self.frechet is None:
            self.frechet = self.scorer(cfg, str(ctx.device))
        n = cfg.eval.final_num_samples if final else cfg.eval.num_samples
        gen = torch.Generator().manual_seed(cfg.train.seed + seeds.SCORED_SAMPLES)
        num_classes = DATASETS[cfg.data.name].num_classes
        fakes = []
        for chunk in torch.arange(n).split(500):  # conditional: every class equally often
            labels = (chunk % num_classes).to(ctx.device) if cfg.model.conditional else None
            fakes.append(to_uint8(g(sample_noise(cfg.model, len(chunk), "cpu", gen).to(ctx.device), labels)).cpu())
        # grid_diversity: near-identical cells of the fixed grid are a collapse the class histogram can miss
        return {**self.frechet.score(torch.cat(fakes), final=final), "grid_diversity": self.frechet.diversity(grid)}

    def snapshot_every(self) -> int:
        return self.cfg.eval.grid_every_steps

    def snapshot(self, ctx: Context, step: int) -> None:
        """The progress grid after `step` training steps, from the same fixed noise as the per-epoch grids."""
        z, labels, per_row = self.grid
        write_generated(ctx.model("g")(z, labels), per_row, ctx.run_dir / f"samples/step_{step:08d}.png")

    def write_grids(self, ctx: Context) -> torch.Tensor:
        """The progress grid (this epoch's copy and the latest) and the interpolation grid, from fixed noise;
        returns the progress grid's images (uint8, on the CPU)."""
        g = ctx.model("g")
        z, labels, per_row = self.grid
        grid = g(z, labels)
        for name in (f"samples/epoch_{ctx.epoch + 1:04d}.png", "samples.png"):
            write_generated(grid, per_row, ctx.run_dir / name)
        z, labels, per_row = self.interpolation
        write_generated(g(z, labels), per_row, ctx.run_dir / "interpolation.png")
        return to_uint8(grid).cpu()


JOB = GANJob

if __name__ == "__main__":
    from library.cli import run_job

    run_job("gan")
