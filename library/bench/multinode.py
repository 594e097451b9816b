"""`python -m library.bench --multinode`: the distributed paths timed on the dev cluster's nodes
(`sudo bash slurm/cluster.sh up --nodes=3`): a ray-slurm sweep on 2 nodes (sbatch to first trial step, wall time)
and one DDP DCGAN trial with its 2 ranks on 2 nodes vs both on one node (training step time, ratio).

The dev cluster's nodes share one machine's cores and talk over loopback: the ratio shows what spreading costs
in our code paths (Gloo across two raylets, two Ray nodes' start-up), not a real network's cost."""
from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from library.files import read_json
from library.trial import STATUS

SWEEP_FILE = """from library.driver import main
from library.sweep import Sweep
main(Sweep(name={name!r}, job="gan", base={base!r}, grid={grid!r}))
"""
TINY = {"data.limit": 320, "eval.num_samples": 200, "eval.final_num_samples": 200, "train.epochs": 2}
DDP = {"data.limit": 2048, "train.batch_size": 64, "train.epochs": 3, "eval.every": 3, "eval.num_samples": 200,
       "eval.final_num_samples": 200}
"""Epochs 1 and 2 train without evaluating, so their elapsed times differ by one epoch of training steps."""


def run_sweep(work: Path, name: str, base: dict, grid: dict, *args: str,
              cpus_per_node: int = 1) -> tuple[float, Path]:
    """Run a sweep file on ray-slurm from `work`; (wall seconds, its run folder)."""
    folder = work / name
    folder.mkdir(parents=True)
    (folder / "site.toml").write_text(f'slurm_partition = "debug"\ntimeout_min = 20\nray_cpus_per_node = {cpus_per_node}\n')
    (folder / f"{name}.py").write_text(SWEEP_FILE.format(name=name, base=base, grid=grid))
    started = time.time()
    out = subprocess.run([sys.executable, f"{name}.py", "--backend=ray-slurm", "--site=site.toml", *args],
                         cwd=folder, capture_output=True, text=True, timeout=1200)
    if out.returncode:
        raise RuntimeError(f"{name}: {out.stdout[-2000:]}{out.stderr[-2000:]}")
    return time.time() - started, folder / "runs" / name


def submitted_at(run_root: Path) -> float:
    (job,) = set(read_json(run_root / "slurm_jobs.json").values())
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "Submit"], capture_output=True, text=True)
    return datetime.fromisoformat(out.stdout.split()[0]).timestamp()


def step_time(run_root: Path) -> tuple[float, list[str]]:
    """Seconds per training step of the sweep's one trial (epoch 2 minus epoch 1), and its ranks' hosts."""
    (status,) = [read_json(p) for p in run_root.glob(f"*/{STATUS}")]
    history = read_json(next(run_root.glob("*/metrics.json")))
    steps = DDP["data.limit"] // DDP["train.batch_size"]
    return (history[1]["elapsed_s"] - history[0]["elapsed_s"]) / steps, status["hosts"]


def multinode(work: Path) -> dict:
    wall, root = run_sweep(work, "two_nodes", TINY, {"optim.beta1": [0.3, 0.5, 0.7, 0.9]}, "--nodes=2")
    statuses = [read_json(p) for p in root.glob(f"*/{STATUS}")]
    first_step = min(s["first_step_at"] for s in statuses) - submitted_at(root)
    hosts = sorted({h for s in statuses for h in s["hosts"]})
    _, spread = run_sweep(work, "ddp_spread", DDP, {"optim.beta1": [0.5]}, "--nodes=2", "--workers-per-trial=2",
                          "--placement=spread")
    _, packed = run_sweep(work, "ddp_packed", DDP, {"optim.beta1": [0.5]}, "--nodes=1", "--workers-per-trial=2",
                          cpus_per_node=2)
    (spread_s, spread_hosts), (packed_s, packed_hosts) = step_time(spread), step_time(packed)
    return {"sweep_wall_s": wall, "sweep_first_step_s": first_step, "sweep_hosts": hosts,
            "ddp_spread_step_s": spread_s, "ddp_spread_hosts": spread_hosts,
            "ddp_packed_step_s": packed_s, "ddp_packed_hosts": packed_hosts, "ratio": spread_s / packed_s}


def markdown(r: dict) -> str:
    return "\n".join([
        "# Multi-node figures (dev cluster: nodes on one machine, loopback)", "",
        f"- ray-slurm, 4 tiny GAN trials (2 epochs each) on 2 nodes ({', '.join(r['sweep_hosts'])}, 1 CPU each): "
        f"sbatch to first trial step {r['sweep_first_step_s']:.1f} s, wall time {r['sweep_wall_s']:.1f} s "
        "(from the command, login-node checks included)",
        f"- DDP DCGAN (28 px, batch 64 = 2 ranks x 32), training step: ranks on {' + '.join(r['ddp_spread_hosts'])} "
        f"{1000 * r['ddp_spread_step_s']:.1f} ms, both on {r['ddp_packed_hosts'][0]} "
        f"{1000 * r['ddp_packed_step_s']:.1f} ms: ratio 2 nodes / 1 node = {r['ratio']:.2f}", "",
    ])
