"""The five figures of `python -m library.bench`, each beside its baseline, and their markdown table."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from jobs.gan import GANConfig, GANJob
from library.bench import REPO, sync
from library.config import parse
from library.data import default_root, load_images
from library.data.images import _mnist5k_table
from library.metrics import FrechetScorer
from library.models.gan import build, sample_noise
from library.pixels import to_float
from library.train import make_context, place_model, run_epoch

SWEEP_FILE = '''from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(name="bench_sweep", job="gan", metric="fd_domain", base={base!r}, grid={grid!r})
if __name__ == "__main__":
    main(SWEEP)
'''
TRIAL = {"data.name": "mnist5k", "data.limit": 1024, "train.batch_size": 32, "train.epochs": 2,
         "eval.num_samples": 200, "eval.final_num_samples": 200}
GRID = {"optim.beta1": [0.3, 0.5, 0.9], "optim.beta2": [0.9, 0.999]}


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ------------------------------------------------------------------------------------------ 1. training step


def step_time(steps: int, batch: int, repeats: int, workdir: Path) -> dict:
    """Seconds per DCGAN step: the harness's `run_epoch` (sharding, Context, scaler, metric sums) vs a bare loop."""
    cfg = parse(GANConfig, {"data.name": "mnist5k", "data.limit": steps * batch, "train.batch_size": batch})
    ctx = make_context(cfg, workdir, want_gpu=torch.cuda.is_available())
    device = ctx.device
    job = GANJob(cfg)
    images = job.load_data()[0].to(device)
    torch.manual_seed(0)
    models, ctx.optimizers = job.build(ctx)
    ctx.models = {k: place_model(m, ctx) for k, m in models.items()}

    def harness():
        run_epoch(job, ctx, [images])
        sync(device)

    torch.manual_seed(0)
    g, d = (m.to(device) for m in build(cfg.model, 28, 1))
    betas = (cfg.optim.beta1, cfg.optim.beta2)
    opt_g, opt_d = torch.optim.Adam(g.parameters(), cfg.optim.lr, betas), torch.optim.Adam(d.parameters(), cfg.optim.lr, betas)
    amp = dict(device_type=device.type, dtype=ctx.amp_dtype or torch.float32, enabled=ctx.amp_dtype is not None)

    def bare():  # pytorch/examples' dcgan loop, on the same in-memory tensor
        for idx in torch.randperm(len(images), device=device).split(batch):
            if len(idx) < batch:
                break
            real = to_float(images[idx])
            z = sample_noise(cfg.model, batch, device)
            ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
            opt_d.zero_grad(set_to_none=True)
            with torch.autocast(**amp):
                fake = g(z)
                loss_real = F.binary_cross_entropy_with_logits(d(real), ones)
            loss_real.backward()
            with torch.autocast(**amp):
                loss_fake = F.binary_cross_entropy_with_logits(d(fake.detach()), zeros)
            loss_fake.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            with torch.autocast(**amp):
                loss_g = F.binary_cross_entropy_with_logits(d(fake), ones)
            loss_g.backward()
            opt_g.step()
        sync(device)

    def timed(fn) -> tuple[float, float]:  # wall and CPU seconds; CPU time barely moves with other processes' load
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu

    bare(), harness()  # warm-up: allocator, cudnn autotuning, thread pools
    runs = {"bare": [], "harness": []}
    for _ in range(repeats):  # interleaved, so drifting machine load hits both alike
        runs["bare"].append(timed(bare))
        runs["harness"].append(timed(harness))
    (bare_wall, bare_cpu), (harness_wall, harness_cpu) = (
        [statistics.median(t[i] for t in runs[k]) / steps for i in (0, 1)] for k in ("bare", "harness"))
    out = {"device": str(device), "amp": str(ctx.amp_dtype), "batch": batch, "steps": steps,
           "bare_step_ms": 1000 * bare_wall, "harness_step_ms": 1000 * harness_wall,
           "harness_over_bare": harness_wall / bare_wall, "images_per_s": batch / harness_wall}
    if device.type == "cpu":
        out.update(bare_step_cpu_ms=1000 * bare_cpu, harness_step_cpu_ms=1000 * harness_cpu,
                   harness_over_bare_cpu=harness_cpu / bare_cpu)
    return out


# ------------------------------------------------------------------------------------------ 2. trial start-up


def run_python(args: list[str], env: dict | None = None) -> float:
    start = time.time()
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode:
        raise RuntimeError(f"python {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return time.time() - start


def job_run(run_dir: Path, overrides: dict, env: dict | None = None) -> dict:
    """Runs `python jobs/gan.py` once; its wall time, launch-to-first-step and the harness's own start-up."""
    start = time.time()
    wall = run_python(["jobs/gan.py", f"--run-dir={run_dir}", *(f"--{k}={v}" for k, v in overrides.items())], env)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "completed", status
    return {"wall_s": wall, "to_first_step_s": status["first_step_at"] - start, "harness_startup_s": status["startup_s"],
            "train_s": status["elapsed_s"]}


def startup(repeats: int, workdir: Path) -> dict:
    tiny = {**TRIAL, "data.limit": 64, "train.epochs": 1, "eval.num_samples": 10, "eval.final_num_samples": 10}
    bare = statistics.median(run_python(["-c", "import torch"]) for _ in range(repeats))
    runs = {}
    for mode in ("offline", "disabled"):
        samples = [job_run(workdir / f"startup-{mode}-{i}", tiny, {"WANDB_MODE": mode}) for i in range(repeats)]
        runs[mode] = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    first_step = runs["offline"]["to_first_step_s"]
    return {"import_torch_s": bare, "job_to_first_step_s": first_step, "job_over_import_torch": first_step / bare,
            "harness_startup_s": runs["offline"]["harness_startup_s"], "job_wall_s": runs["offline"]["wall_s"],
            "job_to_first_step_wandb_disabled_s": runs["disabled"]["to_first_step_s"]}


# ------------------------------------------------------------------------------------------ 3. sweep throughput


def sweep_throughput(workdir: Path) -> dict:
    """The 6-trial sweep through Ray Tune (2 at a time on 2 cores) vs the same 6 configs as separate runs."""
    sweep_file = workdir / "bench_sweep.py"
    sweep_file.write_text(SWEEP_FILE.format(base=TRIAL, grid=GRID))
    env = {"PYTHONPATH": str(REPO), "WANDB_MODE": "offline"}
    sweep_wall = run_python([str(sweep_file), "--backend=local", f"--runs-dir={workdir / 'runs'}",
                             f"--results-dir={workdir / 'results'}"], env)
    statuses = [json.loads(p.read_text()) for p in (workdir / "runs" / "bench_sweep").glob("*/status.json")]
    assert len(statuses) == 6 and all(s["status"] == "completed" for s in statuses), statuses
    alone = []
    for i, b1 in enumerate(GRID["optim.beta1"]):
        for j, b2 in enumerate(GRID["optim.beta2"]):
            alone.append(job_run(workdir / f"alone-{i}{j}", {**TRIAL, "optim.beta1": b1, "optim.beta2": b2}, env))
    total_alone = sum(r["wall_s"] for r in alone)
    return {"trials": 6, "sweep_wall_s": sweep_wall, "sum_alone_s": total_alone, "sweep_over_sum_alone": sweep_wall / total_alone,
            "sweep_trial_startup_s_median": statistics.median(s["startup_s"] for s in statuses),
            "sweep_trial_train_s_median": statistics.median(s["elapsed_s"] for s in statuses),
            "alone_train_s_median": statistics.median(r["train_s"] for r in alone)}


# ------------------------------------------------------------------------------------------ 4. evaluation


def evaluation(workdir: Path) -> dict:
    """Scores 1,000 images in a fresh cache (reference statistics computed) and again (statistics cached)."""
    cfg = parse(GANConfig, {"data.name": "mnist5k"})
    warm = GANJob.scorer(cfg, "cpu")
    warm.prepare()  # trains or loads the extractor once; not what is timed
    cache = workdir / "metric_cache"
    shutil.copytree(Path(default_root()) / "metric_cache" / "extractors", cache / "extractors")
    fresh = FrechetScorer(warm.real.images, warm.real_labels, warm.num_classes, warm.dataset_key, "domain", cache)
    fakes = warm.real.images[torch.randperm(len(warm.real.images), generator=torch.Generator().manual_seed(0))[:1000]]
    start = time.perf_counter()
    fresh.score(fakes)
    cold = time.perf_counter() - start
    cached = median_time(lambda: fresh.score(fakes), 3)
    return {"real_images": len(warm.real.images), "fake_images": len(fakes), "uncached_s": cold, "cached_s": cached,
            "uncached_over_cached": cold / cached}


# ------------------------------------------------------------------------------------------ 5. loaders


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes(), compresslevel=1))


def loaders(workdir: Path, n: int, train_images_per_s: float) -> dict:
    """Real file formats at realistic sizes (random pixels: the formats, not the content, set the speed)."""
    rng = np.random.default_rng(0)
    root = workdir / "data"
    (root / "mnist").mkdir(parents=True)
    write_idx(root / "mnist" / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10, 28, 28), dtype=np.uint8))
    write_idx(root / "mnist" / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 10, dtype=np.uint8))
    (root / "medmnist").mkdir()
    for size, count in ((28, n // 3), (64, n // 12)):
        arrays = {f"{s}_images": rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8) for s in ("train", "val", "test")}
        arrays.update({f"{s}_labels": rng.integers(0, 9, (count, 1), dtype=np.uint8) for s in ("train", "val", "test")})
        np.savez_compressed(root / "medmnist" / ("pathmnist.npz" if size == 28 else f"pathmnist_{size}.npz"), **arrays)
    cases = {"mnist5k (csv.gz)": ("mnist5k", None, 28), "mnist (IDX .gz)": ("mnist", root, 28),
             "mnist resized to 32": ("mnist", root, 32), "pathmnist (npz, 28)": ("pathmnist", root, 28),
             "pathmnist (npz, 64)": ("pathmnist", root, 64)}
    out = {}
    for label, (name, where, size) in cases.items():
        _mnist5k_table.cache_clear()  # time the file, not this process's cached copy
        start = time.perf_counter()
        count = len(load_images(name, where, "train", size).images)
        per_s = count / (time.perf_counter() - start)
        out[label] = {"images": count, "images_per_s": per_s, "over_training_step": per_s / train_images_per_s}
    return out


# ------------------------------------------------------------------------------------------ report


def markdown(results: dict) -> str:
    s, u, w, e = results["step"], results["startup"], results["sweep"], results["evaluation"]
    rows = [
        ("DCGAN step, harness vs bare loop (ms, wall)", s["harness_step_ms"], s["bare_step_ms"], s["harness_over_bare"], "<= 1.03"),
        *([("DCGAN step, harness vs bare loop (ms, CPU time)", s["harness_step_cpu_ms"], s["bare_step_cpu_ms"],
            s["harness_over_bare_cpu"], "<= 1.03")] if "harness_step_cpu_ms" in s else []),
        ("launch to first step vs `import torch` (s)", u["job_to_first_step_s"], u["import_torch_s"],
         u["job_over_import_torch"], "<= 5 s"),
        ("6-trial sweep vs sum of trials alone (s)", w["sweep_wall_s"], w["sum_alone_s"], w["sweep_over_sum_alone"], "<= 0.6"),
        ("FD evaluation, uncached vs cached (s)", e["uncached_s"], e["cached_s"], e["uncached_over_cached"], ""),
        *((f"loader {k} vs training step (images/s)", v["images_per_s"], s["images_per_s"], v["over_training_step"], ">> 1")
          for k, v in results["loaders"].items()),
    ]
    lines = [f"# Benchmark ({results['machine']})", "", "| figure | ours | baseline | ratio | target |", "|---|---:|---:|---:|---|"]
    lines += [f"| {name} | {a:.4g} | {b:.4g} | {r:.3f} | {t} |" for name, a, b, r, t in rows]
    lines += ["", f"Step: {s['device']}, AMP {s['amp']}, batch {s['batch']}, {s['steps']} steps per timing.",
              f"Start-up: harness part (fit() to first step) {u['harness_startup_s']:.2f} s; with W&B disabled "
              f"{u['job_to_first_step_wandb_disabled_s']:.2f} s to first step.",
              f"Sweep: median trial start-up inside Tune {w['sweep_trial_startup_s_median']:.2f} s, median trial "
              f"training {w['sweep_trial_train_s_median']:.2f} s (alone: {w['alone_train_s_median']:.2f} s).",
              f"Total bench time {results['bench_s']:.0f} s."]
    return "\n".join(lines) + "\n"
