"""What the test modules share, in one place: the tiny trial budget, sweep files and their command line,
waiting for a condition, comparing two runs of one trial, reading offline W&B files, releasing requeued Slurm
jobs, small dataset files in their real formats, a big synthetic sweep's run dirs and headless Chromium. Test
modules import these from here and never from each other (the `cluster` fixture is in conftest.py)."""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from jobs.gan import GANConfig
from library.checkpoint import load_checkpoint
from library.config import parse, to_dict
from library.driver import main
from library.files import read_json
from library.sweep import Sweep
from library.trial import METRICS, STATUS

ROOT = Path(__file__).resolve().parents[1]

TINY = {"data.limit": 256, "train.epochs": 1, "eval.num_samples": 100, "eval.final_num_samples": 100}
"""The smallest GAN trial that still trains and scores: 256 digits (4 steps of 64), 100 generated images per
score. Tests that need more (a trial long enough to be killed midway, say) override keys of it by name."""

SLURM_TINY = {**TINY, "data.limit": 320, "eval.num_samples": 200, "eval.final_num_samples": 200}
"""Trials of about 1 s per epoch on the dev cluster (give them train.epochs): signals in Slurm tests land mid-trial."""

SITE = 'slurm_partition = "debug"\ntimeout_min = 10\n'
"""A site profile for the dev cluster of slurm/cluster.sh."""


def gan_config(**overrides) -> dict:
    """A validated, flat GAN config: TINY plus `overrides` (dotted keys: `gan_config(**{"train.epochs": 2})`)."""
    return to_dict(parse(GANConfig, {**TINY, **overrides}))


# ------------------------------------------------------------------------------------------ sweeps


def write_sweep(folder: Path, grid: dict | None = None, *, name: str = "tiny", base: dict | None = None) -> Path:
    """A sweep file FOLDER/NAME.py as a user writes one: the gan job on TINY (+ `base`), the given grid."""
    path = folder / f"{name}.py"
    grid = {"optim.beta1": [0.5]} if grid is None else grid
    base = {**TINY, **(base or {})}
    path.write_text(f"from {Sweep.__module__} import Sweep\nfrom {main.__module__} import main\n"
                    f"main(Sweep(name={name!r}, job='gan', base={base!r}, grid={grid!r}))\n")
    return path


def write_site(folder: Path, text: str = SITE) -> Path:
    (folder / "site.toml").write_text(text)
    return folder / "site.toml"


def sweep_cli(path: Path, *args: str, backend: str = "local", cwd: Path | None = None, check: bool = True,
              timeout: float = 400, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python NAME.py --backend=... ARGS` in the sweep file's folder (or `cwd`), as a user types it; a Slurm
    backend gets the site profile beside the file. With `check`, it must exit 0."""
    site = [f"--site={path.parent / 'site.toml'}"] if backend != "local" else []
    out = subprocess.run([sys.executable, str(path), f"--backend={backend}", *site, *args], cwd=cwd or path.parent,
                         capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check:
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def table_rows(stdout: str, prefix: str = "gan-") -> list[dict[str, str]]:
    """The trial table a sweep prints first: a header line starting with "trial", then one row per trial."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("trial "))
    header, rows = lines[start].split(), []
    for line in lines[start + 1:]:
        if not line.startswith(prefix):
            break
        rows.append(dict(zip(header, line.split())))
    return rows


def wait_for(predicate, timeout: float, what: str = "the condition") -> float:
    """Seconds until predicate() held; AssertionError naming `what` after `timeout` seconds."""
    started = time.time()
    while not predicate():
        if time.time() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return time.time() - started


# ------------------------------------------------------------------------------------------ comparing runs

SCORE = re.compile(r"^(best_)?(fd|kd|fid|kid|precision|recall|class_kl)")
"""Keys of scores computed from generated samples (fd_domain, kd_domain_std, precision, class_kl...)."""


def assert_same_run(a: Path, b: Path) -> None:
    """Two run dirs of one trial (say one interrupted and resumed, one straight through) ended alike.

    Training state is compared bit-exactly: status, epochs, every per-epoch loss and readout, and the weights of
    the last checkpoint; resume is exact, so any difference there is a bug. Computed scores (fd_*, kd_*, fid,
    kid, precision/recall, class_kl) are compared to a relative 1e-6: torch-fidelity reduces float32 features
    through BLAS matrix products, whose rounding can differ in the last bit from one process to another (thread
    count, which differs between a Ray worker with OMP_NUM_THREADS=1 and a Slurm task with its cores, and the
    kernel BLAS picks), and KID averages 100 such float32 results. So the same samples score alike to about 8
    digits, not to the last bit (seen: kd_domain 1780.420665283203 after a USR2 requeue, 1780.4206701660157
    straight through, with every loss identical); 1e-6 is still far finer than any difference between trials."""
    status_a, status_b = read_json(a / STATUS), read_json(b / STATUS)
    assert (status_a["status"], status_a["epoch"]) == (status_b["status"], status_b["epoch"])
    same_values({k: v for k, v in status_a.items() if k.startswith("best_")},
                {k: v for k, v in status_b.items() if k.startswith("best_")}, "status")
    history_a, history_b = read_json(a / METRICS), read_json(b / METRICS)
    assert [h["epoch"] for h in history_a] == [h["epoch"] for h in history_b]
    for entry_a, entry_b in zip(history_a, history_b):
        same_values(entry_a, entry_b, f"epoch {entry_a['epoch']}")
    same_values(status_a["final"], status_b["final"], "final")
    models_a, models_b = load_checkpoint(a)["models"], load_checkpoint(b)["models"]
    assert models_a.keys() == models_b.keys()
    for model in models_a:
        assert models_a[model].keys() == models_b[model].keys()
        differ = [k for k in models_a[model] if not torch.equal(models_a[model][k], models_b[model][k])]
        assert not differ, f"weights of {model} differ: {differ[:5]}"


def same_values(a: dict, b: dict, where: str) -> None:
    a, b = {k: v for k, v in a.items() if k != "elapsed_s"}, {k: v for k, v in b.items() if k != "elapsed_s"}
    assert a.keys() == b.keys(), f"{where}: keys differ: {sorted(a.keys() ^ b.keys())}"
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if SCORE.match(k) and isinstance(x, float) and isinstance(y, float):
            assert math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12), f"{where}: {k} {x!r} != {y!r} (beyond 1e-6)"
        else:
            assert x == y, f"{where}: {k} {x!r} != {y!r} (training state is bit-exact)"


# ------------------------------------------------------------------------------------------ W&B, Slurm, data


def wandb_records(path: Path) -> list:
    """The records of an offline W&B run file (LevelDB log format behind a 7-byte ':W&B' header); W&B offers
    no reader for them."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    records, chunk, pos = [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = pb.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def started_again(job: str) -> bool:
    """Whether the requeued Slurm job runs; while Slurm holds it (~2 min BeginTime), release it.

    Not within the second of the requeue: slurmd revokes the old run's credential at that second and refuses a
    launch whose credential dates from the same second ("Job credential revoked"; the job then ends instead of
    running). Slurm's own hold exists for that; 2 s is enough on one node."""
    state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T|%r"], capture_output=True, text=True).stdout.strip()
    if state.endswith("BeginTime"):
        time.sleep(2)
        subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], capture_output=True)
    return state.startswith("RUNNING")


def write_pathmnist(directory: Path, size: int, n: int = 6) -> dict:
    """A tiny medmnist npz: {split}_images N x H x W x 3 uint8, {split}_labels N x 1."""
    rng = np.random.default_rng(size)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 9, (n, 1), dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / ("pathmnist.npz" if size == 28 else f"pathmnist_{size}.npz"), **arrays)
    return arrays


# ------------------------------------------------------------------------------------------ a big synthetic sweep
SYNTHETIC_REASONS = ("RuntimeError: CUDA out of memory", "OSError: [Errno 122] Disk quota exceeded",
                     "slurm: task cancelled by the scheduler (TIME LIMIT)")


def synthetic_sweep_runs(root: Path, n: int, name: str = "synthetic", epochs: int = 3, mode: str = "min"):
    """The run dirs of a random search of `n` GAN trials that never trained (synthetic: made up, for the report's
    scale tests and measurements), written as the harness writes them (status.json, metrics.json, samples/
    epoch_NNNN.png and samples.png, 64x64 grids): one in 20 failed (3 reasons), one in 33 diverged, the rest
    completed with fd_domain scores that depend on lr and beta1. Returns the sweep and its trials, for collect."""
    from PIL import Image

    from library.files import write_json
    from library.trial import Status, Trial, write_status

    rng = np.random.default_rng(n)
    sweep = Sweep(name=name, job="gan", metric="fd_domain", mode=mode, project="synthetic",
                  search={"optim.lr": None, "optim.beta1": None})  # the params' names (the draws are below)
    trials = []
    for i in range(n):
        params = {"optim.lr": float(10 ** rng.uniform(-4.5, -2)), "optim.beta1": float(rng.uniform(0.0, 0.99))}
        trial = Trial(f"gan-{i:08x}", params, params)
        run_dir = root / "runs" / name / trial.id
        failed, diverged = i % 20 == 7, i % 33 == 5
        best = 15 + 25 * abs(math.log10(params["optim.lr"]) + 3.3) + 40 * abs(params["optim.beta1"] - 0.5)
        spread = rng.uniform(0.5, 1.5)
        history = [{"epoch": ep, "fd_domain": best * (1 + (epochs - ep) / 2), "loss_d": 0.4 + 0.3 * spread / ep,
                    "loss_g": 1.0 + 0.5 * spread / ep, "elapsed_s": 1.5 * ep} for ep in range(1, epochs + 1)]
        if diverged:
            history[-1]["loss_d"] = float("inf")
        status = {"status": Status.FAILED if failed else Status.DIVERGED if diverged else Status.COMPLETED,
                  "reason": SYNTHETIC_REASONS[i % 3] if failed else "loss_d is inf in epoch 3" if diverged else "",
                  "epoch": 0 if failed else epochs, "elapsed_s": 2.0 + i % 7, **trial.labels()}
        if not failed:
            status.update({"best_fd_domain": best, "best_epoch": epochs, "final": history[-1]})
            write_json(run_dir / METRICS, history)
            grid = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 8x8 cells
            (run_dir / "samples").mkdir(parents=True)
            Image.fromarray(grid).save(run_dir / "samples" / f"epoch_{epochs:04d}.png")
            Image.fromarray(grid).save(run_dir / "samples.png")
        write_status(run_dir, status)
        trials.append(trial)
    return sweep, trials


# ------------------------------------------------------------------------------------------ a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# Injected into a copy of the page only (the report itself has no JS): records how many images decoded.
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-broken', imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length);
});</script></body>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chrome-profile'}", *args],
        capture_output=True, text=True, timeout=90)


def loaded_images(tmp_path: Path, page: Path) -> tuple[int, int]:
    probe = page.with_name("probe_" + page.name)
    probe.write_text(page.read_text().replace("</body>", PROBE))
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()).stdout
    m = re.search(r'data-images="(\d+)" data-broken="(\d+)"', dom)
    assert m, dom[-500:]
    return int(m.group(1)), int(m.group(2))
