import os
import shutil
import subprocess
from pathlib import Path

import pytest

# Tests never talk to W&B's servers, even on a machine where someone is logged in.
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"


@pytest.fixture(scope="session")
def cluster():
    """The one-node Slurm of slurm/cluster.sh, started if needed (CI always has it)."""
    if shutil.which("sbatch") is None and not os.environ.get("CI"):
        pytest.skip("no Slurm here: start one with `bash slurm/cluster.sh up`")
    script = Path(__file__).resolve().parents[1] / "slurm/cluster.sh"
    up = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
