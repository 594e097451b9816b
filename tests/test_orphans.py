"""A local sweep's private Ray does not outlive its driver: not after kill -9, not after a normal end.

Real Ray, real sweeps (written by helpers.write_sweep, as in tests/test_sweep.py). Only this sweep's processes are looked at and killed.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import wait_for, write_sweep


def start(sweep_file: Path, folder: Path) -> subprocess.Popen:
    with open(folder / "driver.log", "wb") as log:
        return subprocess.Popen([sys.executable, str(sweep_file), "--backend=local"], cwd=folder, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def processes() -> dict[int, tuple[str, int, int, str]]:
    """pid -> (state, parent pid, start time, command line) of every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text(errors="replace")
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(name)] = (fields[0], int(fields[1]), int(fields[19]), cmd.strip())
    return table


def descendants(root: int, table: dict) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int, start: int) -> bool:
    """Still that process, and not a zombie waiting for a parent (or an init) to collect it."""
    now = processes().get(pid)
    return now is not None and now[2] == start and now[0] not in "ZX"


def reaper_of(driver: int, table: dict) -> list[int]:
    return [pid for pid, (state, _, _, cmd) in table.items()
            if "library/launch/reaper.py" in cmd and cmd.split()[-2:-1] == [str(driver)] and state not in "ZX"]


def test_kill_9_of_the_driver_ends_every_process_of_its_ray_within_seconds(tmp_path):
    proc = start(write_sweep(tmp_path, base={"train.epochs": 1000}), tmp_path)  # still training when killed
    try:
        wait_for(lambda: list(tmp_path.glob("runs/tiny/*/status.json")) or proc.poll() is not None, 480)
        assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        time.sleep(1)
        table = processes()
        marker = f"/tmp/ray_{os.getuid()}_{proc.pid}/"
        (reaper,) = reaper_of(proc.pid, table)
        # Everything Ray runs descends from the driver while it lives: gcs_server and raylet are its children, the
        # agents and the workers (trial actors, idle workers) the raylet's. The set also holds what the driver
        # started beside Ray (the shared wandb-core): nothing of the sweep may outlive it.
        ray = {pid: table[pid] for pid in descendants(proc.pid, table) - {reaper} if table[pid][0] not in "ZX"}
        commands = " | ".join(cmd for _, _, _, cmd in ray.values())
        for part in ("gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::ImplicitFunc"):
            assert part in commands, commands
        # The marker (the private temp dir) names Ray's own daemons only; the reaper finds the rest by descent.
        with_marker = {pid for pid, (_, _, _, cmd) in table.items() if marker in cmd}
        assert with_marker and with_marker <= set(ray), (with_marker, commands)
        assert not any(marker in cmd for _, _, _, cmd in ray.values() if cmd.startswith("ray::"))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    took = wait_for(lambda: not any(alive(pid, start) for pid, (_, _, start, _) in ray.items()), 15)
    print(f"\n{len(ray)} processes of the killed sweep's Ray all gone {took:.1f}s after kill -9 of the driver")
    wait_for(lambda: not alive(reaper, table[reaper][2]), 5)  # its job done, the reaper is gone too
    assert "reaper: driver" in (tmp_path / "runs/tiny/ray.log").read_text()
    shutil.rmtree(marker, ignore_errors=True)  # Ray's logs of the private temp dir: the reaper deletes nothing


def test_a_driver_that_ends_normally_leaves_no_reaper_and_no_ray_behind(tmp_path):
    proc = start(write_sweep(tmp_path), tmp_path)
    reapers, rays = {}, {}
    while proc.poll() is None:  # while it runs: its reaper, and the processes of its Ray
        table = processes()
        reapers.update({pid: table[pid][2] for pid in reaper_of(proc.pid, table)})
        rays.update({pid: table[pid][2] for pid in descendants(proc.pid, table) - set(reapers)})
        time.sleep(0.5)
    assert proc.returncode == 0, (tmp_path / "driver.log").read_text()[-3000:]
    assert len(reapers) == 1 and rays
    took = wait_for(lambda: not any(alive(pid, start) for pid, start in {**reapers, **rays}.items()), 5)
    print(f"\nnormal end: reaper and Ray gone {took:.1f}s after the driver exited")
    shutil.rmtree(f"/tmp/ray_{os.getuid()}_{proc.pid}", ignore_errors=True)
