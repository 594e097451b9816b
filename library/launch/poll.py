"""Watching a sweep's Slurm tasks: their states, and the progress view fed from them until every task has ended.

One poll asks Slurm twice, whatever the sweep's size: one sacct for all of its arrays, one squeue for this user's
jobs. Sites rate-limit both (sacct hits slurmdbd), so while nothing changes the interval grows from poll_s to
MAX_POLL_S, and it is back to poll_s at any change. The calls are counted in runs/SWEEP/poll.json.
"""
from __future__ import annotations

import getpass
import os
import subprocess
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from library.files import read_json, write_json
from library.progress import SweepView
from library.trial import STATUS, Status

JOBS = "slurm_jobs.json"
POLL = "poll.json"
ACTIVE = {"UNKNOWN", "PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
          "CONFIGURING", "COMPLETING", "PREEMPTED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}
POLL_S = 3.0
MAX_POLL_S = 30.0
"""The longest wait between two polls while nothing changes: a finished trial shows within half a minute. Our
choice, as is GROWTH."""
GROWTH = 1.5


def run_slurm(*args: str) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def states(job_ids: list[str], calls: Counter | None = None) -> dict[str, str]:
    """Slurm job id -> state (PENDING, RUNNING, COMPLETED, FAILED, ...): squeue for live tasks, sacct for ended
    ones. UNKNOWN while neither knows a task yet (sacct lags a few seconds behind a submission). `calls` counts
    the commands run, by name."""
    if not job_ids:
        return {}
    calls = Counter() if calls is None else calls
    arrays = ",".join(sorted({j.split("_")[0] for j in job_ids}))
    found = {}
    try:
        calls["sacct"] += 1
        for line in run_slurm("sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", arrays).splitlines():
            jid, state = line.split("|")[:2]
            found[jid] = state.split()[0]
    except RuntimeError:  # a site without accounting: squeue alone
        pass
    # All of this user's jobs, not `-j ARRAYS`: squeue fails outright ("Invalid job id specified") once any of
    # them is older than MinJobAge and purged, while sacct still knows it.
    wanted = set(arrays.split(","))
    calls["squeue"] += 1
    for line in run_slurm("squeue", "-h", "-r", "-o", "%i|%T", "-u", getpass.getuser()).splitlines():
        jid, state = line.strip().split("|")
        if jid.split("_")[0] in wanted:
            found[jid] = state
    return {j: found.get(j, "UNKNOWN") for j in job_ids}


def known_jobs(run_root: Path) -> dict[str, str]:
    return read_json(run_root / JOBS, {})


def next_interval(interval: float, changed: bool, poll_s: float = POLL_S, cap: float = MAX_POLL_S) -> float:
    """The wait before the next poll: poll_s after a change, else GROWTH times longer, up to the cap."""
    return poll_s if changed else min(interval * GROWTH, max(cap, poll_s))


class StatusFiles:
    """The trials' status.json, each read again only when it changed (stat is cheap, 1,000 reads are not)."""

    def __init__(self):
        self.seen: dict[Path, tuple[tuple, dict[str, Any]]] = {}

    def read(self, run_dir: Path) -> tuple[dict[str, Any], bool]:
        """The trial's status and whether it changed since the last read."""
        path = run_dir / STATUS
        try:
            st = os.stat(path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)  # written by rename (library.files): a new inode
        except FileNotFoundError:
            key = ()
        old = self.seen.get(path)
        if old and old[0] == key:
            return old[1], False
        record = read_json(path, {}) if key else {}
        self.seen[path] = (key, record)
        return record, old is not None or bool(key)


def show(view: SweepView, trial_id: str, job: str | None, slurm: str | None, status: dict, metric: str,
         shared: bool) -> None:
    """Tell the view where the trial stands. A Slurm job that runs several trials (ray-slurm, packed tasks) says
    nothing about which of them runs: there its status.json does."""
    view.mode = view.mode or status.get("mode", "")
    st = Status(status.get("status", Status.NOT_RUN))
    best, best_epoch = status.get(f"best_{metric}"), status.get("best_epoch")
    if st.final:
        took = (status.get("elapsed_s") or 0) + (status.get("startup_s") or 0)
        view.finished(trial_id, st, best, best_epoch, status.get("reason") or "", seconds=took or None)
    elif slurm is not None and slurm not in ACTIVE:
        view.finished(trial_id, Status.FAILED, reason=f"Slurm task {job} ended {slurm} without finishing")
    elif (slurm == "RUNNING" and not shared) or (st == Status.RUNNING and not status.get("preempted")):
        view.started(trial_id, note=f"Slurm task {job}")
        if status.get("epoch"):
            view.epoch(trial_id, status["epoch"], status.get("final") or {}, best, best_epoch)
    elif at := status.get("preempted"):
        view.preempted(trial_id, at["epoch"], at["step"])
    else:
        view.queued(trial_id)


def follow(run_root: Path, trial_ids: list[str], metric: str, poll_s: float = POLL_S,
           max_poll_s: float = MAX_POLL_S) -> None:
    """The progress view until every task has ended; then (and on Ctrl-C) the Slurm calls made, in poll.json."""
    jobs = known_jobs(run_root)
    shared = Counter(jobs[t] for t in trial_ids if t in jobs)
    files, calls, last = StatusFiles(), Counter(), {}
    start, interval, intervals = time.monotonic(), poll_s, 0
    try:
        with SweepView(metric, "", trial_ids) as view:
            while True:
                current = states([jobs[t] for t in trial_ids if t in jobs], calls)
                intervals += 1
                changed = current != last
                last = current
                ended = 0
                with view.before() if intervals == 1 else nullcontext():
                    for t in trial_ids:
                        status, fresh = files.read(run_root / t)
                        changed |= fresh
                        show(view, t, jobs.get(t), current.get(jobs.get(t)), status, metric, shared[jobs.get(t)] > 1)
                        ended += (current.get(jobs.get(t)) not in ACTIVE
                                  or Status(status.get("status", Status.NOT_RUN)).final)
                if ended == len(trial_ids):
                    return
                view.tick()
                interval = next_interval(interval, changed, poll_s, max_poll_s)
                time.sleep(interval)
    finally:
        seconds = time.monotonic() - start
        write_json(run_root / POLL, {"sacct": calls["sacct"], "squeue": calls["squeue"], "seconds": round(seconds, 1),
                                     "per_minute": round((calls["sacct"] + calls["squeue"]) / max(seconds / 60, 1e-9), 2),
                                     "intervals": intervals})

