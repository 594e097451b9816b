"""The local backend (Ray Tune on this machine) with what users ask of it: DDP trials, GPUs it does not have, a
trial that another process trains right now, paths with ~."""
import os
import time
from pathlib import Path

import pytest

from library.files import read_json
from library.sweep import Sweep, expand, main, parse_args
from library.train import STATUS, claim

TINY = {"data.limit": 256, "eval.num_samples": 100, "eval.final_num_samples": 100, "train.epochs": 1}


def argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["--backend=local", f"--runs-dir={tmp_path / 'runs'}", f"--results-dir={tmp_path / 'results'}", *extra]


def test_ddp_trials_through_a_local_sweep_complete_with_replicas_in_sync(tmp_path):
    spec = Sweep(name="ddp", job="gan", metric="fd_domain", base=TINY, grid={"optim.beta1": [0.3, 0.5]})
    main(spec, argv(tmp_path, "--workers-per-trial=2"))
    for t in expand(spec):
        status = read_json(tmp_path / "runs/ddp" / t.id / STATUS)
        assert status["status"] == "completed" and status["workers"] == 2, status.get("reason")
        assert status["final"]["ddp_weight_spread"] == 0.0


def test_a_gpu_request_on_a_machine_without_gpus_is_refused_before_anything_starts(tmp_path, capsys):
    spec = Sweep(name="gpu", job="gan", metric="fd_domain", base=TINY)
    started = time.time()
    with pytest.raises(SystemExit) as e:
        main(spec, argv(tmp_path, "--gpus-per-worker=1"))
    assert e.value.code == 2 and time.time() - started < 30
    err = capsys.readouterr().err
    assert "one trial needs 1 GPU" in err and "this machine has 0" in err
    assert not (tmp_path / "runs/gpu").exists()


def test_a_trial_that_another_process_trains_is_skipped_and_left_untouched(tmp_path, capsys):
    spec = Sweep(name="busy", job="gan", metric="fd_domain", base=TINY, grid={"optim.beta1": [0.3, 0.5]})
    held, free = expand(spec)
    (tmp_path / "runs/busy" / held.id).mkdir(parents=True)
    lock = claim(tmp_path / "runs/busy" / held.id)  # e.g. a Slurm task of this sweep resuming it right now
    try:
        main(spec, argv(tmp_path))
    finally:
        lock.close()
    out = capsys.readouterr().out
    assert f"{held.id}: skipped, trained right now by" in out and "1 to run" in out
    assert not (tmp_path / "runs/busy" / held.id / STATUS).exists()
    assert read_json(tmp_path / "runs/busy" / free.id / STATUS)["status"] == "completed"


def test_paths_given_with_a_tilde_after_the_equals_sign_are_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = Sweep(name="tilde", job="gan", metric="fd_domain", base=TINY)
    args, _ = parse_args(["--runs-dir=~/runs", "--results-dir=~/results", "--site=~/site.toml"], spec)
    assert (args.runs_dir, args.results_dir, args.site) == (tmp_path / "runs", tmp_path / "results",
                                                           os.path.join(tmp_path, "site.toml"))
