"""Per-iteration outputs (train.log_every_steps, eval.grid_every_steps): the rows and grids appear at the steps
asked for, in steps.json, curves.csv, W&B and the report's loss plot, and a run with them trains exactly as
one without."""
from __future__ import annotations

import json

import pandas as pd
from PIL import Image

from helpers import assert_same_run, gan_config, wandb_records
from jobs.vae import JOB as VAE
from library.config import parse, to_dict
from library.files import read_json
from library.report.load import load
from library.report.plots import loss_axis, per
from library.resources import Resources
from library.results import collect
from library.sweep import Sweep
from library.train import fit
from library.trial import STEPS, Trial

OFFLINE = {"project": "test", "group": "steps", "job_type": "vae", "mode": "offline"}


def test_log_every_steps_keeps_every_kth_steps_losses_which_fall_and_training_is_unchanged(tmp_path):
    # 512 digits in batches of 32: 16 steps an epoch, 32 in 2 epochs; every 4th step is kept: 8 rows.
    base = {"data.limit": 512, "train.batch_size": 32, "train.epochs": 2}
    logged = to_dict(parse(VAE.Config, {**base, "train.log_every_steps": 4}))
    runs = tmp_path / "runs"  # the logged run alone: the results below collect every trial under it
    status = fit("vae", logged, runs / "logged", Resources(), tracking=OFFLINE)
    assert status["status"] == "completed", status.get("reason")
    rows = read_json(runs / "logged" / STEPS)
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 4), (1, 8), (1, 12), (1, 16),
                                                       (2, 20), (2, 24), (2, 28), (2, 32)]
    losses = [r["loss"] for r in rows]
    print(f"\nVAE loss at steps 4..32: {[round(v, 1) for v in losses]}")
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2])  # it learns: the last steps' loss is well below the first's

    plain = to_dict(parse(VAE.Config, base))
    assert fit("vae", plain, tmp_path / "plain", Resources())["status"] == "completed"
    assert_same_run(runs / "logged", tmp_path / "plain")  # logging changed no loss, score or weight
    assert not (tmp_path / "plain" / STEPS).exists()

    # W&B: the step rows as step/KEY at their step, the epoch rows at the run's step count at each epoch's end.
    (run_file,) = (runs / "logged" / "wandb").glob("offline-run-*/run-*.wandb")
    history = [{i.key or ".".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in wandb_records(run_file) if r.WhichOneof("record_type") == "history"]
    assert [(h["_step"], h["step/loss"]) for h in history if "step/loss" in h] == [(r["step"], r["loss"]) for r in rows]
    assert [(h["_step"], h["epoch"]) for h in history if "epoch" in h] == [(16, 1), (32, 2)]

    # The long table: per-epoch rows with no step, per-step rows with theirs; the report draws losses per step.
    trial = Trial("logged", {}, logged)
    sweep = Sweep(name="steps", job="vae", metric="test_loss", mode="min")
    collect(sweep, [trial], runs, tmp_path / "results")
    curves = pd.read_csv(tmp_path / "results" / "curves.csv")
    step_loss = curves[curves.step.notna() & (curves.metric == "loss")]
    assert step_loss.step.tolist() == [4, 8, 12, 16, 20, 24, 28, 32] and step_loss.value.tolist() == losses
    assert curves[curves.step.isna() & (curves.metric == "loss")].epoch.tolist() == [1, 2]
    _, _, loaded = load(tmp_path / "results")
    assert loss_axis(loaded) == "step" and len(per(loaded, "epoch")[lambda c: c.metric == "loss"]) == 2


def test_grid_every_steps_writes_the_grid_at_those_steps_and_changes_nothing(tmp_path):
    # TINY: 256 digits in batches of 64, 4 steps an epoch; 2 epochs = 8 steps, a grid every 3rd: steps 3 and 6.
    # Spectral norm and batch norm both hold state that a grid drawn in train mode would move.
    config = gan_config(**{"train.epochs": 2, "model.spectral_norm": "d", "eval.grid_every_steps": 3})
    status = fit("gan", config, tmp_path / "grids", Resources())
    assert status["status"] == "completed", status.get("reason")
    grids = sorted(p.name for p in (tmp_path / "grids" / "samples").glob("step_*.png"))
    assert grids == ["step_00000003.png", "step_00000006.png"]
    with Image.open(tmp_path / "grids" / "samples" / grids[0]) as grid:
        assert grid.size == (4 * 30 + 2, 4 * 30 + 2)  # the 16 fixed noise vectors, 4 a row, 28 px + 2 px padding
    assert (tmp_path / "grids" / "samples" / "epoch_0002.png").exists()  # the per-epoch grids stay

    plain = gan_config(**{"train.epochs": 2, "model.spectral_norm": "d"})
    assert fit("gan", plain, tmp_path / "plain", Resources())["status"] == "completed"
    assert_same_run(tmp_path / "grids", tmp_path / "plain")
