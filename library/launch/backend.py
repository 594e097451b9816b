"""What the driver knows of a backend: the options the command line gives it and the calls it makes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from library.sweep import Sweep
from library.trial import Trial


@dataclass(kw_only=True)
class LaunchOptions:
    """What the command line says about where and how trials run (the sweep itself says what runs)."""

    site: str | None = None
    """Slurm site profile, a TOML file (see slurm/site.example.toml)."""
    nodes: int = 1
    """Nodes of one allocation (ray-slurm: the Ray cluster job)."""
    max_concurrent: int = 0
    """Trials at once (0: as the resources allow)."""
    trials_per_task: int = 0
    """slurm: trials packed into one array task (0: chosen by library.launch.pack.pack_size)."""


class Backend(Protocol):
    name: str
    """Its key in BACKENDS."""
    queued: bool
    """Trials wait in a scheduler's queue: `submit` returns before they end, `follow` waits, and the driver may
    detach. False: `submit` runs the trials to their end."""

    def check(self, sweep: Sweep) -> None:
        """Refuse, on the login node and before anything is written, what the backend could never run
        (ConfigError or RuntimeError, saying why and what to change)."""

    def busy(self, run_root: Path, trials: list[Trial]) -> dict[str, str]:
        """Trial id -> who runs it right now (a queued or running task of an earlier invocation, another process
        that holds its run dir): a re-run must not start these again."""

    def submit(self, sweep: Sweep, trials: list[Trial], run_root: Path) -> str:
        """Run or enqueue the trials; returns one line for the user (what was submitted, where the logs are)."""

    def follow(self, run_root: Path, trials: list[Trial], metric: str) -> None:
        """A live view until every trial's task has ended (on Ctrl-C, KeyboardInterrupt: the driver detaches)."""

    def reconcile(self, run_root: Path, trials: list[Trial]) -> None:
        """Record as failed, with the scheduler's words, every trial whose task ended without a final status."""

    def cancel(self, run_root: Path) -> list[str]:
        """Cancel the sweep's queued and running tasks; returns their ids."""
