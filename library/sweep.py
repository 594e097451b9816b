"""A sweep: one job, a base config, a grid of hyperparameters, a metric. Expands to trials with ids derived
from their configs, validates every one on the login node, runs what is not finished, and writes the table.

A sweep file holds no logic:

    SWEEP = Sweep(name="gan_betas", job="gan", metric="fd_domain", mode="min",
                  base={"train.epochs": 6}, grid={"optim.beta1": [0.3, 0.5, 0.999]})
    if __name__ == "__main__":
        main(SWEEP)
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from library.cli import fail, split_overrides
from library.config import ConfigError, default_values, identity, parse, require, to_dict
from library.files import read_json
from library.search import ASHA, Pinned, draw
from library.tracking import sync_hint, wandb_mode
from library.train import ENDED, STATUS, Job, Resources, holder, load_job

FINISHED = ("completed", "diverged", "stopped")  # ENDED without "failed": what --retry-failed does not run again
MAX_TRIALS = 5000


@dataclass(kw_only=True)
class Sweep:
    name: str
    """Names the results folder results/NAME and the run folder runs/NAME."""
    job: str
    """Module in jobs/ that every trial runs."""
    metric: str
    """What the table is sorted by and the best epoch is chosen by."""
    mode: str = "min"
    """min or max: which way the metric is better."""
    base: dict[str, Any] = field(default_factory=dict)
    """Overrides of the job's config shared by every trial."""
    grid: dict[str, list] = field(default_factory=dict)
    """Config key -> values; every combination is one trial."""
    search: dict[str, Any] = field(default_factory=dict)
    """Config key -> distribution (library.search: Uniform, LogUniform, IntRange, Choice): random search."""
    samples: int = 1
    """Random draws from `search` per grid point."""
    seed: int = 0
    """Seed of the random draws: the same seed gives the same trials on every re-run."""
    early_stop: ASHA | None = None
    """Stop trials that fall behind (ASHA through Ray Tune; local and ray-slurm backends)."""
    resources: Resources = field(default_factory=Resources)
    """What each trial runs on."""
    project: str = "dl-studies"
    """W&B project of the trials' runs (group = the sweep's name)."""

    @property
    def params(self) -> list[str]:
        """The config keys that vary between trials."""
        return [*self.grid, *self.search]

    def tracking(self) -> dict[str, Any]:
        """W&B settings for every trial, decided once on the login node (see library.tracking)."""
        return {"project": self.project, "group": self.name, "job_type": self.job, "tags": [self.name],
                "mode": wandb_mode()}


@dataclass(frozen=True)
class Trial:
    id: str
    params: dict[str, Any]
    """The grid values that distinguish this trial."""
    config: dict[str, Any]
    """The full, validated config (flat, dotted keys)."""


def trial_id(job: Job, config: dict[str, Any]) -> str:
    """`JOB-<8 hex>`, a hash of what identifies the trial (library.config.identity): the keys that change its
    result, where they differ from the job's defaults. So a re-run finds its checkpoints also after a change of
    run mechanics (--train.keep_checkpoints=3) or after a new key was added to the code at its default.
    When a default changes in code, the ids stay: a trial already finished counts as finished (its checkpoints
    hold the config it ran with), and an unfinished one meets the harness's resume check (library.train.restore),
    which compares the checkpoint's config with the current one and refuses, naming the changed key."""
    key = identity(config, default_values(job.Config))
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return f"{job.name}-{digest[:8]}"


def expand(sweep: Sweep) -> list[Trial]:
    """Every grid point as a validated trial; any bad value fails here, naming the field."""
    require(sweep.mode in ("min", "max"), "mode", sweep.mode, "min or max")
    require(bool(sweep.name) and sweep.name.replace("_", "").replace("-", "").isalnum(), "name", sweep.name,
            "letters, digits, - and _")
    for key, values in sweep.grid.items():
        require(isinstance(values, (list, tuple)) and len(values) > 0, f"grid.{key}", values, "a non-empty list")
        dupes = {repr(v) for v in values if list(values).count(v) > 1}
        require(not dupes, f"grid.{key}", values, f"distinct values (repeated: {', '.join(sorted(dupes))})")
    both = sorted(set(sweep.grid) & set(sweep.search))
    require(not both, "search", both, "keys that are not also in grid")
    require(isinstance(sweep.samples, int) and sweep.samples >= 1, "samples", sweep.samples, "an integer >= 1")
    size = sweep.samples if sweep.search else 1
    for values in sweep.grid.values():
        size *= len(values)
    require(size <= MAX_TRIALS, "grid", f"{size} trials", f"at most {MAX_TRIALS} trials per sweep; split the sweep")
    if sweep.early_stop is not None:
        sweep.early_stop.check()
    try:
        job = load_job(sweep.job)
    except ValueError as e:
        raise ConfigError("job", sweep.job, str(e)) from None
    trials, seen = [], set()
    draws = draw(sweep.search, sweep.samples, sweep.seed) if sweep.search else [{}]
    combos = list(itertools.product(*sweep.grid.values()))
    for combo in combos:
        for point in draws:
            cfg = parse(job.Config, {**sweep.base, **dict(zip(sweep.grid, combo)), **point})
            config = to_dict(cfg)
            trial = Trial(trial_id(job, config), {k: config[k] for k in sweep.params}, config)
            if trial.id not in seen:  # random draws from small Choice spaces can repeat a point
                seen.add(trial.id)
                trials.append(trial)
            if sweep.early_stop is not None:
                require(cfg.eval.every == 1, "eval.every", cfg.eval.every,
                        "1 with early_stop: ASHA compares trials by the metric of every epoch")
    if len(trials) < len(combos) * len(draws):  # only draws repeat: grid values are distinct
        print(f"{len(combos) * len(draws)} draws gave {len(trials)} distinct trials "
              "(repeated points of Choice/IntRange spaces are run once)")
    metric, _ = job.primary_metric(cfg)
    require(sweep.metric == metric, "metric", sweep.metric,
            f"{metric!r}: what job {sweep.job!r} reports with this config")
    return trials


def trial_status(run_root: Path, trial: Trial) -> str:
    return read_json(run_root / trial.id / STATUS, {}).get("status", "new")


def shown(value: Any) -> str:
    """A parameter as the trial table shows it: drawn floats to 4 significant digits (lr 0.001234)."""
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def print_table(trials: list[Trial], run_root: Path) -> None:
    keys = list(trials[0].params) if trials else []
    rows = [[t.id, *(shown(t.params[k]) for k in keys), trial_status(run_root, t)] for t in trials]
    header = ["trial", *keys, "status"]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


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


def writable(folder: Path) -> bool:
    """The folder, or the nearest parent that exists, is a directory this process may write into."""
    folder = folder.expanduser().resolve()
    while not folder.exists():
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def expand_path(text: str) -> Path:
    """`--runs-dir=~/runs`: the shell expands ~ only at a word's start, not after `=`."""
    return Path(text).expanduser()


def parse_args(argv: list[str] | None, sweep: Sweep) -> tuple[argparse.Namespace, dict[str, str]]:
    parser = argparse.ArgumentParser(prog=f"python sweeps/{sweep.name}.py", allow_abbrev=False,
                                     description=f"Run the {sweep.name} sweep ({sweep.job} job) and write results/{sweep.name}/.",
                                     epilog="Any other --section.key=value overrides the job config of every trial.")
    parser.add_argument("--dataset", help="data.name for every trial (python -m library.data list)")
    parser.add_argument("--epochs", help="train.epochs for every trial")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the trial table; run nothing")
    parser.add_argument("--backend", choices=["auto", "local", "slurm", "ray-slurm"], default="auto",
                        help="local: Ray Tune on this machine; slurm: one array task per trial; ray-slurm: one "
                             "sbatch job runs a Ray cluster and the whole sweep (auto: slurm when sbatch is on PATH)")
    parser.add_argument("--nodes", type=int, default=1, help="ray-slurm: nodes of the Ray cluster job")
    parser.add_argument("--site", type=os.path.expanduser, default=os.environ.get("LIBRARY_SITE"),
                        help="Slurm site profile, TOML (see slurm/site.example.toml; default $LIBRARY_SITE)")
    parser.add_argument("--detach", action="store_true", help="slurm: submit and return at once")
    parser.add_argument("--status", action="store_true", help="show the trials' state and rebuild the results")
    parser.add_argument("--cancel", action="store_true", help="slurm: cancel this sweep's queued and running tasks")
    parser.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    parser.add_argument("--max-concurrent", type=int, default=0, help="trials at once (default: as the CPUs allow)")
    parser.add_argument("--workers-per-trial", type=int, default=None,
                        help="Ray Train workers (DDP ranks) per trial; 0 = in the trial's own process")
    parser.add_argument("--gpus-per-worker", type=int, default=None, help="GPUs per Ray Train worker")
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
    """The sweep as the command line changes it, and its validated trials."""
    res = sweep.resources
    if args.workers_per_trial is not None:
        require(args.workers_per_trial >= 0, "--workers-per-trial", args.workers_per_trial, "an integer >= 0")
        res = replace(res, workers=args.workers_per_trial)
    if args.gpus_per_worker is not None:
        require(args.gpus_per_worker >= 0, "--gpus-per-worker", args.gpus_per_worker, "an integer >= 0")
        res = replace(res, gpus_per_worker=args.gpus_per_worker)
    require(args.max_concurrent >= 0, "--max-concurrent", args.max_concurrent, "an integer >= 0")
    # An override of a swept key narrows that axis to the one value (e.g. --optim.beta1=0.5). A searched key
    # stays in the table, pinned, and the other keys keep their draws. The value is parsed like any override.
    grid = {k: [overrides.pop(k)] if k in overrides else v for k, v in sweep.grid.items()}
    search = {k: Pinned(overrides.pop(k), v) if k in overrides else v for k, v in sweep.search.items()}
    sweep = replace(sweep, base={**sweep.base, **overrides}, grid=grid, search=search, resources=res)
    return sweep, expand(sweep)


def main(sweep: Sweep, argv: list[str] | None = None) -> None:
    from library.launch import slurm

    try:
        args, overrides = parse_args(argv, sweep)
        sweep, trials = configure(sweep, args, overrides)
        backend = args.backend if args.backend != "auto" else ("slurm" if slurm.slurm_available() else "local")
        site = slurm.load_site(args.site) if backend != "local" else None
        if site is not None and args.max_concurrent:  # the array throttle (%) and the Ray job's size
            site = replace(site, slurm_array_parallelism=args.max_concurrent)
        require(args.nodes >= 1, "--nodes", args.nodes, "an integer >= 1")
        require(sweep.early_stop is None or backend != "slurm", "--backend", backend,
                "local or ray-slurm for a sweep with early_stop: Slurm array tasks run independently, and ASHA "
                "needs one driver that sees every trial")
        for flag, folder in (("--runs-dir", args.runs_dir), ("--results-dir", args.results_dir)):
            require(writable(folder), flag, str(folder), "a folder this user can write to, or create")
        if backend != "local":  # what Slurm would refuse fails here, before anything is written
            slurm.check_request(site, sweep.resources)
        else:
            sweep.resources.check_fits({"CPU": float("inf"), "GPU": torch.cuda.device_count()}, "this machine")
    except (ConfigError, RuntimeError) as e:
        fail(str(e))
    run_root = (args.runs_dir / sweep.name).resolve()
    out_dir = (args.results_dir / sweep.name).resolve()
    if args.cancel:
        cancelled = slurm.cancel(run_root) if backend != "local" else []
        print(f"{sweep.name}: cancelled {len(cancelled)} Slurm job(s) {' '.join(cancelled)}")
        return
    print(f"{sweep.name}: {len(trials)} trials of job {sweep.job!r}, metric {sweep.metric} ({sweep.mode}), "
          f"backend {backend}")
    print_table(trials, run_root)
    if args.dry_run:
        return
    if args.status:
        if backend != "local":
            slurm.reconcile(run_root, [t.id for t in trials])
        finish(sweep, trials, run_root, out_dir)
        return
    finished = FINISHED if args.retry_failed else ENDED
    started = time.time()
    prepare(sweep, trials)  # before the lock: a missing dataset leaves nothing under runs/
    with SweepLock(run_root / ".lock"):
        todo = [t for t in trials if trial_status(run_root, t) not in finished]
        if backend != "local":
            running = slurm.active_trials(run_root)
            todo = [t for t in todo if t.id not in running]
            print(f"{len(trials) - len(todo) - len(running & {t.id for t in trials})} finished before, "
                  f"{len(running)} still queued or running, {len(todo)} to submit")
            try:
                jobs = submit(backend, sweep, todo, run_root, site, args.nodes) if todo else {}
            except (ConfigError, RuntimeError) as e:
                fail(str(e))
            if jobs:
                print(f"submitted Slurm job(s) {' '.join(sorted({j.split('_')[0] for j in jobs.values()}))}; "
                      f"task logs in {run_root}/slurm, results will appear in {out_dir}")
        else:
            busy = {t.id: who for t in todo if (who := holder(run_root / t.id))}
            for t, who in busy.items():
                print(f"{t}: skipped, trained right now by {who} (e.g. a Slurm task of this sweep)")
            todo = [t for t in todo if t.id not in busy]
            print(f"{len(trials) - len(todo) - len(busy)} finished before, {len(todo)} to run; logs in {run_root}/ray.log")
            if todo:
                from library.launch import local

                local.run(sweep, todo, run_root, args.max_concurrent)
    if backend != "local":
        if args.detach:
            print(f"detached. Follow with: python sweeps/{sweep.name}.py --status")
            return
        slurm.follow(run_root, [t.id for t in trials], sweep.metric)
        slurm.reconcile(run_root, [t.id for t in trials])
    print(f"\n{sweep.name}: done in {time.time() - started:.0f} s")
    finish(sweep, trials, run_root, out_dir)


def submit(backend: str, sweep: Sweep, todo: list[Trial], run_root: Path, site, nodes: int) -> dict[str, str]:
    """Trial id -> Slurm job id of what was submitted."""
    from library.launch import ray_slurm, slurm

    if backend == "slurm":
        return slurm.submit(sweep, todo, run_root, site, sweep.tracking())
    job = ray_slurm.submit(sweep, todo, run_root, site, sweep.tracking(), nodes)
    return {t.id: job for t in todo}


def finish(sweep: Sweep, trials: list[Trial], run_root: Path, out_dir: Path) -> None:
    """Write the results table and print it, best first."""
    from library import results

    from library.report import build_report, publish_wandb

    try:
        table = results.collect(sweep, trials, run_root, out_dir)
        report = build_report(out_dir)
    except OSError as e:  # disk full, quota: the trials' own files are safe, and each result file is whole
        fail(f"results not written: {e}")
    results.print_summary(table, sweep.metric, sweep.mode)
    if earlier := len(table) - len(trials):
        print(f"{earlier} row{'s' * (earlier != 1)} from earlier runs of this sweep kept (column current=False)")
    print(f"results in {out_dir}; report: {report}")
    if hint := sync_hint(run_root):
        print(f"W&B runs are offline; upload them with:  {hint}\n"
              f"then publish the W&B report with:  python -m library.report {sweep.name} --wandb")
    elif sweep.tracking()["mode"] == "online":
        try:
            print(f"W&B report: {publish_wandb(out_dir)}")
        except Exception as e:  # the sweep's own results are written; W&B trouble is reported, not fatal
            print(f"warning: W&B report not published ({e})")


def prepare(sweep: Sweep, trials: list[Trial]) -> None:
    """Login-node checks and caches, once per distinct setup outside the model and its training (data,
    preprocessing, evaluation): a missing dataset fails here."""
    from library.data import DatasetNotReady

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
