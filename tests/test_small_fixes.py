"""Two wrong results: a data.limit below the batch size that trained nothing and "completed", and a gallery that
showed the last epoch's samples under the best epoch's score."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from jobs.gan import GANConfig
from jobs.vae import VAEConfig
from library import report
from library.config import ConfigError, parse
from library.results import collect
from library.sweep import Sweep
from library.trial import Trial

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MESSAGE = ("data.limit=20 is not allowed: at least train.batch_size=32 examples (0 = all); with fewer, "
                 "no batch is ever full and nothing trains")


# ------------------------------------------------------------------------------- data.limit vs batch size
@pytest.mark.parametrize("cls", [VAEConfig, GANConfig])
def test_a_limit_below_the_batch_size_is_refused_naming_both_fields(cls):
    with pytest.raises(ConfigError) as e:
        parse(cls, {"data.limit": 20, "train.batch_size": 32})
    assert e.value.key == "data.limit" and e.value.value == 20
    assert str(e.value) == LIMIT_MESSAGE


@pytest.mark.parametrize("cls", [VAEConfig, GANConfig])
@pytest.mark.parametrize("limit", [0, 32, 33, 640])
def test_no_limit_or_at_least_one_batch_passes(cls, limit):
    cfg = parse(cls, {"data.limit": limit, "train.batch_size": 32})
    assert cfg.data.limit == limit


def test_the_vae_default_batch_counts_and_strings_from_a_command_line_too():
    with pytest.raises(ConfigError, match=r"train\.batch_size=32"):
        parse(VAEConfig, {"data.limit": "20"})  # the VAE's own default batch size is 32
    assert parse(VAEConfig, {"data.limit": "20", "train.batch_size": "16"}).data.limit == 20


def test_job_cli_refuses_a_limit_below_the_batch_size_before_anything_trains(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "jobs/vae.py"), "--data.limit=20", f"--run-dir={tmp_path / 'run'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "WANDB_MODE": "offline"}, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == f"error: {LIMIT_MESSAGE}"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- gallery: best epoch's grid
def grid(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((62, 62, 3), value, np.uint8)).save(path)


def sweep_with_one_trial(root: Path, best_epoch: int, epoch_files: tuple[int, ...]) -> tuple[Path, Path]:
    run_dir = root / "runs" / "gan-0001"
    for epoch in epoch_files:
        grid(run_dir / "samples" / f"epoch_{epoch:04d}.png", 40 * epoch)
    grid(run_dir / "samples.png", 200)  # the last epoch's grid, as the harness leaves it
    (run_dir / "status.json").write_text(json.dumps({
        "status": "completed", "epoch": 2, "best_fd_domain": 12.5, "best_epoch": best_epoch,
        "final": {"fd_domain": 30.0}}))
    (run_dir / "metrics.json").write_text(json.dumps([{"epoch": 1, "fd_domain": 12.5}, {"epoch": 2, "fd_domain": 30.0}]))
    sweep = Sweep(name="demo", job="gan", metric="fd_domain", grid={"optim.lr": [2e-4]}, project="p")
    out = root / "results" / "demo"
    collect(sweep, [Trial("gan-0001", {"optim.lr": 2e-4}, {"optim.lr": 2e-4})], root / "runs", out)
    return run_dir, out


def caption(page: str) -> str:
    captions = re.findall(r'<figure class="cell[^"]*">.*?<figcaption>(.*?)</figcaption>', page, re.DOTALL)
    assert len(captions) == 1
    return re.sub(r"<[^>]+>", "", captions[0])


def test_gallery_shows_the_best_epochs_grid_and_says_which_epoch(tmp_path):
    run_dir, out = sweep_with_one_trial(tmp_path, best_epoch=1, epoch_files=(1, 2))
    shown = (out / "samples" / "gan-0001.png").read_bytes()
    assert shown == (run_dir / "samples/epoch_0001.png").read_bytes()
    assert shown != (run_dir / "samples.png").read_bytes()
    assert pd.read_csv(out / "trials.csv").samples_epoch.tolist() == [1]
    text = caption(report.build_report(out).read_text())
    assert "best fd_domain 12.5" in text and "samples of epoch 1 (the best)" in text


def test_without_the_best_epochs_grid_the_last_one_is_shown_and_captioned_as_the_last(tmp_path):
    run_dir, out = sweep_with_one_trial(tmp_path, best_epoch=1, epoch_files=(2,))
    assert (out / "samples" / "gan-0001.png").read_bytes() == (run_dir / "samples.png").read_bytes()
    text = caption(report.build_report(out).read_text())
    assert "samples of the last epoch, 2 (no grid of best epoch 1)" in text
    assert "epoch 1 (the best)" not in text


def test_results_written_before_the_column_are_captioned_as_the_last_epoch(tmp_path):
    _, out = sweep_with_one_trial(tmp_path, best_epoch=1, epoch_files=(1, 2))
    table = pd.read_csv(out / "trials.csv").drop(columns="samples_epoch")
    table.to_csv(out / "trials.csv", index=False)
    (out / "trials.parquet").unlink()
    assert "samples of the last epoch" in caption(report.build_report(out).read_text())


def test_a_training_split_below_one_batch_is_refused_at_prepare_and_fails_a_trial_that_skips_prepare(tmp_path):
    # sentiment's data.limit counts texts before the test and validation splits are carved out: 20 texts leave 12
    # to train on, fewer than a batch of 16, though the limit itself is above the batch size.
    from jobs.sentiment import SentimentJob
    from library.config import to_dict
    from library.resources import Resources
    from library.train import fit

    overrides = {"data.limit": 20, "train.batch_size": 16, "data.root": str(tmp_path / "data")}
    with pytest.raises(ConfigError) as e:
        SentimentJob.prepare(parse(SentimentJob.Config, overrides))
    assert str(e.value) == ("train.batch_size=16 is not allowed: at most the 12 training examples of this config "
                            "(no batch would be full and nothing would train)")
    status = fit("sentiment", to_dict(parse(SentimentJob.Config, overrides)), tmp_path / "run", Resources())
    assert status["status"] == "failed" and status["reason"].startswith(
        "ValueError: train.batch_size=16 is more than the 12 training examples of this config"), status["reason"]
