import os
import shutil
import subprocess
from pathlib import Path

import pytest

# Tests never talk to W&B's servers, even on a machine where someone is logged in.
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"

CLUSTER_SH = Path(__file__).resolve().parents[1] / "slurm/cluster.sh"
MAY_INSTALL = (os.environ.get("CI", "").lower() in ("1", "true")
               or os.environ.get("LIBRARY_TEST_INSTALL", "").lower() in ("1", "true"))
"""Whether the tests may change this machine (install Slurm and MariaDB through apt, start daemons): only in CI
(CI=true) or when asked (LIBRARY_TEST_INSTALL=1). Otherwise a test that needs them is skipped, saying how."""


def slurm_running() -> bool:
    """A Slurm controller answers (the one-node cluster of slurm/cluster.sh, or a real one)."""
    if shutil.which("scontrol") is None:
        return False
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return ping.returncode == 0 and " is UP" in ping.stdout


@pytest.fixture(scope="session")
def cluster():
    """The one-node Slurm of slurm/cluster.sh: used where it runs; installed and started only when allowed."""
    if slurm_running():
        return
    if not MAY_INSTALL:
        pytest.skip("no Slurm cluster runs here. Start the one-node cluster with `sudo bash slurm/cluster.sh up` "
                    "(it installs Slurm and MariaDB through apt the first time), or let the tests install and "
                    "start it: LIBRARY_TEST_INSTALL=1 python -m pytest (as root)")
    up = subprocess.run(["bash", str(CLUSTER_SH), "up"], capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, f"`bash slurm/cluster.sh up` failed:\n{up.stdout[-2000:]}{up.stderr[-2000:]}"
