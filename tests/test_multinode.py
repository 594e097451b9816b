"""Beyond one node, on the dev cluster's three nodes (`slurm/cluster.sh up --nodes=3`: one slurmd per node, each
in its own UTS namespace at its own loopback address): array tasks spread over nodes, a Ray cluster of two nodes
inside one job, DDP ranks on different nodes, and nodes lost mid-trial. The nodes share this machine's disk and
cores, so "another node" is another hostname, address, slurmd and Ray raylet, not other hardware."""
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from helpers import SITE, SLURM_TINY, assert_same_run, started_again, sweep_cli, wait_for, write_site, write_sweep
from library.files import read_json
from library.trial import STATUS

pytestmark = [pytest.mark.slurm, pytest.mark.multinode]

CLUSTER_SH = Path(__file__).resolve().parents[1] / "slurm/cluster.sh"
BASE = SLURM_TINY
"""About 1-2 s per epoch per trial here."""


def node_lists(job: str) -> dict[str, str]:
    """JobID -> the node(s) it ran on last, as sacct reports them."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "JobID,NodeList"], capture_output=True,
                         text=True, timeout=30).stdout
    return dict(line.split("|") for line in out.splitlines() if "|" in line)


def running_on(job: str) -> list[str]:
    """The nodes of a running job, from squeue: the live state (sacct's NodeList can lag a job's start)."""
    def nodes() -> str:
        return subprocess.run(["squeue", "-h", "-j", job, "-t", "RUNNING", "-o", "%N"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
    wait_for(lambda: nodes(), 120, f"job {job} to run")
    return subprocess.run(["scontrol", "show", "hostnames", nodes()], capture_output=True, text=True).stdout.split()


def statuses(run_root: Path) -> dict[str, dict]:
    return {p.parent.name: read_json(p) for p in run_root.glob(f"*/{STATUS}")}


@pytest.fixture
def lose_node(three_nodes):
    """kill-node NAME for a test; every node is back up (`cluster.sh up`) after it, whatever happened."""
    lost = []

    def kill(node: str) -> None:
        out = subprocess.run(["bash", str(CLUSTER_SH), "kill-node", node], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        lost.append(node)

    yield kill
    if lost:
        up = subprocess.run(["bash", str(CLUSTER_SH), "up", f"--nodes={len(three_nodes)}"], capture_output=True,
                            text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr


def test_an_array_sweep_spreads_over_nodes_and_its_rows_equal_a_local_run(three_nodes, tmp_path):
    grid = {"optim.beta1": [0.3, 0.5, 0.7], "optim.beta2": [0.9, 0.999]}
    local = tmp_path / "local"
    local.mkdir()
    sweep_cli(write_sweep(local, grid, name="spread", base=BASE))
    write_site(tmp_path)
    sweep_cli(write_sweep(tmp_path, grid, name="spread", base=BASE), backend="slurm")

    tasks = read_json(tmp_path / "runs/spread/slurm_jobs.json")
    (array,) = {job.split("_")[0] for job in tasks.values()}
    nodes = node_lists(array)
    assert len(nodes) == 6 and len(set(nodes.values())) >= 2, nodes
    ran_on = {trial: s["hosts"] for trial, s in statuses(tmp_path / "runs/spread").items()}
    assert {trial: [nodes[job]] for trial, job in tasks.items()} == ran_on  # what sacct says is where it ran
    for trial in tasks:
        assert_same_run(tmp_path / "runs/spread" / trial, local / "runs/spread" / trial)


def test_ray_slurm_on_two_nodes_runs_trials_on_both(three_nodes, tmp_path):
    path = write_sweep(tmp_path, {"optim.beta1": [0.3, 0.5, 0.7, 0.9]}, name="ray2", base=BASE)
    write_site(tmp_path, SITE + "ray_cpus_per_node = 1\n")  # 1 trial per node at a time: both nodes must work
    sweep_cli(path, "--nodes=2", backend="ray-slurm")

    table = pd.read_csv(tmp_path / "results/ray2/trials.csv")
    assert len(table) == 4 and set(table.status) == {"completed"}, table[["trial", "status", "reason"]]
    (job,) = set(read_json(tmp_path / "runs/ray2/slurm_jobs.json").values())
    allocated = subprocess.run(["scontrol", "show", "hostnames", node_lists(job)[job]], capture_output=True,
                               text=True).stdout.split()
    log = (tmp_path / f"runs/ray2/ray_slurm/{job}.out").read_text()
    # Both Ray nodes joined (the second one with the job's auth token) before the driver counted the CPUs...
    assert "Ray cluster: 2 node(s)" in log, log[-3000:]
    # ...each at its own node's address, and the trials ran on both.
    assert {h for s in statuses(tmp_path / "runs/ray2").values() for h in s["hosts"]} == set(allocated), allocated


def test_ddp_ranks_on_two_nodes_train_exactly_as_on_one(three_nodes, tmp_path):
    grid = {"optim.beta1": [0.5]}
    one = tmp_path / "one"
    one.mkdir()
    sweep_cli(write_sweep(one, grid, name="ddp", base=BASE), "--workers-per-trial=2")
    path = write_sweep(tmp_path, grid, name="ddp", base=BASE)
    write_site(tmp_path, SITE + "ray_cpus_per_node = 1\n")
    sweep_cli(path, "--nodes=2", "--workers-per-trial=2", "--placement=spread", backend="ray-slurm")

    ((trial, spread),) = statuses(tmp_path / "runs/ddp").items()
    ((_, packed),) = statuses(one / "runs/ddp").items()
    assert len(set(spread["hosts"])) == 2, spread["hosts"]  # rank 0 and rank 1 on different nodes
    assert len(set(packed["hosts"])) == 1, packed["hosts"]
    assert spread["final"]["ddp_weight_spread"] == 0
    assert_same_run(tmp_path / "runs/ddp" / trial, one / "runs/ddp" / trial)


def test_a_node_lost_mid_trial_requeues_the_task_elsewhere_and_it_resumes_from_its_checkpoint(lose_node, tmp_path):
    grid = {"optim.beta1": [0.5]}
    base = {**BASE, "train.epochs": 8}
    reference = tmp_path / "reference"
    reference.mkdir()
    sweep_cli(write_sweep(reference, grid, name="lost", base=base))
    write_site(tmp_path)
    path = write_sweep(tmp_path, grid, name="lost", base=base)
    sweep_cli(path, "--detach", backend="slurm")
    (job,) = read_json(tmp_path / "runs/lost/slurm_jobs.json").values()
    wait_for(lambda: any(s.get("epoch", 0) >= 2 for s in statuses(tmp_path / "runs/lost").values()), 240, "epoch 2")
    (node,) = running_on(job)

    lose_node(node)  # slurmd and the task die with nothing saved; Slurm sets the node DOWN and requeues the task
    wait_for(lambda: "Restarts=1" in subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                                    text=True).stdout, 60, "the requeue")
    wait_for(lambda: started_again(job), 180, "the requeued task to start")
    sweep_cli(path, backend="slurm")  # follows until done; submits nothing new

    ((trial, status),) = statuses(tmp_path / "runs/lost").items()
    assert status["status"] == "completed" and status["resumed_from_epoch"] >= 2, status
    assert node_lists(job)[job] != node and status["hosts"] != [node]
    assert_same_run(tmp_path / "runs/lost" / trial, reference / "runs/lost" / trial)


def test_ray_slurm_losing_a_worker_node_retries_its_trials_from_their_checkpoints(lose_node, tmp_path):
    base = {**BASE, "train.epochs": 6}
    path = write_sweep(tmp_path, {"optim.beta1": [0.3, 0.5, 0.7, 0.9]}, name="raylost", base=base)
    write_site(tmp_path, SITE + "ray_cpus_per_node = 1\n")
    sweep_cli(path, "--nodes=2", "--detach", backend="ray-slurm")
    (job,) = set(read_json(tmp_path / "runs/raylost/slurm_jobs.json").values())
    head, worker = running_on(job)

    def on_worker_with_a_checkpoint() -> bool:
        return any(s["hosts"] == [worker] and s.get("epoch", 0) >= 1 and s["status"] == "running"
                   for s in statuses(tmp_path / "runs/raylost").values())

    wait_for(on_worker_with_a_checkpoint, 300, f"a trial past epoch 1 on {worker}")
    lost = {t for t, s in statuses(tmp_path / "runs/raylost").items() if s["hosts"] == [worker] and s["status"] == "running"}
    lose_node(worker)
    sweep_cli(path, "--nodes=2", backend="ray-slurm", timeout=600)  # follows until the job ends

    table = pd.read_csv(tmp_path / "results/raylost/trials.csv").set_index("trial")
    assert len(table) == 4 and set(table.status) == {"completed"}, table[["status", "reason"]]
    after = statuses(tmp_path / "runs/raylost")
    for trial in lost:  # ran again on the node left, from the checkpoint the lost node had written
        assert after[trial]["hosts"] == [head] and after[trial]["resumed_from_epoch"] >= 1, after[trial]
