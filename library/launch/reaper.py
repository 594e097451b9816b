"""A watchdog that ends a local sweep's private Ray when the sweep's driver dies, even by kill -9.

The driver (library.launch.local.run) starts it as `python reaper.py DRIVER_PID MARKER` in a session of its own, then
ray.init(_temp_dir=MARKER). Every POLL_S the reaper checks that the driver lives; once it is gone (or a zombie, or its
pid now names another process) it SIGKILLs every process of that Ray and exits. A driver that ends normally has shut
its Ray down already, so the reaper then finds nothing to kill and exits as well. It never runs `ray stop`
(node-wide) and touches no other Ray: only this user's processes that belong to the Ray started with MARKER.

Which processes belong to that Ray (verified on Ray 2.60 with `ps` and /proc while a local ray.init ran):
  * gcs_server, raylet, the autoscaler monitor, the dashboard and the log monitor carry the temp dir in their
    command lines (--log_dir=MARKER/session_..., --raylet_socket_name=...); they are the driver's children.
  * The raylet's children rename themselves (ray::DashboardAgent, ray::RuntimeEnvAgent, ray::IDLE, ray::<actor>
    such as a Tune trial's ray::ImplicitFunc.train) and show no temp dir in their command lines. The workers inherit
    the driver's environment, but the agents get a fresh one, so no environment variable marks them all either.
    Workers run in process groups of their own, so the driver's group is no handle either.
  * A trial's own children (wandb-core, wandb-symon, DataLoader workers) are children of its worker.
  * When the driver dies, gcs_server and the raylet die at once (Ray ties their fate to the driver), so the agents
    and workers are re-parented and their link to the raylet is lost; the agents then lived on for a minute or two.
So the reaper finds the roots by command line (MARKER/ plus a Ray program), adds their descendants through the
parent pids in /proc, and remembers that set while the driver lives, so what has lost its parent by the time it
reaps is still known. Every process is remembered with its start time, so a pid reused meanwhile is never killed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.5

_started: dict[int, subprocess.Popen] = {}  # driver pid -> its reaper: one per driver however often it calls run()


def temp_dir() -> str:
    """The private Ray's temp dir, which is also the reaper's marker. Short: Ray's unix sockets live under it and a
    socket path may be at most ~107 characters. The uid keeps another user's stale dir with our pid out of the way."""
    return f"/tmp/ray_{os.getuid()}_{os.getpid()}"


def watch(log: Path | str | None = None) -> str:
    """Start this driver's reaper (once per process) and return the temp dir to give ray.init as _temp_dir."""
    marker = temp_dir()
    if os.getpid() not in _started or _started[os.getpid()].poll() is not None:
        with open(log or os.devnull, "ab") as out:  # the reaper keeps its own copy of the file
            # -I -S: stdlib only, so no site-packages to import and nothing of the caller's path or environment.
            _started[os.getpid()] = subprocess.Popen(
                [sys.executable, "-I", "-S", str(Path(__file__).resolve()), str(os.getpid()), marker],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    return marker


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time in clock ticks since boot) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()  # after the command name, which may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[19])


def alive(pid: int, start: int) -> bool:
    """Whether pid still names the process that started at `start` and has not ended (a zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = stat(pid)
    return now is not None and now[2] == start and now[0] not in "ZX"


def is_root(pid: int, marker: str) -> bool:
    """A process that Ray started for this temp dir: a Ray program (gcs_server, raylet, ray/.../*.py) with the
    temp dir in its arguments. Someone's `less MARKER/session_latest/logs/raylet.out` is not one."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    return any(marker + "/" in a for a in argv) and any("/ray/" in a for a in argv[:3])  # [python, -u, script]


class Ray:
    """The processes of the private Ray with temp dir `marker`, as far as seen so far."""

    def __init__(self, marker: str):
        self.marker = marker.rstrip("/")
        self.uid = os.getuid()
        self.known: dict[int, int] = {}  # pid -> start time of every member seen
        self.roots: dict[tuple[int, int], bool] = {}  # (pid, start) -> is a root: a command line is read only once

    def scan(self) -> dict[int, int]:
        """Look at /proc now: the members alive, including those seen before that have lost their parent."""
        table: dict[int, tuple[int, int]] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                if os.stat(f"/proc/{name}").st_uid != self.uid:  # not ours: never ours to kill
                    continue
            except OSError:
                continue
            st = stat(pid)
            if st is not None and st[0] not in "ZX" and pid != os.getpid():
                table[pid] = (st[1], st[2])
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        members = {pid for pid, start in self.known.items() if table.get(pid, (0, None))[1] == start}
        for pid, (_, start) in table.items():
            if (pid, start) not in self.roots:
                self.roots[(pid, start)] = is_root(pid, self.marker)
            if self.roots[(pid, start)]:
                members.add(pid)
        todo = list(members)
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in members:
                    members.add(child)
                    todo.append(child)
        self.roots = {key: value for key, value in self.roots.items() if key[0] in table}
        self.known = {pid: table[pid][1] for pid in members}
        return dict(self.known)

    def kill(self) -> int:
        """SIGKILL every member, again until none is left (one may fork meanwhile); the number killed."""
        killed: set[int] = set()
        for _ in range(20):
            members = self.scan()
            if not members:
                break
            for pid, start in members.items():
                if signal_if(pid, start):
                    killed.add(pid)
            time.sleep(0.1)
        return len(killed)


def signal_if(pid: int, start: int) -> bool:
    """SIGKILL pid if it is still the process that started at `start` (through a pidfd where there is one, so a pid
    reused between the check and the signal is never hit)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        if not alive(pid, start):
            return False
        if fd is not None:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        if fd is not None:
            os.close(fd)


def main(driver: int, marker: str) -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):  # the terminal's Ctrl-C and hangup are the driver's
        signal.signal(sig, signal.SIG_IGN)
    ray = Ray(marker)
    first = stat(driver)
    start = first[2] if first else None
    while start is not None and alive(driver, start):
        ray.scan()
        time.sleep(POLL_S)
    killed = ray.kill()
    if killed:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} reaper: driver {driver} is gone; killed {killed} processes of "
              f"its Ray ({marker})", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
