"""`python -m library.bench --scale`: how the system's cost grows with the sweep, on the dev Slurm cluster.

Random searches of 10, 100 and 1,000 trials of `scale_probe` (a job that exists only for this: one tiny step per
trial), each run as the driver runs a sweep (configure, submit, follow, reconcile, collect, report) in a fresh
process, once with one trial per array task and once packed. Per size: the login node's time per phase, Slurm
calls per minute while following, the driver's peak memory, the report's size, the wall time, and the cluster's
cost per trial: the array tasks' summed run time (sacct) per trial, minus the trials' own training time.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from library.files import read_json

SIZES = ((1, 1), (50, 50), (10, 1), (100, 1), (100, 0), (1000, 0))
"""(trials, trials per task; 0 = the default pack size). The first two run one task alone (no other task shares the
machine's cores): a trial's overhead in its own task and in a pack, uncontended. 1,000 trials unpacked would hold
this 6-CPU dev cluster for half an hour (~10 s of start-up each): left out, its cost per trial is the 100-trial
row's."""
SITE = 'slurm_partition = "debug"\ntimeout_min = 30\nslurm_array_parallelism = {parallelism}\n'
PARALLELISM = 20
"""Array tasks at once: what the default pack size divides the sweep by (1,000 trials: packs of 50)."""


def one(n: int, per_task: int, work: Path) -> dict:
    """Run one sweep of n trials and time its phases (in this process: the driver's own code, step by step)."""
    from library import launch
    from library.report import build_report
    from library.results import collect
    from library.search import LogUniform
    from library.sweep import Sweep, resolve

    name = f"scale{n}_k{per_task}"
    (work / "site.toml").write_text(SITE.format(parallelism=PARALLELISM))
    run_root, out_dir = work / "runs" / name, work / "results" / name
    t = {"start": time.perf_counter()}
    sweep = Sweep(name=name, job="scale_probe", base={"train.epochs": 1, "train.batch_size": 32},
                  search={"optim.lr": LogUniform(1e-3, 0.5)}, samples=n)
    sweep, trials = resolve(sweep)
    t["expand"] = time.perf_counter()
    backend = launch.get("slurm", launch.LaunchOptions(site=str(work / "site.toml"), trials_per_task=per_task))
    backend.check(sweep)
    print(backend.submit(sweep, trials, run_root), flush=True)
    t["submit"] = time.perf_counter()
    backend.follow(run_root, trials, sweep.metric)
    backend.reconcile(run_root, trials)
    t["follow"] = time.perf_counter()
    table = collect(sweep, trials, run_root, out_dir)
    t["collect"] = time.perf_counter()
    report = build_report(out_dir)
    t["report"] = time.perf_counter()
    jobs = read_json(run_root / "slurm_jobs.json")
    statuses = [read_json(run_root / tr.id / "status.json", {}) for tr in trials]
    return {
        "trials": n, "per_task": per_task, "tasks": len(set(jobs.values())),
        "rows": len(table), "completed": int((table.status == "completed").sum()),
        "expand_s": t["expand"] - t["start"], "submit_s": t["submit"] - t["expand"],
        "follow_s": t["follow"] - t["submit"], "collect_s": t["collect"] - t["follow"],
        "report_s": t["report"] - t["collect"], "wall_s": t["report"] - t["start"],
        "report_mb": report.stat().st_size / 1e6, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "poll": read_json(run_root / "poll.json", {}),
        "task_s": sum(task_seconds(sorted(set(jobs.values()))).values()),
        "train_s": sum(s.get("elapsed_s", 0) or 0 for s in statuses),
    }


def task_seconds(job_ids: list[str]) -> dict[str, int]:
    """Array task id -> its run time in seconds, as Slurm accounted it."""
    arrays = ",".join(sorted({j.split("_")[0] for j in job_ids}))
    out = subprocess.run(["sacct", "-n", "-P", "-X", "-j", arrays, "-o", "JobID,ElapsedRaw"],
                         capture_output=True, text=True, check=True).stdout
    wanted, found = set(job_ids), {}
    for line in out.splitlines():
        jid, seconds = line.split("|")
        if jid in wanted:
            found[jid] = int(seconds)
    return found


def scale(work: Path, sizes=SIZES) -> list[dict]:
    """Each size in a fresh driver process (its peak memory its own)."""
    rows = []
    for n, per_task in sizes:
        folder = work / f"n{n}_k{per_task}"
        folder.mkdir(parents=True)
        out = subprocess.run([sys.executable, "-m", "library.bench.scale", str(n), str(per_task), str(folder)],
                             capture_output=True, text=True, timeout=3600)
        if out.returncode:
            raise RuntimeError(f"{n} trials: {out.stdout[-3000:]}{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"bench --scale: {n} trials, {rows[-1]['tasks']} tasks: {rows[-1]['wall_s']:.0f} s", flush=True)
    return rows


def login_s(r: dict) -> float:
    """The login node's own work for a sweep: everything but waiting for the cluster."""
    return r["expand_s"] + r["submit_s"] + r["collect_s"] + r["report_s"]


def markdown(rows: list[dict]) -> str:
    head = ("| trials | per task | tasks | rows (completed) | expand+validate s | submit s | follow s | collect s | "
            "report s (MB) | login-node ms/trial | Slurm calls/min | driver peak MB | wall s | cluster s/trial "
            "(tasks' run time) | of which overhead s/trial |")
    lines = ["# Scale figures (dev Slurm cluster: 3 nodes x 2 CPUs on one 2-core VM)", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        poll = r["poll"]
        lines.append(
            f"| {r['trials']} | {r['per_task'] or 'default'} | {r['tasks']} | {r['rows']} ({r['completed']}) | "
            f"{r['expand_s']:.2f} | {r['submit_s']:.2f} | {r['follow_s']:.0f} | {r['collect_s']:.2f} | "
            f"{r['report_s']:.2f} ({r['report_mb']:.2f}) | {1000 * login_s(r) / r['trials']:.1f} | "
            f"{poll.get('per_minute', float('nan')):.1f} | {r['peak_mb']:.0f} | {r['wall_s']:.0f} | "
            f"{r['task_s'] / r['trials']:.2f} | {(r['task_s'] - r['train_s']) / r['trials']:.2f} |")
    by = {(r["trials"], bool(r["per_task"] == 1)): r for r in rows}
    lines.append("")
    if (alone := by.get((1, True))) and (pack := by.get((50, False))):
        a, b = alone["task_s"] - alone["train_s"], (pack["task_s"] - pack["train_s"]) / 50
        lines.append(f"- One task alone on the cluster: overhead of a trial in its own task {a:.2f} s, in a pack of 50 "
                     f"{b:.2f} s per trial (ratio {b / a:.2f})")
    if (big := by.get((1000, False))) and (mid := by.get((100, False))):
        ratio = (login_s(big) / 1000) / (login_s(mid) / 100)
        lines.append(f"- Login-node cost per trial, 1,000 vs 100 trials (packed): {ratio:.2f}x")
    if (one_each := by.get((100, True))) and (packed := by.get((100, False))):
        a = (one_each["task_s"] - one_each["train_s"]) / 100
        b = (packed["task_s"] - packed["train_s"]) / 100
        lines.append(f"- Cluster overhead per trial, 100 trials: one per task {a:.2f} s, packed {b:.2f} s "
                     f"(packed / one per task = {b / a:.2f})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(one(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))))
