"""A Slurm array task: one trial, or a pack of several (--trials-per-task) run in one task's allocation.

Every task pays Python's, torch's and W&B's start-up (~9-10 s); a pack pays it once for all its trials. A pack
runs `slots` trials at once (several only where they share the task's GPU: --gpus-per-trial=0.25 gives four),
each in a process forked from the task: the imports are done once, and a trial that crashes its process (a
segfault, the OOM killer) is a failed row while the others go on. A single trial trains in the task's own process.

A task is a submitit Checkpointable: on preemption or before its time limit Slurm sends SIGUSR2 (or SIGTERM for
`scontrol requeue`); the task asks every unfinished trial of its pack to checkpoint at its next step boundary
(STOP_REQUEST), starts no new one, and once they have stopped SIGUSR2 requeues it through submitit. The requeued
task skips its finished trials and resumes the others from their checkpoints.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import wait
from pathlib import Path

import submitit

from library.job import load_job
from library.resources import PRIVATE_RAY_IP, Resources
from library.tracking import start_shared_service, stop_shared_service
from library.train import fit
from library.trial import STOP_REQUEST, Status, Trial, mark, read_status, request_stop, status_of

FALLBACK_S = 45  # submitit's signal comes 90 s before the time limit: past this, requeue without a new checkpoint


def pack_slots(res: Resources, trials_per_task: int, pack_cpus: int = 0) -> int:
    """Trials a packed task runs at once: as many as share its GPU (1 / the fraction per trial) or fit in
    `pack_cpus` (site.pack_cpus: CPUs a packed task asks for, for sites that give whole nodes), else one after
    another. Multi-worker trials always run one after another, on the task's own Ray."""
    if res.workers > 0 or res.gpus_per_worker >= 1:
        return 1
    limits = [trials_per_task]
    if pack_cpus:
        limits.append(pack_cpus // res.cpus_per_worker)
    if res.gpus_per_worker:
        limits.append(math.floor(1 / res.gpus_per_worker + 1e-9))
    return max(1, min(limits)) if len(limits) > 1 else 1


def task_gpus(res: Resources, slots: int) -> int:
    """Whole GPUs a task asks Slurm for: its trials' together, a shared one counted once."""
    return math.ceil(slots * res.gpus - 1e-9)


class TrialsTask(submitit.helpers.Checkpointable):
    """The trials of one Slurm array task (dicts of Trial.to_json() plus their run_dir), `slots` at a time."""

    def __init__(self, job: str, trials: list[dict], resources: Resources, tracking: dict, slots: int = 1):
        self.job, self.trials, self.resources, self.tracking, self.slots = job, trials, resources, tracking, slots

    def __call__(self) -> str:
        run_dirs = [Path(t["run_dir"]) for t in self.trials]
        requeue = signal.getsignal(signal.SIGUSR2)  # submitit's handler: checkpoint() and requeue
        asked: list[int] = []
        stopping = threading.Event()

        def on_signal(signum, frame):
            if asked and signum == signal.SIGUSR2 and asked[-1] == -1:  # the harness did not stop in time
                requeue(signum, frame)
            asked.append(signum)
            stopping.set()
            for run_dir in run_dirs:
                if not status_of(run_dir).final:
                    request_stop(run_dir)
            if signum == signal.SIGUSR2:
                timer = threading.Timer(FALLBACK_S, fallback)
                timer.daemon = True
                timer.start()

        def fallback():
            if asked:
                asked.append(-1)
                os.kill(os.getpid(), signal.SIGUSR2)

        for run_dir in run_dirs:  # a request left by an earlier run of this task is stale; later ones are this run's
            (run_dir / STOP_REQUEST).unlink(missing_ok=True)
        signal.signal(signal.SIGUSR2, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        todo = [t for t in self.trials if not status_of(Path(t["run_dir"])).final]  # a requeued pack: the rest
        if len(self.trials) == 1 or self.resources.workers > 0:  # a forked child could not use this process's Ray
            ran = self.run_here(todo, stopping)
        else:
            ran = self.run_forked(todo, stopping)
        left = [d for d in run_dirs if not status_of(d).final]
        if not left:
            asked.clear()  # a late signal's fallback has nothing to do
            return "done"
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        if signal.SIGUSR2 not in asked:  # SIGTERM: Slurm itself requeues (or cancels) the job
            return "preempted"
        if no_progress(ran, requeue):
            for run_dir in left:
                at = read_status(run_dir).get("preempted") or {"epoch": 0, "step": 0}
                mark(run_dir, Status.FAILED, f"no progress since the last requeue (still at epoch {at['epoch']}, "
                     f"step {at['step']}): start-up takes the whole time left; raise site.timeout_min")
            return Status.FAILED
        requeue(signal.SIGUSR2, None)  # submitit: checkpoint() (this task again), requeue, exit
        return "requeued"

    def run_here(self, todo: list[dict], stopping: threading.Event) -> list[dict]:
        """Train the trials in this process, one after another (multi-worker trials on this task's own Ray); none
        started once a stop was asked."""
        if self.resources.workers > 0 and todo:
            start_private_ray(self.resources)
        ran = []
        for trial in todo:
            if stopping.is_set():
                break
            ran.append(self.fit(trial))
        return ran

    def fit(self, trial: dict) -> dict:
        return fit(self.job, trial["config"], trial["run_dir"], self.resources, tracking=self.tracking,
                   labels=Trial.from_json(trial).labels())

    def run_forked(self, todo: list[dict], stopping: threading.Event) -> list[dict]:
        """Each trial in a process forked from this one, `slots` at a time; none started once a stop was asked."""
        warm_up(self.job)
        fork = multiprocessing.get_context("fork")
        devices = visible_gpus()
        shared = start_shared_service(self.tracking)  # one W&B service for the pack; children find it by env
        running: dict = {}  # process sentinel -> (process, trial, slot)
        queue, ran = list(todo), []
        try:
            while queue or running:
                while queue and len(running) < self.slots and not stopping.is_set():
                    slot = min(set(range(self.slots)) - {s for _, _, s in running.values()})
                    trial = queue.pop(0)
                    gpus = self.resources.gpus_per_worker
                    gpu = devices[int(slot * gpus)] if devices and gpus else None
                    child = fork.Process(target=self.child, args=(trial, gpu), name=f"trial {trial['id']}")
                    child.start()
                    running[child.sentinel] = (child, trial, slot)
                if not running:
                    break  # stopping: the queued trials wait for the requeued task
                for sentinel in wait(list(running), timeout=1.0):
                    child, trial, _ = running.pop(sentinel)
                    child.join()
                    ran.append(ended(trial, child.exitcode))
        finally:
            if shared:
                stop_shared_service()
        return ran

    def child(self, trial: dict, gpu: str | None) -> None:
        """A forked trial process: the task's signal handler speaks for it (STOP_REQUEST), so it ignores signals."""
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if (Path(trial["run_dir"]) / STOP_REQUEST).exists():  # the task was signalled while it forked this one
            return
        if gpu is not None:  # before CUDA starts in this process: the trial sees its slot's GPU as cuda:0
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        self.fit(trial)


def warm_up(job: str) -> None:
    """Import here, once, what every trial's first step would import: the forked trials start warm. torch._dynamo
    alone, imported by the first optimizer a process builds, takes ~2 s."""
    import ray.train.torch  # noqa: F401
    import torch._dynamo  # noqa: F401

    load_job(job)


def ended(trial: dict, exitcode: int | None) -> dict:
    """The trial's status once its process has ended; a process that died without a final status failed it."""
    run_dir = Path(trial["run_dir"])
    status = read_status(run_dir)
    if exitcode != 0 and not status_of(run_dir).final and not status.get("preempted"):
        how = f"killed by signal {-exitcode}" if exitcode and exitcode < 0 else f"exit code {exitcode}"
        hint = " (the OOM killer? raise site.mem_gb)" if exitcode == -signal.SIGKILL else ""
        mark(run_dir, Status.FAILED, f"its process died inside a packed Slurm task: {how}{hint}")
        status = read_status(run_dir)
    return status


def visible_gpus() -> list[str]:
    """The GPUs Slurm gave this task (CUDA_VISIBLE_DEVICES), without starting CUDA before the fork."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return [d for d in value.split(",") if d.strip()]


def no_progress(ran: list[dict], requeue_handler) -> bool:
    """A requeued task (SLURM_RESTART_COUNT >= 1) that reached its time limit where it started, none of its
    trials finished or moved: requeueing it again would only repeat that."""
    timed_out = getattr(getattr(requeue_handler, "__self__", None), "has_timed_out", lambda: True)()
    restarted = int(os.environ.get("SLURM_RESTART_COUNT", 0) or 0) >= 1
    moved = any(Status(s.get("status", Status.NOT_RUN)).final or s.get("preempted") != s.get("resumed_from")
                for s in ran)
    return timed_out and restarted and not moved


def start_private_ray(res: Resources) -> None:
    """A Ray instance of this task's own: never attach to another job's or user's Ray on a shared node."""
    import ray

    job = os.environ.get("SLURM_JOB_ID", str(os.getpid()))
    ray.init(address="local", num_cpus=res.workers * res.cpus_per_worker, num_gpus=res.gpus,
             include_dashboard=False, log_to_driver=False, _temp_dir=f"/tmp/ray_{job}", _node_ip_address=PRIVATE_RAY_IP)
