"""slurm/cluster.sh brings up a real Slurm (slurmctld, one slurmd per node, slurmdbd + mariadb, munge) with the
limits that slurm/README.md promises. Plain sbatch/sacct here; the product's backend is tested in test_slurm.py."""
import os
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]  # conftest's: runs, or skipped saying how
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="`bash slurm/cluster.sh up` needs root")

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SH = ROOT / "slurm" / "cluster.sh"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE"}


def cluster_sh(command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER_SH), command], capture_output=True, text=True, timeout=timeout)


def sbatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, timeout=30)


def submit(*args: str) -> str:
    r = sbatch(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().split(";")[0]


def wait_sacct(job: str, tasks: int, timeout: float = 60) -> dict[str, str]:
    """JobID -> State of every task of `job` once all `tasks` of them are finished, as sacct reports them."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        out = subprocess.run(["sacct", "-n", "-P", "-X", "-j", job, "-o", "JobID,State"],
                             capture_output=True, text=True, timeout=30).stdout
        states = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
        states = {k: v.split()[0] for k, v in states.items()}  # "CANCELLED by 0" -> "CANCELLED"
        if len(states) == tasks and set(states.values()) <= TERMINAL:
            return states
        time.sleep(0.5)
    raise AssertionError(f"job {job} did not finish in {timeout} s; sacct says {states}")


def test_array_job_runs_every_task_and_sacct_reports_it(tmp_path):
    job = submit("--array=0-2", f"--chdir={tmp_path}", "--output=slurm-%A_%a.out", "--cpus-per-task=1",
                 "--mem=100M", "--time=1", "--wrap", "echo $SLURM_ARRAY_TASK_ID > out_$SLURM_ARRAY_TASK_ID")
    states = wait_sacct(job, 3)
    assert states == {f"{job}_{i}": "COMPLETED" for i in range(3)}
    for i in range(3):
        assert (tmp_path / f"out_{i}").read_text().strip() == str(i)


def test_one_cpu_tasks_run_side_by_side(tmp_path):
    """CR_Core_Memory on a node with >= 2 CPUs: two 1-CPU tasks overlap in time (needs the node otherwise idle)."""
    job = submit("--array=0-1", f"--chdir={tmp_path}", "--output=/dev/null", "--cpus-per-task=1", "--mem=100M",
                 "--time=1", "--wrap",
                 "i=$SLURM_ARRAY_TASK_ID; date +%s.%N > start_$i; sleep 3; date +%s.%N > end_$i")
    assert set(wait_sacct(job, 2).values()) == {"COMPLETED"}
    starts = [float((tmp_path / f"start_{i}").read_text()) for i in range(2)]
    ends = [float((tmp_path / f"end_{i}").read_text()) for i in range(2)]
    assert max(starts) < min(ends), f"the tasks ran one after the other: starts {starts}, ends {ends}"


@pytest.mark.parametrize("args, message", [
    (["--partition=short", "--time=10"], "time limit"),       # short: MaxTime=5, EnforcePartLimits=ALL
    (["--gres=gpu:1"], "node configuration"),                 # no GPUs in partition debug
    (["--partition=gpu", "--gres=gpu:3"], "node configuration"),  # fake gres: gpu1 has 2
    (["--partition=nosuch"], "invalid partition"),
    (["--account=nosuch"], "invalid account"),                # AccountingStorageEnforce=associations
    (["--array=0-1001"], "array"),                            # MaxArraySize=1001: indexes 0..1000
], ids=["time-over-partition-limit", "gpu", "gpus-over-fake-gres", "partition", "account", "array-too-big"])
def test_bad_submissions_are_rejected_at_sbatch(tmp_path, args, message):
    r = sbatch(f"--chdir={tmp_path}", "--output=/dev/null", *args, "--wrap", "true")
    assert r.returncode != 0, f"sbatch {args} was accepted as job {r.stdout.strip()}"
    assert message in r.stderr.lower(), r.stderr


def test_limits_as_documented(tmp_path):
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    assert "MaxArraySize            = 1001" in config
    assert "accounting_storage/slurmdbd" in config
    parts = subprocess.run(["sinfo", "-h", "-o", "%P %l"], capture_output=True, text=True, timeout=30).stdout.split()
    assert parts == ["debug*", "1:00:00", "short", "5:00", "gpu", "1:00:00"]
    # The account the README names for trying `slurm_account` is usable.
    job = submit("--account=lab", "--partition=short", "--time=5", f"--chdir={tmp_path}", "--output=/dev/null",
                 "--mem=100M", "--wrap", "true")
    assert wait_sacct(job, 1) == {job: "COMPLETED"}


@ROOT_ONLY
def test_fake_gres_gpu_requests_get_their_own_devices_in_cuda_visible_devices(tmp_path):
    # Stand-in GPUs (character devices, nothing behind them): what Slurm hands out, not what torch can use.
    job = submit("--partition=gpu", "--gres=gpu:2", f"--chdir={tmp_path}", "--output=out", "--mem=100M", "--wrap",
                 "hostname; printenv CUDA_VISIBLE_DEVICES")
    assert wait_sacct(job, 1) == {job: "COMPLETED"}
    assert (tmp_path / "out").read_text().split() == ["gpu1", "0,1"]


def test_each_node_is_its_own_host_at_its_own_loopback_address(tmp_path):
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %o"], capture_output=True, text=True).stdout.split("\n")
    addresses = dict(line.split() for line in nodes if line.strip())
    assert len(set(addresses.values())) == len(addresses) >= 2, addresses
    assert all(a.startswith("127.0.0.") for a in addresses.values()), addresses  # loopback only
    job = submit(f"--nodes={len(addresses) - 1}", f"--chdir={tmp_path}", "--output=out", "--mem=100M", "--wrap",
                 "srun hostname")
    assert wait_sacct(job, 1) == {job: "COMPLETED"}
    assert sorted((tmp_path / "out").read_text().split()) == sorted(n for n in addresses if n.startswith("node"))


def test_up_again_restarts_nothing_and_status_is_ok():
    up = cluster_sh("up", timeout=60)
    assert up.returncode == 0, up.stdout + up.stderr
    # A second `up` on a running cluster keeps every daemon (jobs in flight survive it) and installs nothing.
    # Without --nodes it keeps the nodes it has (three, as the tests start it).
    for line in ("packages: installed", "(unchanged)", "munged: running", "mariadb: running", "slurmdbd: running",
                 "slurmctld: running", "slurmd of node1: running", "slurmd of node3: running", "slurmd of gpu1: running"):
        assert line in up.stdout, up.stdout
    assert "starting" not in up.stdout and "restarting" not in up.stdout and "installing" not in up.stdout
    status = cluster_sh("status", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "status: up" in status.stdout


@ROOT_ONLY
def test_up_refuses_to_replace_a_slurm_conf_it_did_not_write(tmp_path):
    # On a real Slurm host, run as root, `up` must not overwrite the site's configuration and restart its daemons.
    # The same script, pointed at a folder holding a site's slurm.conf instead of /etc/slurm.
    site_conf = "ClusterName=production\nSlurmctldHost=head01\n"
    (tmp_path / "slurm.conf").write_text(site_conf)
    script = tmp_path / "cluster.sh"
    script.write_text(CLUSTER_SH.read_text().replace("ETC=/etc/slurm\n", f"ETC={tmp_path}\n", 1))
    r = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "was not written by this script" in r.stdout and "Nothing was changed" in r.stdout
    assert (tmp_path / "slurm.conf").read_text() == site_conf and not (tmp_path / "slurmdbd.conf").exists()


def test_slurm_forgets_finished_jobs_within_seconds_as_configured(tmp_path):
    # MinJobAge 5 s: the purged state that real sites reach after 300 s (squeue: "Invalid job id specified").
    job = submit(f"--chdir={tmp_path}", "--output=/dev/null", "--wrap", "true")
    deadline = time.monotonic() + 120
    while subprocess.run(["squeue", "-h", "-j", job], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "Slurm still lists the finished job after 120 s"
        time.sleep(1)
    assert wait_sacct(job, 1) == {job: "COMPLETED"}  # accounting keeps it
