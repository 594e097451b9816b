"""`python -m library.bench --gpu`: refuses plainly without a GPU; its paths run on CPU where they mean something."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from library.bench import gpu

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_without_a_gpu_exits_3_with_a_one_line_message(tmp_path):
    done = subprocess.run([sys.executable, "-m", "library.bench", "--gpu", f"--out={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.strip() == gpu.NO_GPU
    assert "srun --gpus=1 python -m library.bench --gpu" in gpu.NO_GPU
    assert not (tmp_path / "gpu.md").exists()


def test_fp16_d_steps_2_cpu_stand_in_for_the_gpu_path_steps_d_twice_per_run_epoch_step(tmp_path):
    """The GPU path's function on CPU: make_context turns AMP off (amp dtype None), and the stand-in is an enabled
    torch.amp.GradScaler("cpu"), so the discriminator's two GradScaler steps per harness step go through run_epoch."""
    detail = gpu.amp_d_steps(torch.device("cpu"), tmp_path, "fp16", images=128)
    assert detail.startswith("2 harness steps, D stepped 4x, G 2x (fp32, scaler on"), detail
