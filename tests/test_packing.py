"""Several trials in one Slurm array task (--trials-per-task), fractional GPUs, and the code snapshot that queued
and requeued tasks run, on the dev cluster of slurm/cluster.sh."""
import os
import signal
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from helpers import ROOT, SITE, SLURM_TINY, assert_same_run, started_again, sweep_cli, wait_for, write_site, write_sweep
from library.files import read_json
from library.launch.slurm import SiteProfile, pack_size
from library.resources import Resources

pytestmark = pytest.mark.slurm


def packed_sweep(folder: Path, seeds: list[int], epochs: int, site: str = SITE, **base) -> Path:
    write_site(folder, site)
    return write_sweep(folder, {"train.seed": seeds}, name="packed",
                       base={**SLURM_TINY, "train.epochs": epochs, **base})


def statuses(folder: Path) -> dict[str, dict]:
    return {p.parent.name: read_json(p) for p in folder.glob("runs/packed/*/status.json")}


def test_default_pack_size_keeps_the_array_within_its_parallelism_and_fills_a_shared_gpu():
    site = SiteProfile(slurm_array_parallelism=64)
    assert pack_size(6, Resources(), site) == 1  # a small sweep: one trial per task, as many at once as before
    assert pack_size(1000, Resources(), site) == 16  # 63 tasks: no fewer than may run at once
    assert pack_size(6, Resources(gpus_per_worker=0.25), site) == 4  # four trials to share each task's GPU


def test_a_preempted_packed_task_resumes_every_trial_and_each_row_equals_an_undisturbed_run(cluster, tmp_path):
    # Three trials in one task, two at a time (site.pack_cpus = 2): at the signal two are mid-run, one is queued.
    # No periodic checkpoint after epoch 0: what carries a trial over is the one the signal asks for.
    seeds, epochs, no_periodic = [1, 2, 3], 6, {"train.checkpoint_every": 1000}
    reference = tmp_path / "reference"
    reference.mkdir()
    sweep_cli(packed_sweep(reference, seeds, epochs, **no_periodic), backend="local", timeout=300)

    path = packed_sweep(tmp_path, seeds, epochs, SITE + "pack_cpus = 2\n", **no_periodic)
    out = sweep_cli(path, "--detach", "--trials-per-task=3", backend="slurm")
    assert "submitted 1 Slurm array task(s) of up to 3 trials each (2 at once)" in out.stdout
    (job,) = set(read_json(tmp_path / "runs/packed/slurm_jobs.json").values())
    wait_for(lambda: any(s.get("epoch", 0) >= 2 for s in statuses(tmp_path).values()), 240, "epoch 2")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # preemption, as Slurm signals it
    running = {t: s["epoch"] for t, s in statuses(tmp_path).items() if s["status"] == "running"}
    wait_for(lambda: "Restarts=1" in subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                                    text=True).stdout, 90, "the requeue")
    wait_for(lambda: started_again(job), 180, "the requeued task to start")
    sweep_cli(path, "--trials-per-task=3", backend="slurm")  # follows until done; submits nothing new
    done = statuses(tmp_path)
    assert {s["status"] for s in done.values()} == {"completed"} and len(done) == 3, done
    assert max(running.values()) >= 2
    for trial, epoch in running.items():  # each resumed where the signal stopped it, not from the start
        assert done[trial]["resumed_from_epoch"] >= epoch, (trial, done[trial]["resumed_from"])
    for trial in done:
        assert_same_run(tmp_path / "runs/packed" / trial, reference / "runs/packed" / trial)


def test_a_trial_killed_inside_a_pack_is_a_failed_row_and_the_others_complete(cluster, tmp_path):
    path = packed_sweep(tmp_path, [1, 2, 3], epochs=4)
    sweep_cli(path, "--detach", "--trials-per-task=3", backend="slurm")
    wait_for(lambda: any(s.get("epoch", 0) >= 1 for s in statuses(tmp_path).values()), 240, "a first epoch")
    (victim,) = [t for t, s in statuses(tmp_path).items() if s.get("epoch", 0) >= 1 and s["status"] == "running"][:1]
    holder = (tmp_path / "runs/packed" / victim / ".train.lock").read_text()  # "HOST pid PID slurm job JOB"
    os.kill(int(holder.split()[2]), signal.SIGKILL)  # what the OOM killer does to the trial's process
    sweep_cli(path, "--trials-per-task=3", backend="slurm")
    table = pd.read_csv(tmp_path / "results/packed/trials.csv").set_index("trial")
    assert len(table) == 3 and table.loc[victim, "status"] == "failed", table[["status", "reason"]]
    assert "killed by signal 9" in table.loc[victim, "reason"]
    assert set(table.drop(victim).status) == {"completed"}


def test_fractional_gpus_share_one_fake_gres_gpu_of_a_packed_task(cluster, tmp_path):
    # No GPU exists here: the partition's GPUs are fake gres devices, so each trial fails saying what it saw.
    path = packed_sweep(tmp_path, [1, 2], epochs=1, site='slurm_partition = "gpu"\ntimeout_min = 10\n')
    out = sweep_cli(path, "--gpus-per-trial=0.5", backend="slurm")
    assert "submitted 1 Slurm array task(s) of up to 2 trials each (2 at once)" in out.stdout
    (job,) = set(read_json(tmp_path / "runs/packed/slurm_jobs.json").values())
    (script,) = tmp_path.glob("runs/packed/slurm/**/*_submission.sh")
    assert "#SBATCH --gpus-per-node=1\n" in script.read_text()  # one GPU for the two trials
    reasons = [s["reason"] for s in statuses(tmp_path).values()]
    assert len(reasons) == 2 and all("asked for a GPU" in r and "CUDA_VISIBLE_DEVICES='0'" in r for r in reasons)
    refused = sweep_cli(path, "--gpus-per-trial=3", backend="slurm", check=False)
    assert refused.returncode != 0 and "at most 2 GPUs per task" in refused.stderr
    assert not list(tmp_path.glob("runs/packed/slurm_jobs.json.*"))


def test_queued_tasks_run_the_code_of_their_submission_not_the_edited_checkout(cluster, tmp_path):
    # A checkout of our own to edit: the repo's packages copied, the sweep run from there.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for package in ("library", "jobs"):
        shutil.copytree(ROOT / package, checkout / package, ignore=shutil.ignore_patterns("__pycache__"))
    gate = tmp_path / "gate"
    # The task waits in its setup (before Python starts) until the test has edited the checkout.
    site = SITE + f'slurm_setup = ["while [ ! -e {gate} ]; do sleep 0.2; done"]\n'
    path = packed_sweep(tmp_path, [1], epochs=1, site=site)
    env = {"PYTHONPATH": str(checkout)}
    sweep_cli(path, "--detach", backend="slurm", cwd=checkout, env=env)
    job_file = checkout / "jobs/gan.py"
    step = "    def step(self, batch, ctx: Context):\n"
    edited = job_file.read_text().replace(step, step + "        raise RuntimeError('edited_after_submission')\n")
    assert edited != job_file.read_text()
    job_file.write_text(edited)
    gate.touch()
    sweep_cli(path, backend="slurm", cwd=checkout, env=env)
    (status,) = statuses(checkout).values()  # runs/ and results/ of a sweep run from the checkout
    assert status["status"] == "completed", status.get("reason")
    (snapshot,) = (checkout / "runs/packed/code").iterdir()
    assert "edited_after_submission" not in (snapshot / "jobs/gan.py").read_text()
    # The edit itself breaks a trial: a sweep submitted after it runs the edited code and fails.
    (checkout / "runs").rename(tmp_path / "runs_before")
    sweep_cli(path, backend="slurm", cwd=checkout, env=env, check=False)
    (after,) = statuses(checkout).values()
    assert after["status"] == "failed" and "edited_after_submission" in after["reason"], after
