"""What the sweep driver prints for later: every suggested command, typed as shown, finds the same sweep."""
from __future__ import annotations

import runpy
import shlex
from pathlib import Path

import pytest

from helpers import table_rows
from library.driver import FIRST_ROWS, command, configure, job_list, main, parse_args, print_table
from library.files import write_json
from library.search import LogUniform
from library.sweep import Sweep, resolve
from library.trial import STATUS

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


def test_preset_seed_runs_the_reports_setup_under_its_own_name_and_overrides_still_apply():
    args, overrides = parse_args(["--preset=seed", "--epochs=2"], SWEEP)
    sweep, trials = configure(SWEEP, args, overrides)
    assert sweep.name == "gan_betas-seed" and sweep.metric == "fid"  # runs/ and results/gan_betas-seed
    assert [(t.params["optim.beta1"], t.params["optim.beta2"]) for t in trials] == [(0.3, 0.999), (0.5, 0.999),
                                                                                   (0.999, 0.999)]
    assert {(t.config["data.name"], t.config["model.spectral_norm"], t.config["train.epochs"]) for t in trials} == {
        ("faces", "d", 2)}  # the preset's base whole (no MNIST from the file's own), then the command line's
    assert not set(trials_of([])[0]) & {t.id for t in trials}  # without the flag: the file's own 6 MNIST trials


def test_the_status_hint_of_a_preset_keeps_the_flag_and_names_the_sweep_file():
    args, overrides = parse_args(["--preset=seed", "--detach"], SWEEP)
    sweep, _ = configure(SWEEP, args, overrides)
    assert command(sweep, ["--preset=seed", "--detach"], "--status") == \
        "python sweeps/gan_betas.py --preset=seed --status"


def test_an_unknown_preset_is_refused_naming_the_ones_there_are(capsys):
    with pytest.raises(SystemExit) as stop:
        main(SWEEP, ["--preset=report", "--dry-run", "--backend=local"])
    assert stop.value.code == 2
    assert "--preset='report' is not allowed: one of seed" in capsys.readouterr().err


def test_a_big_sweeps_table_lists_its_first_trials_then_sums_up_the_rest_and_dry_run_lists_every_one(tmp_path, capsys):
    sweep = Sweep(name="probe", job="scale_probe", base={"train.epochs": 1}, grid={"data.points": [8, 16, 32]},
                  search={"optim.lr": LogUniform(1e-3, 0.5)}, samples=20)
    main(sweep, ["--dry-run", "--backend=local", f"--runs-dir={tmp_path}"])
    assert len(table_rows(capsys.readouterr().out, prefix="scale_probe-")) == 60  # the plan, every trial

    _, trials = resolve(sweep)
    for t in trials[:3]:
        write_json(tmp_path / t.id / STATUS, {"status": "completed"})
    print_table(trials, tmp_path)  # what a run or --status prints first
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:FIRST_ROWS + 1]] == [t.id for t in trials[:FIRST_ROWS]]
    assert lines[FIRST_ROWS + 1] == f"... {60 - FIRST_ROWS} more trials (--dry-run lists every one)"
    assert lines[FIRST_ROWS + 2] == "  data.points: 3 value(s), 8, 16, 32"
    lrs = sorted({t.params["optim.lr"] for t in trials})  # 20 draws, each with every data.points
    assert lines[FIRST_ROWS + 3] == f"  optim.lr: 20 value(s), {lrs[0]:.4g} ... {lrs[-1]:.4g}"
    assert lines[-1] == "  status: 57 not run, 3 completed"


def test_cancelling_a_big_sweep_names_its_arrays_not_each_task():
    assert job_list(["7_0", "7_1"]) == " 7_0 7_1"
    assert job_list([f"{9 + i // 100}_{i % 100}" for i in range(250)]) == " (tasks of array job(s) 9 10 11)"
