"""`python -m library.bench --gpu`: the GPU paths (AMP, channels_last, torch.compile, checkpoints across scaler
states and device indices), each checked through the harness's own functions, one `PASS|FAIL|SKIP` line each."""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch._dynamo

from jobs.gan import GANConfig, GANJob
from library.bench import REPO, sync
from library.checkpoint import restore, save_checkpoint, seed_everything
from library.config import parse, to_dict
from library.data import DATASETS
from library.files import write_text
from library.train import amp_dtype, make_context, place_model, run_epoch, to_device

NO_GPU = "no CUDA device visible: run this on a GPU node (e.g. `srun --gpus=1 python -m library.bench --gpu`)"
SYNTHETIC = {"data.name": "pathmnist", "data.image_size": 64, "train.batch_size": 64}  # PathMNIST's 3 x 64 x 64
STUDY_PAIR = {"model.g_width": 128, "model.d_width": 64}  # sweeps/pathmnist_dcgan.py's 64 px DCGAN
FRESH = {"epoch": 1, "history": [], "best": None, "elapsed_s": 0.0}  # the harness state a checkpoint carries


class Skip(Exception):
    """A path that does not apply to this machine; the message says why."""


class SyntheticGAN(GANJob):
    """jobs/gan.py's GANJob on `images` random uint8 images of the dataset's shape: nothing read, nothing scored.
    Records whether each step's image batch was channels_last."""

    def __init__(self, cfg: GANConfig, images: int) -> None:
        super().__init__(cfg)
        self.num_images = images
        self.channels_last_batches: list[bool] = []

    def load_data(self):
        spec, size = DATASETS[self.cfg.data.name], self.cfg.data.image_size
        gen = torch.Generator().manual_seed(self.cfg.train.seed)
        return [torch.randint(0, 256, (self.num_images, spec.channels, size, size), dtype=torch.uint8, generator=gen),
                torch.randint(0, max(spec.num_classes, 1), (self.num_images,), generator=gen)]

    def step(self, batch, ctx):
        self.channels_last_batches.append(batch[0].is_contiguous(memory_format=torch.channels_last))
        return super().step(batch, ctx)

    def evaluate(self, ctx, final):
        return {}


def gpu_harness(device: torch.device, run_dir: Path, overrides: dict, images: int):
    """(job, ctx, data) set up as library.train's train_loop sets them up, on `device` (make_context takes
    cuda:$LOCAL_RANK). On CPU, make_context turns AMP off; there train.amp=fp16 gets an enabled CPU GradScaler
    as the stand-in for the GPU's, so the scaler's paths run (in fp32) where tests run."""
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
    seed_everything(cfg.train.seed)
    job = SyntheticGAN(cfg, images)
    data = [to_device(t, ctx) for t in job.load_data()]
    models, ctx.optimizers = job.build(ctx)
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
        torch._dynamo.reset()  # the next path's models compile afresh, or not at all


def checkpoint_scaler(device: torch.device, workdir: Path, saved: str, resumed: str, images: int = 128) -> str:
    """A checkpoint from a train.amp=`saved` context restored into a train.amp=`resumed` one, under one trial
    config: a train.amp=auto trial requeued onto a GPU where auto picks the other dtype, so the saved GradScaler
    state ({} when disabled) meets a scaler in the other state. Weights and optimizer state must come back
    and training go on."""
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
