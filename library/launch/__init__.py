"""Backends put a sweep's trials onto hardware. The driver (library.driver) chooses one by name from BACKENDS and
talks to it only through `Backend` (library.launch.backend). Adding a backend = one module here with a class that
fits `Backend`, and one line in BACKENDS.
"""
from __future__ import annotations

import importlib
import shutil

from library.launch.backend import Backend, LaunchOptions

# name -> (module:class, help). Imported only when chosen: the Slurm backends import submitit, local imports Ray.
BACKENDS = {
    "local": ("library.launch.local:LocalBackend", "Ray Tune on this machine"),
    "slurm": ("library.launch.slurm:SlurmBackend", "one Slurm array task per trial"),
    "ray-slurm": ("library.launch.ray_slurm:RaySlurmBackend",
                  "one sbatch job runs a Ray cluster and the whole sweep"),
}


def default_backend() -> str:
    """slurm where sbatch is on PATH (a login node), else local."""
    return "slurm" if shutil.which("sbatch") else "local"


def get(name: str, options: LaunchOptions) -> Backend:
    if name == "auto":
        name = default_backend()
    module, cls = BACKENDS[name][0].split(":")
    return getattr(importlib.import_module(module), cls)(options)
