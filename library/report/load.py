"""Reading a sweep's results folder (what `library.results` wrote) into what the page and the plots show."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from library.files import read_json
from library.fingerprint import not_comparable
from library.report.format import labels
from library.trial import AT_BEST, Status

GOOD = tuple(s.value for s in Status if s.ranked)  # ranked by metric; every other status goes last


class SweepInfo:
    """What the report needs to know about a sweep, from sweep.json (keys name, job, metric, mode, params, base),
    with fallbacks where it is missing: a results folder copied without it still gets a report."""

    def __init__(self, results_dir: Path, trials: pd.DataFrame):
        spec = read_json(results_dir / "sweep.json", {}) or {}
        self.name: str = str(spec.get("name") or results_dir.name)
        self.job: str = str(spec.get("job") or "?")
        metric = spec.get("metric")
        if not metric:  # guess from a best_* column
            metric = next((c[5:] for c in trials.columns if c.startswith("best_") and c != "best_epoch"), "metric")
        self.metric: str = str(metric)
        self.mode: str = "max" if spec.get("mode") == "max" else "min"
        # A param no trial has a column for (an old table) would be a plot of nothing.
        self.params: list[str] = [p for p in spec.get("params") or [] if p in trials.columns]
        self.base: dict = spec.get("base") or {}
        self.repeats: int = int(spec.get("repeats") or 1)
        # The test scores at each trial's best epoch (chosen on `metric`, a validation score): the numbers to quote.
        self.at_best: list[str] = [c for c in trials.columns if str(c).endswith(AT_BEST)]
        self.unranked: str = not_comparable(trials)  # why the trials' scores cannot be ranked ("" if they can)
        # The real-vs-real floor of the metric: what two halves of the real data score against each other.
        floors = trials[[f"{self.metric}_floor", f"{self.metric}_floor_n"]].dropna().drop_duplicates() \
            if {f"{self.metric}_floor", f"{self.metric}_floor_n"} <= set(trials.columns) else pd.DataFrame()
        self.floors: list[tuple[float, int]] = [(float(f), int(n)) for f, n in floors.itertuples(index=False)]

    @property
    def better(self) -> str:
        return "lower is better" if self.mode == "min" else "higher is better"


def read_table(stem: Path) -> pd.DataFrame | None:
    """stem.csv, else stem.parquet (library.results writes either), else None."""
    if stem.with_suffix(".csv").exists():
        try:
            return pd.read_csv(stem.with_suffix(".csv"))
        except pd.errors.EmptyDataError:  # the CSV of a table of no rows and no columns is an empty file
            return None
    if stem.with_suffix(".parquet").exists():
        return pd.read_parquet(stem.with_suffix(".parquet"))
    return None


def load(results_dir: Path) -> tuple[SweepInfo, pd.DataFrame, pd.DataFrame]:
    """sweep, trials (sorted best first, with `score`, `rank`, `label` columns) and curves (finite values only;
    `step` is NaN on per-epoch rows and set on train.log_every_steps' per-step rows)."""
    trials = read_table(results_dir / "trials")
    if trials is None or "trial" not in trials:  # no trial (yet): the page says so rather than failing
        trials = pd.DataFrame(columns=["trial", "status", "reason"])
    curves = read_table(results_dir / "curves")
    if curves is None or not {"trial", "epoch", "metric", "value"} <= set(curves.columns):
        curves = pd.DataFrame(columns=["trial", "epoch", "metric", "value"])
    sweep = SweepInfo(results_dir, trials)

    trials = trials.copy()
    trials["trial"] = trials["trial"].astype(str)
    for col, default in (("status", "not run"), ("reason", ""), ("mode_collapse", "")):
        values = trials[col] if col in trials else pd.Series(default, index=trials.index)
        trials[col] = [default if pd.isna(v) or str(v) == "" else str(v) for v in values]
    # Ranked by best_METRIC; where a table has none for a trial, its final value still places it.
    best = numeric(trials, f"best_{sweep.metric}")
    trials["score"] = best.fillna(numeric(trials, sweep.metric))
    trials["_group"] = (~trials.status.isin(GOOD) | trials.score.isna()).astype(int)
    if sweep.unranked:  # scores measured differently: in trial order, without ranks
        trials = trials.sort_values("trial", kind="stable").reset_index(drop=True)
        trials["rank"] = np.nan
    else:
        trials = trials.sort_values(["_group", "score"], ascending=[True, sweep.mode == "min"],
                                    na_position="last", kind="stable").reset_index(drop=True)
        trials["rank"] = range(1, len(trials) + 1)
    trials["label"] = labels(trials, sweep.params)

    curves = curves.copy()
    curves["trial"] = curves["trial"].astype(str)
    curves["epoch"] = pd.to_numeric(curves["epoch"], errors="coerce")
    curves["step"] = pd.to_numeric(curves["step"], errors="coerce") if "step" in curves else np.nan  # per-step rows
    curves["value"] = pd.to_numeric(curves["value"], errors="coerce")
    curves = curves[np.isfinite(curves["epoch"]) & np.isfinite(curves["value"])]
    return sweep, trials, curves


def load_configs(results_dir: Path, sweep: SweepInfo) -> pd.DataFrame | None:
    """configs.csv (library.replicates: one row per configuration, best mean first, with its `label`) when the
    sweep ran replicates and wrote it; else None, and the report shows trials only, as without replicates."""
    configs = read_table(results_dir / "configs") if sweep.repeats > 1 else None
    if configs is None or "config" not in configs:
        return None
    configs = configs.copy()
    configs["config"] = configs["config"].astype(str)
    configs["label"] = labels(configs.rename(columns={"config": "trial"}), sweep.params)
    return configs


def numeric(frame: pd.DataFrame, col: str) -> pd.Series:
    """The column as floats, with NaN for text, inf and a missing column: a diverged inf must not rank first."""
    if col not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    values = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return values.where(np.isfinite(values))
