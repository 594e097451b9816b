"""A job that exists only for the scale benchmark (`python -m library.bench --scale`): a trial is one tiny step, so
what the benchmark measures is the system's cost per trial (expanding, submitting, starting, following, collecting,
reporting), not training. It fits y = 3x + 1 by least squares on a few seeded points; its metric is the validation
mean squared error. Not a study: no report asked for it."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from library.config import TrainConfig, require, section
from library.job import Context, Job
from library.sequence import OptimConfig, TextEvalConfig


@dataclass(kw_only=True)
class ProbeData:
    points: int = 32
    """Training points (the validation set is as large, drawn with another seed)."""

    def check(self, prefix: str) -> None:
        require(1 <= self.points <= 100_000, f"{prefix}points", self.points, "an integer in [1, 100000]")


@dataclass(kw_only=True)
class ProbeConfig:
    data: ProbeData = section(ProbeData)
    optim: OptimConfig = section(OptimConfig)
    train: TrainConfig = section(TrainConfig)
    eval: TextEvalConfig = section(TextEvalConfig)


def points(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=gen)
    return x, 3 * x + 1 + 0.01 * torch.randn(n, 1, generator=gen)


class ScaleProbeJob(Job):
    name = "scale_probe"
    Config = ProbeConfig

    @classmethod
    def primary_metric(cls, cfg):
        return "val_mse", "min"

    def load_data(self):
        return list(points(self.cfg.data.points, self.cfg.train.seed))

    def build(self, ctx: Context):
        net = nn.Linear(1, 1)
        return {"net": net}, {"net": torch.optim.SGD(net.parameters(), self.cfg.optim.lr)}

    def step(self, batch, ctx: Context):
        x, y = batch
        net, opt = ctx.models["net"], ctx.optimizers["net"]
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(net(x.to(ctx.device)), y.to(ctx.device))
        ctx.backward(loss)
        ctx.step(opt)
        return {"loss": loss}

    def evaluate(self, ctx: Context, final: bool):
        x, y = points(self.cfg.data.points, 10_000 + self.cfg.train.seed)
        with torch.no_grad():
            return {"val_mse": nn.functional.mse_loss(ctx.model("net")(x.to(ctx.device)), y.to(ctx.device)).item()}


JOB = ScaleProbeJob

if __name__ == "__main__":
    from library.cli import run_job

    run_job("scale_probe")
