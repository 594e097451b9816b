"""Where a sweep stands, for the person who started it: one view for every backend.

The local backend feeds it Ray Tune's trial events, the Slurm backends what they poll (task states and each
trial's status.json). On a terminal it is a compact live view, redrawn in place (rich): counts by status,
elapsed time, ETA, the best trial so far and the running trials' latest epoch. Anywhere else (a log file, CI,
a captured test) it prints event lines: a trial started, finished (with its best score), failed (with the first
line of its reason), was preempted; one line per trial epoch only for small sweeps, and for big ones a one-line
summary now and then. Feeding it the same state twice prints nothing: callers may report every poll.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from library.trial import Status

SMALL = 20
"""A sweep of at most this many trials prints a line per trial epoch (as it always did); a bigger one does not,
or hundreds of trials would flood the log. Our choice."""
SUMMARY_S = 30.0
"""A big sweep's log gets a one-line summary (counts, best, ETA) at most this often. Our choice."""
REFRESH_PER_S = 2
"""The live view's redraws per second: the elapsed time moves, the eye sees no flicker."""
LIVE_ROWS = 10
"""Running trials listed in the live view; the rest are "+N more"."""

QUEUED, RUNNING = "queued", "running"
STATES = (QUEUED, RUNNING, Status.COMPLETED, Status.FAILED, Status.DIVERGED, Status.STOPPED)
LOUD = (Status.FAILED, Status.DIVERGED)
"""Final states whose line the live view also prints above itself: a failure should stay on screen."""


@dataclass
class TrialView:
    id: str
    state: str = QUEUED
    epoch: int = 0
    score: float | None = None
    """The metric at the latest epoch that evaluated it."""
    best: float | None = None
    best_epoch: int | None = None
    began: float | None = None
    """When this view saw it start running (its clock)."""
    seconds: float | None = None
    """How long it ran, once it finished: what the ETA is estimated from."""
    preempted: tuple | None = None


class SweepView:
    """The progress of one sweep's trials. `live` None: live when `out` is a terminal and env CI is unset."""

    def __init__(self, metric: str, mode: str, trial_ids: list[str], concurrent: int = 0, out: TextIO | None = None,
                 live: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.metric, self.mode, self.concurrent, self.clock = metric, mode, concurrent, clock
        self.out = out or sys.stdout
        self.trials = {t: TrialView(t) for t in trial_ids}
        self.small = len(trial_ids) <= SMALL
        self.start = self.last_summary = clock()
        self.most_running = 0
        self.catching_up = False
        self.live = None
        self.closed = False
        ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
        if live if live is not None else self.out.isatty() and not ci:
            self.console = Console(file=self.out, force_terminal=True)
            self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=REFRESH_PER_S,
                             transient=False, redirect_stderr=False)

    def __enter__(self) -> SweepView:
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------------------------- what the backends report

    def started(self, trial_id: str, note: str = "") -> None:
        t = self.trial(trial_id)
        if t.state != RUNNING:
            t.began, t.preempted = self.clock(), None
            t.state = RUNNING  # after `began`: the live view may draw in between
            self.most_running = max(self.most_running, self.count()[RUNNING])
            self.event(t, "started" + (f" ({note})" if note else ""), loud=False)

    def epoch(self, trial_id: str, epoch: int | None, values: dict[str, Any], best: float | None = None,
              best_epoch: int | None = None) -> None:
        """A trial's epoch ended with these values (losses, and the metric where it was evaluated)."""
        t = self.trial(trial_id)
        if epoch is None or t.state not in (QUEUED, RUNNING) or epoch <= t.epoch:
            return
        self.started(trial_id)
        t.epoch = epoch
        if (score := values.get(self.metric)) is not None:
            t.score = score
            if best is None and self.better(score, t.best):
                best, best_epoch = score, epoch
        if best is not None:
            t.best, t.best_epoch = best, best_epoch
        if self.small:
            losses = "  ".join(f"{k} {values[k]:.3f}" for k in sorted(values) if k.startswith("loss"))
            shown = f"  {self.metric} {score:.3f}" if score is not None else ""
            self.event(t, f"epoch {epoch}  {losses}{shown}", loud=False)

    def finished(self, trial_id: str, status: Status, best: float | None = None, best_epoch: int | None = None,
                 reason: str = "", seconds: float | None = None) -> None:
        """A trial ended: `status` is final. `seconds` it ran (default: since this view saw it start)."""
        t = self.trial(trial_id)
        if t.state == status:
            return
        t.state = Status(status)
        if best is not None:
            t.best, t.best_epoch = best, best_epoch
        t.seconds = seconds if seconds is not None else (self.clock() - t.began if t.began is not None else None)
        text = str(status)
        if t.best is not None:
            text += f"  best {self.metric} {t.best:.3f} at epoch {t.best_epoch}"
        if reason:
            text += f"  ({reason.splitlines()[0]})"
        self.event(t, text, loud=t.state in LOUD)

    def preempted(self, trial_id: str, epoch: int, step: int) -> None:
        """The trial checkpointed mid-run (at 0-based `epoch`, `step`) and waits to resume from there."""
        t = self.trial(trial_id)
        if t.preempted != (epoch, step):
            t.state, t.preempted = QUEUED, (epoch, step)
            self.event(t, f"checkpointed at epoch {epoch + 1}, step {step}; resumes later", loud=True)

    def queued(self, trial_id: str) -> None:
        self.trial(trial_id).state = QUEUED

    @contextmanager
    def before(self) -> Iterator[None]:
        """Report inside this what had happened before the view began (the first poll of a sweep re-run or
        re-attached to): a big sweep prints one line for the trials that had already ended, not a line each."""
        if self.small:
            yield
            return
        self.catching_up = True
        try:
            yield
        finally:
            self.catching_up = False
        counts = self.count()
        if ended := ", ".join(f"{counts[s]} {s}" for s in STATES if s not in (QUEUED, RUNNING) and counts[s]):
            self.print(f"{self.stamp()}ended before: {ended}")

    def tick(self) -> None:
        """Call now and then: a big sweep's log gets its summary line every SUMMARY_S."""
        if not self.live and not self.small and self.clock() - self.last_summary >= SUMMARY_S:
            self.print(self.stamp() + self.summary())
            self.last_summary = self.clock()

    def close(self) -> None:
        """Stop the live view (its last frame stays) and print the final summary."""
        if self.closed:
            return
        self.closed = True
        if self.live:
            self.live.stop()
        self.print(self.stamp() + self.summary())

    # -------------------------------------------------------------------------------- what it shows

    def trial(self, trial_id: str) -> TrialView:
        return self.trials[trial_id]  # never a new key: the live view iterates the dict from its thread

    def count(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for t in self.trials.values():
            counts[t.state] += 1
        return counts

    def better(self, value: float, than: float | None) -> bool:
        return than is None or (value < than if self.mode == "min" else value > than)

    def best(self) -> TrialView | None:
        if self.mode not in ("min", "max"):
            return None
        found = None
        for t in self.trials.values():
            if t.best is not None and (found is None or self.better(t.best, found.best)):
                found = t
        return found

    def eta(self) -> float | None:
        """Seconds until every trial has ended: the work left (the queued trials and the rest of the running ones,
        each as long as the finished ones took on average) shared by the trials that run at once."""
        took = [t.seconds for t in self.trials.values() if t.seconds is not None]
        if not took:
            return None
        mean, now = sum(took) / len(took), self.clock()
        left = [max(mean - (now - t.began if t.began is not None else 0), 0) if t.state == RUNNING else mean
                for t in self.trials.values() if t.state in (QUEUED, RUNNING)]
        if not left:
            return 0.0
        at_once = min(max(self.concurrent or self.most_running, 1), len(left))
        return sum(left) / at_once

    def summary(self) -> str:
        """One line: counts by status, the best trial so far, ETA."""
        return f"{len(self.trials)} trial(s): {self.counts()}; {self.best_text()}; {self.eta_text()}"

    def counts(self) -> str:
        counts = self.count()
        return ", ".join(f"{counts[s]} {s}" for s in STATES)

    def best_text(self) -> str:
        best = self.best()
        if best is None:
            return f"best {self.metric} -"
        return f"best {self.metric} {best.best:.3f} ({best.id}, epoch {best.best_epoch})"

    def eta_text(self) -> str:
        eta = self.eta()
        return f"ETA {duration(eta) if eta is not None else '-'}"

    def render(self) -> Text:
        """The live view's frame. Drawn from rich's refresh thread without a lock while the backend's thread
        reports: the set of trials is fixed, each read is whole (GIL), so a frame is at worst a moment behind."""
        lines = [f"{len(self.trials)} trial(s), elapsed {duration(self.clock() - self.start)}, {self.eta_text()}",
                 self.counts(), self.best_text()]
        running = sorted((t for t in self.trials.values() if t.state == RUNNING), key=lambda t: (t.began or 0, t.id))
        for t in running[:LIVE_ROWS]:
            score = f"  {self.metric} {t.score:.3f}" if t.score is not None else ""
            lines.append(f"  {t.id}  epoch {t.epoch}{score}")
        if len(running) > LIVE_ROWS:
            lines.append(f"  +{len(running) - LIVE_ROWS} more running")
        return Text("\n".join(lines))

    def stamp(self) -> str:
        return f"[{self.clock() - self.start:5.0f}s] "

    def event(self, t: TrialView, text: str, loud: bool) -> None:
        """An event line: always in a log; above the live view only when `loud`; of a big sweep's trial that had
        ended before the view began, none."""
        if self.catching_up and t.state not in (QUEUED, RUNNING):
            return
        if not self.live or loud:
            done = sum(1 for x in self.trials.values() if x.state not in (QUEUED, RUNNING))
            self.print(f"{self.stamp()}{t.id}  {text}   ({done}/{len(self.trials)} done)")

    def print(self, line: str) -> None:
        if self.live:
            if self.live.is_started:
                self.live.refresh()  # the frame under the line shows what the line says
            self.console.print(Text(line), soft_wrap=True)
        else:
            print(line, file=self.out, flush=True)


def duration(seconds: float) -> str:
    """3h05m, 4m20s, 45s."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
