"""What a study supplies to the harness (`Job`), what the harness reads of every job's config
(`HarnessConfig`), and what a job sees of the harness while training (`Context`)."""
from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

import torch
import torch.distributed as dist
from torch import nn

from library.config import TrainConfig


class EvalSchedule(Protocol):
    every: int
    """Evaluate every N epochs (and always after the last one)."""


class HarnessConfig(Protocol):
    """What the harness reads of every job's config, whatever else the job's `Config` holds: the training
    mechanics (epochs, batch size, seed, AMP, checkpoints, the divergence guard) and when to evaluate.
    `load_job` checks a job's Config against it."""

    train: TrainConfig
    eval: EvalSchedule


class Job:
    """What a study supplies. Subclasses set `name`, `Config` (a config dataclass that provides HarnessConfig)
    and implement the methods.

    The class answers the login node, before any trial exists (`primary_metric`, `prepare`). The harness makes
    one instance per trial on every rank, `job = JobClass(cfg)`; it loads the data, builds the models and keeps
    what its evaluation needs (fixed noise, a held-out set) for that trial alone."""

    name: ClassVar[str]
    Config: ClassVar[type]
    images: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """W&B key -> image file (relative to the run dir) that `evaluate` writes; logged after each evaluation."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    @classmethod
    def primary_metric(cls, cfg) -> tuple[str, str]:
        """(metric, "min" or "max") that picks the best epoch: a score on data the model is not trained on and
        that is not the test split (a validation split carved from the training data), so that picking the best
        epoch never looks at the test split."""
        raise NotImplementedError

    @classmethod
    def test_metrics(cls, cfg) -> tuple[str, ...]:
        """The test split's scores that `evaluate` returns and the trial reports as they were at the best epoch
        (chosen on `primary_metric`), as `NAME_at_best`; () for a job without a test split."""
        return ()

    @classmethod
    def prepare(cls, cfg) -> None:
        """Login-node work before any trial starts: check the dataset is ready, build metric caches."""

    def load_data(self) -> list[torch.Tensor]:
        """The whole training set as tensors with the sample index first; the harness shards and batches it."""
        raise NotImplementedError

    def build(self, ctx: Context) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        """Models (on ctx.device, not yet DDP-wrapped) and their optimizers. Called after the harness seeded the
        RNGs: the initial weights come from train.seed."""
        raise NotImplementedError

    def step(self, batch: list[torch.Tensor], ctx: Context) -> dict[str, torch.Tensor]:
        """One training step on this rank's batch; returns scalar tensors (names starting with `loss` are guarded)."""
        raise NotImplementedError

    def snapshot_every(self) -> int:
        """Call `snapshot` every this many training steps, counted over the whole run (0 = never)."""
        return 0

    def snapshot(self, ctx: Context, step: int) -> None:
        """On rank 0, every `snapshot_every()` steps: write a progress artifact named by the step (a sample grid
        every N batches). The harness runs it with the models in eval mode, without gradients and with the
        training RNG saved and restored, so that it never changes what training computes."""

    def evaluate(self, ctx: Context, final: bool) -> dict[str, float]:
        """Every `eval.every` epochs, on every rank (models in eval mode, no grad): scores, and artifacts written
        under ctx.run_dir by rank 0. Rank 0's scores are the trial's. To evaluate a set in parallel, take
        `ctx.eval_indices(n)` on each rank and combine counts with `ctx.sum_over_ranks`; a job that scores on
        rank 0 alone returns {} elsewhere."""
        return {}


def load_job(name: str) -> type[Job]:
    """The Job class of jobs/NAME.py (its `JOB`), its Config checked against HarnessConfig."""
    try:
        module = importlib.import_module(f"jobs.{name}")
    except ModuleNotFoundError as e:
        if e.name not in (f"jobs.{name}", "jobs"):
            raise
        available = sorted(p.stem for p in Path(importlib.import_module("jobs").__path__[0]).glob("[!_]*.py"))
        raise ValueError(f"unknown job {name!r}; available jobs: {', '.join(available)}") from None
    job = module.JOB
    if missing := lacking(job.Config, HarnessConfig):
        raise ValueError(f"job {name!r}: {job.Config.__name__} lacks what the harness reads of every job's config "
                         f"(library.job.HarnessConfig): {', '.join(missing)}")
    return job


def lacking(cls: type, required: type, prefix: str = "") -> list[str]:
    """The fields of `required` (a Protocol of config sections) that the config dataclass `cls` does not
    provide, as `key (type)`. A section typed by a class must be that class or a subclass of it; one typed
    by a Protocol (EvalSchedule) is checked field by field."""
    have = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
    out = []
    for key, kind in typing.get_type_hints(required).items():
        got = have.get(key)
        if got is None:
            out.append(f"{prefix}{key} ({kind.__name__})")
        elif Protocol in kind.__bases__:
            out += lacking(got, kind, f"{prefix}{key}.")
        elif not (isinstance(got, type) and issubclass(got, kind)):
            out.append(f"{prefix}{key} ({kind.__name__}, not {getattr(got, '__name__', got)})")
    return out


@dataclass
class Context:
    """What a job's step and evaluate see of the harness."""

    cfg: Any
    run_dir: Path
    rank: int
    world_size: int
    device: torch.device
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    epoch: int = 0
    models: dict[str, nn.Module] = field(default_factory=dict)
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def clip_grad_norm(self, optimizer: torch.optim.Optimizer, max_norm: float) -> None:
        """Clip the gradient norm of the optimizer's parameters to max_norm (0 = off), between backward and step."""
        if max_norm:
            self.scaler.unscale_(optimizer)  # clip the true gradients, not the AMP-scaled ones
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, max_norm)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        # update() after every optimizer step, not once per harness step: GradScaler refuses a second step() of
        # one optimizer before update(), and a GAN steps its discriminator d_steps times per step.
        self.scaler.step(optimizer)
        self.scaler.update()

    def eval_indices(self, n: int) -> torch.Tensor:
        """This rank's part of an n-sample evaluation set: disjoint, together exactly 0..n-1 (no padding)."""
        return torch.arange(self.rank, n, self.world_size)

    def sum_over_ranks(self, t: torch.Tensor) -> torch.Tensor:
        """Elementwise sum of `t` over all ranks (every rank gets it)."""
        if self.world_size > 1:
            t = t.clone()
            dist.all_reduce(t)
        return t

    def model(self, name: str) -> nn.Module:
        """The model without its torch.compile and DDP wrappers (for evaluation and saving)."""
        m = getattr(self.models[name], "_orig_mod", self.models[name])
        return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m
