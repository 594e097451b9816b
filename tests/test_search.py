"""Random search draws a fixed, validated list of trials; ASHA (real Ray Tune) stops the trials that fall behind
and a re-run does not resume them."""
import json
import runpy

import pytest

from helpers import ROOT, sweep_cli, table_rows, wandb_records
from library.config import ConfigError
from library.files import read_json
from library.search import ASHA, Choice, IntRange, LogUniform, Uniform
from library.driver import configure, main, parse_args
from library.sweep import Sweep, expand
from library.trial import STATUS

BASE = {"data.limit": 320, "train.batch_size": 32, "eval.num_samples": 200, "eval.final_num_samples": 200}


def sweep(**kw):
    spec = dict(name="rs", job="gan", metric="fd_domain", base={**BASE, "train.epochs": 2},
                search={"optim.lr": LogUniform(1e-5, 1e-2), "optim.beta1": Uniform(0.0, 0.9),
                        "model.noise_dim": IntRange(10, 200)}, samples=5)
    return Sweep(**{**spec, **kw})


def test_random_draws_are_the_same_on_every_expand_and_inside_their_ranges():
    first, again = expand(sweep()), expand(sweep())
    assert [t.id for t in first] == [t.id for t in again] and len(first) == 5
    assert len({t.id for t in first}) == 5
    for t in first:
        assert 1e-5 <= t.params["optim.lr"] <= 1e-2 and 0 <= t.params["optim.beta1"] <= 0.9
        assert 10 <= t.params["model.noise_dim"] <= 200 and isinstance(t.params["model.noise_dim"], int)
    assert [t.id for t in expand(sweep(seed=1))] != [t.id for t in first]


def test_random_search_times_a_grid_and_repeated_choice_draws_collapse_to_one_trial(capsys):
    trials = expand(sweep(grid={"model.noise": ["normal", "uniform"]}, search={"optim.beta2": Choice([0.9, 0.999])},
                          samples=6))
    assert len(trials) == 4  # 2 grid points x at most 2 distinct draws
    assert {(t.params["model.noise"], t.params["optim.beta2"]) for t in trials} == {
        (n, b) for n in ("normal", "uniform") for b in (0.9, 0.999)}
    assert "12 draws gave 4 distinct trials" in capsys.readouterr().out


def test_draws_from_a_narrow_range_keep_their_precision():
    # Rounded to 3 significant digits, Uniform(0.999, 0.9999) gave only 0.999 and 1.0 (which beta2 refuses).
    trials = expand(sweep(search={"optim.beta2": Uniform(0.999, 0.9999)}, samples=50))
    assert len(trials) == 50
    assert all(0.999 <= t.params["optim.beta2"] < 0.9999 for t in trials)
    assert len(expand(sweep(search={"optim.beta2": Uniform(0.99, 0.999)}, samples=16))) == 16


def test_overriding_a_searched_key_pins_it_in_every_trial(tmp_path):
    run = sweep_cli(ROOT / "sweeps/gan_random_search.py", "--dry-run", f"--runs-dir={tmp_path}", "--optim.lr=0.001",
                    cwd=ROOT, timeout=300)
    rows = table_rows(run.stdout)
    assert len(rows) == 16 and {r["optim.lr"] for r in rows} == {"0.001"}
    assert len({r["optim.beta1"] for r in rows}) > 8 and len({r["model.noise_dim"] for r in rows}) > 1


def test_a_pinned_key_leaves_the_other_keys_draws_as_they_were():
    SWEEP = runpy.run_path(str(ROOT / "sweeps/gan_random_search.py"))["SWEEP"]
    _, drawn = configure(SWEEP, *parse_args([], SWEEP))
    _, pinned = configure(SWEEP, *parse_args(["--optim.lr=1e-3"], SWEEP))
    assert [t.params["optim.lr"] for t in pinned] == [0.001] * 16
    others = [{k: v for k, v in t.params.items() if k != "optim.lr"} for t in drawn]
    assert [{k: v for k, v in t.params.items() if k != "optim.lr"} for t in pinned] == others


@pytest.mark.parametrize("kw, field, allowed", [
    ({"search": {"optim.lr": LogUniform(0.0, 1e-2)}}, "search.optim.lr", "0 < low < high"),
    ({"search": {"optim.lr": Uniform(0.1, 0.01)}}, "search.optim.lr", "low < high"),
    ({"search": {"optim.lr": [1e-3, 1e-2]}}, "search.optim.lr", "LogUniform"),
    ({"search": {"model.noise_dim": Choice([])}}, "search.model.noise_dim", "non-empty"),
    ({"search": {"optim.lr": LogUniform(0.5, 2.0)}}, "optim.lr", "(0, 1]"),  # draws are checked like any value
    ({"grid": {"optim.lr": [1e-3]}}, "search", "not also in grid"),
    ({"samples": 0}, "samples", ">= 1"),
    ({"samples": 10_000}, "grid", "at most 5000"),
    ({"early_stop": ASHA(grace_epochs=0)}, "early_stop.grace_epochs", ">= 1"),
    ({"early_stop": ASHA(), "base": {**BASE, "eval.every": 2}}, "eval.every", "ASHA"),
])
def test_bad_search_spaces_are_rejected_naming_the_field(kw, field, allowed):
    with pytest.raises(ConfigError) as e:
        expand(sweep(**kw))
    assert e.value.key == field and allowed in str(e.value), str(e.value)


def test_asha_stops_trials_that_fall_behind_and_a_rerun_does_not_resume_them(tmp_path, capsys):
    # Learning rates from hopeless (1e-6) to good (2e-4): at the rungs (epochs 1 and 2) ASHA must stop some.
    spec = sweep(name="asha", base={**BASE, "train.epochs": 4}, samples=6, seed=3,
                 search={"optim.lr": LogUniform(1e-7, 3e-4)}, early_stop=ASHA(grace_epochs=1, reduction_factor=2))
    argv = ["--backend=local", f"--runs-dir={tmp_path / 'runs'}", f"--results-dir={tmp_path / 'results'}"]
    main(spec, argv)
    statuses = {t.id: read_json(tmp_path / "runs" / "asha" / t.id / STATUS) for t in expand(spec)}
    stopped = [s for s in statuses.values() if s["status"] == "stopped"]
    completed = [s for s in statuses.values() if s["status"] == "completed"]
    assert stopped and completed and len(stopped) + len(completed) == 6, statuses
    assert all(s["epoch"] < 4 and "ASHA" in s["reason"] for s in stopped)
    assert all(s["epoch"] == 4 for s in completed)
    best = min(statuses.values(), key=lambda s: s["best_fd_domain"])
    assert best["status"] == "completed"
    out = capsys.readouterr().out
    assert "stopped early by ASHA" in out
    # Every trial's W&B run ended cleanly with its summary, stopped ones included (the W&B report sorts by it).
    for t in expand(spec):
        (run_file,) = (tmp_path / "runs/asha" / t.id / "wandb").glob("offline-run-*/run-*.wandb")
        records = wandb_records(run_file)
        (exit_record,) = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
        summary = {i.key: json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "summary"
                   for i in r.summary.update}
        assert exit_record.exit_code == 0 and summary["status"] == statuses[t.id]["status"], summary
        assert summary["best_fd_domain"] == pytest.approx(statuses[t.id]["best_fd_domain"])

    main(spec, argv)
    assert "6 finished before, 0 running elsewhere, 0 to run" in capsys.readouterr().out
