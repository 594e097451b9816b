"""One checkpoint dict with all of a trial's state (models, optimizers, grad scaler, every rank's RNG, the epoch
history and the mid-epoch position), saved atomically; exact resume from the newest readable one."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from library.config import default_values, identity
from library.files import atomic_write
from library.job import Context
from library.seeds import RESEED_PER_EPOCH

CHECKPOINTS = "checkpoints"
BEST = "best.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states, in a form `torch.load(weights_only=True)` accepts. Of the GPUs, only the rank's
    own device: a resumed run may see another number of GPUs, and its rank uses one of them."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if isinstance(state.get("cuda"), torch.Tensor) and device.type == "cuda":  # saved on a GPU, resumed on one
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(ctx: Context, state: dict, config: dict) -> None:
    rngs = [None] * ctx.world_size
    if ctx.world_size > 1:
        dist.all_gather_object(rngs, rng_state(ctx.device))
    else:
        rngs = [rng_state(ctx.device)]
    if ctx.rank != 0:
        return
    payload = {"models": {k: ctx.model(k).state_dict() for k in ctx.models},
               "optimizers": {k: o.state_dict() for k, o in ctx.optimizers.items()},
               "scaler": ctx.scaler.state_dict(), "rng": rngs, "config": config, **state}
    folder = ctx.run_dir / CHECKPOINTS
    # A mid-epoch checkpoint (preemption) sorts after its epoch's start and before the next epoch's.
    name = f"epoch_{state['epoch']:05d}" + (f"_step_{state['position']['step']:08d}" if state.get("position") else "")
    atomic_write(folder / f"{name}.pt", lambda tmp: torch.save(payload, tmp))
    for old in sorted(folder.glob("epoch_*.pt"))[: -ctx.cfg.train.keep_checkpoints]:
        old.unlink()


def save_best(ctx: Context) -> None:
    if ctx.rank == 0:
        models = {k: ctx.model(k).state_dict() for k in ctx.models}
        atomic_write(ctx.run_dir / BEST, lambda tmp: torch.save({"models": models, "epoch": ctx.epoch + 1}, tmp))


def load_checkpoint(run_dir: Path) -> dict | None:
    """The newest readable checkpoint; a corrupt one is skipped for the one before it."""
    for path in sorted((run_dir / CHECKPOINTS).glob("epoch_*.pt"), reverse=True):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or corrupt file: fall back to the previous checkpoint
            print(f"warning: skipping unreadable checkpoint {path}: {e}")
    return None


def restore(ctx: Context, config: dict) -> dict | None:
    ckpt = load_checkpoint(ctx.run_dir)
    if ckpt is None:
        return None
    # Only what identifies the trial must match (library.config.identity): run mechanics may differ
    # (--train.keep_checkpoints=3), and a key added to the code since the checkpoint matches where it is at its default.
    defaults = default_values(type(ctx.cfg))
    saved, current = identity(ckpt["config"], defaults), identity(config, defaults)
    if saved != current:
        changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
        raise RuntimeError(f"{ctx.run_dir} holds a checkpoint of a different config (changed: {changed}); "
                           "refusing to resume it. Use a new run dir or delete the old one.")
    for k in ctx.models:
        ctx.model(k).load_state_dict(ckpt["models"][k])
    for k, o in ctx.optimizers.items():
        o.load_state_dict(ckpt["optimizers"][k])
    if ckpt["scaler"] and ctx.scaler.is_enabled():  # saved disabled ({}) or resumed without fp16: a fresh scale
        ctx.scaler.load_state_dict(ckpt["scaler"])
    if len(ckpt["rng"]) == ctx.world_size:
        set_rng_state(ckpt["rng"][ctx.rank], ctx.device)
    else:  # resumed on another worker count: the run goes on, but is no longer bit-identical
        seed_everything(ctx.cfg.train.seed + ctx.rank + RESEED_PER_EPOCH * ckpt["epoch"])
    return {k: ckpt.get(k) for k in ("epoch", "history", "best", "elapsed_s", "position", "steps")}

