"""Harness paths that differ on GPUs (AMP, CUDA RNG), resume at a step boundary after a stop request, and one
writer per run dir. No GPU here: the GPU decisions are tested with CPU stand-ins, named so; the real GPU paths
run in `python -m library.bench --gpu`."""
import os
import subprocess
import sys
import time

import torch

from helpers import ROOT, TINY, assert_same_run, gan_config
from jobs.gan import GANConfig
from library.config import parse
from library.files import read_json
from library.checkpoint import CHECKPOINTS, load_checkpoint, restore
from library.resources import Resources
from library.train import amp_dtype, fit, make_context
from library.trial import STATUS, STEPS, STOP_REQUEST, claim

def test_resume_with_an_fp16_scaler_from_a_checkpoint_saved_without_one_cpu_stand_in(tmp_path):
    # Started on CPU (scaler disabled, saved as {}), resumed where fp16 runs: a CPU GradScaler stands in for the GPU's.
    cfg = gan_config()
    assert fit("gan", cfg, tmp_path, Resources())["status"] == "completed"
    assert load_checkpoint(tmp_path)["scaler"] == {}
    ctx = make_context(parse(GANConfig, cfg), tmp_path, want_gpu=False)
    ctx.scaler = torch.amp.GradScaler("cpu", enabled=True)
    from jobs.gan import JOB

    models, ctx.optimizers = JOB(ctx.cfg).build(ctx)
    ctx.models = models
    state = restore(ctx, cfg)
    assert state["epoch"] == 1 and ctx.scaler.get_scale() == 2.0 ** 16  # a fresh scale, not a crash


def test_a_checkpoint_keeps_the_rng_of_the_ranks_own_device_only(tmp_path):
    # A rank uses one device: saving every visible GPU's state made a resume on fewer GPUs index past the end.
    cfg = gan_config()
    fit("gan", cfg, tmp_path, Resources())
    (rng,) = load_checkpoint(tmp_path)["rng"]
    assert rng["cuda"] is None  # trained on CPU: no GPU state at all (a GPU rank saves one tensor, its device's)


def test_amp_auto_takes_fp16_where_bf16_is_only_emulated_mocked_gpu(monkeypatch):
    # No GPU here: torch.cuda.is_bf16_supported is replaced by a V100/T4 lookalike (bf16 only by emulation).
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert amp_dtype("auto", torch.device("cuda", 0)) is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # an A100/H100
    assert amp_dtype("auto", torch.device("cuda", 0)) is torch.bfloat16
    assert amp_dtype("auto", torch.device("cpu")) is None


def test_a_stop_request_checkpoints_mid_epoch_and_the_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    # 4 epochs of 32 steps; the stop request arrives early in epoch 2 (at whichever step: the exact one is up to the
    # machine). checkpoint_every is large, so only the stop's own checkpoint can carry the run past epoch 1. Every
    # 5th step's losses are logged: the resumed run keeps the rows before the stop and adds none twice.
    overrides = {**TINY, "train.epochs": 4, "train.checkpoint_every": 1000, "eval.every": 1000,
                 "train.batch_size": 8, "train.log_every_steps": 5}
    args = [f"--{k}={v}" for k, v in overrides.items()]
    straight = tmp_path / "straight"
    subprocess.run([sys.executable, "jobs/gan.py", *args, f"--run-dir={straight}"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300, env={**os.environ, "WANDB_MODE": "disabled"})
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "jobs/gan.py", *args, f"--run-dir={run}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    deadline = time.time() + 240
    while not (read_json(run / STATUS, {}).get("epoch", 0) >= 1 or time.time() > deadline):
        time.sleep(0.05)
    (run / STOP_REQUEST).touch()
    assert proc.wait(timeout=120) == 0
    status = read_json(run / STATUS)
    assert status["status"] == "running" and status["preempted"]["epoch"] >= 1
    (ckpt,) = (run / CHECKPOINTS).glob("epoch_*_step_*.pt")
    assert load_checkpoint(run)["position"]["step"] == status["preempted"]["step"]

    resumed = fit("gan", gan_config(**overrides), run, Resources())
    assert resumed["status"] == "completed" and resumed["resumed_from"] == status["preempted"]
    assert_same_run(run, straight)
    assert read_json(run / STEPS) == read_json(straight / STEPS) and len(read_json(run / STEPS)) == 128 // 5


def test_a_run_dir_that_another_process_trains_is_left_alone(tmp_path):
    cfg = gan_config()
    (tmp_path / STATUS).write_text('{"status": "running", "epoch": 3}\n')
    lock = claim(tmp_path)  # another trainer of this trial (a Slurm task, a local sweep) holds the run dir
    try:
        status = fit("gan", cfg, tmp_path, Resources())
    finally:
        lock.close()
    assert "trained by" in status["busy"] and f"pid {os.getpid()}" in status["busy"]
    assert read_json(tmp_path / STATUS) == {"status": "running", "epoch": 3}
    assert not (tmp_path / CHECKPOINTS).exists()
