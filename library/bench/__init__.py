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

`--multinode` instead times the distributed paths on the dev cluster (`slurm/cluster.sh up --nodes=3`): a ray-slurm
sweep on 2 nodes (sbatch to first trial step, wall time) and a DDP trial with its ranks on 2 nodes vs 1 (step time
ratio). Writes results/bench/multinode.md.

`--scale` instead runs random searches of 10, 100 and 1,000 tiny trials on the dev cluster, one trial per task and
packed (library.bench.scale), and `--gpu-packing` measures trials per GPU-hour with 1-8 trials sharing a GPU
(library.bench.gpu_packing; needs a GPU).
"""
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a timing ends when the work does."""
    if device.type == "cuda":
        torch.cuda.synchronize()
