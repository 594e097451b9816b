"""Replicates (Sweep.repeats): seeds per replicate, the statistics of configs.csv pinned against numpy and scipy,
verdicts by Welch's t-test, the sweep end to end on the local backend (a re-run with more replicates runs only the
new ones), refusals, random search, the report's error bars and the comparison across sweeps."""
from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers import ROOT, TINY, sweep_cli, table_rows, wandb_records, write_sweep
from library.config import ConfigError
from library.files import read_json
from library.replicates import BEST, FEW, SAME, config_table, mean_ci, welch_p
from library.report import build_report
from library.results import compare_configs
from library.search import Choice, LogUniform
from library.seeds import replicate_seed
from library.sweep import Sweep, expand
from library.trial import STATUS

METRIC = "fd_domain"

# ------------------------------------------------------------------------------------------ statistics


def test_mean_std_and_t_interval_are_pinned_on_known_numbers():
    got = mean_ci([1.0, 2.0, 3.0, 4.0])
    # By hand: mean 2.5, std (ddof=1) sqrt(5/3) = 1.2909944, t(0.975, df=3) = 3.1824463 (a t table), half-width
    # 3.1824463 * 1.2909944 / sqrt(4) = 2.0542603.
    assert got["mean"] == 2.5 and got["std"] == pytest.approx(1.2909944487)
    assert (got["ci95_low"], got["ci95_high"]) == (pytest.approx(0.4457397), pytest.approx(4.5542603))
    values = [12.0, 15.5, 14.0, 13.25, 18.0]
    got = mean_ci(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert got == pytest.approx({"mean": np.mean(values), "std": np.std(values, ddof=1), "ci95_low": low,
                                 "ci95_high": high})
    one = mean_ci([7.0])
    assert one["mean"] == 7.0 and all(math.isnan(one[k]) for k in ("std", "ci95_low", "ci95_high"))
    assert all(math.isnan(v) for v in mean_ci([]).values())


def test_welch_p_is_the_unequal_variance_test_by_hand():
    a, b = [10.0, 11.0, 12.0], [12.0, 15.5, 14.0, 19.0]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
    p = welch_p(a, b)
    assert p == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert p != pytest.approx(stats.ttest_ind(a, b, equal_var=True).pvalue, rel=1e-3)  # not Student's test
    assert welch_p([3.0, 3.0], [3.0, 3.0]) == 1.0  # constant and equal: nothing to tell apart (scipy: NaN)


def trials_frame(replicates: dict[str, list[tuple[str, float | None]]]) -> pd.DataFrame:
    """A trials.csv-like table: per configuration id, its replicates' (status, best metric); final = best + 1."""
    rows = []
    for i, (config, reps) in enumerate(replicates.items()):
        for r, (status, best) in enumerate(reps):
            rows.append({"trial": f"{config}-r{r}", "config": config, "replicate": r, "optim.beta1": i / 10,
                         "status": status, METRIC: None if best is None else best + 1, f"best_{METRIC}": best})
    return pd.DataFrame(rows)


TRIALS = {
    "a": [("completed", 10.0), ("completed", 11.0), ("completed", 12.0)],
    # Its diverged replicate's 1.0 would make it the best if it were averaged in.
    "b": [("completed", 10.5), ("completed", 12.5), ("completed", 11.0), ("diverged", 1.0)],
    "c": [("completed", 20.0), ("completed", 21.0), ("completed", 22.0)],
    # The lowest mean, from one completed replicate: not comparable, so neither the best nor judged.
    "d": [("completed", 9.0), ("failed", None)],
    "e": [("failed", None), ("failed", None)],
}


def test_configs_table_averages_completed_replicates_only_and_judges_each_against_the_best():
    table = config_table(trials_frame(TRIALS), METRIC, "min", ["optim.beta1"]).set_index("config")
    assert list(table.index) == ["a", "d", "b", "c", "e"]  # the best first, then by mean, none last
    b = table.loc["b"]
    assert (b.n, b.n_ok, b.statuses) == (4, 3, "completed 3, diverged 1")
    assert b[f"best_{METRIC}_mean"] == pytest.approx(np.mean([10.5, 12.5, 11.0]))
    assert b[f"{METRIC}_mean"] == pytest.approx(np.mean([11.5, 13.5, 12.0]))
    assert b[f"best_{METRIC}_std"] == pytest.approx(np.std([10.5, 12.5, 11.0], ddof=1))
    assert (b.best_replicate, b.worst_replicate) == ("b-r0", "b-r1")
    assert table.loc["a"].verdict == BEST
    assert b.verdict == SAME and b.p_vs_best == pytest.approx(welch_p([10.5, 12.5, 11.0], [10, 11, 12]))
    p = welch_p([20, 21, 22], [10, 11, 12])
    assert p < 0.05 and table.loc["c"].verdict == f"worse (p={p:.2g})"
    assert table.loc["d"].verdict == FEW and table.loc["e"].verdict == FEW
    e = table.loc["e"]
    assert (e.n_ok, e.statuses, e.best_replicate) == (0, "failed 2", "") and math.isnan(e[f"best_{METRIC}_mean"])


def test_configs_average_the_test_score_at_each_replicates_best_epoch_beside_the_validation_one():
    trials = trials_frame(TRIALS)
    trials["test_accuracy_at_best"] = trials[f"best_{METRIC}"] - 0.5  # as a job with a test split reports it
    b = config_table(trials, METRIC, "min", ["optim.beta1"]).set_index("config").loc["b"]
    assert b["test_accuracy_at_best_mean"] == pytest.approx(np.mean([10.0, 12.0, 10.5]))  # completed ones only
    assert b["test_accuracy_at_best_ci95_high"] > b["test_accuracy_at_best_mean"]


def test_mode_max_makes_the_highest_mean_the_best():
    table = config_table(trials_frame(TRIALS), METRIC, "max", ["optim.beta1"]).set_index("config")
    assert table.index[0] == "c" and table.loc["c"].verdict == BEST
    assert table.loc["a"].verdict.startswith("worse (p=") and table.loc["b"].verdict.startswith("worse (p=")
    assert table.loc["c"].best_replicate == "c-r2"


# ------------------------------------------------------------------------------------------ trials and seeds


def grid_sweep(**kw) -> Sweep:
    return Sweep(**{"name": "reps", "job": "gan", "metric": METRIC, "base": TINY,
                    "grid": {"optim.beta1": [0.3, 0.5]}, **kw})


def test_replicate_0_is_the_trial_without_repeats_and_the_others_get_seeds_derived_from_their_configuration():
    plain, three = expand(grid_sweep()), expand(grid_sweep(repeats=3))
    assert [t.id for t in three if t.replicate == 0] == [t.id for t in plain]
    assert len(three) == 6 and len({t.id for t in three}) == 6
    by_params = {t.params["optim.beta1"]: t.id for t in plain}
    for t in three:
        assert t.config_id == by_params[t.params["optim.beta1"]]
        # the first 31 bits of sha1("CONFIG_ID/R"), computed here independently of library.seeds
        derived = int(hashlib.sha1(f"{t.config_id}/{t.replicate}".encode()).hexdigest()[:8], 16) >> 1
        assert t.config["train.seed"] == (0 if t.replicate == 0 else derived) == (
            0 if t.replicate == 0 else replicate_seed(t.config_id, t.replicate))
    assert len({t.config["train.seed"] for t in three}) == 5  # both configurations' replicate 0 keep seed 0
    five = expand(grid_sweep(repeats=5))
    assert {t.id for t in three} < {t.id for t in five}  # more replicates add trials, never rename any


def test_random_search_draws_each_point_once_and_repeats_it():
    search = {"optim.lr": LogUniform(1e-4, 1e-2), "model.noise_dim": Choice([50, 100, 200])}
    drawn = expand(grid_sweep(grid={}, search=search, samples=4, seed=7))
    repeated = expand(grid_sweep(grid={}, search=search, samples=4, seed=7, repeats=3))
    assert len(repeated) == 12
    for point in drawn:
        reps = [t for t in repeated if t.config_id == point.id]
        assert sorted(t.replicate for t in reps) == [0, 1, 2] and all(t.params == point.params for t in reps)


@pytest.mark.parametrize("kw, allowed", [
    ({"repeats": 0}, ">= 1"),
    ({"repeats": 2, "grid": {"train.seed": [0, 1]}}, "varies train.seed"),
])
def test_bad_repeats_are_refused_naming_repeats(kw, allowed):
    with pytest.raises(ConfigError) as e:
        expand(grid_sweep(**kw))
    assert e.value.key == "repeats" and allowed in str(e.value)


def test_asha_with_repeats_is_refused_before_anything_runs(tmp_path):
    runs = tmp_path / "runs"
    out = sweep_cli(ROOT / "sweeps/gan_random_search.py", "--repeats=3", f"--runs-dir={runs}",
                    f"--results-dir={tmp_path / 'results'}", cwd=tmp_path, check=False, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "repeats=3 is not allowed" in out.stderr and "ASHA" in out.stderr and "configuration's mean" in out.stderr
    assert not runs.exists() and not (tmp_path / "results").exists()


# ------------------------------------------------------------------------------------------ end to end


def run_dir_files(run_root: Path, ids: list[str]) -> dict[str, tuple[int, bytes]]:
    """Every file of the given run dirs (wandb's aside) with its mtime and bytes: what "untouched" means."""
    return {str(p.relative_to(run_root)): (p.stat().st_mtime_ns, p.read_bytes()) for i in ids
            for p in sorted((run_root / i).rglob("*")) if p.is_file() and "wandb" not in p.parts}


def test_a_local_sweep_with_repeats_writes_configs_and_a_rerun_with_more_runs_only_the_new_ones(tmp_path):
    sweep_file = write_sweep(tmp_path, {"optim.beta1": [0.5, 0.9]})
    plain = [r["trial"] for r in table_rows(sweep_cli(sweep_file, "--dry-run").stdout)]
    first = sweep_cli(sweep_file, "--repeats=2")
    assert "4 trials (2 configurations x 2 replicates)" in first.stdout
    assert "0 finished before, 0 running elsewhere, 4 to run" in first.stdout
    trials = pd.read_csv(tmp_path / "results/tiny/trials.csv")
    assert trials[trials.replicate == 0].trial.tolist() == plain
    assert sorted(trials.groupby("config").replicate.apply(sorted).tolist()) == [[0, 1], [0, 1]]
    configs = pd.read_csv(tmp_path / "results/tiny/configs.csv")
    assert sorted(configs.config) == sorted(plain) and configs.n.tolist() == [2, 2] and configs.n_ok.tolist() == [2, 2]
    assert pd.read_parquet(tmp_path / "results/tiny/configs.parquet").config.tolist() == configs.config.tolist()
    assert configs.verdict.iloc[0] == BEST and "configurations: mean ± 95% confidence interval" in first.stdout
    seeds = {}
    for t in trials.itertuples():
        status = read_json(tmp_path / "runs/tiny" / t.trial / STATUS)
        assert (status["config_id"], status["replicate"]) == (t.config, t.replicate)
        (run_file,) = (tmp_path / "runs/tiny" / t.trial / "wandb").glob("offline-run-*/run-*.wandb")
        (run,) = [r.run for r in wandb_records(run_file) if r.WhichOneof("record_type") == "run"]
        config = {i.key: json.loads(i.value_json) for i in run.config.update}
        assert (config["config_id"], config["replicate"]) == (t.config, t.replicate)
        seeds[t.trial] = config["train.seed"]
    assert len(set(seeds.values())) == 3  # replicate 0 of both configurations keeps seed 0
    before = run_dir_files(tmp_path / "runs/tiny", trials.trial.tolist())

    again = sweep_cli(sweep_file, "--repeats=3")
    assert "4 finished before, 0 running elsewhere, 2 to run" in again.stdout
    assert run_dir_files(tmp_path / "runs/tiny", trials.trial.tolist()) == before
    configs = pd.read_csv(tmp_path / "results/tiny/configs.csv")
    assert configs.n.tolist() == [3, 3] and configs.statuses.tolist() == ["completed 3"] * 2


# ------------------------------------------------------------------------------------------ report and compare


def write_results(root: Path, name: str, replicates: dict, repeats: int, mode: str = "min") -> Path:
    """A results folder as library.results writes it: sweep.json, trials.csv and configs.csv, no curves."""
    out = root / "results" / name
    out.mkdir(parents=True)
    trials = trials_frame(replicates).assign(current=True)
    trials["optim.beta2"] = [0.9 if c in "ac" else 0.999 for c in trials.config]
    params = ["optim.beta1", "optim.beta2"]
    (out / "sweep.json").write_text(json.dumps({"name": name, "job": "gan", "metric": METRIC, "mode": mode,
                                                "params": params, "base": {}, "repeats": repeats}))
    trials.to_csv(out / "trials.csv", index=False)
    config_table(trials, METRIC, mode, params).to_csv(out / "configs.csv", index=False)
    return out


@pytest.fixture
def errorbars(monkeypatch):
    """Every Axes.errorbar call's x, y and yerr, the call then made as usual."""
    calls, draw = [], matplotlib.axes.Axes.errorbar

    def record(ax, x, y, yerr=None, **kw):
        calls.append((list(x), list(y), [list(side) for side in yerr]))
        return draw(ax, x, y, yerr=yerr, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", record)
    return calls


def test_report_with_replicates_draws_error_bars_and_a_configurations_table(tmp_path, errorbars):
    compared = {k: TRIALS[k] for k in "abc"}
    out = write_results(tmp_path, "reps", compared, repeats=3)
    page = build_report(out).read_text()
    configs = pd.read_csv(out / "configs.csv").set_index("config")
    col = f"best_{METRIC}"
    drawn = {(x, y): (below, above) for xs, ys, (belows, aboves) in errorbars
             for x, y, below, above in zip(xs, ys, belows, aboves)}
    for _, c in configs.iterrows():
        mean = c[f"{col}_mean"]
        below, above = drawn[(c["optim.beta1"], mean)]  # the plot against beta1
        assert below == pytest.approx(mean - c[f"{col}_ci95_low"])
        assert above == pytest.approx(c[f"{col}_ci95_high"] - mean)
    assert (out / "plots/metric_vs_optim.beta1.png").stat().st_size > 1000
    assert "Configurations, best mean fd_domain first" in page and "Welch's t-test" in page
    grid = page.split(f"<h2>Grid of best {METRIC} (mean ± 95% CI)</h2>", 1)[1].split("<h2>", 1)[0]
    assert grid.count("±") == 3 and f"{configs.loc['a', col + '_mean']:.4g} ±" in grid
    table = page.split('<table class="configs">', 1)[1].split("</table>", 1)[0]
    assert "best" in table and SAME in table and "worse (p=" in table and "completed 3, diverged 1" in table


def test_report_without_replicates_has_no_configuration_views(tmp_path, errorbars):
    out = write_results(tmp_path, "single", {k: TRIALS[k][:1] for k in "abc"}, repeats=1)
    page = build_report(out).read_text()
    assert errorbars == [] and "±" not in page and "Configurations" not in page and "<th>replicate</th>" not in page


def test_compare_judges_configurations_of_several_sweeps_against_the_best_of_all(tmp_path):
    write_results(tmp_path, "one", {k: TRIALS[k] for k in "ab"}, repeats=3)
    write_results(tmp_path, "two", {"x": [("completed", 8.0), ("completed", 8.5), ("completed", 9.0)],
                                    "y": TRIALS["c"]}, repeats=3)
    table, metric, params = compare_configs(["one", "two"], tmp_path / "results")
    assert metric == METRIC and params == ["optim.beta1", "optim.beta2"]
    verdicts = {(r.sweep, r.config): r.verdict for r in table.itertuples()}
    assert verdicts[("two", "x")] == BEST and list(table.config[:1]) == ["x"]
    assert verdicts[("one", "a")].startswith("worse (p=") and verdicts[("two", "y")].startswith("worse (p=")
    assert table.set_index("config").loc["a", "p_vs_best"] == pytest.approx(welch_p([10, 11, 12], [8, 8.5, 9]))

    cli = [sys.executable, "-m", "library.results", "compare", "--results-dir", str(tmp_path / "results"), "one", "two"]
    shown = subprocess.run(cli + ["--out", str(tmp_path / "c.csv")], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "Welch's t-test" in shown.stdout and "8.5 ±" in shown.stdout
    assert pd.read_csv(tmp_path / "c.csv").verdict.tolist() == table.verdict.tolist()
    write_results(tmp_path, "three", {"z": TRIALS["a"]}, repeats=3, mode="max")
    refused = subprocess.run(cli + ["three"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "one metric and mode" in refused.stderr


def test_repeats_are_kept_in_the_sweep_record():
    record = grid_sweep(repeats=4).record()
    assert record["repeats"] == 4 and Sweep.from_record(record).repeats == 4


def test_compare_refuses_to_rank_sweeps_scored_differently_and_names_the_difference(tmp_path):
    write_results(tmp_path, "one", {k: TRIALS[k] for k in "ab"}, repeats=3)
    write_results(tmp_path, "two", {"x": TRIALS["c"]}, repeats=3)
    for name, extractor_weights in (("one", "aaaa"), ("two", "bbbb")):
        path = tmp_path / "results" / name / "trials.csv"
        pd.read_csv(path).assign(fingerprint=f"extractor=library-domain-cnn; weights_sha256={extractor_weights}; "
                                 "n_fake=1000").to_csv(path, index=False)
    cli = [sys.executable, "-m", "library.results", "compare", "--results-dir", str(tmp_path / "results"), "one", "two"]
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "not ranked: the scores were measured differently (weights_sha256 aaaa (one/" in refused.stderr
    assert "vs bbbb (two/" in refused.stderr and "n_fake" not in refused.stderr.split("(weights_sha256")[0]
