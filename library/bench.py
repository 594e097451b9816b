"""`python -m library.bench`: where a study's time goes, each figure beside its baseline, with the ratio.

  1. DCGAN training step: the harness's epoch loop vs a bare PyTorch loop (same model, data, batches, AMP).
  2. Trial start-up: `python jobs/gan.py` from launch to its first training step vs `python -c "import torch"`.
  3. Sweep throughput: a 6-trial sweep's wall time vs the sum of the same trials run alone.
  4. Fréchet distance evaluation with vs without cached reference statistics.
  5. Dataset loaders: images/s read from the real file formats vs images/s the training step consumes.

Runs on the GPU when there is one (the same figures, GPU path). Writes results/bench/bench.json and bench.md.
Options: --quick (smaller, for a smoke check), --out DIR.

`--gpu` instead checks the GPU paths in under 5 minutes, on synthetic PathMNIST-shaped images (nothing downloaded),
one `PASS|FAIL|SKIP path: detail` line each: fp16 and bf16 AMP with model.d_steps=2 through the harness's
run_epoch, channels_last, torch.compile, checkpoints resumed with the GradScaler in the other state or on another
device index, train.amp=auto's choice, and one timed DCGAN epoch at 64 px. Writes results/bench/gpu.md; exit code
1 if a path failed, 3 without a GPU.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
SWEEP_FILE = '''from library.sweep import Sweep, main
SWEEP = Sweep(name="bench_sweep", job="gan", metric="fd_domain", base={base!r}, grid={grid!r})
if __name__ == "__main__":
    main(SWEEP)
'''
TRIAL = {"data.name": "mnist5k", "data.limit": 1024, "train.batch_size": 32, "train.epochs": 2,
         "eval.num_samples": 200, "eval.final_num_samples": 200}
GRID = {"optim.beta1": [0.3, 0.5, 0.9], "optim.beta2": [0.9, 0.999]}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


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
    from jobs.gan import JOB, GANConfig, to_float
    from library.config import parse
    from library.models.gan import build, sample_noise
    from library.train import make_context, place_model, run_epoch

    cfg = parse(GANConfig, {"data.name": "mnist5k", "data.limit": steps * batch, "train.batch_size": batch})
    ctx = make_context(cfg, workdir, want_gpu=torch.cuda.is_available())
    device = ctx.device
    images = JOB.load_data(cfg)[0].to(device)
    torch.manual_seed(0)
    models, ctx.optimizers = JOB.build(cfg, ctx)
    ctx.models = {k: place_model(m, ctx) for k, m in models.items()}

    def harness():
        run_epoch(JOB, ctx, [images])
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
    from jobs.gan import JOB, GANConfig
    from library.config import parse
    from library.data import default_root
    from library.metrics import FrechetScorer

    cfg = parse(GANConfig, {"data.name": "mnist5k"})
    warm = JOB.scorer(cfg, "cpu")
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
    from library.data import load_images
    from library.data.images import _mnist5k_table

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


# ------------------------------------------------------------------------------------------ --gpu: the GPU paths

NO_GPU = "no CUDA device visible: run this on a GPU node (e.g. `srun --gpus=1 python -m library.bench --gpu`)"
SYNTHETIC = {"data.name": "pathmnist", "data.image_size": 64, "train.batch_size": 64}  # PathMNIST's 3 x 64 x 64
STUDY_PAIR = {"model.g_width": 128, "model.d_width": 64}  # sweeps/pathmnist_dcgan.py's 64 px DCGAN
FRESH = {"epoch": 1, "history": [], "best": None, "elapsed_s": 0.0}  # the harness state a checkpoint carries


class Skip(Exception):
    """A path that does not apply to this machine; the message says why."""


def synthetic_gan(images: int):
    """jobs/gan.py's GANJob on `images` random uint8 images of the dataset's shape: nothing read, nothing scored.
    Records whether each step's image batch was channels_last."""
    from jobs.gan import GANJob
    from library.data import DATASETS

    class SyntheticGAN(GANJob):
        def load_data(self, cfg):
            spec, size = DATASETS[cfg.data.name], cfg.data.image_size
            gen = torch.Generator().manual_seed(cfg.train.seed)
            return [torch.randint(0, 256, (images, spec.channels, size, size), dtype=torch.uint8, generator=gen),
                    torch.randint(0, max(spec.num_classes, 1), (images,), generator=gen)]

        def step(self, batch, ctx):
            self.channels_last_batches.append(batch[0].is_contiguous(memory_format=torch.channels_last))
            return super().step(batch, ctx)

        def evaluate(self, ctx, final):
            return {}

    job = SyntheticGAN()
    job.channels_last_batches = []
    return job


def gpu_harness(device: torch.device, run_dir: Path, overrides: dict, images: int):
    """(job, ctx, data) set up as library.train's train_loop sets them up, on `device` (make_context takes
    cuda:$LOCAL_RANK). On CPU, make_context turns AMP off; there train.amp=fp16 gets an enabled CPU GradScaler
    as the stand-in for the GPU's, so the scaler's paths run (in fp32) where tests run."""
    from jobs.gan import GANConfig
    from library.config import parse
    from library.train import make_context, place_model, seed_everything, to_device

    cfg = parse(GANConfig, {**SYNTHETIC, **overrides})
    before = os.environ.get("LOCAL_RANK")
    os.environ["LOCAL_RANK"] = str(device.index or 0)
    try:
        ctx = make_context(cfg, run_dir, want_gpu=device.type == "cuda")
    finally:
        if before is None:
            del os.environ["LOCAL_RANK"]
        else:
            os.environ["LOCAL_RANK"] = before
    assert ctx.device == device, f"make_context chose {ctx.device}, not {device}"
    if device.type == "cpu" and cfg.train.amp == "fp16":
        ctx.scaler = torch.amp.GradScaler("cpu", enabled=True)
    job = synthetic_gan(images)
    seed_everything(cfg.train.seed)
    data = [to_device(t, ctx) for t in job.load_data(cfg)]
    models, ctx.optimizers = job.build(cfg, ctx)
    ctx.models = {k: place_model(m, ctx) for k, m in models.items()}
    return job, ctx, data


def count_steps(ctx) -> dict[str, int]:
    """Optimizer steps actually taken, by name (a GradScaler skips the step of a batch with inf/NaN gradients)."""
    taken = dict.fromkeys(ctx.optimizers, 0)
    for name, opt in ctx.optimizers.items():
        opt.register_step_post_hook(lambda *_, name=name: taken.__setitem__(name, taken[name] + 1))
    return taken


def trained(job, ctx, data) -> dict[str, float]:
    """One epoch through the harness's own loop; its means, checked finite."""
    from library.train import run_epoch

    metrics = run_epoch(job, ctx, data)
    sync(ctx.device)
    assert metrics, "run_epoch took no step"
    bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
    assert not bad, f"non-finite means after {len(job.channels_last_batches)} steps: {bad}"
    return metrics


def scaler_text(ctx) -> str:
    return f"scaler on, scale {ctx.scaler.get_scale():g}" if ctx.scaler.is_enabled() else "scaler off"


def amp_d_steps(device: torch.device, workdir: Path, amp: str = "fp16", images: int = 512) -> str:
    """train.amp=`amp` with model.d_steps=2 through run_epoch: the discriminator's optimizer steps twice per
    harness step, each time through ctx.step (GradScaler.step with fp16)."""
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise Skip(f"{torch.cuda.get_device_name(device)} (compute capability "
                   f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}) has no native bf16")
    job, ctx, data = gpu_harness(device, workdir / f"amp-{amp}", {"train.amp": amp, "model.d_steps": 2}, images)
    if device.type == "cuda":
        assert ctx.amp_dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[amp], f"AMP dtype {ctx.amp_dtype}"
    assert ctx.scaler.is_enabled() == (amp == "fp16"), f"GradScaler enabled={ctx.scaler.is_enabled()} with amp={amp}"
    taken = count_steps(ctx)
    metrics = trained(job, ctx, data)
    steps = len(job.channels_last_batches)
    assert 0 < taken["d"] <= 2 * steps and taken["g"] <= steps, f"{steps} steps, optimizer steps taken {taken}"
    skipped = ""
    if taken["d"] + taken["g"] < 3 * steps:
        skipped = f", {2 * steps - taken['d']} D and {steps - taken['g']} G steps skipped by the scaler (inf/NaN)"
    return (f"{steps} harness steps, D stepped {taken['d']}x, G {taken['g']}x{skipped} ({ctx.amp_dtype or 'fp32'}, "
            f"{scaler_text(ctx)}), loss_d {metrics['loss_d']:.3f}, loss_g {metrics['loss_g']:.3f}")


def channels_last(device: torch.device, workdir: Path, images: int = 256) -> str:
    """train.channels_last=true: the training images on the device, every conv weight (before and after the
    optimizer steps) and each step's batch are channels_last."""
    if device.type != "cuda":
        raise Skip("train.channels_last only applies on GPU")
    job, ctx, data = gpu_harness(device, workdir / "channels-last", {"train.channels_last": True}, images)
    fmt = torch.channels_last
    convs = {f"{k}.{n}": m for k in ctx.models for n, m in ctx.model(k).named_modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))}

    def strided():
        return [n for n, m in convs.items() if not m.weight.is_contiguous(memory_format=fmt)]

    assert data[0].device == device and data[0].is_contiguous(memory_format=fmt), \
        f"training images on {data[0].device} with strides {data[0].stride()}"
    assert convs and not strided(), f"conv weights not channels_last: {strided()}"
    trained(job, ctx, data)
    assert all(job.channels_last_batches), "a step's image batch was not channels_last"
    assert not strided(), f"conv weights no longer channels_last after the steps: {strided()}"
    return (f"images {tuple(data[0].shape)}, {len(convs)} conv weights and {len(job.channels_last_batches)} step "
            f"batches channels_last ({ctx.amp_dtype or 'fp32'})")


def compiled(device: torch.device, workdir: Path, images: int = 512) -> str:
    """train.compile=true: two epochs of the compiled G and D through run_epoch (the first one compiles)."""
    job, ctx, data = gpu_harness(device, workdir / "compile", {"train.compile": True}, images)
    try:
        assert all(hasattr(m, "_orig_mod") for m in ctx.models.values()), "place_model did not compile the models"
        times = []
        for epoch in range(2):
            ctx.epoch = epoch
            start = time.perf_counter()
            trained(job, ctx, data)
            times.append(time.perf_counter() - start)
        steps = len(job.channels_last_batches) // 2
        return (f"2 epochs of {steps} steps: first (compiling) {times[0]:.1f} s, then {1000 * times[1] / steps:.1f} "
                f"ms/step ({ctx.amp_dtype or 'fp32'})")
    finally:
        import torch._dynamo

        torch._dynamo.reset()


def checkpoint_scaler(device: torch.device, workdir: Path, saved: str, resumed: str, images: int = 128) -> str:
    """A checkpoint from a train.amp=`saved` context restored into a train.amp=`resumed` one, under one trial
    config: a train.amp=auto trial requeued onto a GPU where auto picks the other dtype, so the saved GradScaler
    state ({} when disabled) meets a scaler in the other state. Weights and optimizer state must come back
    and training go on."""
    from library.config import to_dict
    from library.train import restore, save_checkpoint

    run_dir = workdir / f"checkpoint-{saved}-{resumed}"
    job, a, data = gpu_harness(device, run_dir, {"train.amp": saved}, images)
    config = {**to_dict(a.cfg), "train.amp": "auto"}  # the trial's own config, the same on both machines
    trained(job, a, data)
    save_checkpoint(a, dict(FRESH), config)
    job_b, b, data_b = gpu_harness(device, run_dir, {"train.amp": resumed}, images)
    state = restore(b, config)
    assert state is not None and state["epoch"] == FRESH["epoch"], f"restore returned {state}"
    for k in a.models:
        want, got = a.model(k).state_dict(), b.model(k).state_dict()
        assert all(torch.equal(want[n].cpu(), got[n].cpu()) for n in want), f"model {k}: weights not restored"
    for k, opt in a.optimizers.items():
        steps = [int(s["step"]) for s in opt.state_dict()["state"].values()]
        back = [int(s["step"]) for s in b.optimizers[k].state_dict()["state"].values()]
        assert steps == back, f"optimizer {k}: Adam steps {steps[:1]} saved, {back[:1]} restored"
    b.epoch = 1
    trained(job_b, b, data_b)
    return f"{saved} ({scaler_text(a)}) -> {resumed}: weights and optimizers restored, an epoch more ({scaler_text(b)})"


def checkpoint_rng_device(device: torch.device, workdir: Path, images: int = 128) -> str:
    """A checkpoint whose CUDA RNG state came from a context on `device`, restored into a context on another
    device index: the rank's noise stream must go on from the saved state on the device it now uses."""
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if count < 2:
        raise Skip(f"needs 2 visible GPUs, {count} visible")
    from library.config import to_dict
    from library.train import restore, save_checkpoint

    other = torch.device("cuda", (device.index + 1) % count)
    run_dir = workdir / "checkpoint-rng"
    try:
        job, a, data = gpu_harness(device, run_dir, {}, images)
        trained(job, a, data)  # draws noise on `device`
        saved = torch.cuda.get_rng_state(device)
        config = to_dict(a.cfg)
        save_checkpoint(a, dict(FRESH), config)
        _, b, _ = gpu_harness(other, run_dir, {}, images)  # reseeds: `other` starts from the fresh seed's state
        assert not torch.equal(torch.cuda.get_rng_state(other), saved), "the saved state equals a fresh one"
        restore(b, config)
        assert torch.equal(torch.cuda.get_rng_state(other), saved), \
            f"{other}'s RNG state after restore is not the one {device} saved"
        return f"the RNG state saved on {device} goes on on {other}"
    finally:
        torch.cuda.set_device(device)


def amp_auto(device: torch.device) -> str:
    """train.amp=auto: bf16 exactly where the GPU has it natively, else fp16 (off on CPU)."""
    from library.train import amp_dtype

    chosen = amp_dtype("auto", device)
    if device.type != "cuda":
        assert chosen is None, f"auto -> {chosen} on CPU"
        return "CPU: AMP off"
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    want = torch.bfloat16 if native else torch.float16
    major, minor = torch.cuda.get_device_capability(device)
    info = (f"{torch.cuda.get_device_name(device)}, compute capability {major}.{minor}, native bf16 {native}: "
            f"auto -> {chosen}")
    assert chosen == want, f"{info}, expected {want}"
    return info


def epoch_time(device: torch.device, workdir: Path, images: int = 4096) -> str:
    """One timed epoch of the 64 px DCGAN (the PathMNIST study's widths) with train.amp=auto, after a short
    warm-up (cudnn autotuning, the allocator)."""
    job, ctx, data = gpu_harness(device, workdir / "epoch", STUDY_PAIR, images)
    trained(job, ctx, [t[:256] for t in data])
    ctx.epoch = 1
    warm = len(job.channels_last_batches)
    start = time.perf_counter()
    trained(job, ctx, data)
    seconds = time.perf_counter() - start
    steps = len(job.channels_last_batches) - warm
    batch = ctx.cfg.train.batch_size
    return (f"{steps * batch} images 3x64x64, batch {batch}, G/D widths 128/64, {ctx.amp_dtype or 'fp32'}: "
            f"{seconds:.2f} s/epoch, {steps * batch / seconds:.0f} images/s, {1000 * seconds / steps:.1f} ms/step")


def outcome(name: str, path) -> str:
    """`PASS|FAIL|SKIP name: detail`; a failure's detail is the traceback's last line and where in the repo."""
    try:
        return f"PASS {name}: {path()}"
    except Skip as e:
        return f"SKIP {name}: {e}"
    except Exception as e:
        inner = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith(str(REPO))]
        where = f" (at {Path(inner[-1].filename).relative_to(REPO)}:{inner[-1].lineno})" if inner else ""
        return f"FAIL {name}: " + f"{type(e).__name__}: {e}".splitlines()[0][:400] + where


def gpu_check(out: Path) -> int:
    """Every path in its own try, one line each, then a summary; written to OUT/gpu.md. The exit code: 0, 1 if
    a path failed, 3 without a GPU."""
    if not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 3
    from library.files import write_text

    started = time.time()
    device = torch.device("cuda", torch.cuda.current_device())
    major, minor = torch.cuda.get_device_capability(device)
    machine = (f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor}, {torch.cuda.device_count()} "
               f"visible), torch {torch.__version__}, CUDA {torch.version.cuda}, {platform.node()}")
    print(f"gpu check: {machine}", flush=True)
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        work = Path(tmp)
        paths = [
            ("amp=auto choice", lambda: amp_auto(device)),
            ("fp16 AMP, d_steps=2", lambda: amp_d_steps(device, work, "fp16")),
            ("bf16 AMP, d_steps=2", lambda: amp_d_steps(device, work, "bf16")),
            ("channels_last", lambda: channels_last(device, work)),
            ("checkpoint fp16 -> amp off", lambda: checkpoint_scaler(device, work, "fp16", "off")),
            ("checkpoint amp off -> fp16", lambda: checkpoint_scaler(device, work, "off", "fp16")),
            ("checkpoint CUDA RNG, other device index", lambda: checkpoint_rng_device(device, work)),
            ("DCGAN 64 px epoch", lambda: epoch_time(device, work)),
            ("torch.compile", lambda: compiled(device, work)),
        ]
        for name, path in paths:
            lines.append(outcome(name, path))
            print(lines[-1], flush=True)
    counts = {k: sum(line.startswith(k) for line in lines) for k in ("PASS", "FAIL", "SKIP")}
    seconds = time.time() - started
    summary = (f"gpu check: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP in {seconds:.0f} s"
               + (" (over the 5-minute budget)" if seconds > 300 else ""))
    print(summary)
    write_text(out / "gpu.md", f"# GPU check ({time.strftime('%Y-%m-%d %H:%M')})\n\n{machine}\n\n"
                               "```\n" + "\n".join([*lines, summary]) + "\n```\n")
    print(f"written to {out}/gpu.md")
    return 1 if counts["FAIL"] else 0


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m library.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller files")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench")
    parser.add_argument("--gpu", action="store_true", help="check the GPU paths instead (needs a GPU; see above)")
    args = parser.parse_args(argv)
    if args.gpu:
        sys.exit(gpu_check(args.out))
    from library.files import write_json, write_text

    started = time.time()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    results = {"machine": f"{platform.node()}, {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}"}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        stages = [
            ("step", lambda: step_time(20 if args.quick else 40, 64, 1 if args.quick else 7, work)),
            ("startup", lambda: startup(1 if args.quick else 3, work)),
            ("evaluation", lambda: evaluation(work)),
            ("loaders", lambda: loaders(work, 6000 if args.quick else 60000, results["step"]["images_per_s"])),
            ("sweep", lambda: sweep_throughput(work)),
        ]
        for name, stage in stages:
            t = time.time()
            results[name] = stage()
            print(f"bench: {name} done in {time.time() - t:.0f} s", flush=True)
    results["bench_s"] = time.time() - started
    text = markdown(results)
    print(text)
    write_json(args.out / "bench.json", results)
    write_text(args.out / "bench.md", text)
    print(f"written to {args.out}/bench.json and bench.md")


if __name__ == "__main__":
    main()
