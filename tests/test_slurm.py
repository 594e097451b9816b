"""The Slurm backend against the real one-node cluster that slurm/cluster.sh starts (Slurm's own daemons)."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from library.files import read_json

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data.limit": 320, "eval.num_samples": 200, "eval.final_num_samples": 200}
pytestmark = pytest.mark.slurm


def write_sweep(folder: Path, grid: dict, epochs: int, name: str = "stiny") -> Path:
    (folder / "site.toml").write_text('slurm_partition = "debug"\ntimeout_min = 10\n')
    path = folder / f"{name}.py"
    path.write_text(
        "from library.sweep import Sweep, main\n"
        f"main(Sweep(name={name!r}, job='gan', metric='fd_domain', base={{**{TINY!r}, 'train.epochs': {epochs}}},"
        f" grid={grid!r}))\n")
    return path


def sweep_cli(path: Path, *args, check=True, timeout=400) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(path), "--backend=slurm", f"--site={path.parent / 'site.toml'}", *args],
                         cwd=path.parent, capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_four_trial_sweep_runs_as_one_array_and_fills_the_table(cluster, tmp_path):
    path = write_sweep(tmp_path, {"optim.beta1": [0.3, 0.5], "optim.beta2": [0.9, 0.999]}, epochs=2)
    out = sweep_cli(path)
    assert "submitted Slurm job(s)" in out.stdout
    table = pd.read_csv(tmp_path / "results/stiny/trials.csv")
    assert len(table) == 4 and set(table.status) == {"completed"}, table[["trial", "status", "reason"]]
    assert table.best_fd_domain.notna().all()
    jobs = read_json(tmp_path / "runs/stiny/slurm_jobs.json")
    assert len({j.split("_")[0] for j in jobs.values()}) == 1  # one array job
    again = sweep_cli(path)
    assert "0 to submit" in again.stdout and len(pd.read_csv(tmp_path / "results/stiny/trials.csv")) == 4


def test_ray_slurm_runs_the_same_sweep_in_one_sbatch_job(cluster, tmp_path):
    path = write_sweep(tmp_path, {"optim.beta1": [0.3, 0.5], "optim.beta2": [0.9, 0.999]}, epochs=2)
    (tmp_path / "site.toml").write_text('slurm_partition = "debug"\ntimeout_min = 10\nray_cpus_per_node = 2\n')
    out = subprocess.run([sys.executable, str(path), "--backend=ray-slurm", f"--site={tmp_path / 'site.toml'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/stiny/trials.csv")
    assert len(table) == 4 and set(table.status) == {"completed"}, table[["trial", "status", "reason"]]
    (job,) = set(read_json(tmp_path / "runs/stiny/slurm_jobs.json").values())  # one sbatch job for all four
    state = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", job], capture_output=True, text=True)
    assert state.stdout.strip() == "COMPLETED"
    assert "4 to run" in (tmp_path / f"runs/stiny/ray_slurm/{job}.out").read_text()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_preempted_task_requeues_resumes_and_ends_like_an_uninterrupted_run(cluster, tmp_path):
    grid = {"optim.beta1": [0.5]}
    reference = tmp_path / "reference"
    reference.mkdir()
    ref = subprocess.run([sys.executable, str(write_sweep(reference, grid, epochs=5)), "--backend=local"],
                         cwd=reference, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]

    path = write_sweep(tmp_path, grid, epochs=5)
    sweep_cli(path, "--detach")
    (job,) = read_json(tmp_path / "runs/stiny/slurm_jobs.json").values()
    wait_for(lambda: list(tmp_path.glob("runs/stiny/*/checkpoints/epoch_00002.pt")), 240, "epoch 2's checkpoint")
    # Preemption as Slurm does it: SIGUSR2 to the task; submitit requeues it. Skip the requeue hold (BeginTime).
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    wait_for(lambda: "Restarts=1" in subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                                    text=True).stdout, 60, "the requeue")
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], capture_output=True)
    sweep_cli(path)  # follows until done; submits nothing new
    status = read_json(next(tmp_path.glob("runs/stiny/*/status.json")))
    assert status["status"] == "completed" and status["resumed_from_epoch"] >= 2
    straight = read_json(next(reference.glob("runs/stiny/*/status.json")))["final"]
    assert status["final"] | {"elapsed_s": 0} == straight | {"elapsed_s": 0}


def test_a_task_crashing_on_the_node_is_a_failed_row_and_the_rest_complete(cluster, tmp_path):
    from library.launch import slurm
    from library.sweep import Sweep, expand

    base = {**TINY, "train.epochs": 1}
    sweep = Sweep(name="crash", job="gan", metric="fd_domain", base=base)
    # The login node's checks passed (prepare is skipped here); on the compute node the dataset is not there.
    trials = expand(sweep) + expand(Sweep(name="crash", job="gan", metric="fd_domain",
                                          base={**base, "data.name": "mnist", "data.root": str(tmp_path / "empty")}))
    run_root = tmp_path / "runs/crash"
    slurm.submit(sweep, trials, run_root, slurm.SiteProfile(slurm_partition="debug", timeout_min=10),
                 {"mode": "disabled"})
    slurm.follow(run_root, [t.id for t in trials], "fd_domain", poll_s=1)
    slurm.reconcile(run_root, [t.id for t in trials])
    ok, bad = (read_json(run_root / t.id / "status.json") for t in trials)
    assert ok["status"] == "completed"
    assert bad["status"] == "failed" and "python -m library.data prepare mnist" in bad["reason"]


def test_a_cancelled_task_becomes_a_failed_row_with_its_log_tail(cluster, tmp_path):
    path = write_sweep(tmp_path, {"optim.beta1": [0.5]}, epochs=5000, name="cancelme")
    sweep_cli(path, "--detach")
    wait_for(lambda: list(tmp_path.glob("runs/cancelme/*/status.json")), 120, "the task to start")
    out = sweep_cli(path, "--cancel")
    assert "cancelled 1 Slurm job(s)" in out.stdout
    (job,) = read_json(tmp_path / "runs/cancelme/slurm_jobs.json").values()
    wait_for(lambda: not subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip(),
             90, "the cancelled task to leave the queue")
    sweep_cli(path, "--status")
    row = pd.read_csv(tmp_path / "results/cancelme/trials.csv").iloc[0]
    assert row.status == "failed" and "ended CANCELLED" in row.reason


@pytest.mark.parametrize("site, gpus, message", [
    ('slurm_partition = "nosuch"\n', 0, "site.slurm_partition='nosuch' is not allowed: one of this cluster's partitions"),
    ('slurm_partition = "short"\ntimeout_min = 10\n', 0, "at most 5 minutes, the time limit of partition 'short'"),
    ('slurm_partition = "debug"\n', 1, "partition 'debug' has no GPUs"),
    ('slurm_partition = "debug"\ntimeout = 10\n', 0, "site.timeout=10 is not allowed: unknown key; did you mean 'timeout_min'?"),
])
def test_bad_submissions_fail_before_sbatch_in_plain_words(cluster, tmp_path, site, gpus, message):
    path = write_sweep(tmp_path, {"optim.beta1": [0.5]}, epochs=1, name="bad")
    (tmp_path / "site.toml").write_text(site)
    out = sweep_cli(path, f"--gpus-per-worker={gpus}", check=False, timeout=60)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not (tmp_path / "runs/bad/slurm_jobs.json").exists()


def test_large_grids_are_split_at_the_clusters_max_array_size(cluster, tmp_path, monkeypatch):
    from library.launch import slurm
    from library.sweep import Sweep, expand

    monkeypatch.setattr(slurm, "max_array_size", lambda: 3)  # arrays of at most 2 tasks
    sweep = Sweep(name="split", job="gan", metric="fd_domain", base={**TINY, "train.epochs": 1},
                  grid={"train.seed": [1, 2, 3, 4, 5]})
    trials = expand(sweep)
    run_root = tmp_path / "runs/split"
    jobs = slurm.submit(sweep, trials, run_root, slurm.SiteProfile(slurm_partition="debug"), {"mode": "disabled"})
    try:
        assert len(jobs) == 5 and len({j.split("_")[0] for j in jobs.values()}) == 3
    finally:
        slurm.cancel(run_root)
