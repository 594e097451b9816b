"""THE training harness: every job trains through `fit()`, on Ray Train's TorchTrainer.

A job supplies data, models and one training step (see `Job`); the harness owns the rest: DDP through Ray
(gloo on CPU, nccl on GPU), AMP, per-epoch reports, one checkpoint dict with all state, exact resume from
the latest checkpoint, the best-by-metric model, and the divergence guard. Everything a trial leaves lives in
its run dir: `status.json`, `metrics.json` (one entry per epoch), `checkpoints/`, `best.pt`, and what the
job's `evaluate` writes (sample grids).
"""
from __future__ import annotations

import math
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from library.checkpoint import restore, save_best, save_checkpoint, seed_everything
from library.config import parse, to_dict
from library.files import write_json
from library.job import Context, Job, load_job
from library.resources import PRIVATE_RAY_IP, Resources
from library.steps import log_steps, mean_over_ranks, record_steps, snapshot, steps_per_epoch
from library.tracking import Tracker
from library.trial import AT_BEST, METRICS, STOP_REQUEST, Status, claim, holder, mark, read_status, write_status


# ------------------------------------------------------------------------------------------ the driver side


def fit(job_name: str, config: dict[str, Any], run_dir: str | os.PathLike, resources: Resources,
        *, report_to_tune: bool = False, tracking: dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one trial to the end (resuming if its run dir has a checkpoint); returns its final status.
    `tracking` holds the W&B run settings (see library.tracking); None logs nothing to W&B. `labels` (a sweep
    trial's Trial.labels(): its configuration and replicate) go into its status.json and its W&B run's config."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = claim(run_dir)
    if lock is None:
        return busy_status(run_dir)
    (run_dir / STOP_REQUEST).unlink(missing_ok=True)  # a request for an earlier run of this trial is stale
    loop_config = {"job": job_name, "config": config, "run_dir": str(run_dir), "launched_at": time.time(),
                   "threads": resources.cpus_per_worker, "gpu": resources.gpus_per_worker > 0, "tracking": tracking,
                   "labels": labels or {},
                   "report_to": "tune" if report_to_tune and resources.workers == 0 else "train"}
    if resources.workers and not ray.is_initialized():  # run alone: the Ray TorchTrainer would start, on loopback
        ray.init(include_dashboard=False, _node_ip_address=PRIVATE_RAY_IP)
    callbacks = []
    if report_to_tune and resources.workers > 0:
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())
    per_worker = {"CPU": resources.cpus_per_worker, "GPU": resources.gpus_per_worker}
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=resources.workers, use_gpu=resources.gpus_per_worker > 0,
                                     resources_per_worker=per_worker if resources.workers else None,
                                     placement_strategy=resources.placement.upper()),
        run_config=RunConfig(name="train", storage_path=str(run_dir / "ray"), callbacks=callbacks,
                             failure_config=FailureConfig(max_failures=0)),
    )
    try:
        trainer.fit()
    except Exception as e:  # the trial is recorded as failed; the sweep goes on
        if not read_status(run_dir).get("preempted"):  # a preempted trial saved its position and resumes later
            mark(run_dir, Status.FAILED, failure_reason(e))
    finally:
        lock.close()
    return read_status(run_dir)


def busy_status(run_dir: Path) -> dict[str, Any]:
    """What fit() returns, without training or writing anything, for a trial that another process trains."""
    return {**read_status(run_dir), "busy": f"trained by {holder(run_dir) or 'another process'}"}


class Preempted(Exception):
    """Raised at a step boundary once a stop was requested and the position was checkpointed."""


def failure_reason(e: BaseException) -> str:
    """The innermost error of a (possibly Ray-wrapped) exception, in one line, plus the traceback's tail."""
    while e.__cause__ is not None:
        e = e.__cause__
    tail = "".join(traceback.format_exception(e)[-3:]).strip()
    return f"{type(e).__name__}: {e}".splitlines()[0][:300] + "\n" + tail[-1500:]


# ------------------------------------------------------------------------------------------ the worker side


def train_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker (or in-process in local mode)."""
    job_class = load_job(loop_config["job"])
    cfg = parse(job_class.Config, loop_config["config"])
    torch.set_num_threads(loop_config["threads"])
    ctx = make_context(cfg, Path(loop_config["run_dir"]), loop_config["gpu"])
    report = make_reporter(loop_config["report_to"])
    metric, mode = job_class.primary_metric(cfg)

    seed_everything(cfg.train.seed + ctx.rank)  # before build: the initial weights come from the seed too
    job = job_class(cfg)
    data = [to_device(t, ctx) for t in job.load_data()]
    if len(data[0]) < cfg.train.batch_size:  # the partial last batch is dropped: nothing would ever train
        raise ValueError(f"train.batch_size={cfg.train.batch_size} is more than the {len(data[0])} training examples "
                         "of this config: no batch would be full and nothing would train")
    models, ctx.optimizers = job.build(ctx)
    ctx.models = {k: place_model(m, ctx) for k, m in models.items()}
    state = restore(ctx, to_dict(cfg)) or {"epoch": 0, "history": [], "best": None, "elapsed_s": 0.0}
    state["steps"] = state.get("steps") or []  # train.log_every_steps' rows (absent from older checkpoints)
    tracker = Tracker(loop_config["tracking"] if ctx.rank == 0 else None, ctx.run_dir.name,
                      {**to_dict(cfg), **loop_config["labels"]}, ctx.run_dir)
    position = state.get("position") or {}
    status = {"status": Status.RUNNING, "reason": "", "metric": metric, "mode": mode,
              "startup_s": round(time.time() - loop_config["launched_at"], 2), "first_step_at": time.time(),
              "workers": ctx.world_size, "hosts": hosts(ctx), "cpus": len(os.sched_getaffinity(0)),
              "resumed_from_epoch": state["epoch"],
              "resumed_from": {"epoch": state["epoch"], "step": position.get("step", 0)}, **loop_config["labels"]}
    try:
        train_epochs(job, ctx, data, state, status, report, tracker)
    except Preempted:
        tracker.finish()  # the W&B run resumes (same id) when the trial does
        raise
    except SystemExit:
        if loop_config["report_to"] != "tune":
            tracker.finish(exit_code=1)
            raise
        # Ray Tune ends a trial its scheduler stops (ASHA) by raising SystemExit from tune.report, also after the
        # last epoch: the trial is stopped or completed, not failed, and its W&B run gets its summary.
        if status["status"] == Status.RUNNING:
            status.update(status=Status.STOPPED, reason=f"stopped early by ASHA after epoch {state['epoch']}: behind "
                                                   "the other trials at that rung")
            record(ctx, status, state["history"])
        summarize(tracker, status, metric)
        raise
    except BaseException:
        tracker.finish(exit_code=1)
        raise
    summarize(tracker, status, metric)


def summarize(tracker: Tracker, status: dict, metric: str) -> None:
    # The status's text: W&B writes an Enum member by its name ("STOPPED"), not by its value.
    tracker.summarize({"status": str(status["status"]), **{k: status.get(k) for k in (f"best_{metric}", "best_epoch")},
                       **{k: v for k, v in status.items() if k.endswith(AT_BEST)}})
    tracker.finish()


def train_epochs(job: Job, ctx: Context, data: list[torch.Tensor], state: dict, status: dict, report, tracker) -> None:
    cfg = ctx.cfg
    metric, mode = status["metric"], status["mode"]
    started = time.time() - state["elapsed_s"]
    if state["epoch"] >= cfg.train.epochs:  # finished before; nothing to redo
        status.update(finished_status(state, metric), status=Status.COMPLETED)
        record(ctx, status, state["history"])
        return

    position = state.pop("position", None)  # resumed mid-epoch: where the interrupted epoch stood
    for epoch in range(state["epoch"], cfg.train.epochs):
        ctx.epoch = epoch
        last = epoch + 1 == cfg.train.epochs
        try:
            metrics = {"epoch": epoch + 1, **run_epoch(job, ctx, data, position, state["steps"])}
        except Preempted as stop:
            state["elapsed_s"] = round(time.time() - started, 2)
            save_checkpoint(ctx, {**state, "position": stop.args[0]}, to_dict(cfg))
            record_steps(ctx, state["steps"])
            status.update(preempted={"epoch": epoch, "step": stop.args[0]["step"]})
            record(ctx, status, state["history"])
            raise
        position = None
        evaluated = last or (epoch + 1) % cfg.eval.every == 0
        if evaluated:
            metrics.update(evaluate(job, ctx, final=last))
        if ctx.world_size > 1:
            metrics["ddp_weight_spread"] = weight_spread(ctx)
        metrics["elapsed_s"] = round(time.time() - started, 2)
        state["epoch"], state["elapsed_s"] = epoch + 1, metrics["elapsed_s"]
        images = {k: ctx.run_dir / v for k, v in job.images.items()} if evaluated else {}
        tracker.log(metrics, step=log_steps(ctx, tracker, state["steps"], len(data[0])), images=images)

        problem = divergence(metrics, metric, cfg.train.max_loss)
        if problem:
            status.update(finished_status(state, metric), status=Status.DIVERGED, reason=f"{problem} in epoch {epoch + 1}")
            record(ctx, status, state["history"])
            summarize(tracker, status, metric)  # before the last report: see below
            report(metrics)
            return
        state["history"].append(metrics)
        if metric in metrics and improved(metrics[metric], state["best"], mode):
            state["best"] = {"value": metrics[metric], "epoch": epoch + 1,
                             "test": {k: metrics[k] for k in job.test_metrics(cfg) if k in metrics}}
            save_best(ctx)
        if last or (epoch + 1) % cfg.train.checkpoint_every == 0:
            save_checkpoint(ctx, state, to_dict(cfg))
        status.update(finished_status(state, metric), status=Status.COMPLETED if last else Status.RUNNING)
        record(ctx, status, state["history"])
        if last:  # Ray Tune may end the trial's process once it has the last result: close the W&B run first
            summarize(tracker, status, metric)
        report(metrics)


def make_context(cfg, run_dir: Path, want_gpu: bool) -> Context:
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    if want_gpu and not torch.cuda.is_available():  # never train on the CPU of a GPU allocation without saying so
        raise RuntimeError(
            f"this trial asked for a GPU but torch sees none (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}, torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda}): fix the node's CUDA setup (e.g. `module load cuda` in site.slurm_setup) or run "
            f"with --gpus-per-worker=0")
    if want_gpu:
        local = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
    amp = amp_dtype(cfg.train.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    return Context(cfg=cfg, run_dir=run_dir, rank=rank, world_size=world, device=device, amp_dtype=amp, scaler=scaler)


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "auto":  # native bf16 only: V100/T4 emulate it (slowly), and there fp16 is the fast choice
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


def make_reporter(to: str):
    """Ray Tune refuses `ray.train.report` from a local-mode trainer inside a Tune trial: report to Tune there."""
    if to == "tune":
        from ray import tune

        return tune.report
    import ray.train

    return ray.train.report


def to_device(t: torch.Tensor, ctx: Context) -> torch.Tensor:
    """The whole (small) training set lives on the device, so steps index it there and never copy batches.
    On GPU, image batches (N x C x H x W) go channels_last, the layout tensor cores' convolutions want."""
    if ctx.device.type != "cuda":
        return t
    if t.dim() == 4 and ctx.cfg.train.channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    return t.pin_memory().to(ctx.device, non_blocking=True)


def place_model(model: nn.Module, ctx: Context) -> nn.Module:
    """On the device (channels_last on GPU), DDP-wrapped when there are several ranks, then compiled if asked."""
    model.to(ctx.device)
    if ctx.device.type == "cuda" and ctx.cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
    if ctx.world_size > 1:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if ctx.cfg.train.compile:
        model = torch.compile(model)
    return model


def shard(n: int, epoch: int, seed: int, rank: int, world: int) -> torch.Tensor:
    """This rank's sample order for one epoch: a seeded permutation cut into equal, disjoint shards."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return perm[: n - n % world][rank::world]


def run_epoch(job: Job, ctx: Context, data: list[torch.Tensor], position: dict | None = None,
              log: list[dict] | None = None) -> dict[str, float]:
    """One epoch (or its rest, from a mid-epoch `position`): the mean of each value the job's step returns.
    Every train.log_every_steps-th step of the run appends its values (mean over ranks) to `log`; every
    job.snapshot_every()-th, rank 0 writes the job's snapshot. Raises Preempted, carrying the position, at the
    first step boundary after a stop request."""
    cfg = ctx.cfg.train
    per_rank = max(1, cfg.batch_size // ctx.world_size)
    before = ctx.epoch * steps_per_epoch(len(data[0]), ctx)  # steps of the run before this epoch
    log_every, snapshot_every = cfg.log_every_steps, job.snapshot_every()
    order = shard(len(data[0]), ctx.epoch, cfg.seed, ctx.rank, ctx.world_size).to(ctx.device)
    for m in ctx.models.values():
        m.train()
    position = position or {}
    sums: dict[str, torch.Tensor] = {k: v.to(ctx.device) for k, v in position.get("sums", {}).items()}
    steps = position.get("steps", 0)
    # Drop the last partial batch: every rank takes the same number of steps, and batch norm never sees one sample.
    for i in range(position.get("step", 0), len(order) - per_rank + 1, per_rank):
        if stop_requested(ctx, steps):
            raise Preempted({"step": i, "steps": steps, "sums": {k: v.cpu() for k, v in sums.items()}})
        out = job.step([t[order[i:i + per_rank]] for t in data], ctx)
        for k, v in out.items():
            sums[k] = sums.get(k, 0) + v.detach().float()
        steps += 1
        done = before + i // per_rank + 1
        if log_every and done % log_every == 0 and log is not None:
            log.append({"epoch": ctx.epoch + 1, "step": done, **mean_over_ranks(out, ctx)})
        if snapshot_every and done % snapshot_every == 0 and ctx.rank == 0:
            snapshot(job, ctx, done)
    if not sums:
        return {}
    means = torch.stack([sums[k] for k in sorted(sums)]) / steps
    if ctx.world_size > 1:
        dist.all_reduce(means)
        means /= ctx.world_size
    return {k: v for k, v in zip(sorted(sums), means.tolist())}


def stop_requested(ctx: Context, steps: int) -> bool:
    """Whether a stop was requested (STOP_REQUEST). With several ranks, every 10th step and all ranks agree,
    so all of them stop at the same step."""
    if ctx.world_size == 1:
        return (ctx.run_dir / STOP_REQUEST).exists()
    if steps % 10:
        return False
    flag = torch.tensor([float((ctx.run_dir / STOP_REQUEST).exists())], device=ctx.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def evaluate(job: Job, ctx: Context, final: bool) -> dict[str, float]:
    for m in ctx.models.values():
        m.eval()
    # Evaluation must not shift the training RNG: a resumed run evaluates from fresh objects (e.g. a lazily built
    # scorer) that the uninterrupted run built epochs earlier, and must still train bit-identically.
    devices = [ctx.device.index] if ctx.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        scores = [job.evaluate(ctx, final)]
    if ctx.world_size > 1:
        dist.broadcast_object_list(scores, src=0)
    return scores[0]


def hosts(ctx: Context) -> list[str]:
    """The host name of every rank, in rank order (on a cluster: the node each DDP rank ran on)."""
    names: list[str] = [socket.gethostname()]
    if ctx.world_size > 1:
        names = [""] * ctx.world_size
        dist.all_gather_object(names, socket.gethostname())
    return names


def weight_spread(ctx: Context) -> float:
    """Largest difference between ranks of a checksum of all weights: 0 when DDP keeps the replicas in sync."""
    params = [p for m in ctx.models.values() for p in m.parameters()]
    local = torch.stack([sum(p.detach().double().sum() for p in params),
                         sum(p.detach().double().square().sum() for p in params)]).to(ctx.device)
    gathered = [torch.zeros_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, local)
    stacked = torch.stack(gathered)
    return float((stacked.max(0).values - stacked.min(0).values).max())


def divergence(metrics: dict[str, float], metric: str, max_loss: float) -> str:
    for k, v in metrics.items():
        if (k.startswith("loss") or k == metric) and not math.isfinite(v):
            return f"{k}={v}"
        if k.startswith("loss") and abs(v) > max_loss:
            return f"{k}={v:.4g} exceeds train.max_loss={max_loss:g}"
    return ""


def improved(value: float, best: dict | None, mode: str) -> bool:
    return best is None or (value < best["value"] if mode == "min" else value > best["value"])


def finished_status(state: dict, metric: str) -> dict[str, Any]:
    last = state["history"][-1] if state["history"] else {}
    best = state["best"] or {}
    return {"epoch": state["epoch"], "elapsed_s": state["elapsed_s"], "final": last,
            f"best_{metric}": best.get("value"), "best_epoch": best.get("epoch"),
            **{f"{k}_at_best": v for k, v in best.get("test", {}).items()}}


def record(ctx: Context, status: dict[str, Any], history: list[dict]) -> None:
    """Rank 0 writes the trial's epoch history and status."""
    if ctx.rank == 0:
        write_json(ctx.run_dir / METRICS, history)
        write_status(ctx.run_dir, status)


# ------------------------------------------------------------------------------------------ checkpoints
