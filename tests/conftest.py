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
    """A Slurm controller answers (the dev cluster of slurm/cluster.sh, or a real one)."""
    if shutil.which("scontrol") is None:
        return False
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return ping.returncode == 0 and " is UP" in ping.stdout


NODES = 3
"""CPU nodes of the dev cluster the tests start (slurm/cluster.sh up --nodes=3): the multi-node tests need them,
and every other Slurm test then meets tasks spread over nodes, as on a real cluster."""


def cpu_nodes() -> list[str]:
    """The nodes of the default partition, as sinfo lists them."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %P"], capture_output=True, text=True, timeout=60).stdout
    return sorted({line.split()[0] for line in out.splitlines() if line.endswith("*")})


def start_cluster() -> None:
    up = subprocess.run(["bash", str(CLUSTER_SH), "up", f"--nodes={NODES}"], capture_output=True, text=True,
                        timeout=900)
    assert up.returncode == 0, f"`bash slurm/cluster.sh up` failed:\n{up.stdout[-2000:]}{up.stderr[-2000:]}"


@pytest.fixture(scope="session")
def cluster():
    """The Slurm of slurm/cluster.sh: used where it runs; installed and started only when allowed."""
    if slurm_running():
        return
    if not MAY_INSTALL:
        pytest.skip(f"no Slurm cluster runs here. Start the dev cluster with `sudo bash slurm/cluster.sh up "
                    f"--nodes={NODES}` (it installs Slurm and MariaDB through apt the first time), or let the tests "
                    "install and start it: LIBRARY_TEST_INSTALL=1 python -m pytest (as root)")
    start_cluster()


@pytest.fixture(scope="session")
def three_nodes(cluster) -> list[str]:
    """The names of the cluster's (at least) three CPU nodes."""
    nodes = cpu_nodes()
    if len(nodes) < NODES:
        if not MAY_INSTALL:
            pytest.skip(f"the running Slurm cluster has {len(nodes)} CPU node(s) ({', '.join(nodes)}); the multi-node "
                        f"tests need {NODES}: `sudo bash slurm/cluster.sh up --nodes={NODES}`")
        start_cluster()
        nodes = cpu_nodes()
    assert len(nodes) >= NODES, nodes
    return nodes
