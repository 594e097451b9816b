"""Aggregate a sweep's trials into results/SWEEP/: trials.csv/.parquet (one row per trial), curves.csv/.parquet
(per-epoch metrics, long format), samples/TRIAL.png and sweep.json (metric, mode, swept params). Rebuilt from the
run dirs each time, so a re-run never duplicates a row, and never drops one: trials of earlier runs of the sweep
(another grid) stay, with current=False."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from library.checkpoint import CHECKPOINTS, load_checkpoint
from library.files import atomic_write, read_json, write_json
from library.metrics.coverage import detect_mode_collapse
from library.sweep import RECORD, Sweep
from library.trial import METRICS, STATUS, Status, Trial, read_status


def trial_row(trial: Trial, run_dir: Path, metric: str) -> dict:
    status = read_status(run_dir)
    final = status.get("final", {})
    history = read_json(run_dir / METRICS, [])
    checkpoints = sorted((run_dir / CHECKPOINTS).glob("epoch_*.pt"))
    return {
        "trial": trial.id, **trial.params,
        "status": status.get("status", Status.NOT_RUN),
        "reason": (status.get("reason") or "").split("\n")[0],
        "epochs": status.get("epoch", 0),
        metric: final.get(metric),
        f"best_{metric}": status.get(f"best_{metric}"),
        "best_epoch": status.get("best_epoch"),
        # sample-quality columns, for jobs that score generated samples
        **{k: final[k] for k in (f"{metric}_n_fake", "modes_covered") if k in final},
        "mode_collapse": detect_mode_collapse(history, metric, status.get("mode", "min")),
        **{k: v for k, v in final.items() if k.startswith("loss")},
        "wall_s": status.get("elapsed_s"),
        "startup_s": status.get("startup_s"),
        "checkpoint": str(checkpoints[-1]) if checkpoints else "",
        "run_dir": str(run_dir),
    }


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
    return [{"trial": trial.id, "epoch": entry["epoch"], "metric": k, "value": v}
            for entry in read_json(run_dir / METRICS, []) for k, v in entry.items() if k != "epoch"]


def earlier_trials(sweep: Sweep, current: set[str], run_root: Path) -> list[Trial]:
    """Trials of earlier runs of this sweep (another grid, or one narrowed by an override): the run dirs under
    run_root outside `current` that hold a checkpoint or a status; their params are read from the config stored
    in the latest readable checkpoint (None where there is none)."""
    found = []
    for run_dir in sorted(p for p in run_root.glob("*") if p.is_dir() and p.name not in current):
        if not any((run_dir / CHECKPOINTS).glob("epoch_*.pt")) and not (run_dir / STATUS).exists():
            continue  # not a trial's run dir (Slurm logs, Ray's files), or a trial that never started
        config = (load_checkpoint(run_dir) or {}).get("config", {})
        found.append(Trial(run_dir.name, {k: config.get(k) for k in sweep.params}, config))
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
            atomic_write(out_dir / "samples" / f"{t.id}.png", lambda tmp, grid=grid: shutil.copyfile(grid, tmp))
        rows.append(row)
    table = pd.DataFrame(rows)
    history = pd.DataFrame(long, columns=["trial", "epoch", "metric", "value"])
    write_frame(table, out_dir / "trials")
    write_frame(history, out_dir / "curves")
    write_json(out_dir / RECORD, sweep.record())
    return table


def write_frame(frame: pd.DataFrame, stem: Path) -> None:
    atomic_write(stem.with_suffix(".csv"), lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write(stem.with_suffix(".parquet"), lambda tmp: frame.to_parquet(tmp, index=False))


def display_columns(table: pd.DataFrame) -> list[str]:
    """The columns a terminal table shows: no paths, reasons or losses (they are in the files)."""
    return [c for c in table.columns
            if c not in ("checkpoint", "run_dir", "reason", "mode_collapse", "samples_epoch") and not c.startswith("loss")]


def print_summary(table: pd.DataFrame, metric: str, mode: str) -> None:
    key = f"best_{metric}"
    shown = table.sort_values(key, ascending=mode == "min", na_position="last")
    cols = display_columns(shown)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(shown[cols].to_string(index=False))
    for _, row in shown[shown.status.isin(["failed", "diverged"])].iterrows():
        print(f"{row.trial} {row.status}: {row.reason}")
    for _, row in shown[shown.get("mode_collapse", pd.Series("", index=shown.index)).fillna("") != ""].iterrows():
        print(f"{row.trial} mode collapse: {row.mode_collapse}")


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


def main(argv: list[str] | None = None) -> None:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m library.results")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="combine the trial tables of several sweeps into one")
    cmp.add_argument("sweeps", nargs="+")
    cmp.add_argument("--results-dir", type=Path, default=Path("results"))
    cmp.add_argument("--out", type=Path, help="also write the combined table here (.csv or .parquet)")
    args = parser.parse_args(argv)
    try:
        table = compare(args.sweeps, args.results_dir)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if args.out:
        write = table.to_parquet if args.out.suffix == ".parquet" else table.to_csv
        atomic_write(args.out, lambda tmp: write(tmp, index=False))
    cols = display_columns(table)
    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.float_format", "{:.4g}".format):
        print(table[cols].to_string(index=False))


if __name__ == "__main__":
    main()
