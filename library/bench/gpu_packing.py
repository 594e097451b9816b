"""`python -m library.bench --gpu-packing`: DCGAN-MNIST trials per GPU-hour when 1, 2, 4 or 8 trials share one GPU
(--gpus-per-trial 1, 0.5, 0.25, 0.125; Ray's fractional GPUs through the local backend). One small DCGAN trial uses a
few percent of a large GPU: sharing should multiply trials per GPU-hour until the GPU or the CPUs feeding it are
full. 8 trials of 2 epochs on the embedded mnist5k per setting, on GPU 0 alone. Writes results/bench/gpu_packing.md;
exit code 3 without a GPU."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from library.bench.gpu import NO_GPU
from library.files import write_text

SHARES = (1, 2, 4, 8)
TRIALS = 8
SWEEP_FILE = """from library.driver import main
from library.sweep import Sweep
main(Sweep(name={name!r}, job="gan", base={base!r}, grid={{"train.seed": list(range({trials}))}}))
"""
BASE = {"data.name": "mnist5k", "data.image_size": 32, "train.epochs": 2, "train.batch_size": 64,
        "eval.num_samples": 1000, "eval.final_num_samples": 1000}


def trials_per_gpu_hour(work: Path, share: int) -> dict:
    name = f"share{share}"
    (work / f"{name}.py").write_text(SWEEP_FILE.format(name=name, base=BASE, trials=TRIALS))
    started = time.time()
    out = subprocess.run([sys.executable, f"{name}.py", "--backend=local", f"--gpus-per-trial={1 / share}"],
                         cwd=work, capture_output=True, text=True, timeout=3600,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": "0", "WANDB_MODE": "disabled"})
    wall = time.time() - started
    if out.returncode:
        raise RuntimeError(f"{name}: {out.stdout[-2000:]}{out.stderr[-2000:]}")
    return {"share": share, "wall_s": wall, "per_gpu_hour": TRIALS * 3600 / wall}


def gpu_packing(out: Path, work: Path) -> int:
    if not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 3
    rows = [trials_per_gpu_hour(work, share) for share in SHARES]
    base = rows[0]["per_gpu_hour"]
    lines = [f"# Trials per GPU-hour, {TRIALS} DCGAN-MNIST trials ({BASE['train.epochs']} epochs, 32 px) per row",
             f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPUs", "",
             "| trials per GPU | --gpus-per-trial | wall s | trials per GPU-hour | vs 1 per GPU |", "|---|---|---|---|---|"]
    lines += [f"| {r['share']} | {1 / r['share']:g} | {r['wall_s']:.0f} | {r['per_gpu_hour']:.0f} | "
              f"{r['per_gpu_hour'] / base:.2f}x |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(out / "gpu_packing.md", text)
    return 0
