"""What the sweep driver prints for later: every suggested command, typed as shown, finds the same sweep."""
from __future__ import annotations

import runpy
import shlex
from pathlib import Path

from library.driver import command, configure, parse_args

SWEEP = runpy.run_path(str(Path(__file__).resolve().parents[1] / "sweeps/gan_betas.py"))["SWEEP"]


def trials_of(argv: list[str]) -> tuple[list[str], object]:
    args, overrides = parse_args(argv, SWEEP)
    _, trials = configure(SWEEP, args, overrides)
    return [t.id for t in trials], args


def test_the_status_hint_after_detach_keeps_the_overrides_and_folders_that_pick_the_sweep():
    typed = ["--epochs=4", "--optim.beta1=0.5", "--detach", "--runs-dir=D1", "--results-dir=D2"]
    hint = command(SWEEP, typed, "--status")
    assert hint == "python sweeps/gan_betas.py --epochs=4 --optim.beta1=0.5 --runs-dir=D1 --results-dir=D2 --status"

    again = shlex.split(hint)[2:]
    (ids, args), (original, _) = trials_of(again), trials_of(typed)
    assert ids == original and len(ids) == 2  # beta1 narrowed to 0.5, both beta2 values, 4 epochs
    assert args.status and not args.detach and (args.runs_dir.name, args.results_dir.name) == ("D1", "D2")


def test_hints_drop_every_action_flag_and_keep_values_with_spaces_quoted():
    typed = ["--dry-run", "--retry-failed", "--cancel", "--runs-dir=/scratch/my runs", "--backend=local"]
    hint = command(SWEEP, typed, "--cancel")
    assert shlex.split(hint) == ["python", "sweeps/gan_betas.py", "--runs-dir=/scratch/my runs", "--backend=local",
                                 "--cancel"]
