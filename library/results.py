"""Aggregate a sweep's trials into results/SWEEP/: trials.csv/.parquet (one row per trial), configs.csv/.parquet
(one row per configuration over its replicates, library.replicates), curves.csv/.parquet (per-epoch metrics, long
format, and with train.log_every_steps per-step values in rows whose `step` is set), samples/TRIAL.png and sweep.json (metric, mode, swept params, repeats). Rebuilt from the run dirs each
time, so a re-run never duplicates a row, and never drops one: trials of earlier runs of the sweep (another grid)
stay in trials.csv, with current=False (configs.csv is over this run's trials)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from library.checkpoint import CHECKPOINTS, load_checkpoint
from library.files import atomic_write, read_json, write_json
from library.fingerprint import as_text, not_comparable
from library.metrics import names_of
from library.metrics.coverage import detect_mode_collapse
from library.replicates import config_table, plus_minus
from library.sweep import BIG, RECORD, Sweep
from library.trial import AT_BEST, METRICS, STATUS, STEPS, Status, Trial, read_status


def trial_row(trial: Trial, run_dir: Path, metric: str) -> dict:
    status = read_status(run_dir)
    final = status.get("final", {})
    history = read_json(run_dir / METRICS, [])
    checkpoints = sorted((run_dir / CHECKPOINTS).glob("epoch_*.pt"))
    return {
        "trial": trial.id, "config": trial.config_id, "replicate": trial.replicate, **trial.params,
        "status": status.get("status", Status.NOT_RUN),
        "reason": (status.get("reason") or "").split("\n")[0],
        "epochs": status.get("epoch", 0),
        metric: final.get(metric),
        f"best_{metric}": status.get(f"best_{metric}"),
        "best_epoch": status.get("best_epoch"),
        **{k: v for k, v in status.items() if k.endswith(AT_BEST)},  # the test scores at the best epoch
        # sample-quality columns, for jobs that score generated samples: the final scores, the real-vs-real floor
        # beside them, and the fingerprint saying how they were measured
        **{k: final[k] for k in quality_columns(metric) if k in final},
        **({"fingerprint": as_text(final["fingerprint"])} if "fingerprint" in final else {}),
        "mode_collapse": detect_mode_collapse(history, metric, status.get("mode", "min"),
                                              names_of(metric).get("recall", "")),
        **{k: v for k, v in final.items() if k.startswith("loss")},
        "wall_s": status.get("elapsed_s"),
        "startup_s": status.get("startup_s"),
        "checkpoint": str(checkpoints[-1]) if checkpoints else "",
        "run_dir": str(run_dir),
    }


def quality_columns(metric: str) -> list[str]:
    """The final sample-quality scores trials.csv keeps beside the Fréchet distance `metric` (none for others)."""
    names = names_of(metric)
    if not names:
        return []
    return [f"{metric}_n_fake", "modes_covered", names["kd"], f"{names['kd']}_std", names["precision"],
            names["recall"], f"{metric}_floor", f"{metric}_floor_n", "grid_diversity"]


def sample_grid(run_dir: Path, best_epoch, last_epoch) -> tuple[Path | None, int | None]:
    """The sample grid the gallery shows, and the epoch it is from: the best epoch's (samples/epoch_NNNN.png),
    so that the image matches the score beside it; only where that file is missing, samples.png, the grid of
    the last evaluated epoch (the newest epoch_NNNN.png, else the trial's last epoch; None if unknown)."""
    if best_epoch is not None:
        best = run_dir / "samples" / f"epoch_{int(best_epoch):04d}.png"
        if best.is_file():
            return best, int(best_epoch)
    latest = run_dir / "samples.png"
    if not latest.is_file():
        return None, None
    epochs = [int(p.stem[6:]) for p in (run_dir / "samples").glob("epoch_*.png") if p.stem[6:].isdigit()]
    return latest, max(epochs) if epochs else (int(last_epoch) if last_epoch else None)


def curves(trial: Trial, run_dir: Path) -> list[dict]:
    """The trial's long-format curves: per epoch (step empty), then per logged step (train.log_every_steps)."""
    per_epoch = [{"trial": trial.id, "epoch": entry["epoch"], "step": None, "metric": k, "value": v}
                 for entry in read_json(run_dir / METRICS, []) for k, v in entry.items()
                 if k != "epoch" and isinstance(v, (int, float))]  # not the fingerprint: it is in trials.csv
    return per_epoch + [{"trial": trial.id, "epoch": row["epoch"], "step": row["step"], "metric": k, "value": v}
                        for row in read_json(run_dir / STEPS, []) for k, v in row.items() if k not in ("epoch", "step")]


def earlier_trials(sweep: Sweep, current: set[str], run_root: Path) -> list[Trial]:
    """Trials of earlier runs of this sweep (another grid, or one narrowed by an override): the run dirs under
    run_root outside `current` that hold a checkpoint or a status; their params are read from the config stored
    in the latest readable checkpoint (None where there is none), their configuration and replicate from their
    status (a trial that never recorded them is replicate 0 of its own configuration, as before repeats)."""
    found = []
    for run_dir in sorted(p for p in run_root.glob("*") if p.is_dir() and p.name not in current):
        if not any((run_dir / CHECKPOINTS).glob("epoch_*.pt")) and not (run_dir / STATUS).exists():
            continue  # not a trial's run dir (Slurm logs, Ray's files), or a trial that never started
        config = (load_checkpoint(run_dir) or {}).get("config", {})
        status = read_status(run_dir)
        found.append(Trial(run_dir.name, {k: config.get(k) for k in sweep.params}, config,
                           status.get("replicate", 0), status.get("config_id", "")))
    return found


def collect(sweep: Sweep, trials: list[Trial], run_root: Path, out_dir: Path) -> pd.DataFrame:
    """One row per trial: this invocation's (current=True), then those of earlier runs of this sweep still under
    run_root (current=False), so that no finished row is ever dropped from the table."""
    earlier = earlier_trials(sweep, {t.id for t in trials}, run_root)
    rows, long = [], []
    for t, current in [*((t, True) for t in trials), *((t, False) for t in earlier)]:
        run_dir = run_root / t.id
        row = {**trial_row(t, run_dir, sweep.metric), "current": current}
        long += curves(t, run_dir)
        grid, row["samples_epoch"] = sample_grid(run_dir, row["best_epoch"], row["epochs"])
        if grid:
            copy_if_changed(grid, out_dir / "samples" / f"{t.id}.png")
        rows.append(row)
    table = pd.DataFrame(rows)
    history = pd.DataFrame(long, columns=["trial", "epoch", "step", "metric", "value"])
    write_frame(table, out_dir / "trials")
    write_frame(configs(sweep, table), out_dir / "configs")
    write_frame(history, out_dir / "curves")
    write_json(out_dir / RECORD, sweep.record())
    return table


def copy_if_changed(source: Path, target: Path) -> None:
    """Copy (atomically) unless target already holds the same bytes: a re-collect of 1,000 trials then skips
    1,000 fsynced writes (seconds here, more on a network file system)."""
    data = source.read_bytes()
    if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
        return
    atomic_write(target, lambda tmp: tmp.write_bytes(data))


def write_frame(frame: pd.DataFrame, stem: Path) -> None:
    atomic_write(stem.with_suffix(".csv"), lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write(stem.with_suffix(".parquet"), lambda tmp: frame.to_parquet(tmp, index=False))


def configs(sweep: Sweep, table: pd.DataFrame) -> pd.DataFrame:
    """The configurations of this run of the sweep (rows current=True) over their replicates, best mean first."""
    return config_table(table[table["current"]], sweep.metric, sweep.mode, sweep.params)


def display_columns(table: pd.DataFrame) -> list[str]:
    """The columns a terminal table shows: no paths, reasons or losses (they are in the files), no configuration
    id (the configurations table follows), and the replicate only where there are replicates."""
    hidden = {"checkpoint", "run_dir", "reason", "mode_collapse", "samples_epoch", "config", "fingerprint"}
    if not (pd.to_numeric(table.get("replicate", pd.Series(dtype=float)), errors="coerce") > 0).any():
        hidden.add("replicate")
    return [c for c in table.columns if c not in hidden and not c.startswith("loss")]


def print_configs(table: pd.DataFrame, metric: str, params: list[str], key: list[str]) -> None:
    """The configurations table, best mean first: mean ± 95% CI, replicates and their statuses, verdict."""
    shown = table[key + params + ["n", "statuses"]].copy()
    at_best = [(c.removesuffix("_mean"), f"{c.removesuffix(AT_BEST + '_mean')} at best epoch") for c in table.columns
               if str(c).endswith(AT_BEST + "_mean")]
    for col, head in ((f"best_{metric}", f"best {metric}"), *at_best, (metric, f"final {metric}")):
        shown[f"{head} (mean ± CI)"] = [plus_minus(r, col) or "-" for _, r in table.iterrows()]
    shown["verdict"] = table["verdict"]
    print("\nconfigurations: mean ± 95% confidence interval over completed replicates; verdict by Welch's t-test "
          "against the best mean at 5%")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60):
        print(shown.to_string(index=False))


def print_failures(bad: pd.DataFrame) -> None:
    """Each failed or diverged trial with its reason; past BIG of them, one line per distinct reason with a count."""
    if len(bad) <= BIG:
        for _, row in bad.iterrows():
            print(f"{row.trial} {row.status}: {row.reason}")
        return
    first_line = bad.reason.fillna("").astype(str).str.split("\n").str[0]
    for (status, reason), group in bad.groupby([bad.status, first_line], sort=False):
        ids = ", ".join(group.trial.head(3)) + (", ..." if len(group) > 3 else "")
        print(f"{len(group)} trials {status} ({ids}): {reason}")


def print_summary(table: pd.DataFrame, sweep: Sweep) -> None:
    """The trials table, best first, with failures and mode collapses; then, with replicates, the configurations."""
    metric, mode = sweep.metric, sweep.mode
    key = f"best_{metric}"
    unranked = not_comparable(table)
    shown = table.sort_values("trial" if unranked else key, ascending=bool(unranked) or mode == "min",
                              na_position="last")
    cols = display_columns(shown)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        if len(shown) <= BIG:
            print(shown[cols].to_string(index=False))
        else:  # a big sweep: its best and its worst; every row is in trials.csv
            print(shown[cols].head(10).to_string(index=False))
            print(f"... {len(shown) - 15} more trials (all in trials.csv) ...")
            print(shown[cols].tail(5).to_string(index=False))
    if unranked:
        print(f"{metric}: {unranked}")
    print_failures(shown[shown.status.isin(["failed", "diverged"])])
    for _, row in shown[shown.get("mode_collapse", pd.Series("", index=shown.index)).fillna("") != ""].iterrows():
        print(f"{row.trial} mode collapse: {row.mode_collapse}")
    if sweep.repeats > 1:
        print_configs(configs(sweep, table), metric, sweep.params, [])


def compare(sweeps: list[str], results_dir: Path) -> pd.DataFrame:
    """Several sweeps' trial tables as one, with a `sweep` column first; columns a sweep lacks are empty."""
    frames = []
    for name in sweeps:
        path = results_dir / name / "trials.csv"
        if not path.exists():
            raise FileNotFoundError(f"no results for sweep {name!r} at {path}; run python sweeps/{name}.py first")
        frames.append(pd.read_csv(path).assign(sweep=name))
    table = pd.concat(frames, ignore_index=True)
    return table[["sweep", *[c for c in table.columns if c != "sweep"]]]


def compare_configs(sweeps: list[str], results_dir: Path) -> tuple[pd.DataFrame, str, list[str]]:
    """The configurations of several sweeps in one table, best mean first, each judged against the best of them
    all as configs.csv judges within one sweep (Welch's t-test on the replicates' best-metric values, from each
    sweep's trials.csv); with the metric and the params (of any of the sweeps). The sweeps must share metric and
    mode: a ranking across two metrics would mean nothing."""
    trials = compare(sweeps, results_dir)
    specs = {name: read_json(results_dir / name / RECORD, {}) for name in sweeps}
    scored = {name: (spec.get("metric"), spec.get("mode")) for name, spec in specs.items()}
    if len(set(scored.values())) != 1 or None in next(iter(scored.values())):
        raise ValueError("configurations compare on one metric and mode; these sweeps have "
                         + ", ".join(f"{name}: {m} ({mode})" for name, (m, mode) in scored.items()))
    if "config" not in trials:
        raise ValueError("a trials.csv has no config column (written before replicates): rebuild it with "
                         f"python sweeps/NAME.py --status for each of {', '.join(sweeps)}")
    metric, mode = next(iter(scored.values()))
    if unranked := not_comparable(trials[trials["current"]], name="sweep"):
        raise ValueError(unranked)
    params = list(dict.fromkeys(p for spec in specs.values() for p in spec.get("params", [])))
    table = config_table(trials[trials["current"]], metric, mode, params, key=["sweep", "config"])
    return table, metric, params


def main(argv: list[str] | None = None) -> None:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m library.results")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="the configurations of several sweeps in one table, each judged against "
                         "the best of them all (Welch's t-test at 5%)")
    cmp.add_argument("sweeps", nargs="+")
    cmp.add_argument("--results-dir", type=Path, default=Path("results"))
    cmp.add_argument("--out", type=Path, help="also write the configurations table here (.csv or .parquet)")
    args = parser.parse_args(argv)
    try:
        table, metric, params = compare_configs(args.sweeps, args.results_dir)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if args.out:
        write = table.to_parquet if args.out.suffix == ".parquet" else table.to_csv
        atomic_write(args.out, lambda tmp: write(tmp, index=False))
    print_configs(table, metric, params, ["sweep"])


if __name__ == "__main__":
    main()
