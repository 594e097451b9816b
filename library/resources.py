"""What one trial runs on: Ray Train workers, their CPUs and GPUs. Not part of a trial's identity."""
from __future__ import annotations

from dataclasses import dataclass

from library.config import require

DRIVER_CPU = 0.01  # a multi-worker trial's Tune process only drives its TorchTrainer; Ray refuses {"cpu": 0}
PRIVATE_RAY_IP = "127.0.0.2"
"""The address of a Ray that serves one machine (local backend, one array task, a job run alone): loopback, so its
processes talk over `lo` only (left alone, Ray takes the machine's outward address). Not 127.0.0.1, which Ray
replaces by that outward address (ray._private.services.resolve_ip_for_localhost); all of 127.0.0.0/8 is `lo`."""


@dataclass(kw_only=True)
class Resources:
    """What one trial runs on. Not part of the trial's identity: the same trial may run on other hardware."""

    workers: int = 0
    """Ray Train workers (DDP ranks); 0 runs the loop in the calling process (Ray Train's local mode)."""
    cpus_per_worker: int = 1
    """CPU cores per worker; also its torch thread count."""
    gpus_per_worker: float = 0
    """GPUs per worker (0 = CPU). A fraction (0.25: four trials share a GPU) only for a trial of one process
    (workers 0 or 1): DDP ranks need whole GPUs."""
    placement: str = "pack"
    """Where a trial's workers go (Ray's placement strategy): pack (as few nodes as possible: DDP traffic stays
    inside a node) or spread (one per node where possible, e.g. to use several nodes' memory or to test DDP
    across nodes)."""

    def __post_init__(self) -> None:
        require(self.placement in ("pack", "spread"), "resources.placement", self.placement, "pack or spread")
        gpus = self.gpus_per_worker
        require(gpus >= 0 and (gpus == int(gpus) or (gpus < 1 and self.workers <= 1)), "--gpus-per-trial", gpus,
                "a whole number of GPUs, or a fraction below 1 (0.25: four trials share a GPU) for a trial of one "
                "process (--workers-per-trial 0 or 1): DDP ranks need whole GPUs")

    @property
    def gpus(self) -> float:
        """GPUs of one trial, all its workers together."""
        return max(1, self.workers) * self.gpus_per_worker

    def needs(self) -> dict[str, float]:
        """Ray resources one trial holds at once: its Train workers, and its Tune process's DRIVER_CPU."""
        workers = max(1, self.workers)
        return {"CPU": workers * self.cpus_per_worker + (DRIVER_CPU if self.workers else 0),
                "GPU": workers * self.gpus_per_worker}

    def check_fits(self, available: dict[str, float], where: str = "this Ray cluster") -> None:
        """Refuse a trial that `available` can never hold: Tune would wait forever, saying so only in ray.log."""
        for kind, need in self.needs().items():
            have = available.get(kind, 0)
            if need > have + 1e-9:
                raise RuntimeError(f"one trial needs {need:g} {kind} ({max(1, self.workers)} worker(s) x "
                                   f"{self.cpus_per_worker} CPU, {self.gpus_per_worker} GPU each) but {where} has "
                                   f"{have:g}: lower --workers-per-trial / --gpus-per-worker, or run where there is more")
