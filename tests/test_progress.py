"""The sweep's progress view (library.progress) fed synthetic trial events, and the Slurm follow loop
(library.launch.poll) against a fake Slurm: one batched sacct and squeue per poll, backoff while nothing changes,
the calls counted in poll.json. The real Slurm path is in test_slurm.py."""
from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import pytest

from library.files import read_json, write_json
from library.launch import poll, slurm
from library.launch.local import ProgressView
from library.progress import SMALL, SUMMARY_S, SweepView
from library.trial import STATUS, Status

LINE = re.compile(r"^\[ *\d+s\] (\S+)  (.*)   \((\d+)/(\d+) done\)$")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def log_view(n: int, clock: Clock, concurrent: int = 2) -> tuple[SweepView, io.StringIO]:
    out = io.StringIO()
    return SweepView("fid", "min", [f"t{i:03d}" for i in range(n)], concurrent, out=out, live=False, clock=clock), out


def run_trials(view: SweepView, clock: Clock, ids: list[str], epochs: int = 3, at_once: int = 2) -> None:
    """Trials run `at_once` at a time, 10 s per epoch; trial i's fid falls each epoch, ending at 10 + i."""
    for first in range(0, len(ids), at_once):
        group = ids[first:first + at_once]
        for t in group:
            view.started(t)
        for e in range(1, epochs + 1):
            clock.now += 10
            for t in group:
                view.epoch(t, e, {"loss_d": 0.5, "loss_g": 1.5, "fid": 10 + int(t[1:]) + epochs - e, "epoch": e})
            view.tick()
        for t in group:
            view.finished(t, Status.COMPLETED, 10 + int(t[1:]), epochs)


def test_a_small_sweep_logs_every_event_and_every_epoch_in_the_known_format():
    clock = Clock()
    view, out = log_view(4, clock)
    with view:
        run_trials(view, clock, ["t000", "t001"], epochs=2)
        view.started("t002")
        view.finished("t002", Status.FAILED, reason="ValueError: bad batch\nTraceback (most recent call last): ...")
        view.preempted("t003", epoch=1, step=7)
    lines = out.getvalue().splitlines()
    events = [LINE.match(line).groups() for line in lines[:-1]]
    assert events[0] == ("t000", "started", "0", "4") and events[1][:2] == ("t001", "started")
    assert events[2] == ("t000", "epoch 1  loss_d 0.500  loss_g 1.500  fid 11.000", "0", "4")
    assert ("t000", "completed  best fid 10.000 at epoch 2", "1", "4") in events
    assert ("t002", "failed  (ValueError: bad batch)", "3", "4") in events  # the reason's first line only
    assert ("t003", "checkpointed at epoch 2, step 7; resumes later", "3", "4") in events
    assert sum("epoch 2  loss_d" in e[1] for e in events) == 2
    assert lines[-1].endswith("4 trial(s): 1 queued, 0 running, 2 completed, 1 failed, 0 diverged, 0 stopped; "
                              "best fid 10.000 (t000, epoch 2); ETA 13s")  # t003 left: the mean of 20, 20 and 0 s


def test_the_same_state_reported_again_prints_nothing():
    clock = Clock()
    view, out = log_view(2, clock)
    for _ in range(3):  # what a poll loop does: report every trial at every poll
        view.started("t000")
        view.epoch("t000", 1, {"fid": 3.0})
        view.finished("t001", Status.DIVERGED, reason="loss_d=nan in epoch 1")
    assert len(out.getvalue().splitlines()) == 3


def test_a_big_sweep_log_has_no_epoch_lines_and_a_summary_at_most_every_30_s():
    clock = Clock()
    n = 200
    assert n > SMALL
    view, out = log_view(n, clock, concurrent=8)
    ids = [f"t{i:03d}" for i in range(n)]
    with view:
        run_trials(view, clock, ids, epochs=3, at_once=8)
    lines = out.getvalue().splitlines()
    assert not [line for line in lines if "epoch 1  loss" in line or "epoch 3  loss" in line]
    started = [line for line in lines if line.endswith("done)") and "  started  " in line]
    completed = [line for line in lines if "  completed  best fid" in line]
    summaries = [line for line in lines if " trial(s): " in line]
    assert len(started) == n and len(completed) == n and len(lines) == 2 * n + len(summaries)
    elapsed = clock.now  # 25 groups x 3 epochs x 10 s
    assert 1 < len(summaries) <= elapsed / SUMMARY_S + 1
    assert "0 queued, 0 running, 200 completed" in summaries[-1] and "best fid 10.000 (t000, epoch 3)" in summaries[-1]
    middle = summaries[len(summaries) // 2]
    assert re.search(r"\d+ queued, 8 running, \d+ completed", middle) and re.search(r"ETA \d+m\d\ds", middle)


def test_eta_is_a_dash_before_any_trial_finished_then_the_work_left_over_the_trials_at_once():
    clock = Clock()
    view, out = log_view(6, clock, concurrent=2)
    view.started("t000")
    view.started("t001")
    clock.now = 40
    assert view.eta() is None and "ETA -" in view.summary()
    view.finished("t000", Status.COMPLETED)  # ran 40 s
    view.finished("t001", Status.COMPLETED)
    view.started("t002")
    clock.now = 50
    # t002 has 30 s left, 3 queued trials 40 s each: 150 s of work, 2 at once.
    assert view.eta() == 75 and "ETA 1m15s" in view.summary()


def test_on_a_terminal_a_live_view_shows_counts_best_eta_and_the_running_trials_epochs():
    clock = Clock()
    out = io.StringIO()
    ids = [f"t{i:03d}" for i in range(40)]
    with SweepView("fid", "min", ids, 4, out=out, live=True, clock=clock) as view:
        for i, t in enumerate(ids[:14]):
            view.started(t)
            view.epoch(t, 2, {"fid": 50.0 + i, "loss_d": 1.0})
        clock.now = 60
        view.finished("t000", Status.COMPLETED, 12.5, 2)
        view.finished("t001", Status.FAILED, reason="RuntimeError: CUDA out of memory\n...")
        frame = view.render().plain
    assert frame.splitlines()[:3] == [
        "40 trial(s), elapsed 1m00s, ETA 6m30s",  # 26 queued trials of 60 s (the running ones: 0 s left), 4 at once
        "26 queued, 12 running, 1 completed, 1 failed, 0 diverged, 0 stopped",
        "best fid 12.500 (t000, epoch 2)"]
    assert "  t002  epoch 2  fid 52.000" in frame and "+2 more running" in frame and len(frame.splitlines()) == 14
    text = out.getvalue()
    assert "\x1b[" in text  # drawn in place with terminal control codes
    assert "started" not in text and "epoch 2  loss" not in text  # no event line per start or epoch on a terminal
    assert "t001  failed  best fid 51.000 at epoch 2  (RuntimeError: CUDA out of memory)" in text  # stays on screen
    assert text.rstrip().endswith("40 trial(s): 26 queued, 12 running, 1 completed, 1 failed, 0 diverged, 0 stopped; "
                                  "best fid 12.500 (t000, epoch 2); ETA 6m30s")  # the final static summary


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("ci, live", [(None, True), ("true", False), ("false", True)])
def test_the_live_view_is_for_a_terminal_outside_ci(monkeypatch, ci, live):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert (SweepView("fid", "min", ["a"], out=Terminal()).live is not None) == live
    assert SweepView("fid", "min", ["a"], out=io.StringIO()).live is None  # a log file, a pipe, pytest's capture


def test_backoff_grows_while_nothing_changes_up_to_the_cap_and_restarts_at_a_change():
    interval, seen = 3.0, []
    for changed in [True, False, False, False, False, False, False, False, True, False]:
        interval = poll.next_interval(interval, changed)
        seen.append(interval)
    assert seen == [3.0, 4.5, 6.75, 10.125, 15.1875, 22.78125, 30.0, 30.0, 3.0, 4.5]


def test_a_status_file_is_read_again_only_when_it_changed(tmp_path, monkeypatch):
    reads = []
    real = poll.read_json
    monkeypatch.setattr(poll, "read_json", lambda path, default=None: reads.append(path) or real(path, default))
    files = poll.StatusFiles()
    assert files.read(tmp_path) == ({}, False) and not reads  # no status.json yet
    write_json(tmp_path / STATUS, {"status": "running", "epoch": 1})
    assert files.read(tmp_path) == ({"status": "running", "epoch": 1}, True)
    assert files.read(tmp_path) == ({"status": "running", "epoch": 1}, False) and len(reads) == 1
    write_json(tmp_path / STATUS, {"status": "running", "epoch": 2})
    assert files.read(tmp_path) == ({"status": "running", "epoch": 2}, True) and len(reads) == 2


class FakeSlurm:
    """sacct and squeue over a dict of task states that the test's script changes between polls."""

    def __init__(self, tasks: dict[str, str]):
        self.tasks, self.calls = tasks, []

    def __call__(self, *args: str) -> str:
        self.calls.append(args)
        if args[0] == "sacct":
            arrays = args[args.index("-j") + 1].split(",")
            return "".join(f"{j}|{s}\n" for j, s in self.tasks.items() if j.split("_")[0] in arrays)
        assert args[0] == "squeue" and "-u" in args
        return "".join(f"{j}|{s}\n" for j, s in self.tasks.items() if s in ("PENDING", "RUNNING"))


def test_follow_polls_once_per_interval_backs_off_and_counts_its_calls_fake_slurm(tmp_path, monkeypatch, capsys):
    n = 200
    run_root = tmp_path / "runs/big"
    trials = [f"gan-{i:04d}" for i in range(n)]
    jobs = {t: f"{100 + i // 100}_{i % 100}" for i, t in enumerate(trials)}  # two arrays (MaxArraySize 101)
    write_json(run_root / slurm.JOBS, jobs)
    fake = FakeSlurm({j: "PENDING" for j in jobs.values()})
    monkeypatch.setattr(poll, "run_slurm", fake)

    def status(t: str, state: str, epoch: int, fid: float) -> None:
        write_json(run_root / t / STATUS, {"status": state, "epoch": epoch, "mode": "min", "best_fid": fid,
                                           "best_epoch": epoch, "final": {"fid": fid, "loss_d": 0.1}, "elapsed_s": 20})

    def start():
        for t in trials:
            fake.tasks[jobs[t]] = "RUNNING"
            status(t, "running", 1, 9.0)

    def finish():
        for i, t in enumerate(trials):
            status(t, "completed" if i else "failed", 2, 5.0 + i)
            fake.tasks[jobs[t]] = "COMPLETED" if i else "FAILED"

    # What changes before each poll: nothing for a while (the queue wait), then every trial starts, then ends.
    script = [None, None, None, None, start, None, None, finish]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        assert len(fake.calls) == 2 * len(waits)  # exactly one sacct and one squeue per interval
        if step := script[len(waits) - 1]:
            step()

    monkeypatch.setattr(poll.time, "sleep", sleep)
    slurm.follow(run_root, trials, "fid")  # the name the Slurm backend and tests use
    assert waits == [3.0, 4.5, 6.75, 10.125, 15.1875, 3.0, 4.5, 6.75]  # grows while queued, restarts at the starts
    assert {c[0] for c in fake.calls[::2]} == {"sacct"} and {c[0] for c in fake.calls[1::2]} == {"squeue"}
    assert all(c[c.index("-j") + 1] == "100,101" for c in fake.calls[::2])  # all the sweep's arrays in one call
    counted = read_json(run_root / poll.POLL)
    assert set(counted) == {"sacct", "squeue", "seconds", "per_minute", "intervals"}
    assert (counted["sacct"], counted["squeue"], counted["intervals"]) == (9, 9, 9)
    out = capsys.readouterr().out
    assert "epoch 1" not in out  # 200 trials: no line per trial epoch
    assert out.count("  started (Slurm task ") == n and out.count("  completed  best fid") == n - 1
    assert "gan-0000  failed  best fid 5.000 at epoch 2" in out
    assert "0 queued, 0 running, 199 completed, 1 failed" in out.splitlines()[-1]
    assert "best fid 5.000 (gan-0000, epoch 2)" in out.splitlines()[-1]


def test_ctrl_c_while_following_still_writes_the_call_counts_fake_slurm(tmp_path, monkeypatch):
    run_root = tmp_path / "runs/s"
    write_json(run_root / slurm.JOBS, {"t": "7_0"})
    monkeypatch.setattr(poll, "run_slurm", FakeSlurm({"7_0": "PENDING"}))

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(poll.time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        poll.follow(run_root, ["t"], "fid")
    counted = read_json(run_root / poll.POLL)
    assert (counted["sacct"], counted["squeue"], counted["intervals"]) == (1, 1, 1)


def test_a_task_that_ended_without_a_final_status_shows_as_failed_fake_slurm(tmp_path, monkeypatch, capsys):
    run_root = tmp_path / "runs/s"
    write_json(run_root / slurm.JOBS, {"t": "7_0"})
    monkeypatch.setattr(poll, "run_slurm", FakeSlurm({"7_0": "OUT_OF_MEMORY"}))
    poll.follow(run_root, ["t"], "fid")
    assert "t  failed  (Slurm task 7_0 ended OUT_OF_MEMORY without finishing)" in capsys.readouterr().out


def test_trials_sharing_one_job_are_running_only_once_their_status_says_so_fake_slurm(tmp_path, monkeypatch, capsys):
    # ray-slurm: one job runs every trial, Ray Tune a few at a time; the job's RUNNING says nothing about each.
    run_root = tmp_path / "runs/s"
    write_json(run_root / slurm.JOBS, {"a": "9", "b": "9"})
    fake = FakeSlurm({"9": "RUNNING"})
    monkeypatch.setattr(poll, "run_slurm", fake)
    write_json(run_root / "a" / STATUS, {"status": "running", "epoch": 1, "final": {}})

    def sleep(seconds):
        write_json(run_root / "a" / STATUS, {"status": "completed", "epoch": 1})
        write_json(run_root / "b" / STATUS, {"status": "completed", "epoch": 1})
        fake.tasks["9"] = "COMPLETED"

    monkeypatch.setattr(poll.time, "sleep", sleep)
    poll.follow(run_root, ["a", "b"], "fid")
    out = capsys.readouterr().out
    assert "a  started" in out and "b  started" not in out and "b  completed" in out



class TuneTrial:
    """What the local backend's callback reads of a Ray Tune trial: its config."""

    def __init__(self, run_root: Path, trial_id: str):
        self.config = {"trial": {"id": trial_id, "run_dir": str(run_root / trial_id)}}


def test_the_local_callback_feeds_the_view_and_remembers_the_trials_asha_stopped_fake_tune_trials(tmp_path, capsys):
    ids = ["done", "cut", "paused", "crashed"]
    trials = {t: TuneTrial(tmp_path, t) for t in ids}
    progress = ProgressView("fid", "min", ids, concurrent=2)
    write_json(tmp_path / "done" / STATUS, {"status": "completed", "epoch": 2, "best_fid": 4.0, "best_epoch": 2})
    # A multi-worker trial that Tune's scheduler ended: its status.json still says running (see mark_stopped).
    write_json(tmp_path / "cut" / STATUS, {"status": "running", "epoch": 1, "best_fid": 9.0, "best_epoch": 1})
    write_json(tmp_path / "paused" / STATUS, {"status": "running", "epoch": 1, "preempted": {"epoch": 1, "step": 3}})
    with progress.view:
        for t in ids:
            progress.on_trial_start(0, [], trials[t])
        progress.on_trial_result(0, [], trials["done"], {"epoch": 1, "loss_d": 0.7, "fid": 5.0})
        for t in ("done", "cut", "paused"):
            progress.on_trial_complete(0, [], trials[t])
        progress.on_trial_error(0, [], trials["crashed"])
    assert progress.stopped == [tmp_path / "cut"]
    out = capsys.readouterr().out
    assert "done  epoch 1  loss_d 0.700  fid 5.000" in out and "done  completed  best fid 4.000 at epoch 2" in out
    assert "cut  stopped  best fid 9.000 at epoch 1  (stopped early by ASHA after epoch 1)" in out
    assert "paused  checkpointed at epoch 2, step 3; resumes later" in out
    assert f"crashed  failed  (its process ended in an error: see {tmp_path / 'ray.log'})" in out
    assert "4 trial(s): 1 queued, 0 running, 1 completed, 1 failed, 0 diverged, 1 stopped" in out
    assert pickle.loads(pickle.dumps(progress)).stopped == [tmp_path / "cut"]  # Tune pickles its callbacks


def test_following_a_big_sweep_again_sums_up_the_trials_that_had_ended_in_one_line_fake_slurm(tmp_path, monkeypatch,
                                                                                                capsys):
    # A re-run of a 100-trial sweep of which 90 had ended (one failed): no line for each of those 90.
    run_root = tmp_path / "runs/again"
    trials = [f"gan-{i:03d}" for i in range(100)]
    jobs = {t: f"5_{i}" for i, t in enumerate(trials)}
    write_json(run_root / slurm.JOBS, jobs)
    fake = FakeSlurm({j: "COMPLETED" for j in jobs.values()})
    for i, t in enumerate(trials):
        if i < 90:
            write_json(run_root / t / STATUS, {"status": "failed" if i == 0 else "completed", "reason": "boom"})
        else:
            fake.tasks[jobs[t]] = "PENDING"
    monkeypatch.setattr(poll, "run_slurm", fake)

    def sleep(seconds):
        for t in trials[90:]:
            write_json(run_root / t / STATUS, {"status": "completed", "epoch": 1})
            fake.tasks[jobs[t]] = "COMPLETED"

    monkeypatch.setattr(poll.time, "sleep", sleep)
    poll.follow(run_root, trials, "fid")
    out = capsys.readouterr().out.splitlines()
    assert [line.split("] ")[1] for line in out if "ended before" in line] == ["ended before: 89 completed, 1 failed"]
    assert sum("  completed" in line for line in out) == 10  # only the trials that ended while followed
    assert not any("gan-000" in line for line in out)
