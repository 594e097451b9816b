"""The code a sweep's Slurm tasks run: the `library` and `jobs` packages as they were when the sweep was submitted.

A task can wait in the queue for hours and be requeued days later; by then the checkout has moved on (an edit, a
pull, a half-written file). So every submission copies the two packages, as they are on disk (uncommitted edits
included: what this driver has just validated), to runs/SWEEP/code/<hash of their files>/ and submits from there:
a task's working directory, first on its sys.path, and PYTHONPATH are that copy, and a requeued task, which runs
the same batch script, finds it again. Identical code is copied once.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import jobs
import library

FOLDER = "code"
SKIP = ("__pycache__", "*.pyc", "*.egg-info")


def packages() -> list[Path]:
    """The package folders to copy: where this driver imported them from."""
    return [Path(library.__file__).parent, Path(jobs.__file__).parent]


def files_of(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix != ".pyc")


def digest() -> str:
    """A hash of every file of the packages (path and bytes): equal code, equal snapshot."""
    h = hashlib.sha256()
    for package in packages():
        for path in files_of(package):
            h.update(f"{package.name}/{path.relative_to(package)}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def take(run_root: Path) -> Path:
    """The snapshot folder of the code as it is now (copied once; whole or absent, never half written)."""
    dest = run_root / FOLDER / digest()
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".partial-"))
        for package in packages():
            shutil.copytree(package, tmp / package.name, ignore=shutil.ignore_patterns(*SKIP))
        try:
            tmp.rename(dest)
        except OSError:  # another invocation wrote the same snapshot first
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


@contextmanager
def submitted_from(run_root: Path):
    """Submit inside this: sbatch gives the job this working directory and environment (PYTHONPATH first)."""
    code = take(run_root)
    cwd, path = os.getcwd(), os.environ.get("PYTHONPATH")
    os.chdir(code)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(code), *([path] if path else [])])
    try:
        yield code
    finally:
        os.chdir(cwd)
        if path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = path
