"""The slurm backend: submitit array tasks of one trial each, or of a pack of trials (--trials-per-task), `%`
limiting how many run at once.

Each task trains its trials through the harness (library.launch.task: Ray Train on the task's allocation), and
requeues itself on preemption or before its time limit, resuming from the trials' checkpoints. Job ids are kept
in runs/SWEEP/slurm_jobs.json (every trial of a pack under its task's id), so --status, --cancel and re-runs work
later from any shell.
"""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import submitit

from library.config import ConfigError, parse, require
from library.files import read_json, write_json
from library.launch.backend import LaunchOptions
from library.launch import snapshot
from library.launch.poll import ACTIVE, JOBS, follow, known_jobs, run_slurm, states
from library.launch.task import TrialsTask, pack_slots, task_gpus
from library.resources import Resources
from library.sweep import Sweep
from library.trial import Status, Trial, mark, queue_again, status_of


@dataclass(kw_only=True)
class SiteProfile:
    """What a cluster needs besides the trial's own resources. Keys as submitit names them."""

    slurm_partition: str = ""
    """Partition to submit to (empty = the cluster's default)."""
    slurm_account: str = ""
    """Account to charge (empty = your default)."""
    slurm_qos: str = ""
    """Quality of service (empty = default)."""
    slurm_constraint: str = ""
    """Node features, e.g. a100|h100."""
    timeout_min: int = 60
    """Time limit of each task; past it the task requeues itself and resumes from its checkpoint."""
    mem_gb: int = 0
    """Memory per task in GB (0 = the partition's default)."""
    slurm_array_parallelism: int = 64
    """At most this many array tasks run at once (the % of --array); a task runs one trial, or a pack of them."""
    pack_cpus: int = 0
    """CPUs a packed array task (--trials-per-task) asks for, its CPU trials running side by side on them; for sites
    that give each job whole nodes (0 = one trial's CPUs: the pack's trials run one after another)."""
    slurm_setup: list[str] = field(default_factory=list)
    """Shell lines run before each task: `module load cuda/12.4`, `source ~/venvs/dl/bin/activate`."""
    ray_cpus_per_node: int = 0
    """ray-slurm: CPUs per node of the Ray cluster job (0 = enough to run every trial at once, up to
    slurm_array_parallelism)."""
    ray_gpus_per_node: int = 0
    """ray-slurm: GPUs per node of the Ray cluster job."""

    def check(self, prefix: str) -> None:
        require(self.timeout_min >= 1, f"{prefix}timeout_min", self.timeout_min, "an integer >= 1 (minutes)")
        require(self.pack_cpus >= 0, f"{prefix}pack_cpus", self.pack_cpus, "an integer >= 0")
        require(self.mem_gb >= 0, f"{prefix}mem_gb", self.mem_gb, "an integer >= 0")
        require(self.ray_cpus_per_node >= 0, f"{prefix}ray_cpus_per_node", self.ray_cpus_per_node, "an integer >= 0")
        require(self.ray_gpus_per_node >= 0, f"{prefix}ray_gpus_per_node", self.ray_gpus_per_node, "an integer >= 0")
        require(self.slurm_array_parallelism >= 1, f"{prefix}slurm_array_parallelism",
                self.slurm_array_parallelism, "an integer >= 1")


def load_site(path: str | os.PathLike | None) -> SiteProfile:
    """The site profile from a TOML file (see slurm/site.example.toml); no file = Slurm's defaults."""
    if not path:
        return SiteProfile()
    try:
        values = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("--site", str(path), f"a readable TOML site profile ({e})") from None
    return parse(SiteProfile, values, prefix="site.")


# ------------------------------------------------------------------------------------------ checks


def partitions() -> dict[str, dict[str, Any]]:
    """Partition -> {"max_min": time limit in minutes or None, "gres": generic resources of its nodes}."""
    out = {}
    for line in run_slurm("sinfo", "-h", "-o", "%P|%l|%G").splitlines():
        name, limit, gres = line.strip().split("|")
        out.setdefault(name.rstrip("*"), {"max_min": minutes(limit), "gres": set()})["gres"].add(gres)
        if name.endswith("*"):
            out[name.rstrip("*")]["default"] = True
    return out


def minutes(limit: str) -> int | None:
    """Slurm's [days-]hours:minutes:seconds (or minutes) as minutes; None for infinite."""
    if limit in ("infinite", "UNLIMITED", "n/a"):
        return None
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    h, m, s = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + h * 60 + m + (1 if s else 0)


def check_request(site: SiteProfile, res: Resources, slots: int = 1) -> None:
    """Refuse, before sbatch, what Slurm would refuse or leave pending forever; say why in plain words."""
    parts = partitions()
    name = site.slurm_partition or next((p for p, v in parts.items() if v.get("default")), "")
    require(name in parts, "site.slurm_partition", site.slurm_partition, f"one of this cluster's partitions: {sorted(parts)}")
    limit = parts[name]["max_min"]
    require(limit is None or site.timeout_min <= limit, "site.timeout_min", site.timeout_min,
            f"at most {limit} minutes, the time limit of partition {name!r}")
    gpus, has = task_gpus(res, slots), node_gpus(parts[name]["gres"])
    require(gpus == 0 or has > 0, "--gpus-per-trial", res.gpus,
            f"0: partition {name!r} has no GPUs (its nodes offer gres {sorted(parts[name]['gres'])})")
    require(gpus <= has, "--gpus-per-trial", res.gpus, f"at most {has} GPUs per task, what a node of partition {name!r} "
            f"has ({slots} trial(s) at once in a task need {gpus})")


def node_gpus(gres: set[str]) -> int:
    """The most GPUs one node of a partition has, from sinfo's %G ("gpu:2", "gpu:a100:4(S:0-1)", "(null)")."""
    counts = [0]
    for entry in ",".join(gres).split(","):
        fields = entry.split("(")[0].split(":")
        if fields[0] == "gpu" and fields[-1].isdigit():
            counts.append(int(fields[-1]))
    return max(counts)


def max_array_size() -> int:
    for line in run_slurm("scontrol", "show", "config").splitlines():
        if line.startswith("MaxArraySize"):
            return int(line.split("=")[1])
    return 1001


# ------------------------------------------------------------------------------------------ submit, watch


def executor(run_root: Path, site: SiteProfile, res: Resources, name: str, slots: int) -> submitit.SlurmExecutor:
    ex = submitit.SlurmExecutor(folder=run_root / "slurm" / "%j", max_num_timeout=1000)
    extra = {k: v for k, v in (("account", site.slurm_account), ("qos", site.slurm_qos),
                               ("constraint", site.slurm_constraint)) if v}
    gpus = task_gpus(res, slots)
    ex.update_parameters(job_name=name, time=site.timeout_min, cpus_per_task=slots * max(1, res.workers) * res.cpus_per_worker,
                         array_parallelism=site.slurm_array_parallelism, setup=list(site.slurm_setup),
                         **({"partition": site.slurm_partition} if site.slurm_partition else {}),
                         **({"gpus_per_node": gpus} if gpus else {}),
                         **({"mem": f"{site.mem_gb}GB"} if site.mem_gb else {}), **extra)
    return ex


def pack_size(trials: int, res: Resources, site: SiteProfile) -> int:
    """Trials per array task by default: enough that the array needs no more tasks than may run at once
    (site.slurm_array_parallelism, or --max-concurrent), so packing costs no parallelism, while each trial beyond a
    task's first saves the task's start-up (~9-10 s); and at least as many as share one GPU."""
    share = math.floor(1 / res.gpus_per_worker + 1e-9) if 0 < res.gpus_per_worker < 1 else 1
    return max(math.ceil(trials / site.slurm_array_parallelism), share, 1)


def submit(sweep: Sweep, trials: list[Trial], run_root: Path, site: SiteProfile, tracking: dict,
           per_task: int = 0) -> tuple[dict[str, str], int, int]:
    """Array jobs of packs of `per_task` trials (0: pack_size), MaxArraySize-1 tasks each; returns trial id -> Slurm
    job id (ARRAY_TASK form; the trials of a pack share theirs), the pack size and the trials a task runs at once."""
    per_task = per_task or pack_size(len(trials), sweep.resources, site)
    slots = pack_slots(sweep.resources, per_task, site.pack_cpus)
    check_request(site, sweep.resources, slots)
    ex = executor(run_root, site, sweep.resources, sweep.name, slots)
    packs = [trials[i:i + per_task] for i in range(0, len(trials), per_task)]
    size = max_array_size() - 1
    jobs = {}
    with snapshot.submitted_from(run_root):  # queued and requeued tasks run the code of now, not of then
        for start in range(0, len(packs), size):
            chunk = packs[start:start + size]
            try:
                with ex.batch():
                    submitted = [ex.submit(TrialsTask(sweep.job, [{**t.to_json(), "run_dir": str(run_root / t.id)}
                                                                  for t in pack], sweep.resources, tracking, slots))
                                 for pack in chunk]
            except Exception as e:  # sbatch's own words, without submitit's wrapping
                raise RuntimeError(f"Slurm refused the submission: {slurm_message(e)}") from None
            accepted = {t.id: j.job_id for pack, j in zip(chunk, submitted) for t in pack}
            record_jobs(run_root, accepted)  # at once: if Slurm refuses a later array, --cancel still finds this one
            jobs.update(accepted)
    return jobs, per_task, slots


def record_jobs(run_root: Path, jobs: dict[str, str]) -> None:
    """Remember trial -> Slurm job id; a trial submitted again (--retry-failed) is queued again (see queue_again)."""
    for t in jobs:
        queue_again(run_root / t)
    write_json(run_root / JOBS, {**read_json(run_root / JOBS, {}), **jobs})


def slurm_message(e: Exception) -> str:
    text = str(e)
    lines = [line for line in text.splitlines() if "error" in line.lower()]
    return " ".join(line.strip() for line in lines) or text.strip()


def active_trials(run_root: Path) -> set[str]:
    """Trials whose Slurm task is still queued or running: a re-run must not submit them again."""
    jobs = known_jobs(run_root)
    current = states(list(jobs.values()))
    return {t for t, j in jobs.items() if current.get(j) in ACTIVE}


def log_tail(run_root: Path, job_id: str, lines: int = 15) -> str:
    paths = submitit.core.utils.JobPaths(run_root / "slurm" / "%j", job_id=job_id, task_id=0)
    text = []
    for p in (paths.stderr, paths.stdout, run_root / "ray_slurm" / f"{job_id}.out"):
        if p.exists():
            text += p.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text[-lines:])


def reconcile(run_root: Path, trial_ids: list[str]) -> None:
    """A task that died outside the harness (crash, OOM, cancel) leaves no final status: record it as failed."""
    jobs = known_jobs(run_root)
    current = states([jobs[t] for t in trial_ids if t in jobs])
    for t in trial_ids:
        state = current.get(jobs.get(t, ""), "")
        if state and state not in ACTIVE and not status_of(run_root / t).final:
            reason = f"Slurm task {jobs[t]} ended {state} without finishing\n{log_tail(run_root, jobs[t])}"
            mark(run_root / t, Status.FAILED, reason)


def cancel(run_root: Path) -> list[str]:
    jobs = known_jobs(run_root)
    current = states(list(jobs.values()))
    live = sorted({j for j in jobs.values() if current.get(j) in ACTIVE})
    if live:
        run_slurm("scancel", *live)
    return live


class SlurmBackend:
    """One array task per trial; the driver may detach and come back with --status."""

    name = "slurm"
    queued = True

    def __init__(self, options: LaunchOptions):
        self.options = options
        self.site = load_site(options.site)
        if options.max_concurrent:  # the array throttle (%) and the ray-slurm job's size
            self.site = replace(self.site, slurm_array_parallelism=options.max_concurrent)

    def check(self, sweep: Sweep) -> None:
        require(sweep.early_stop is None, "--backend", self.name,
                "local or ray-slurm for a sweep with early_stop: Slurm array tasks run independently, and ASHA "
                "needs one driver that sees every trial")
        require(self.options.nodes == 1, "--nodes", self.options.nodes,
                "1 with --backend=slurm (each array task is one trial on one node); for a trial or a sweep across "
                "several nodes use --backend=ray-slurm")
        per_task = self.options.trials_per_task or 1
        check_request(self.site, sweep.resources, pack_slots(sweep.resources, per_task, self.site.pack_cpus))

    def busy(self, run_root: Path, trials: list[Trial]) -> dict[str, str]:
        jobs, running = known_jobs(run_root), active_trials(run_root)
        return {t.id: f"Slurm task {jobs[t.id]} is queued or running" for t in trials if t.id in running}

    def submit(self, sweep: Sweep, trials: list[Trial], run_root: Path) -> str:
        jobs, per_task, slots = submit(sweep, trials, run_root, self.site, sweep.tracking(),
                                       self.options.trials_per_task)
        tasks = len(set(jobs.values()))
        together = f"{slots} at once" if slots > 1 else "one after another"
        packed = f" of up to {per_task} trials each ({together})" if per_task > 1 else ""
        return (f"submitted {tasks} Slurm array task(s){packed} in job(s) "
                f"{' '.join(sorted({j.split('_')[0] for j in jobs.values()}))}; task logs in {run_root}/slurm")

    def follow(self, run_root: Path, trials: list[Trial], metric: str) -> None:
        follow(run_root, [t.id for t in trials], metric)

    def reconcile(self, run_root: Path, trials: list[Trial]) -> None:
        reconcile(run_root, [t.id for t in trials])

    def cancel(self, run_root: Path) -> list[str]:
        return cancel(run_root)
