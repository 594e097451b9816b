"""Driving Slurm jobs in tests."""
import subprocess


def started_again(job: str) -> bool:
    """Whether the requeued job runs; while Slurm holds it (~2 min BeginTime), release it."""
    state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T|%r"], capture_output=True, text=True).stdout.strip()
    if state.endswith("BeginTime"):
        subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], capture_output=True)
    return state.startswith("RUNNING")
