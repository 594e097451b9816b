"""A trial and its run dir: the one vocabulary every part of the system uses for where a trial stands.

A trial is one config of a sweep. Everything it leaves lives in its run dir, runs/SWEEP/TRIAL_ID/:
`status.json` (read and written only here), `metrics.json` (one entry per epoch), `checkpoints/`, `best.pt`,
and what the job's evaluation writes. A run dir has one writer at a time (its lock, `claim`).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from library.config import default_values, identity
from library.files import read_json, write_json

STATUS = "status.json"
METRICS = "metrics.json"
AT_BEST = "_at_best"
"""Suffix of a test score in status.json (and the tables) as it was at the best epoch, which the validation metric
chose: `test_accuracy_at_best`. A trial's headline: the best validation score itself is the selection's, biased up."""
STEPS = "steps.json"  # every train.log_every_steps-th step's values, when that is on
STOP_REQUEST = "checkpoint_now"
"""A file in the run dir that asks the trial to checkpoint at its next step boundary and end (preemption, the
time limit's warning signal): what a Slurm task's signal handler and the ray-slurm job's trap write."""
LOCK = ".train.lock"


class Status(StrEnum):
    """Where a trial stands. A trial's run dir says it (status.json); no file means NOT_RUN."""

    NOT_RUN = "not run"
    QUEUED = "queued"  # submitted to a scheduler again (--retry-failed); its previous outcome is kept under "previous"
    RUNNING = "running"  # also a preempted trial: status.json then has a "preempted" position to resume from
    COMPLETED = "completed"
    DIVERGED = "diverged"  # a loss or the primary metric went non-finite or past train.max_loss
    STOPPED = "stopped"  # ended early by the sweep's ASHA scheduler
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """The trial will not run again by itself: a re-run of the sweep skips it (but see runs_again)."""
        return self in (Status.COMPLETED, Status.DIVERGED, Status.STOPPED, Status.FAILED)

    @property
    def ranked(self) -> bool:
        """Its metric counts in the table's ranking (a running trial's is its latest epoch's)."""
        return self in (Status.COMPLETED, Status.RUNNING, Status.STOPPED)

    def runs_again(self, retry_failed: bool) -> bool:
        """Whether a re-run of the sweep runs this trial: every one not final, and the failed ones if asked."""
        return not self.final or (retry_failed and self is Status.FAILED)


@dataclass(frozen=True)
class Trial:
    id: str
    params: dict[str, Any]
    """The swept values that distinguish this trial's configuration (its replicates share them)."""
    config: dict[str, Any]
    """The full, validated config (flat, dotted keys)."""
    replicate: int = 0
    """Which run of its configuration this is (library.sweep's `repeats`): 0 runs with the configuration's own
    train.seed, r >= 1 with library.seeds.replicate_seed(config_id, r)."""
    config_id: str = ""
    """The id of replicate 0 of this configuration, which its replicates share; a trial given none is replicate 0
    of its own configuration."""

    def __post_init__(self):
        if not self.config_id:
            object.__setattr__(self, "config_id", self.id)

    def labels(self) -> dict[str, Any]:
        """What places the trial among its configuration's replicates: kept in its status.json and its W&B run's
        config (where the W&B report groups runs by it)."""
        return {"config_id": self.config_id, "replicate": self.replicate}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "params": self.params, "config": self.config, **self.labels()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Trial:
        return cls(d["id"], d["params"], d["config"], d["replicate"], d["config_id"])


def trial_id(job, config: dict[str, Any]) -> str:
    """`JOB-<8 hex>`, a hash of what identifies the trial (library.config.identity): the keys that change its
    result, where they differ from the job's defaults. So a re-run finds its checkpoints also after a change of
    run mechanics (--train.keep_checkpoints=3) or after a new key was added to the code at its default.
    When a default changes in code, the ids stay: a trial already finished counts as finished (its checkpoints
    hold the config it ran with), and an unfinished one meets the harness's resume check (library.checkpoint.restore),
    which compares the checkpoint's config with the current one and refuses, naming the changed key."""
    key = identity(config, default_values(job.Config))
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return f"{job.name}-{digest[:8]}"


# ------------------------------------------------------------------------------------------ status.json


def read_status(run_dir: Path) -> dict[str, Any]:
    """The trial's status record ({} before it first ran)."""
    return read_json(Path(run_dir) / STATUS, {})


def status_of(run_dir: Path) -> Status:
    return Status(read_status(run_dir).get("status", Status.NOT_RUN))


def write_status(run_dir: Path, status: dict[str, Any]) -> None:
    write_json(Path(run_dir) / STATUS, {**status, "status": str(Status(status["status"]))})


def mark(run_dir: Path, status: Status, reason: str, only_if: tuple[Status, ...] | None = None) -> bool:
    """Set the trial's status and reason, keeping the rest of its record; with `only_if`, only from those statuses.
    Returns whether it changed anything."""
    record = read_status(run_dir)
    if only_if is not None and Status(record.get("status", Status.NOT_RUN)) not in only_if:
        return False
    write_status(run_dir, {**record, "status": status, "reason": reason})
    return True


def queue_again(run_dir: Path) -> None:
    """A final trial submitted once more (--retry-failed): QUEUED, so progress views wait for the new run instead
    of reporting the old outcome, which stays under "previous"."""
    record = read_status(run_dir)
    if Status(record.get("status", Status.NOT_RUN)).final:
        write_status(run_dir, {**record, "status": Status.QUEUED, "reason": "",
                               "previous": {"status": record["status"], "reason": record.get("reason")}})


# ------------------------------------------------------------------------------------------ one writer per run dir


def claim(run_dir: Path):
    """The run dir's lock (an open file), or None when another process trains this trial: one writer per run
    dir, whichever backend started it (a Slurm task and a local sweep must not both resume it). The kernel
    drops the lock when its holder dies, kill -9 included; flock works across NFS clients on Linux."""
    f = open(Path(run_dir) / LOCK, "a+")
    if not try_lock(f):
        f.close()
        return None
    f.truncate(0)
    f.write(f"{socket.gethostname()} pid {os.getpid()} slurm job {os.environ.get('SLURM_JOB_ID', '-')}\n")
    f.flush()
    return f


def holder(run_dir: Path) -> str:
    """Who holds the run dir's lock ("" when nobody does). Only looks: the lock file keeps its last holder's name."""
    if not (Path(run_dir) / LOCK).exists():
        return ""
    with open(Path(run_dir) / LOCK) as f:  # closing it releases the lock taken just to look
        return "" if try_lock(f) else f.read().strip() or "another process"


def try_lock(f) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def request_stop(run_dir: Path) -> None:
    """Ask the trial training in run_dir to checkpoint at its next step boundary and end."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / STOP_REQUEST).touch()
