"""Faults the system survives without losing a trial or a row. Each is injected for real and the test checks
that nothing is lost. The catalogue, with the test that covers each scenario:

| scenario                                              | test                                                          |
|-------------------------------------------------------|---------------------------------------------------------------|
| kill -9 of the sweep driver mid-trial                 | test_sweep.py::test_kill_9_mid_trial_then_rerun_resumes_and_matches_an_uninterrupted_run |
| kill -9 of the sweep driver: no Ray process outlives it | test_orphans.py::test_kill_9_of_the_driver_ends_every_process_of_its_ray_within_seconds |
| preemption: SIGUSR2 (scancel --signal=USR2) of a task, requeue (the same handler for a pack of one or many) | test_packing.py::test_a_preempted_packed_task_resumes_every_trial_and_each_row_equals_an_undisturbed_run |
| stop request mid-epoch: checkpoint at the step, exact | test_precision_and_resume.py::test_a_stop_request_checkpoints_mid_epoch_and_the_resumed_run_ends_like_an_uninterrupted_one |
| ray-slurm job signalled before its time limit         | test_slurm.py::test_ray_slurm_job_signalled_before_its_time_limit_checkpoints_requeues_and_completes |
| requeued task that makes no progress (endless requeue) | test_slurm.py::test_no_progress_decision_stops_requeueing_only_a_requeued_task_stuck_at_its_start |
| Slurm purged the finished jobs (MinJobAge)            | test_slurm.py::test_status_rerun_and_cancel_work_after_slurm_purged_the_finished_job |
| Slurm refuses a later array (QOS MaxSubmitJobs)       | test_slurm.py::test_arrays_accepted_before_slurm_refuses_a_later_one_are_recorded_and_cancellable |
| two backends resume one trial at once                 | test_local_backend.py::test_a_trial_that_another_process_trains_is_skipped_and_left_untouched |
| Ray Tune stops a trial (ASHA): its W&B run is whole   | test_search.py::test_asha_stops_trials_that_fall_behind_and_a_rerun_does_not_resume_them |
| SIGTERM requeue (scontrol requeue)                    | test_scontrol_requeue_sigterm_restarts_the_task_from_its_last_checkpoint_and_the_row_matches |
| corrupt latest checkpoint: fall back to the previous  | test_harness.py::test_corrupt_latest_checkpoint_falls_back_to_the_previous_one |
| checkpoint holding a pickled object (weights_only)    | test_a_checkpoint_holding_a_pickled_object_is_refused_and_nothing_in_it_runs |
| every torch.load is weights_only=True                 | test_every_torch_load_in_the_code_is_weights_only |
| NaN in training                                       | test_nan_weights_end_the_trial_as_diverged_with_a_row_and_the_best_model_kept |
| exploding loss                                        | test_harness.py::test_exploding_loss_ends_the_trial_as_diverged_with_its_reason |
| a trial that crashes (in-process)                     | test_harness.py::test_a_crashing_trial_is_recorded_as_failed_with_the_fix |
| a Slurm task that crashes on the node                 | test_slurm.py::test_a_task_crashing_on_the_node_is_a_failed_row_and_the_rest_complete |
| a cancelled Slurm task                                | test_slurm.py::test_a_cancelled_task_becomes_a_failed_row_with_its_log_tail |
| two invocations of one sweep at once                  | test_a_second_invocation_of_a_running_sweep_refuses_and_no_trial_runs_twice |
| W&B offline                                           | test_sweep.py::test_every_trial_has_an_offline_wandb_run_with_its_metrics_and_images |
| W&B unreachable in online mode                        | test_wandb_online_but_unreachable_simulated_by_a_dead_local_port_training_completes_with_a_warning |
| disk full while writing results                       | test_disk_full_real_tmpfs_while_writing_results_keeps_the_previous_results_and_names_the_path |
| a result write interrupted midway (kill -9)           | test_a_write_killed_midway_leaves_the_old_file_whole_and_no_partial_result |
| 100 trials on Slurm while tasks are killed at random  | test_chaos_run_loses_no_row (marker chaos; `python -m pytest -m chaos` or `python slurm/chaos.py`) |
"""
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import (ROOT, TINY, assert_same_run, gan_config, started_again, sweep_cli, wait_for, write_site,
                     write_sweep)
from library.files import read_json, write_text
from library.checkpoint import BEST, CHECKPOINTS
from library.driver import main
from library.resources import Resources
from library.sweep import Sweep, expand
from library.train import fit


def config(**overrides) -> dict:
    return gan_config(**{"train.epochs": 2, **overrides})


# ------------------------------------------------------------------------------------------ checkpoints


class RunsCode:
    """Unpickling this runs `touch MARKER`: what a malicious or foreign checkpoint can do with plain torch.load."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_holding_a_pickled_object_is_refused_and_nothing_in_it_runs(tmp_path):
    cfg = config()
    fit("gan", cfg, tmp_path / "straight", Resources())
    fit("gan", cfg, tmp_path / "run", Resources())
    latest = tmp_path / "run" / CHECKPOINTS / "epoch_00002.pt"
    marker = tmp_path / "code-ran"
    torch.save({"models": {}, "payload": RunsCode(marker)}, latest)
    torch.load(latest, weights_only=False)  # the danger is real: a plain load runs it
    assert marker.exists()
    marker.unlink()

    status = fit("gan", cfg, tmp_path / "run", Resources())
    assert not marker.exists()  # refused, not executed
    assert status["status"] == "completed" and status["resumed_from_epoch"] == 1  # fell back to epoch 1
    assert_same_run(tmp_path / "run", tmp_path / "straight")


def test_every_torch_load_in_the_code_is_weights_only():
    calls = [(path.name, node.lineno, node) for path in [*ROOT.glob("library/**/*.py"), *ROOT.glob("jobs/*.py")]
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"]
    assert calls, "no torch.load found: the check would prove nothing"
    unsafe = [(name, line) for name, line, node in calls
              if not any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords)]
    assert not unsafe, f"torch.load without weights_only=True at {unsafe}"
    assert not [p for p in ROOT.glob("library/**/*.py") if re.search(r"^\s*(import|from) (pickle|dill|joblib)", p.read_text(), re.M)]


def test_nan_weights_end_the_trial_as_diverged_with_a_row_and_the_best_model_kept(tmp_path):
    cfg = config(**{"train.epochs": 3})
    fit("gan", cfg, tmp_path, Resources())
    # Poison the generator in the epoch-2 checkpoint; the resumed epoch 3 trains on NaN.
    (tmp_path / CHECKPOINTS / "epoch_00003.pt").unlink()
    path = tmp_path / CHECKPOINTS / "epoch_00002.pt"
    ckpt = torch.load(path, weights_only=True)
    for tensor in ckpt["models"]["g"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    torch.save(ckpt, path)
    best = (tmp_path / BEST).read_bytes()

    status = fit("gan", cfg, tmp_path, Resources())
    assert status["status"] == "diverged" and "=nan in epoch 3" in status["reason"], status["reason"]
    assert status["final"]["epoch"] == 2  # the row's metrics are the last good epoch's
    assert (tmp_path / BEST).read_bytes() == best


# ------------------------------------------------------------------------------------------ sweeps


def test_a_second_invocation_of_a_running_sweep_refuses_and_no_trial_runs_twice(tmp_path):
    path = write_sweep(tmp_path, name="faults", base={"data.limit": 640, "train.epochs": 12, "eval.every": 12})
    first = subprocess.Popen([sys.executable, str(path), "--backend=local"], cwd=tmp_path,
                             env={**os.environ, "WANDB_MODE": "disabled"}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    lock = tmp_path / "runs/faults/.lock"
    wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), 120, "the first to take the lock")

    second = sweep_cli(path, check=False, timeout=120, env={"WANDB_MODE": "disabled"})
    assert first.poll() is None, "the first invocation ended before the second tried: nothing was tested"
    assert second.returncode == 2
    assert second.stderr.strip() == (f"error: another invocation of this sweep is running (pid {first.pid}); "
                                     "wait for it to finish, or stop it first")
    assert first.wait(timeout=300) == 0, first.stdout.read()[-3000:]

    table = pd.read_csv(tmp_path / "results/faults/trials.csv")
    assert len(table) == 1 and table.status.tolist() == ["completed"]
    status = read_json(tmp_path / "runs/faults" / table.trial[0] / "status.json")
    assert status["resumed_from_epoch"] == 0  # trained once, straight through: nobody else touched it
    history = read_json(tmp_path / "runs/faults" / table.trial[0] / "metrics.json")
    assert [h["epoch"] for h in history] == list(range(1, 13))


def test_wandb_online_but_unreachable_simulated_by_a_dead_local_port_training_completes_with_a_warning(
        tmp_path, monkeypatch, capfd):
    import socket

    with socket.socket() as s:  # a port nothing listens on: connections are refused, as when W&B is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a dummy key of the right shape: nothing to log in to
    monkeypatch.setenv("WANDB_MODE", "online")
    from library.tracking import wandb_mode

    tracking = {"project": "dl-studies", "group": "faults", "job_type": "gan", "mode": wandb_mode(), "init_timeout": 5}
    assert tracking["mode"] == "online"
    status = fit("gan", config(), tmp_path, Resources(), tracking=tracking)
    out = capfd.readouterr().out
    assert "warning: W&B run not started" in out and f"127.0.0.1:{port}" in out
    assert status["status"] == "completed" and status["epoch"] == 2 and status["final"]["fd_domain"] > 0


# ------------------------------------------------------------------------------------------ result files


def test_a_write_killed_midway_leaves_the_old_file_whole_and_no_partial_result(tmp_path):
    target = tmp_path / "trials.csv"
    write_text(target, "trial,status\ngan-1,completed\n")
    writer = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from library.files import atomic_write
def write(tmp):
    with open(tmp, "w") as f:
        f.write("trial,status\\ngan-1,comp")  # half of the new table
        f.flush()
        print("half written", flush=True)
        time.sleep(60)
atomic_write({str(target)!r}, write)
"""], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert writer.stdout.readline().strip() == "half written"
    writer.kill()  # SIGKILL: no cleanup runs
    writer.wait()
    assert target.read_text() == "trial,status\ngan-1,completed\n"
    (leftover,) = [p.name for p in tmp_path.iterdir() if p != target]  # the half file, hidden beside it
    assert leftover.startswith(".trials.csv.") and leftover.endswith(".tmp")
    assert pd.read_csv(target).status.tolist() == ["completed"]


@pytest.fixture
def full_disk(tmp_path):
    """A real 2 MiB tmpfs (mounting needs root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_real_tmpfs_while_writing_results_keeps_the_previous_results_and_names_the_path(
        tmp_path, full_disk, capsys):
    sweep = Sweep(name="faults", job="gan", metric="fd_domain", base=TINY, grid={"optim.beta1": [0.3, 0.5]})
    args = ["--status", "--backend=local", f"--runs-dir={tmp_path / 'runs'}", f"--results-dir={full_disk}"]
    trials = expand(sweep)
    fit("gan", trials[0].config, tmp_path / "runs/faults" / trials[0].id, Resources())
    main(sweep, args)
    table = full_disk / "faults/trials.csv"
    before = table.read_bytes()
    assert pd.read_csv(table).status.tolist() == ["completed", "not run"]
    files = {p: p.read_bytes() for p in (full_disk / "faults").rglob("*") if p.is_file()}  # table, plots, samples

    fit("gan", trials[1].config, tmp_path / "runs/faults" / trials[1].id, Resources())  # a new row to write
    subprocess.run(["dd", "if=/dev/zero", f"of={full_disk / 'filler'}", "bs=64k"], capture_output=True)
    assert shutil.disk_usage(full_disk).free == 0
    with pytest.raises(SystemExit) as e:
        main(sweep, args)
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "No space left on device" in err and str(full_disk / "faults") in err, err
    # The write that failed (the first one, whichever file that is: a sample grid copied over its old copy, say)
    # left that file as it was, or absent if it is new; every earlier result file is whole, and nothing else is there.
    failed = Path(re.search(r"could not write (\S+)", err).group(1))
    assert failed.is_relative_to(full_disk / "faults"), err
    if failed in files:
        assert failed.read_bytes() == files[failed], f"{failed} was left half-written"
    else:
        assert not failed.exists(), f"{failed} was left half-written"
    assert {p: p.read_bytes() for p in (full_disk / "faults").rglob("*") if p.is_file()} == files
    assert table.read_bytes() == before  # the previous results, whole
    assert not list(full_disk.rglob(".*.tmp"))  # no half-written files left behind

    (full_disk / "filler").unlink()  # space again: the same command writes both rows
    main(sweep, args)
    assert pd.read_csv(table).status.tolist() == ["completed", "completed"]


# ------------------------------------------------------------------------------------------ Slurm


@pytest.mark.slurm
def test_scontrol_requeue_sigterm_restarts_the_task_from_its_last_checkpoint_and_the_row_matches(cluster, tmp_path):
    # ~10 s of training (evaluated only at the end), so the task is still mid-trial when Slurm kills it.
    epochs = 30
    base = {"data.limit": 640, "train.epochs": epochs, "eval.every": epochs}
    path = write_sweep(tmp_path, name="faults", base=base)
    write_site(tmp_path)
    no_wandb = {"WANDB_MODE": "disabled"}
    sweep_cli(path, "--detach", backend="slurm", env=no_wandb)
    (job,) = read_json(tmp_path / "runs/faults/slurm_jobs.json").values()
    try:
        wait_for(lambda: list(tmp_path.glob("runs/faults/*/checkpoints/epoch_00002.pt")), 240, "epoch 2's checkpoint")
        # SIGTERM, which submitit ignores; Slurm kills the task KillWait (5 s) later and queues it again.
        subprocess.run(["scontrol", "requeue", job], check=True)
        wait_for(lambda: "Restarts=1" in subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                                        text=True).stdout, 60, "the requeue")
        wait_for(lambda: started_again(job), 120, "the requeued task to start")
        sweep_cli(path, backend="slurm", env=no_wandb)  # follows until done; submits nothing new
    finally:
        subprocess.run(["scancel", job])
    row = pd.read_csv(tmp_path / "results/faults/trials.csv").iloc[0]
    status = read_json(tmp_path / "runs/faults" / row.trial / "status.json")
    assert row.status == "completed" and 2 <= status["resumed_from_epoch"] < epochs, status["resumed_from_epoch"]
    fit("gan", gan_config(**base, **{"optim.beta1": 0.5}), tmp_path / "undisturbed", Resources())
    assert_same_run(tmp_path / "runs/faults" / row.trial, tmp_path / "undisturbed")


@pytest.mark.chaos
def test_chaos_run_loses_no_row(cluster, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "slurm/chaos.py"), f"--workdir={tmp_path}"],
                         capture_output=True, text=True, timeout=1800)
    print(out.stdout[-3000:])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert '"rows_lost": 0' in out.stdout and '"mismatches": 0' in out.stdout
