"""The ray-slurm backend: one sbatch job starts a Ray cluster across its nodes and runs the sweep inside it.

Many small trials then share one allocation (one queue wait, one Ray start), and a trial with several Ray
Train workers can span nodes (multi-node DDP). Ports and Ray's temp dir derive from the job id, so two jobs
(two users) on one node never collide; the driver gets RAY_ADDRESS, without which ray.init() would silently
start a private Ray. The job is requeueable: after preemption the sweep inside skips finished trials and
resumes the others from their checkpoints.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from library.config import require
from library.files import read_json, write_json, write_text
from library.launch import local, snapshot
from library.launch.slurm import SiteProfile, SlurmBackend, check_request, record_jobs, run_slurm
from library.resources import Resources
from library.sweep import RECORD, Sweep
from library.trial import STATUS, STOP_REQUEST, Trial, status_of

FOLDER = "ray_slurm"


def sbatch_script(name: str, run_root: Path, site: SiteProfile, res: Resources, nodes: int, trials: int,
                  python: str) -> str:
    per_trial = max(1, res.workers) * res.cpus_per_worker
    cpus = site.ray_cpus_per_node or per_trial * max(1, min(-(-trials // nodes), site.slurm_array_parallelism))
    gpus = site.ray_gpus_per_node
    folder = run_root / FOLDER
    directives = {
        "job-name": name, "nodes": nodes, "ntasks-per-node": 1, "cpus-per-task": cpus, "time": site.timeout_min,
        "output": folder / "%j.out", "open-mode": "append", "requeue": None, "signal": "B:USR2@90",
        # A lost worker node must not end the job: Ray Tune retries its trials on the nodes left.
        "no-kill": None,
        "partition": site.slurm_partition, "account": site.slurm_account, "qos": site.slurm_qos,
        "constraint": site.slurm_constraint, "mem": f"{site.mem_gb}G" if site.mem_gb else "",
        "gpus-per-node": gpus or "",
    }
    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH --{k}" + ("" if v is None else f"={v}") for k, v in directives.items() if v != ""]
    ray = str(Path(python).parent / "ray")
    # srun inherits --cpus-per-task only from Slurm 23.11: without it, CPU binding puts all of Ray on one core.
    srun = 'srun --nodes=1 --ntasks=1 --cpus-per-task=$SLURM_CPUS_PER_TASK -w'
    start = [ray, "start", f"--num-gpus={gpus}", "--block"]
    # Multi-worker trials' Tune processes hold a sliver of a CPU each (library.train.DRIVER_CPU).
    head_cpus = "$((SLURM_CPUS_PER_TASK + 1))" if res.workers else "$SLURM_CPUS_PER_TASK"
    spec = shlex.quote(str(folder / RECORD))
    lines += [
        "set -uo pipefail", *site.slurm_setup,
        "# One Ray head per job: port and temp dir from the job id, so jobs sharing a node never collide.",
        "nodes=($(scontrol show hostnames \"$SLURM_JOB_NODELIST\"))",
        "head=${nodes[0]}",
        "# A node's address as Slurm knows it (NodeAddr), not whatever interface `hostname -I` lists first: Ray must",
        "# not guess it (nodes that share a machine or have several interfaces would all claim the same one).",
        "node_ip() { getent hosts \"$(scontrol show node \"$1\" | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2)\" | awk '{print $1; exit}'; }",
        "head_ip=$(node_ip \"$head\")",
        "port=$((20000 + SLURM_JOB_ID % 20000))",
        "# Ray's temp dir per job and per node: sockets and logs of two nodes (or two jobs) on one machine never mix.",
        "export RAY_TMP=/tmp/ray_$SLURM_JOB_ID RAY_ADDRESS=$head_ip:$port",
        "# Token auth on every node and the driver; the token lives in the (shared) home directory, readable by you only.",
        "export RAY_AUTH_MODE=token",
        f"(umask 077; {ray} get-auth-token --generate >/dev/null)",
        "chmod 600 \"${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}\"",
        f"{srun} \"$head\" " + " ".join(start + [f"--num-cpus={head_cpus}", "--head", "--port=$port",
                                                "--node-ip-address=$head_ip", "--temp-dir=${RAY_TMP}_$head",
                                                "--include-dashboard=false"]) + " &",
        "pids=($!)",
        f"for i in $(seq 1 60); do {ray} status --address=$RAY_ADDRESS >/dev/null 2>&1 && break; sleep 1; done",
        "for node in \"${nodes[@]:1}\"; do",
        f"  {srun} \"$node\" " + " ".join(start + ["--num-cpus=$SLURM_CPUS_PER_TASK", "--address=$RAY_ADDRESS",
                                                  "--node-ip-address=$(node_ip \"$node\")",
                                                  "--temp-dir=${RAY_TMP}_$node"]) + " &",
        "  pids+=($!)",
        "done",
        "# Near the time limit (or on preemption) Slurm signals this script: every running trial checkpoints at its",
        "# next step and ends, then the job requeues itself and the sweep resumes from those checkpoints.",
        "preempted=0",
        "on_usr2() {",
        "  preempted=1",
        "  echo \"ray-slurm: SIGUSR2 at $(date +%T): checkpointing the running trials, then requeueing\"",
        f"  for d in {shlex.quote(str(run_root))}/*/; do [ -f \"$d/{STATUS}\" ] && touch \"$d/{STOP_REQUEST}\"; done",
        "  (sleep 60; kill \"$driver\" 2>/dev/null) &  # a trial stuck outside its step loop: requeue anyway",
        "  guard=$!",
        "}",
        "trap on_usr2 USR2",
        f"{shlex.quote(python)} -m library.launch.ray_slurm run {spec} &",
        "driver=$!",
        "wait $driver; rc=$?",
        "while kill -0 $driver 2>/dev/null; do wait $driver; rc=$?; done  # `wait` returns early for the trap",
        "kill \"${pids[@]}\" ${guard:-} 2>/dev/null; wait 2>/dev/null",
        "if [ $preempted = 1 ]; then scontrol requeue \"$SLURM_JOB_ID\"; fi",
        "exit $rc",
    ]
    return "\n".join(lines) + "\n"


def submit(sweep: Sweep, trials: list[Trial], run_root: Path, site: SiteProfile, nodes: int = 1) -> str:
    """Write the sweep's record with its trials and the job script under runs/SWEEP/ray_slurm/, sbatch it, return
    the job id."""
    folder = run_root / FOLDER
    write_json(folder / RECORD, {**sweep.record(trials), "run_root": str(run_root)})
    script = folder / "job.sbatch"
    write_text(script, sbatch_script(sweep.name, run_root, site, sweep.resources, nodes, len(trials), sys.executable))
    try:
        with snapshot.submitted_from(run_root):  # a requeued job runs the code of its submission
            out = run_slurm("sbatch", "--parsable", str(script))
    except RuntimeError as e:
        raise RuntimeError(f"Slurm refused the submission: {e}") from None
    job = out.strip().split(";")[0]
    record_jobs(run_root, {t.id: job for t in trials})
    return job


def run_inside_job(record_path: Path) -> None:
    """The driver inside the sbatch job: the local backend, attached to this job's Ray cluster."""
    record = read_json(record_path)
    sweep = Sweep.from_record(record)
    run_root = Path(record["run_root"])
    trials = [Trial.from_json(t) for t in record["trials"]]
    # A requeued job resumes, not repeats: trials that ended stay as they are (a failed one submitted again with
    # --retry-failed was queued again by record_jobs).
    todo = [t for t in trials if not status_of(run_root / t.id).final]
    print(f"{sweep.name}: {len(trials) - len(todo)} finished before, {len(todo)} to run", flush=True)
    if todo:
        nodes = int(os.environ.get("SLURM_JOB_NUM_NODES", "1"))
        local.run(sweep, todo, run_root, tracking=record["tracking"], address="auto", nodes=nodes)


class RaySlurmBackend(SlurmBackend):
    """One sbatch job starts a Ray cluster on --nodes nodes and runs the whole sweep in it (ASHA allowed)."""

    name = "ray-slurm"

    def check(self, sweep: Sweep) -> None:
        require(self.options.trials_per_task <= 1, "--trials-per-task", self.options.trials_per_task,
                "0 or 1 with --backend=ray-slurm: its one job already runs every trial on one Ray cluster (share GPUs "
                "with a fractional --gpus-per-trial)")
        check_request(self.site, sweep.resources)
        nodes, cpus, gpus = self.options.nodes, self.site.ray_cpus_per_node, self.site.ray_gpus_per_node
        # Unset, ray_cpus_per_node is sized to the trials (sbatch_script); the head adds a CPU for the trials'
        # Tune processes when trials have Train workers.
        total_cpus = cpus * nodes + (1 if sweep.resources.workers else 0) if cpus else float("inf")
        sweep.resources.check_fits({"CPU": total_cpus, "GPU": gpus * nodes},
                                   f"the Ray cluster job ({nodes} node(s) x site.ray_cpus_per_node={cpus or 'auto'}, "
                                   f"site.ray_gpus_per_node={gpus})")

    def submit(self, sweep: Sweep, trials: list[Trial], run_root: Path) -> str:
        job = submit(sweep, trials, run_root, self.site, self.options.nodes)
        return f"submitted Slurm job {job} (a Ray cluster on {self.options.nodes} node(s)); log in {run_root}/{FOLDER}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m library.launch.ray_slurm")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("record", type=Path)
    run_inside_job(parser.parse_args().record)
