"""The local backend: Ray Tune runs the trials on this machine, as many at once as its CPUs allow.

Each Tune trial is a driver function that trains through `library.train.fit` (a Ray Train TorchTrainer); a trial
process trains one trial after another (Tune's reuse_actors), so a sweep of small trials pays the imports once per
process, not per trial. Ray's own logging goes to runs/SWEEP/ray.log; the terminal shows the sweep's progress
(library.progress) instead.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import torch
from ray.tune import Callback

from library.config import require
from library.launch import reaper
from library.launch.backend import LaunchOptions
from library.progress import SweepView
from library.resources import DRIVER_CPU, PRIVATE_RAY_IP, Resources
from library.sweep import Sweep
from library.tracking import start_shared_service, stop_shared_service
from library.train import fit
from library.trial import Status, Trial, holder, mark, read_status


class LocalBackend:
    """Runs the trials to their end in this process's Ray Tune; nothing is queued, so nothing to follow or cancel."""

    name = "local"
    queued = False

    def __init__(self, options: LaunchOptions):
        self.options = options

    def check(self, sweep: Sweep) -> None:
        require(self.options.trials_per_task <= 1, "--trials-per-task", self.options.trials_per_task,
                "0 or 1 with --backend=local: its trial processes already train one trial after another (Ray Tune "
                "reuses them); packing is for --backend=slurm")
        sweep.resources.check_fits({"CPU": float("inf"), "GPU": torch.cuda.device_count()}, "this machine")

    def busy(self, run_root: Path, trials: list[Trial]) -> dict[str, str]:
        return {t.id: f"trained right now by {who} (e.g. a Slurm task of this sweep)"
                for t in trials if (who := holder(run_root / t.id))}

    def submit(self, sweep: Sweep, trials: list[Trial], run_root: Path) -> str:
        print(f"logs in {run_root}/ray.log", flush=True)
        run(sweep, trials, run_root, self.options.max_concurrent)
        return f"{len(trials)} trial(s) ran on this machine"

    def follow(self, run_root: Path, trials: list[Trial], metric: str) -> None:
        pass

    def reconcile(self, run_root: Path, trials: list[Trial]) -> None:
        pass

    def cancel(self, run_root: Path) -> list[str]:
        return []


def wait_for_nodes(nodes: int, timeout_s: float = 120) -> None:
    """Wait until `nodes` Ray nodes are alive: worker nodes join seconds after the head."""
    import ray

    deadline = time.monotonic() + timeout_s
    while True:
        alive = [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]]
        if len(alive) >= nodes:
            print(f"Ray cluster: {len(alive)} node(s) ({', '.join(sorted(alive))})", flush=True)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(alive)} of {nodes} Ray nodes joined in {timeout_s:.0f} s ({', '.join(alive)}): "
                               f"see the job's log for the `ray start` of the missing ones")
        time.sleep(1)


def run(sweep: Sweep, trials: list[Trial], run_root: Path, max_concurrent: int = 0, tracking: dict | None = None,
        address: str | None = None, nodes: int = 1) -> None:
    """Run the trials through Ray Tune: on a private Ray of this machine, or on the cluster at `address`, once its
    `nodes` nodes have joined."""
    import ray
    from ray import tune

    res = sweep.resources
    per_trial = max(1, res.workers) * res.cpus_per_worker
    route_ray_logs(run_root / "ray.log")
    tracking = tracking or sweep.tracking()
    shared_wandb = start_shared_service(tracking)  # before Ray starts: its workers inherit the service's address
    if ray.is_initialized():  # e.g. started implicitly by an earlier multi-worker TorchTrainer in this process
        ray.shutdown()
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, configure_logging=False)
        wait_for_nodes(nodes)  # the concurrency below counts the CPUs of every node
        cpus = int(ray.cluster_resources().get("CPU", 1))
    else:
        cpus = os.cpu_count() or 1
        # The drivers of multi-worker trials hold DRIVER_CPU each: room for them beside the workers' CPUs.
        ray.init(num_cpus=max(cpus, per_trial) + (1 if res.workers else 0),
                 num_gpus=torch.cuda.device_count(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=False,
                 _node_ip_address=PRIVATE_RAY_IP,
                 _temp_dir=reaper.watch(run_root / "ray.log"))  # its own temp dir; killed if this driver dies
    concurrent = max_concurrent or max(1, cpus // per_trial)
    # run_trial records a trial's own failure and returns: it raises only when its process dies with its node. On a
    # cluster Tune then runs it again (on a node that is left), and fit resumes it from its last checkpoint.
    retries = 2 if address else 0
    try:
        res.check_fits(ray.cluster_resources())
        trial_resources = tune_resources(res)
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, job=sweep.job, resources=res, tracking=tracking),
            trial_resources)
        space = {"trial": tune.grid_search([{"id": t.id, "config": t.config, "run_dir": str(run_root / t.id),
                                             "labels": t.labels()} for t in trials])}
        scheduler = None
        if sweep.early_stop is not None:
            scheduler = sweep.early_stop.scheduler(sweep.metric, sweep.mode, max(t.config["train.epochs"] for t in trials))
        # A trial process trains one trial after another (its start-up, ~2-4 s of imports, paid once), except under
        # ASHA: a stopped trial's thread still closes its W&B run when Tune resets the process for the next trial,
        # and a reset that times out kills the process mid-close (the run then closed twice).
        reuse = sweep.early_stop is None
        progress = ProgressView(sweep.metric, sweep.mode, [t.id for t in trials], concurrent)
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, scheduler=scheduler, reuse_actors=reuse),
            run_config=tune.RunConfig(name="tune", storage_path=str(run_root / "_ray"), verbose=0,
                                      callbacks=[progress], failure_config=tune.FailureConfig(max_failures=retries)),
        )
        with progress.view:
            tuner.fit()
        for run_dir in progress.stopped:  # after fit: the stopped trials' processes are gone and write no more
            mark_stopped(run_dir)
    finally:
        ray.shutdown()
        if shared_wandb:
            stop_shared_service()


def tune_resources(res: Resources) -> dict[str, float]:
    """What each Tune trial process holds. In local mode it trains, so it holds the CPUs and GPUs; otherwise
    the Train workers hold them and the trial process needs next to nothing."""
    if res.workers == 0:
        return {"cpu": res.cpus_per_worker, "gpu": res.gpus_per_worker}
    return {"cpu": DRIVER_CPU}


def run_trial(param: dict, job: str, resources: Resources, tracking: dict) -> None:
    """One Tune trial: train it to the end; a failure is recorded in its status, not raised."""
    trial = param["trial"]
    fit(job, trial["config"], trial["run_dir"], resources, report_to_tune=True, tracking=tracking,
        labels=trial["labels"])



def mark_stopped(run_dir: Path) -> None:
    """A trial that Tune's scheduler ended early: final, so a re-run does not resume it."""
    epoch = read_status(run_dir).get("epoch")
    mark(run_dir, Status.STOPPED, f"stopped early by ASHA after epoch {epoch}: behind the other trials at that rung",
         only_if=(Status.RUNNING,))


def route_ray_logs(path: Path) -> None:
    """Ray's warnings and Tune's chatter go to a file: people watch the progress lines, not Ray's log flood."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("ray", "ray.tune", "ray.train", "ray.data"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", module="ray")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


class ProgressView(Callback):
    """Feeds Ray Tune's trial events to the sweep's progress view; remembers the trials ASHA stopped."""

    def __init__(self, metric: str, mode: str, trial_ids: list[str], concurrent: int):
        self.view = SweepView(metric, mode, trial_ids, concurrent)
        self.stopped: list[Path] = []

    def __getstate__(self):
        # Tune pickles its callbacks with the experiment's state (for Tuner.restore); the view, with its output
        # stream and live display, belongs to this process only.
        return {**self.__dict__, "view": None}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.view.started(trial.config["trial"]["id"])

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.view.epoch(trial.config["trial"]["id"], result.get("epoch"), result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        run_dir = Path(trial.config["trial"]["run_dir"])
        status = read_status(run_dir)
        best = (status.get(f"best_{self.view.metric}"), status.get("best_epoch"))
        state = Status(status.get("status", Status.NOT_RUN))
        if at := status.get("preempted"):
            self.view.preempted(trial.config["trial"]["id"], at["epoch"], at["step"])
        elif state == Status.RUNNING:  # Tune ended a multi-worker trial that had epochs left: its scheduler stopped it
            self.stopped.append(run_dir)
            self.view.finished(trial.config["trial"]["id"], Status.STOPPED, *best,
                               reason=f"stopped early by ASHA after epoch {status.get('epoch')}")
        elif state.final:
            self.view.finished(trial.config["trial"]["id"], state, *best, reason=status.get("reason") or "")
        else:
            self.view.finished(trial.config["trial"]["id"], Status.FAILED, reason=f"ended {state} (see runs/.../ray.log)")

    def on_trial_error(self, iteration, trials, trial, **info):
        log = Path(trial.config["trial"]["run_dir"]).parent / "ray.log"
        self.view.finished(trial.config["trial"]["id"], Status.FAILED, reason=f"its process ended in an error: see {log}")

    def on_step_end(self, iteration, trials, **info):
        self.view.tick()
