"""Command-line parsing shared by jobs and sweeps: `--key=value` overrides checked against a config class."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from library.config import ConfigError, flat_fields, parse, to_dict
from library.job import load_job
from library.resources import Resources
from library.tracking import DEFAULT_PROJECT, wandb_mode
from library.train import fit
from library.trial import trial_id


def config_help(cls: type) -> str:
    lines = ["config keys (override with --KEY=VALUE):"]
    for key, (kind, default, doc) in flat_fields(cls).items():
        lines.append(f"  --{key}={default!r}  ({kind.__name__}) {doc}")
    return "\n".join(lines)


def split_overrides(args: list[str]) -> dict[str, str]:
    """`--a.b=1` style arguments -> {"a.b": "1"}; anything else is an error that names it."""
    out = {}
    for arg in args:
        if not (arg.startswith("--") and "=" in arg):
            raise ConfigError(arg, arg, "config overrides look like --section.key=value")
        key, value = arg[2:].split("=", 1)
        out[key] = value
    return out


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run_job(name: str) -> None:
    """Entry point of `python jobs/NAME.py`: one trial, trained through the harness."""
    job = load_job(name)
    parser = argparse.ArgumentParser(
        prog=f"python jobs/{name}.py", description=f"Train the {name} job once through the Ray Train harness.",
        epilog=config_help(job.Config), formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--workers", type=int, default=0, help="Ray Train workers (DDP ranks); 0 = in-process")
    parser.add_argument("--gpus-per-worker", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, help="where checkpoints and results go (default runs/NAME/ID)")
    args, rest = parser.parse_known_args()
    try:
        cfg = parse(job.Config, split_overrides(rest))
    except ConfigError as e:
        fail(str(e))
    config = to_dict(cfg)
    run_dir = args.run_dir or Path("runs") / name / trial_id(job, config)
    print(f"{name}: run dir {run_dir}\n" + "\n".join(f"  {k} = {v!r}" for k, v in config.items()))
    job.prepare(cfg)
    tracking = {"project": DEFAULT_PROJECT, "group": name, "job_type": name, "mode": wandb_mode()}
    status = fit(name, config, run_dir, Resources(workers=args.workers, gpus_per_worker=args.gpus_per_worker),
                 tracking=tracking)
    print(f"{name}: {status['status']} after {status.get('epoch', 0)} epochs; final {status.get('final', {})}")
    if status.get("reason"):
        print(status["reason"])
