"""The slurm backend: one submitit array task per trial, `%` limiting how many run at once.

Each task trains its trial through the harness (Ray Train on the task's allocation: DDP over the node's
GPUs). A task is a submitit Checkpointable: on preemption or before its time limit Slurm sends SIGUSR2 and
submitit requeues it; the requeued task finds its run dir's latest checkpoint and resumes (a SIGTERM requeue
restarts the task, which resumes the same way). Job ids are kept in runs/SWEEP/slurm_jobs.json, so --status,
--cancel and re-runs work later from any shell.
"""
from __future__ import annotations

import os
import signal
import threading
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import submitit

from library.config import ConfigError, parse, require
from library.files import read_json, write_json
from library.launch.backend import LaunchOptions
from library.launch.poll import ACTIVE, JOBS, follow, known_jobs, run_slurm, states
from library.resources import PRIVATE_RAY_IP, Resources
from library.sweep import Sweep
from library.train import fit
from library.trial import Status, Trial, mark, queue_again, request_stop, status_of


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
    """At most this many trials run at once (the % of --array)."""
    slurm_setup: list[str] = field(default_factory=list)
    """Shell lines run before each task: `module load cuda/12.4`, `source ~/venvs/dl/bin/activate`."""
    ray_cpus_per_node: int = 0
    """ray-slurm: CPUs per node of the Ray cluster job (0 = enough to run every trial at once, up to
    slurm_array_parallelism)."""
    ray_gpus_per_node: int = 0
    """ray-slurm: GPUs per node of the Ray cluster job."""

    def check(self, prefix: str) -> None:
        require(self.timeout_min >= 1, f"{prefix}timeout_min", self.timeout_min, "an integer >= 1 (minutes)")
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


FALLBACK_S = 45  # submitit's signal comes 90 s before the time limit: past this, requeue without a new checkpoint


class TrialTask(submitit.helpers.Checkpointable):
    """One trial as a Slurm task. Checkpointable: submitit resubmits the same task on preemption/timeout.

    Slurm's warning signal (SIGUSR2, on preemption or 90 s before the time limit) and SIGTERM (scontrol requeue,
    preemption by requeue) ask the harness to checkpoint at its next step boundary (STOP_REQUEST); once it has,
    SIGUSR2 requeues through submitit and the task resumes from that exact step. A requeued task that made no
    progress before the next time-limit signal is failed instead of requeued forever."""

    def __init__(self, job: str, trial: dict, resources: Resources, tracking: dict):
        self.job, self.trial, self.resources, self.tracking = job, trial, resources, tracking

    def __call__(self) -> str:
        run_dir = Path(self.trial["run_dir"])
        requeue = signal.getsignal(signal.SIGUSR2)  # submitit's handler: checkpoint() and requeue
        asked: list[int] = []

        def on_signal(signum, frame):
            if asked and signum == signal.SIGUSR2 and asked[-1] == -1:  # the harness did not stop in time
                requeue(signum, frame)
            asked.append(signum)
            request_stop(run_dir)
            if signum == signal.SIGUSR2:
                timer = threading.Timer(FALLBACK_S, fallback)
                timer.daemon = True
                timer.start()

        def fallback():
            if asked:
                asked.append(-1)
                os.kill(os.getpid(), signal.SIGUSR2)

        signal.signal(signal.SIGUSR2, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        if self.resources.workers > 0:
            start_private_ray(self.resources)
        status = fit(self.job, self.trial["config"], run_dir, self.resources, tracking=self.tracking,
                     labels=Trial.from_json(self.trial).labels())
        if not status.get("preempted"):
            asked.clear()  # a late signal's fallback has nothing to do
            return status["status"]
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        if signal.SIGUSR2 not in asked:  # SIGTERM: Slurm itself requeues (or cancels) the job
            return "preempted"
        if no_progress(status, requeue):
            mark(run_dir, Status.FAILED, f"no progress since the last requeue (still at epoch "
                 f"{status['preempted']['epoch']}, step {status['preempted']['step']}): start-up takes the whole time "
                 "left; raise site.timeout_min")
            return Status.FAILED
        requeue(signal.SIGUSR2, None)  # submitit: checkpoint() (this task again), requeue, exit
        return "requeued"


def no_progress(status: dict, requeue_handler) -> bool:
    """A requeued task (SLURM_RESTART_COUNT >= 1) that reached its time limit where it started: requeueing it
    again would only repeat that."""
    timed_out = getattr(getattr(requeue_handler, "__self__", None), "has_timed_out", lambda: True)()
    restarted = int(os.environ.get("SLURM_RESTART_COUNT", 0) or 0) >= 1
    return timed_out and restarted and status["preempted"] == status.get("resumed_from")


def start_private_ray(res: Resources) -> None:
    """A Ray instance of this task's own: never attach to another job's or user's Ray on a shared node."""
    import ray

    job = os.environ.get("SLURM_JOB_ID", str(os.getpid()))
    ray.init(address="local", num_cpus=res.workers * res.cpus_per_worker, num_gpus=res.workers * res.gpus_per_worker,
             include_dashboard=False, log_to_driver=False, _temp_dir=f"/tmp/ray_{job}", _node_ip_address=PRIVATE_RAY_IP)


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


def check_request(site: SiteProfile, res: Resources) -> None:
    """Refuse, before sbatch, what Slurm would refuse or leave pending forever; say why in plain words."""
    parts = partitions()
    name = site.slurm_partition or next((p for p, v in parts.items() if v.get("default")), "")
    require(name in parts, "site.slurm_partition", site.slurm_partition, f"one of this cluster's partitions: {sorted(parts)}")
    limit = parts[name]["max_min"]
    require(limit is None or site.timeout_min <= limit, "site.timeout_min", site.timeout_min,
            f"at most {limit} minutes, the time limit of partition {name!r}")
    gpus = max(1, res.workers) * res.gpus_per_worker
    has_gpus = any("gpu" in g for g in parts[name]["gres"])
    require(gpus == 0 or has_gpus, "gpus_per_worker", res.gpus_per_worker,
            f"0: partition {name!r} has no GPUs (its nodes offer gres {sorted(parts[name]['gres'])})")


def max_array_size() -> int:
    for line in run_slurm("scontrol", "show", "config").splitlines():
        if line.startswith("MaxArraySize"):
            return int(line.split("=")[1])
    return 1001


# ------------------------------------------------------------------------------------------ submit, watch


def executor(run_root: Path, site: SiteProfile, res: Resources, name: str) -> submitit.SlurmExecutor:
    ex = submitit.SlurmExecutor(folder=run_root / "slurm" / "%j", max_num_timeout=1000)
    tasks = max(1, res.workers)
    extra = {k: v for k, v in (("account", site.slurm_account), ("qos", site.slurm_qos),
                               ("constraint", site.slurm_constraint)) if v}
    ex.update_parameters(job_name=name, time=site.timeout_min, cpus_per_task=tasks * res.cpus_per_worker,
                         array_parallelism=site.slurm_array_parallelism, setup=list(site.slurm_setup),
                         **({"partition": site.slurm_partition} if site.slurm_partition else {}),
                         **({"gpus_per_node": tasks * res.gpus_per_worker} if res.gpus_per_worker else {}),
                         **({"mem": f"{site.mem_gb}GB"} if site.mem_gb else {}), **extra)
    return ex


def submit(sweep: Sweep, trials: list[Trial], run_root: Path, site: SiteProfile, tracking: dict) -> dict[str, str]:
    """One array job per MaxArraySize-1 trials; returns trial id -> Slurm job id (ARRAY_TASK form)."""
    check_request(site, sweep.resources)
    ex = executor(run_root, site, sweep.resources, sweep.name)
    size = max_array_size() - 1
    jobs = {}
    for start in range(0, len(trials), size):
        chunk = trials[start:start + size]
        try:
            with ex.batch():
                submitted = [ex.submit(TrialTask(sweep.job, {**t.to_json(), "run_dir": str(run_root / t.id)},
                                                 sweep.resources, tracking)) for t in chunk]
        except Exception as e:  # sbatch's own words, without submitit's wrapping
            raise RuntimeError(f"Slurm refused the submission: {slurm_message(e)}") from None
        accepted = {t.id: j.job_id for t, j in zip(chunk, submitted)}
        record_jobs(run_root, accepted)  # at once: if Slurm refuses a later array, --cancel still finds this one
        jobs.update(accepted)
    return jobs


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
        check_request(self.site, sweep.resources)

    def busy(self, run_root: Path, trials: list[Trial]) -> dict[str, str]:
        jobs, running = known_jobs(run_root), active_trials(run_root)
        return {t.id: f"Slurm task {jobs[t.id]} is queued or running" for t in trials if t.id in running}

    def submit(self, sweep: Sweep, trials: list[Trial], run_root: Path) -> str:
        jobs = submit(sweep, trials, run_root, self.site, sweep.tracking())
        return (f"submitted Slurm job(s) {' '.join(sorted({j.split('_')[0] for j in jobs.values()}))}; "
                f"task logs in {run_root}/slurm")

    def follow(self, run_root: Path, trials: list[Trial], metric: str) -> None:
        follow(run_root, [t.id for t in trials], metric)

    def reconcile(self, run_root: Path, trials: list[Trial]) -> None:
        reconcile(run_root, [t.id for t in trials])

    def cancel(self, run_root: Path) -> list[str]:
        return cancel(run_root)
