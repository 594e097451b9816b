"""Per-step outputs of the harness (library.train), beside its per-epoch ones: every `train.log_every_steps`-th
step's values (the run dir's steps.json, W&B as step/KEY, curves.csv rows with a `step`) and every
`job.snapshot_every()`-th step's artifact (a GAN's sample grid every N batches). Neither changes what training
computes: logging only reads the step's outputs, and a snapshot runs as evaluation does."""
from __future__ import annotations

import torch
import torch.distributed as dist

from library.files import write_json
from library.job import Context, Job
from library.trial import STEPS


def steps_per_epoch(n: int, ctx: Context) -> int:
    """Training steps in an epoch of n samples: full batches of this rank's shard (see run_epoch)."""
    return (n - n % ctx.world_size) // ctx.world_size // max(1, ctx.cfg.train.batch_size // ctx.world_size)


def mean_over_ranks(out: dict[str, torch.Tensor], ctx: Context) -> dict[str, float]:
    """One step's values, averaged over the ranks (every rank calls this at the same step)."""
    values = torch.stack([out[k].detach().float() for k in sorted(out)])
    if ctx.world_size > 1:
        dist.all_reduce(values)
        values /= ctx.world_size
    return dict(zip(sorted(out), values.tolist()))


def snapshot(job: Job, ctx: Context, step: int) -> None:
    """The job's mid-epoch artifact, leaving training exactly as it was: eval mode (batch norm's running
    statistics and spectral norm's power iteration stay untouched), no gradients, the RNG restored after."""
    devices = [ctx.device.index] if ctx.device.type == "cuda" else []
    for m in ctx.models.values():
        m.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            job.snapshot(ctx, step)
    finally:
        for m in ctx.models.values():
            m.train()


def log_steps(ctx: Context, tracker, steps: list[dict], n: int) -> int:
    """With train.log_every_steps, write this epoch's step rows (steps.json, W&B as step/KEY) and return the
    W&B step of the epoch's row: the run's step count, so that W&B's steps only grow. Else the epoch number."""
    if not ctx.cfg.train.log_every_steps:
        return ctx.epoch + 1
    record_steps(ctx, steps)
    for row in (r for r in steps if r["epoch"] == ctx.epoch + 1):
        tracker.log({f"step/{k}": v for k, v in row.items() if k not in ("epoch", "step")}, step=row["step"], images={})
    return (ctx.epoch + 1) * steps_per_epoch(n, ctx)


def record_steps(ctx: Context, steps: list[dict]) -> None:
    if ctx.rank == 0 and ctx.cfg.train.log_every_steps:
        write_json(ctx.run_dir / STEPS, steps)
