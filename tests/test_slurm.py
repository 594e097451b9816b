"""The Slurm backend against the real dev cluster that slurm/cluster.sh starts (Slurm's own daemons)."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import SITE, SLURM_TINY, started_again, sweep_cli, wait_for, write_site, write_sweep
from library.files import read_json
from library.launch import slurm, task
from library.results import collect
from library.sweep import Sweep, expand

BASE = SLURM_TINY
pytestmark = pytest.mark.slurm


def slurm_sweep(folder: Path, grid: dict, epochs: int, name: str = "stiny") -> Path:
    """A sweep file of `epochs`-epoch BASE trials beside a site profile for the dev cluster."""
    write_site(folder)
    return write_sweep(folder, grid, name=name, base={**BASE, "train.epochs": epochs})


def slurm_cli(path: Path, *args, **kwargs) -> subprocess.CompletedProcess:
    return sweep_cli(path, *args, backend="slurm", **kwargs)


def test_four_trial_sweep_runs_as_one_array_and_fills_the_table(cluster, tmp_path):
    path = slurm_sweep(tmp_path, {"optim.beta1": [0.3, 0.5], "optim.beta2": [0.9, 0.999]}, epochs=2)
    out = slurm_cli(path)
    assert "submitted 4 Slurm array task(s) in job(s)" in out.stdout
    table = pd.read_csv(tmp_path / "results/stiny/trials.csv")
    assert len(table) == 4 and set(table.status) == {"completed"}, table[["trial", "status", "reason"]]
    assert table.best_fd_domain.notna().all()
    jobs = read_json(tmp_path / "runs/stiny/slurm_jobs.json")
    assert len({j.split("_")[0] for j in jobs.values()}) == 1  # one array job
    again = slurm_cli(path)
    assert "0 to run" in again.stdout and len(pd.read_csv(tmp_path / "results/stiny/trials.csv")) == 4


def test_ray_slurm_runs_the_same_sweep_in_one_sbatch_job(cluster, tmp_path):
    path = slurm_sweep(tmp_path, {"optim.beta1": [0.3, 0.5], "optim.beta2": [0.9, 0.999]}, epochs=2)
    write_site(tmp_path, SITE + "ray_cpus_per_node = 2\n")
    sweep_cli(path, backend="ray-slurm")
    table = pd.read_csv(tmp_path / "results/stiny/trials.csv")
    assert len(table) == 4 and set(table.status) == {"completed"}, table[["trial", "status", "reason"]]
    (job,) = set(read_json(tmp_path / "runs/stiny/slurm_jobs.json").values())  # one sbatch job for all four
    # The dev cluster binds tasks to cores: Ray (and so every trial) sees the job's 2 CPUs, not the 1 core that an
    # srun without --cpus-per-task gets on Slurm 22.05-23.02.
    assert {read_json(p)["cpus"] for p in tmp_path.glob("runs/stiny/*/status.json")} == {2}
    state = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", job], capture_output=True, text=True)
    assert state.stdout.strip() == "COMPLETED"
    assert "4 to run" in (tmp_path / f"runs/stiny/ray_slurm/{job}.out").read_text()


def test_a_task_crashing_on_the_node_is_a_failed_row_and_the_rest_complete(cluster, tmp_path):
    sweep = Sweep(name="crash", job="gan", metric="fd_domain", base=BASE)
    # The login node's checks passed (prepare is skipped here); on the compute node the dataset is not there.
    trials = expand(sweep) + expand(Sweep(name="crash", job="gan", metric="fd_domain",
                                          base={**BASE, "data.name": "mnist", "data.root": str(tmp_path / "empty")}))
    run_root = tmp_path / "runs/crash"
    slurm.submit(sweep, trials, run_root, slurm.SiteProfile(slurm_partition="debug", timeout_min=10),
                 {"mode": "disabled"})
    slurm.follow(run_root, [t.id for t in trials], "fd_domain", poll_s=1)
    slurm.reconcile(run_root, [t.id for t in trials])
    collect(sweep, trials, run_root, tmp_path / "results/crash")  # the table, as the driver writes it
    table = pd.read_csv(tmp_path / "results/crash/trials.csv").set_index("trial")
    ok, bad = trials
    assert table.status.to_dict() == {ok.id: "completed", bad.id: "failed"}
    assert "python -m library.data prepare mnist" in table.reason[bad.id], table.reason[bad.id]


def test_a_cancelled_task_becomes_a_failed_row_with_its_log_tail(cluster, tmp_path):
    path = slurm_sweep(tmp_path, {"optim.beta1": [0.5]}, epochs=5000, name="cancelme")
    slurm_cli(path, "--detach")
    wait_for(lambda: list(tmp_path.glob("runs/cancelme/*/status.json")), 120, "the task to start")
    out = slurm_cli(path, "--cancel")
    assert "cancelled 1 job(s)" in out.stdout
    (job,) = read_json(tmp_path / "runs/cancelme/slurm_jobs.json").values()
    wait_for(lambda: not subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip(),
             90, "the cancelled task to leave the queue")
    slurm_cli(path, "--status")
    row = pd.read_csv(tmp_path / "results/cancelme/trials.csv").iloc[0]
    assert row.status == "failed" and "ended CANCELLED" in row.reason


@pytest.mark.parametrize("site, gpus, message", [
    ('slurm_partition = "nosuch"\n', 0, "site.slurm_partition='nosuch' is not allowed: one of this cluster's partitions"),
    ('slurm_partition = "short"\ntimeout_min = 10\n', 0, "at most 5 minutes, the time limit of partition 'short'"),
    ('slurm_partition = "debug"\n', 1, "partition 'debug' has no GPUs"),
    ('slurm_partition = "debug"\ntimeout = 10\n', 0, "site.timeout=10 is not allowed: unknown key; did you mean 'timeout_min'?"),
])
def test_bad_submissions_fail_before_sbatch_in_plain_words(cluster, tmp_path, site, gpus, message):
    path = slurm_sweep(tmp_path, {"optim.beta1": [0.5]}, epochs=1, name="bad")
    (tmp_path / "site.toml").write_text(site)
    out = slurm_cli(path, f"--gpus-per-worker={gpus}", check=False, timeout=60)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not (tmp_path / "runs/bad/slurm_jobs.json").exists()


def test_large_grids_are_split_at_the_clusters_max_array_size(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(slurm, "max_array_size", lambda: 3)  # arrays of at most 2 tasks
    sweep = Sweep(name="split", job="gan", metric="fd_domain", base=BASE,
                  grid={"train.seed": [1, 2, 3, 4, 5]})
    trials = expand(sweep)
    run_root = tmp_path / "runs/split"
    jobs, _, _ = slurm.submit(sweep, trials, run_root, slurm.SiteProfile(slurm_partition="debug"), {"mode": "disabled"})
    try:
        assert len(jobs) == 5 and len({j.split("_")[0] for j in jobs.values()}) == 3
    finally:
        slurm.cancel(run_root)


def squeue_forgot(job: str) -> bool:
    """Slurm purged the job (older than MinJobAge): squeue fails for it, sacct still knows it."""
    return subprocess.run(["squeue", "-h", "-j", job.split("_")[0]], capture_output=True, text=True).returncode != 0


def test_status_rerun_and_cancel_work_after_slurm_purged_the_finished_job(cluster, tmp_path):
    # The dev cluster's MinJobAge is 5 s (a real site's 300 s): the state a user meets minutes after a sweep.
    path = slurm_sweep(tmp_path, {"optim.beta1": [0.5]}, epochs=1, name="purged")
    slurm_cli(path)
    (job,) = read_json(tmp_path / "runs/purged/slurm_jobs.json").values()
    wait_for(lambda: squeue_forgot(job), 120, "Slurm to purge the finished job")
    status = slurm_cli(path, "--status")
    assert "completed" in status.stdout and "Traceback" not in status.stderr
    again = slurm_cli(path)
    assert "1 finished before, 0 running elsewhere, 0 to run" in again.stdout
    assert "cancelled 0 job(s)" in slurm_cli(path, "--cancel").stdout


def test_arrays_accepted_before_slurm_refuses_a_later_one_are_recorded_and_cancellable(cluster, tmp_path, monkeypatch):
    # QOS `capped` (slurm/cluster.sh) allows 2 submitted jobs per user; arrays of 2 tasks: the second is refused.
    monkeypatch.setattr(slurm, "max_array_size", lambda: 3)
    sweep = Sweep(name="qos", job="gan", metric="fd_domain", base=BASE,
                  grid={"train.seed": [1, 2, 3, 4, 5]})
    trials = expand(sweep)
    run_root = tmp_path / "runs/qos"
    site = slurm.SiteProfile(slurm_partition="debug", slurm_qos="capped")
    try:
        with pytest.raises(RuntimeError, match="Slurm refused the submission"):
            slurm.submit(sweep, trials, run_root, site, {"mode": "disabled"})
        jobs = read_json(run_root / "slurm_jobs.json")
        assert sorted(jobs) == sorted(t.id for t in trials[:2])  # the accepted array, recorded at once
        assert slurm.active_trials(run_root) == set(jobs)  # a re-run would not submit them again
    finally:
        cancelled = slurm.cancel(run_root)
    assert len(cancelled) == 2


def test_retry_failed_on_slurm_follows_the_new_task_and_the_row_becomes_completed(cluster, tmp_path):
    path = slurm_sweep(tmp_path, {"optim.beta1": [0.5]}, epochs=1, name="retry")
    (trial,) = [line.split()[0] for line in slurm_cli(path, "--dry-run").stdout.splitlines() if line.startswith("gan-")]
    # A trial that failed before (its task crashed, say): only its status is left.
    (tmp_path / "runs/retry" / trial).mkdir(parents=True)
    (tmp_path / "runs/retry" / trial / "status.json").write_text('{"status": "failed", "reason": "node died"}\n')
    assert "0 to run" in slurm_cli(path).stdout  # failed is final for a plain re-run
    out = slurm_cli(path, "--retry-failed")
    assert "1 to run" in out.stdout
    row = pd.read_csv(tmp_path / "results/retry/trials.csv").iloc[0]
    assert row.status == "completed" and row.epochs == 1, out.stdout[-2000:]


def test_max_concurrent_sets_the_array_throttle(cluster, tmp_path):
    path = slurm_sweep(tmp_path, {"optim.beta1": [0.3, 0.5, 0.7]}, epochs=1, name="throttle")
    # One trial per task, asked for: left to choose, it would pack the 3 into 1 task (see test_packing.py).
    slurm_cli(path, "--detach", "--max-concurrent=1", "--trials-per-task=1")
    jobs = read_json(tmp_path / "runs/throttle/slurm_jobs.json")
    try:
        array = next(iter(jobs.values())).split("_")[0]
        shown = subprocess.run(["scontrol", "show", "job", array], capture_output=True, text=True).stdout
        assert "ArrayTaskThrottle=1" in shown, shown
    finally:
        slurm_cli(path, "--cancel")


def test_no_progress_decision_stops_requeueing_only_a_requeued_task_stuck_at_its_start(monkeypatch):
    class Handler:  # submitit's signal handler, as far as the decision reads it
        def __init__(self, timed_out):
            self.timed_out = timed_out

        def has_timed_out(self):
            return self.timed_out

        def requeue(self, signum, frame):
            pass

    stuck = {"preempted": {"epoch": 2, "step": 40}, "resumed_from": {"epoch": 2, "step": 40}}
    moved = {"preempted": {"epoch": 2, "step": 48}, "resumed_from": {"epoch": 2, "step": 40}}
    done = {"status": "completed", "resumed_from": {"epoch": 2, "step": 40}}
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert task.no_progress([stuck], Handler(True).requeue)
    assert not task.no_progress([moved], Handler(True).requeue)
    assert not task.no_progress([stuck], Handler(False).requeue)  # preempted early, not at the time limit: requeue
    # A pack: one trial that moved or finished is progress; a pack that started no trial before the limit is none.
    assert not task.no_progress([stuck, moved], Handler(True).requeue)
    assert not task.no_progress([stuck, done], Handler(True).requeue)
    assert task.no_progress([], Handler(True).requeue)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert not task.no_progress([stuck], Handler(True).requeue)  # the first run: nothing was tried yet


def test_ray_slurm_job_signalled_before_its_time_limit_checkpoints_requeues_and_completes(cluster, tmp_path):
    # What Slurm does 90 s before the time limit (--signal=B:USR2@90), sent now: the batch script's trap makes the
    # running trial checkpoint at its next step and requeues the job, which resumes it there.
    base = {**BASE, "train.epochs": 80, "eval.every": 80, "train.checkpoint_every": 1000}  # ~25 s left at the signal
    path = write_sweep(tmp_path, {}, name="rayreq", base=base)
    write_site(tmp_path, SITE + "ray_cpus_per_node = 1\n")
    cli = [sys.executable, str(path), "--backend=ray-slurm", f"--site={tmp_path / 'site.toml'}"]
    subprocess.run([*cli, "--detach"], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    (job,) = set(read_json(tmp_path / "runs/rayreq/slurm_jobs.json").values())
    try:
        wait_for(lambda: any(read_json(p).get("epoch", 0) >= 2 for p in tmp_path.glob("runs/rayreq/*/status.json")),
                 240, "epoch 2")
        subprocess.run(["scancel", "--batch", "--signal=USR2", job], check=True)
        wait_for(lambda: "Restarts=1" in subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                                        text=True).stdout, 120, "the job to requeue itself")
        wait_for(lambda: started_again(job), 180, "the requeued job to start")
        out = subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    finally:
        subprocess.run(["scancel", job])
    (status_file,) = tmp_path.glob("runs/rayreq/*/status.json")
    status = read_json(status_file)
    assert status["status"] == "completed" and status["resumed_from"]["epoch"] >= 2, status
    assert list(status_file.parent.glob("checkpoints/epoch_*_step_*.pt"))  # the trap's checkpoint, mid-epoch
    log = (tmp_path / f"runs/rayreq/ray_slurm/{job}.out").read_text()
    assert "SIGUSR2" in log and log.count("to run") == 2
    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray/auth_token"))
    assert token.stat().st_mode & 0o777 == 0o600  # nobody else on a shared cluster can attach to your Ray


def test_fake_gres_gpu_trial_lands_on_the_gpu_node_and_fails_clearly_where_torch_has_no_cuda(cluster, tmp_path):
    # The dev cluster's partition gpu offers stand-in GPUs (character devices, no GPU behind them): Slurm grants
    # the request and sets CUDA_VISIBLE_DEVICES, torch finds no CUDA. The trial must say so, not train on the CPU.
    write_site(tmp_path, 'slurm_partition = "gpu"\ntimeout_min = 10\n')
    path = write_sweep(tmp_path, {"optim.beta1": [0.5]}, name="gpu", base=BASE)
    slurm_cli(path, "--gpus-per-worker=1")
    (status,) = [read_json(p) for p in tmp_path.glob("runs/gpu/*/status.json")]
    assert status["status"] == "failed", status
    assert "asked for a GPU but torch sees none (CUDA_VISIBLE_DEVICES='0'" in status["reason"], status["reason"]
    (job,) = read_json(tmp_path / "runs/gpu/slurm_jobs.json").values()
    nodes = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "NodeList"], capture_output=True, text=True)
    assert nodes.stdout.split() == ["gpu1"]


def test_ray_slurm_refuses_before_sbatch_a_trial_bigger_than_its_ray_cluster(cluster, tmp_path):
    write_site(tmp_path, SITE + "ray_cpus_per_node = 1\n")  # 1 node: 1 CPU + 1 for the trials' Tune processes
    path = write_sweep(tmp_path, name="toobig", base=BASE)
    out = sweep_cli(path, "--workers-per-trial=2", backend="ray-slurm", check=False, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "one trial needs 2.01 CPU" in out.stderr and "site.ray_cpus_per_node=1" in out.stderr, out.stderr
    assert not (tmp_path / "runs/toobig/slurm_jobs.json").exists()
