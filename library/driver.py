"""The sweep driver: `python sweeps/NAME.py [flags]` on a login node or a laptop.

It validates every trial, checks the data, hands what is not finished to a backend (library.launch), follows it,
and writes the table and the report. It never names a backend: each one's details sit behind `Backend`.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from library import launch
from library.cli import fail, split_overrides
from library.config import ConfigError, parse, require
from library.data import DatasetNotReady
from library.job import load_job
from library.search import Pinned
from library.sweep import BIG, Sweep, resolve
from library.tracking import sync_hint
from library.trial import Trial, status_of

ACTIONS = ("--dry-run", "--status", "--cancel", "--detach", "--retry-failed")
"""Flags that say what to do rather than which sweep: left out of the commands the driver suggests."""


def main(sweep: Sweep, argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args, overrides = parse_args(argv, sweep)
        sweep, trials = configure(sweep, args, overrides)
        backend = launch.get(args.backend, launch.LaunchOptions(site=args.site, nodes=args.nodes,
                                                                max_concurrent=args.max_concurrent,
                                                                trials_per_task=args.trials_per_task))
        for flag, folder in (("--runs-dir", args.runs_dir), ("--results-dir", args.results_dir)):
            require(writable(folder), flag, str(folder), "a folder this user can write to, or create")
        backend.check(sweep)
    except (ConfigError, RuntimeError) as e:
        fail(str(e))
    run_root = (args.runs_dir / sweep.name).resolve()
    out_dir = (args.results_dir / sweep.name).resolve()
    if args.cancel:
        cancelled = backend.cancel(run_root)
        print(f"{sweep.name}: cancelled {len(cancelled)} job(s){job_list(cancelled)}")
        return
    replicated = f" ({len(trials) // sweep.repeats} configurations x {sweep.repeats} replicates)" * (sweep.repeats > 1)
    print(f"{sweep.name}: {len(trials)} trials{replicated} of job {sweep.job!r}, metric {sweep.metric} "
          f"({sweep.mode}), backend {backend.name}")
    print_table(trials, run_root, every=args.dry_run)
    if args.dry_run:
        return
    if args.status:
        backend.reconcile(run_root, trials)
        finish(sweep, trials, run_root, out_dir, argv)
        return
    started = time.time()
    prepare(sweep, trials)  # before the lock: a missing dataset leaves nothing under runs/
    with SweepLock(run_root / ".lock"):
        todo = [t for t in trials if status_of(run_root / t.id).runs_again(args.retry_failed)]
        busy = backend.busy(run_root, todo)
        for t, who in busy.items():
            print(f"{t}: skipped, {who}")
        todo = [t for t in todo if t.id not in busy]
        print(f"{len(trials) - len(todo) - len(busy)} finished before, {len(busy)} running elsewhere, "
              f"{len(todo)} to run")
        if todo:
            try:
                print(backend.submit(sweep, todo, run_root), flush=True)
            except (ConfigError, RuntimeError) as e:
                fail(str(e))
    if backend.queued:
        if args.detach:
            print(f"detached. Follow with: {command(sweep, argv, '--status')}")
            return
        try:
            backend.follow(run_root, trials, sweep.metric)
        except KeyboardInterrupt:
            print(f"\ndetached: the jobs keep running. Look with:  {command(sweep, argv, '--status')}\n"
                  f"stop them with:  {command(sweep, argv, '--cancel')}")
            sys.exit(130)
        backend.reconcile(run_root, trials)
    print(f"\n{sweep.name}: done in {time.time() - started:.0f} s")
    finish(sweep, trials, run_root, out_dir, argv)


def command(sweep: Sweep, argv: list[str], *flags: str) -> str:
    """This sweep's command line as the user typed it (overrides, folders, backend), with other action flags: a
    suggestion typed as shown finds the same sweep."""
    script = sys.argv[0] if Path(sys.argv[0]).name == Path(sweep.script).name else sweep.script
    kept = [a for a in argv if a.split("=")[0] not in ACTIONS]
    return shlex.join(["python", script, *kept, *flags])


def parse_args(argv: list[str], sweep: Sweep) -> tuple[argparse.Namespace, dict[str, str]]:
    parser = argparse.ArgumentParser(prog=f"python sweeps/{sweep.name}.py", allow_abbrev=False,
                                     description=f"Run the {sweep.name} sweep ({sweep.job} job) and write results/{sweep.name}/.",
                                     epilog="Any other --section.key=value overrides the job config of every trial.")
    presets = ", ".join(sweep.presets) or "none"
    parser.add_argument("--preset", help=f"run another setup of the study instead of the file's own (this sweep's: "
                        f"{presets}; seed = the original report's), under runs/ and results/{sweep.name}-PRESET")
    parser.add_argument("--dataset", help="data.name for every trial (python -m library.data list)")
    parser.add_argument("--epochs", help="train.epochs for every trial")
    parser.add_argument("--repeats", type=int, default=sweep.repeats,
                        help="runs of every configuration, each with its own seed (default: the sweep's, %(default)s); "
                        "a re-run with more runs only the new replicates")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the trial table; run nothing")
    parser.add_argument("--backend", choices=["auto", *launch.BACKENDS], default="auto",
                        help="; ".join(f"{k}: {v[1]}" for k, v in launch.BACKENDS.items())
                        + f" (auto: {launch.default_backend()} here)")
    parser.add_argument("--nodes", type=int, default=1, help="nodes of one allocation (ray-slurm: the Ray cluster)")
    parser.add_argument("--site", type=os.path.expanduser, default=os.environ.get("LIBRARY_SITE"),
                        help="the cluster's site profile, TOML (see slurm/site.example.toml; default $LIBRARY_SITE)")
    parser.add_argument("--detach", action="store_true", help="queued backends: submit and return at once")
    parser.add_argument("--status", action="store_true", help="show the trials' state and rebuild the results")
    parser.add_argument("--cancel", action="store_true", help="cancel this sweep's queued and running tasks")
    parser.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    parser.add_argument("--max-concurrent", type=int, default=0, help="trials at once (default: as the CPUs allow)")
    parser.add_argument("--workers-per-trial", type=int, default=None,
                        help="Ray Train workers (DDP ranks) per trial; 0 = in the trial's own process")
    parser.add_argument("--gpus-per-worker", type=int, default=None, help="GPUs per Ray Train worker")
    parser.add_argument("--gpus-per-trial", type=float, default=None,
                        help="GPUs per trial, all its workers together; a fraction shares a GPU (0.25: four trials "
                        "on one GPU, for trials of one process)")
    parser.add_argument("--trials-per-task", type=int, default=0,
                        help="slurm: trials run inside one array task, one after another or several at once where "
                        "the task's GPU is shared (default 0: as many as keep the array within "
                        "site.slurm_array_parallelism tasks, at least as many as share a GPU)")
    parser.add_argument("--placement", choices=["pack", "spread"], default=None,
                        help="a trial's workers on as few nodes as possible (pack) or one per node (spread)")
    parser.add_argument("--runs-dir", type=expand_path, default=Path("runs"), help="checkpoints and per-trial files")
    parser.add_argument("--results-dir", type=expand_path, default=Path("results"), help="tables, plots, sample grids")
    args, rest = parser.parse_known_args(argv)
    overrides = split_overrides(rest)
    if args.dataset is not None:
        overrides["data.name"] = args.dataset
    if args.epochs is not None:
        overrides["train.epochs"] = args.epochs
    return args, overrides


def configure(sweep: Sweep, args: argparse.Namespace, overrides: dict[str, str]) -> tuple[Sweep, list[Trial]]:
    """The sweep as the command line changes it (its --preset, then the overrides; its metric the job's for the
    resulting config), and its validated trials."""
    if args.preset is not None:
        sweep = sweep.with_preset(args.preset)
    res = sweep.resources
    if args.workers_per_trial is not None:
        require(args.workers_per_trial >= 0, "--workers-per-trial", args.workers_per_trial, "an integer >= 0")
        res = replace(res, workers=args.workers_per_trial)
    if args.gpus_per_worker is not None:
        require(args.gpus_per_worker >= 0, "--gpus-per-worker", args.gpus_per_worker, "an integer >= 0")
        res = replace(res, gpus_per_worker=args.gpus_per_worker)
    if args.gpus_per_trial is not None:
        require(args.gpus_per_worker is None, "--gpus-per-trial", args.gpus_per_trial,
                "given alone: --gpus-per-worker says the same per Ray Train worker")
        per_worker = args.gpus_per_trial / max(1, res.workers)
        require(args.gpus_per_trial >= 0 and (res.workers <= 1 or per_worker == int(per_worker)), "--gpus-per-trial",
                args.gpus_per_trial, f"a number >= 0 that {res.workers} workers share in whole GPUs")
        res = replace(res, gpus_per_worker=per_worker)
    require(args.trials_per_task >= 0, "--trials-per-task", args.trials_per_task, "an integer >= 0 (0: chosen for you)")
    if args.placement is not None:
        res = replace(res, placement=args.placement)
    require(args.max_concurrent >= 0, "--max-concurrent", args.max_concurrent, "an integer >= 0")
    require(args.nodes >= 1, "--nodes", args.nodes, "an integer >= 1")
    require(args.repeats >= 1, "--repeats", args.repeats, "an integer >= 1")
    # An override of a swept key narrows that axis to the one value (e.g. --optim.beta1=0.5). A searched key
    # stays in the table, pinned, and the other keys keep their draws. The value is parsed like any override.
    grid = {k: [overrides.pop(k)] if k in overrides else v for k, v in sweep.grid.items()}
    search = {k: Pinned(overrides.pop(k), v) if k in overrides else v for k, v in sweep.search.items()}
    sweep = replace(sweep, base={**sweep.base, **overrides}, grid=grid, search=search, resources=res,
                    repeats=args.repeats)
    return resolve(sweep)


def expand_path(text: str) -> Path:
    """`--runs-dir=~/runs`: the shell expands ~ only at a word's start, not after `=`."""
    return Path(text).expanduser()


def writable(folder: Path) -> bool:
    """The folder, or the nearest parent that exists, is a directory this process may write into."""
    folder = folder.expanduser().resolve()
    while not folder.exists():
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


FIRST_ROWS = 10
"""How many items a big sweep's messages list before summing up the rest: trials in the plan, job ids cancelled."""


def job_list(jobs: list[str]) -> str:
    """Slurm job ids for a message: each one, or for many (a big sweep's array tasks) their arrays."""
    if len(jobs) <= FIRST_ROWS:
        return "".join(f" {j}" for j in jobs)
    arrays = sorted({j.split("_")[0] for j in jobs}, key=lambda j: (len(j), j))
    return f" (tasks of array job(s) {' '.join(arrays)})"


def shown(value: Any) -> str:
    """A parameter as the trial table shows it: drawn floats to 4 significant digits (lr 0.001234)."""
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def print_table(trials: list[Trial], run_root: Path, every: bool = False) -> None:
    """One line per trial; with replicates, which one each is (replicates of one configuration are adjacent). A big
    sweep, unless `every`: its first rows, then what the rest hold (each parameter's values, the statuses)."""
    keys = list(trials[0].params) if trials else []
    replicated = any(t.replicate for t in trials)
    statuses = [status_of(run_root / t.id) for t in trials]
    rows = [[t.id, *(shown(t.params[k]) for k in keys), *([t.replicate] if replicated else []), s]
            for t, s in zip(trials, statuses)]
    header = ["trial", *keys, *(["replicate"] if replicated else []), "status"]
    cut = len(rows) if every or len(rows) <= BIG else FIRST_ROWS
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows[:cut])]
    for row in [header, *rows[:cut]]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    if cut < len(rows):
        print(f"... {len(rows) - cut} more trials (--dry-run lists every one)")
        for k in keys:
            distinct = {shown(t.params[k]): t.params[k] for t in trials}
            values = sorted(distinct, key=lambda v: (0, distinct[v], "") if isinstance(distinct[v], (int, float))
                            else (1, 0, v))  # numbers in order (100 before 1000), then the rest as text
            print(f"  {k}: {len(values)} value(s), " + (", ".join(values) if len(values) <= 8 else
                                                       f"{values[0]} ... {values[-1]}"))
        counts = Counter(str(s) for s in statuses)
        print("  status: " + ", ".join(f"{n} {s}" for s, n in counts.most_common()))


class SweepLock:
    """One invocation of a sweep at a time: a second one refuses instead of running trials twice."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a+")

    def __enter__(self):
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            fail(f"another invocation of this sweep is running (pid {self.file.read().strip() or '?'}); "
                 "wait for it to finish, or stop it first")
        self.file.truncate(0)
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def prepare(sweep: Sweep, trials: list[Trial]) -> None:
    """Login-node checks and caches, once per distinct setup outside the model and its training (data,
    preprocessing, evaluation): a missing dataset fails here."""
    job = load_job(sweep.job)
    seen = set()
    for t in trials:
        key = json.dumps({k: v for k, v in t.config.items() if not k.startswith(("model.", "optim.", "train."))},
                         sort_keys=True)
        if key not in seen:
            seen.add(key)
            try:
                job.prepare(parse(job.Config, t.config))
            except DatasetNotReady as e:
                fail(f"data.name={t.config.get('data.name')!r} is not ready: {e}")
    sys.stdout.flush()


def finish(sweep: Sweep, trials: list[Trial], run_root: Path, out_dir: Path, argv: list[str]) -> None:
    """Write the results table and the report, and print the table, best first."""
    from library.report import build_report  # pandas and matplotlib: only once there are results to write
    from library.results import collect, print_summary

    try:
        table = collect(sweep, trials, run_root, out_dir)
        report = build_report(out_dir)
    except OSError as e:  # disk full, quota: the trials' own files are safe, and each result file is whole
        fail(f"results not written: {e}")
    print_summary(table, sweep)
    if earlier := len(table) - len(trials):
        print(f"{earlier} row{'s' * (earlier != 1)} from earlier runs of this sweep kept (column current=False)")
    print(f"results in {out_dir}; report: {report}")
    publish = shlex.join(["python", "-m", "library.report", sweep.name, f"--results-dir={out_dir.parent}", "--wandb"])
    if hint := sync_hint(run_root):
        print(f"W&B runs are offline; upload them with:  {hint}\nthen publish the W&B report with:  {publish}")
    elif sweep.tracking()["mode"] == "online":
        from library.wandb_report import publish_results  # wandb_workspaces: only when publishing

        try:
            print(f"W&B report: {publish_results(out_dir)}")
        except Exception as e:  # the sweep's own results are written; W&B trouble is reported, not fatal
            print(f"warning: W&B report not published ({e}); later: {publish}")
