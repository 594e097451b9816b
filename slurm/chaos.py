"""Chaos run: a 100-trial tiny sweep on the Slurm cluster while random running tasks are killed.

    python slurm/chaos.py                      # 100 trials, kills for 240 s, gives up after 1500 s
    python slurm/chaos.py --trials=20 --chaos-s=60
    python slurm/chaos.py --workdir=DIR            # resume a run whose driver was stopped (counters in DIR/chaos.json)

It submits the sweep with --backend=slurm --detach, then for --chaos-s seconds kills a random RUNNING task every
few seconds, one of three ways: `scancel` (the task is cancelled), `scancel --signal=USR2` (preemption: submitit
requeues it) and `kill -9` of the task's Python process (a crash). Requeued tasks are released at once instead of
after Slurm's ~2 min hold. Whenever nothing of the sweep is queued or running it does what a user does:
`--status`, and if a row is not complete, runs the sweep again with --retry-failed (finished trials are never run
again). At the end every row must be complete, and its final metrics equal to an undisturbed run of the same
trial (the same configs trained in-process through library.train.fit). Prints one summary and exits 0 only then.
Everything runs on a copy of library/ and jobs/ taken at the start, so editing the checkout meanwhile is harmless.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data.limit": 512, "train.epochs": 2, "eval.num_samples": 100, "eval.final_num_samples": 100}
KINDS = ("scancel", "usr2", "kill-9")


def sweep_text(trials: int) -> str:
    seeds = trials // 4
    return ("from library.driver import main\nfrom library.sweep import Sweep\n"
            f"SWEEP = Sweep(name='chaos', job='gan', metric='fd_domain', base={TINY!r},\n"
            f"              grid={{'train.seed': list(range({seeds})), 'optim.beta1': [0.3, 0.5, 0.7, 0.9]}})\n"
            "if __name__ == '__main__':\n"
            "    main(SWEEP)\n")


def load_sweep(path: Path):
    scope: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), scope)
    return scope["SWEEP"]


def sweep_cli(path: Path, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(path), "--backend=slurm", f"--site={path.parent / 'site.toml'}", *args],
                         cwd=path.parent, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"{path.name} {' '.join(args)} exited {out.returncode}:\n{out.stderr[-2000:]}")
    return out


def queue(arrays: set[str]) -> list[tuple[str, str, str]]:
    """(task id, state, reason) of this sweep's tasks that Slurm still holds."""
    if not arrays:
        return []
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(sorted(arrays))],
                         capture_output=True, text=True)
    return [tuple(line.split("|")) for line in out.stdout.split()]


def task_pid(task: str) -> int | None:
    """The pid of the Python process that runs array task A_I (found by its Slurm environment)."""
    array, index = task.split("_")
    want = {f"SLURM_ARRAY_JOB_ID={array}", f"SLURM_ARRAY_TASK_ID={index}"}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"submitit.core._submit" not in (proc / "cmdline").read_bytes():
                continue
            if want <= set((proc / "environ").read_bytes().decode(errors="replace").split("\0")):
                return int(proc.name)
        except OSError:  # the process ended meanwhile
            continue
    return None


def kill(kind: str, task: str) -> bool:
    if kind in ("scancel", "usr2"):
        command = ["scancel", task] if kind == "scancel" else ["scancel", "--signal=USR2", task]
        try:
            return subprocess.run(command, capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:  # seen here: scancel --signal hangs once submitit has requeued the task
            return True
    pid = task_pid(task)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def undisturbed(sweep, folder: Path) -> dict[str, dict]:
    """Trial id -> final metrics of the same trials trained straight through, in this process."""
    import logging

    from library.resources import Resources
    from library.train import fit

    logging.getLogger("ray").setLevel(logging.WARNING)
    return {t.id: fit(sweep.job, t.config, folder / t.id, Resources())["final"] for t in sweep_trials(sweep)}


def sweep_trials(sweep):
    from library.sweep import expand

    return expand(sweep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python slurm/chaos.py", description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100, help="a multiple of 4")
    parser.add_argument("--chaos-s", type=float, default=240, help="how long to kill tasks")
    parser.add_argument("--limit-s", type=float, default=1500, help="give up (and cancel everything) after this")
    parser.add_argument("--seed", type=int, default=0, help="seeds which task is killed when, and how")
    parser.add_argument("--workdir", type=Path, help="default: a new folder under /tmp")
    args = parser.parse_args(argv)
    folder = (args.workdir or Path(tempfile.mkdtemp(prefix="chaos-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    # Every process of the run (tasks, re-runs, the undisturbed reference) uses one copy of the code: an edit of
    # the checkout during the run would change trial ids and refuse checkpoints of the old config.
    for package in ("library", "jobs"):
        if not (folder / "code" / package).exists():  # a resumed run keeps its copy
            shutil.copytree(ROOT / package, folder / "code" / package, ignore=shutil.ignore_patterns("__pycache__"))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder / "code"), os.environ.get("PYTHONPATH")) if p)
    sys.path.insert(0, str(folder / "code"))
    from library.files import read_json, write_json
    from library.launch import slurm
    from library.trial import Status, read_status, status_of

    assert Path(slurm.__file__).is_relative_to(folder), slurm.__file__
    path = folder / "chaos.py"
    path.write_text(sweep_text(args.trials))
    (folder / "site.toml").write_text('slurm_partition = "debug"\ntimeout_min = 10\nmem_gb = 1\n')
    os.environ["WANDB_MODE"] = "disabled"  # W&B has its own tests; here it would only add start-up time
    sweep = load_sweep(path)
    trials = sweep_trials(sweep)
    run_root = folder / "runs" / "chaos"
    rng = random.Random(args.seed)
    # Counters live in the work dir: `--workdir=SAME` resumes a run whose driver was stopped.
    state = read_json(folder / "chaos.json", {"started": time.time(), "kills": dict.fromkeys(KINDS, 0), "reruns": 0,
                                              "released": 0})
    start, kills = state["started"], state["kills"]
    began = time.time()
    print(f"chaos: {len(trials)} trials in {folder}; killing tasks for {args.chaos_s:.0f} s", flush=True)
    try:
        sweep_cli(path, "--detach")
        next_kill = time.time() + rng.uniform(3, 8)
        while True:
            write_json(folder / "chaos.json", state)
            if time.time() - began > args.limit_s:
                raise TimeoutError(f"not all rows complete after {args.limit_s:.0f} s")
            trial_of = {j: t for t, j in read_json(run_root / slurm.JOBS, {}).items()}
            tasks = queue({j.split("_")[0] for j in trial_of})
            for task, slurm_state, reason in tasks:
                if slurm_state == "PENDING" and reason == "BeginTime":  # a requeued task: skip the ~2 min hold
                    subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], capture_output=True)
                    state["released"] += 1
            running = [t for t, slurm_state, _ in tasks if slurm_state == "RUNNING"]
            # Most of a tiny task is Python start-up: wait a little for one that is between epochs to hit.
            training = [t for t in running if status_of(run_root / trial_of.get(t, "-")) == Status.RUNNING]
            hunting = time.time() < next_kill + 5 and not training
            if running and time.time() - start < args.chaos_s and time.time() >= next_kill and not hunting:
                kind, task = rng.choice(KINDS), rng.choice(training or running)
                if kill(kind, task):
                    kills[kind] += 1
                    print(f"[{time.time() - start:5.0f}s] {kind} {task}", flush=True)
                next_kill = time.time() + rng.uniform(3, 8)
            if not tasks and not slurm.active_trials(run_root):
                sweep_cli(path, "--status")
                done = sum(status_of(run_root / t.id) == Status.COMPLETED for t in trials)
                print(f"[{time.time() - start:5.0f}s] queue empty: {done}/{len(trials)} complete", flush=True)
                if done == len(trials):
                    break
                sweep_cli(path, "--detach", "--retry-failed")
                state["reruns"] += 1
            time.sleep(0.25)
        chaos_s = time.time() - start
        reference = undisturbed(sweep, folder / "undisturbed")
    finally:
        slurm.cancel(run_root)

    import pandas as pd

    table = pd.read_csv(folder / "results/chaos/trials.csv")
    lost = len(trials) - int((table.status == "completed").sum())
    mismatched = [t.id for t in trials
                  if read_status(run_root / t.id)["final"] | {"elapsed_s": 0}
                  != reference[t.id] | {"elapsed_s": 0}]
    resumed = sum(read_status(run_root / t.id).get("resumed_from_epoch", 0) > 0 for t in trials)
    summary = {"trials": len(trials), "rows": len(table), "kills": kills, "requeues_released": state["released"],
               "reruns": state["reruns"], "resumed_from_checkpoint": resumed, "rows_lost": lost,
               "mismatches": len(mismatched), "sweep_wall_s": round(chaos_s), "total_wall_s": round(time.time() - start)}
    print("chaos result: " + json.dumps(summary))
    if mismatched:
        print("differ from the undisturbed run: " + " ".join(mismatched))
    return 0 if lost == 0 and not mismatched and len(table) == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
