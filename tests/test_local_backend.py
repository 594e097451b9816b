"""The local backend (Ray Tune on this machine) with what users ask of it: DDP trials, GPUs it does not have, a
trial that another process trains right now, paths with ~, a failed trial's row and --retry-failed, an override
that narrows a swept key."""
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import TINY, table_rows
from library.checkpoint import CHECKPOINTS
from library.files import read_json
from library.driver import main, parse_args
from library.sweep import Sweep, expand
from library.trial import STATUS, claim

def argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["--backend=local", f"--runs-dir={tmp_path / 'runs'}", f"--results-dir={tmp_path / 'results'}", *extra]


def test_a_ddp_trial_through_a_local_sweep_completes_with_replicas_in_sync(tmp_path):
    spec = Sweep(name="ddp", job="gan", metric="fd_domain", base=TINY)  # one trial: two would run one after another
    main(spec, argv(tmp_path, "--workers-per-trial=2"))
    for t in expand(spec):
        status = read_json(tmp_path / "runs/ddp" / t.id / STATUS)
        assert status["status"] == "completed" and status["workers"] == 2, status.get("reason")
        assert status["final"]["ddp_weight_spread"] == 0.0


@pytest.mark.parametrize("flag, need", [("--gpus-per-worker=1", "1"), ("--gpus-per-trial=0.25", "0.25")])
def test_a_gpu_request_on_a_machine_without_gpus_is_refused_before_anything_starts(tmp_path, capsys, flag, need):
    spec = Sweep(name="gpu", job="gan", metric="fd_domain", base=TINY)
    with pytest.raises(SystemExit) as e:
        main(spec, argv(tmp_path, flag))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"one trial needs {need} GPU" in err and "this machine has 0" in err
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


def files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_failed_trial_is_a_row_with_its_reason_and_only_retry_failed_runs_it_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    spec = Sweep(name="retry", job="gan", metric="fd_domain", base=TINY, grid={"optim.beta1": [0.3, 0.5]})
    bad, good = expand(spec)
    # The bad trial's run dir holds a checkpoint of another config (a default changed in the code since, say):
    # the harness refuses to resume it, and the trial fails while the sweep goes on.
    (tmp_path / "runs/retry" / bad.id / CHECKPOINTS).mkdir(parents=True)
    torch.save({"config": {**bad.config, "optim.lr": 1e-3}, "epoch": 1},
               tmp_path / "runs/retry" / bad.id / CHECKPOINTS / "epoch_00001.pt")
    main(spec, argv(tmp_path))
    table = pd.read_csv(tmp_path / "results/retry/trials.csv").set_index("trial")
    assert table.status.to_dict() == {bad.id: "failed", good.id: "completed"}
    assert "holds a checkpoint of a different config (changed: ['optim.lr'])" in table.reason[bad.id]
    assert table["optim.beta1"].to_dict() == {bad.id: 0.3, good.id: 0.5}
    assert f"{bad.id} failed: " in capsys.readouterr().out  # and the summary says so

    finished = files(tmp_path / "runs/retry" / good.id)
    main(spec, argv(tmp_path))  # a plain re-run: failed is final, nothing runs
    assert read_json(tmp_path / "runs/retry" / bad.id / STATUS)["status"] == "failed"

    for checkpoint in (tmp_path / "runs/retry" / bad.id / CHECKPOINTS).iterdir():  # the cause, removed
        checkpoint.unlink()
    main(spec, argv(tmp_path, "--retry-failed"))
    status = read_json(tmp_path / "runs/retry" / bad.id / STATUS)
    assert status["status"] == "completed" and status["epoch"] == 1 and status["resumed_from_epoch"] == 0
    assert files(tmp_path / "runs/retry" / good.id) == finished  # the finished trial did not run again
    table = pd.read_csv(tmp_path / "results/retry/trials.csv").set_index("trial")
    assert table.status.to_dict() == {bad.id: "completed", good.id: "completed"}


def test_an_override_of_a_swept_key_runs_only_those_trials_and_the_table_shows_only_them(tmp_path, monkeypatch,
                                                                                       capsys):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    spec = Sweep(name="narrow", job="gan", metric="fd_domain", base=TINY,
                 grid={"optim.beta1": [0.3, 0.5], "optim.beta2": [0.9, 0.999]})
    kept = {t.id for t in expand(spec) if t.params["optim.beta1"] == 0.5}  # the same ids as in the full grid
    main(spec, argv(tmp_path, "--optim.beta1=0.5"))
    shown = table_rows(capsys.readouterr().out)
    assert sorted((r["trial"], r["optim.beta1"]) for r in shown) == sorted((t, "0.5") for t in kept)
    assert sorted(r["optim.beta2"] for r in shown) == ["0.9", "0.999"]  # the other axis stays whole
    table = pd.read_csv(tmp_path / "results/narrow/trials.csv")
    assert set(table.trial) == kept and set(table.status) == {"completed"} and set(table["optim.beta1"]) == {0.5}
    assert {p.parent.name for p in (tmp_path / "runs/narrow").glob("*/" + STATUS)} == kept  # nothing else ran
