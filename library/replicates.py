"""A sweep's configurations over their replicates (library.sweep's `repeats`): the mean, standard deviation and 95%
confidence interval of the metric, and which configurations are distinguishable from the best.

Only completed replicates are averaged: a failed, diverged or unfinished replicate is counted in `statuses` and
never averaged in. The confidence interval is Student's t over the completed replicates (mean ± t(0.975, n-1) *
std / sqrt(n), std with ddof=1). The best configuration is the one with the best mean of its replicates' best
metric among those with 2 or more completed replicates (among all, where none has 2: a lone lucky replicate
must not outrank a mean with a spread); every other one is compared with it by Welch's t-test (two-sided,
unequal variances: scipy.stats.ttest_ind(equal_var=False)) on those same values, at 5%. Each comparison is a
test of its own (no correction for the number of configurations), and the best was picked by looking at the
data: "worse" is the claim to trust, "not distinguishable from the best" says the data cannot order the two,
not that they are equal.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from library.trial import AT_BEST, Status

ALPHA = 0.05
"""Significance level of the comparison with the best."""
BEST = "best"
SAME = "not distinguishable from the best"
FEW = "too few replicates"
"""The verdict where either side has fewer than 2 completed replicates: Welch's t-test needs a variance."""
STATS = ("mean", "std", "ci95_low", "ci95_high")
STATUS_ORDER = [str(s) for s in (Status.COMPLETED, Status.RUNNING, Status.QUEUED, Status.NOT_RUN, Status.STOPPED,
                                 Status.DIVERGED, Status.FAILED)]


def mean_ci(values) -> dict[str, float]:
    """mean, std (ddof=1), and the two ends of the t-distribution 95% confidence interval of the mean; NaN where
    there are too few values (no value: all NaN; one value: its mean, the rest NaN)."""
    from scipy import stats  # a second or two to import: not for the report page, which only formats configs.csv

    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return dict.fromkeys(STATS, math.nan)
    mean = float(x.mean())
    if len(x) == 1:
        return {"mean": mean, "std": math.nan, "ci95_low": math.nan, "ci95_high": math.nan}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, len(x) - 1)) * std / math.sqrt(len(x))
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test between two samples (each of 2 or more values). Two samples that are
    each constant and equal cannot be told apart: p = 1 (scipy gives NaN there)."""
    from scipy import stats

    p = float(stats.ttest_ind(np.asarray(a, float), np.asarray(b, float), equal_var=False).pvalue)
    return 1.0 if math.isnan(p) else p


def verdict(values, best_values, is_best: bool) -> tuple[str, float]:
    """A configuration's verdict against the best one, from both sides' completed replicates' best-metric values,
    and the p-value (NaN where no test was made). The best has the better mean, so a difference is "worse"."""
    if is_best:
        return BEST, math.nan
    if len(values) < 2 or len(best_values) < 2:
        return FEW, math.nan
    p = welch_p(values, best_values)
    return (f"worse (p={p:.2g})" if p < ALPHA else SAME), p


def status_counts(statuses) -> str:
    """"completed 2, failed 1": every status of a configuration's replicates, completed first."""
    counts = Counter(s for s in statuses if isinstance(s, str))  # as value_counts: a missing status is not counted
    keys = [k for k in STATUS_ORDER if k in counts] + sorted(k for k in counts if k not in STATUS_ORDER)
    return ", ".join(f"{k} {int(counts[k])}" for k in keys)


def config_table(trials: pd.DataFrame, metric: str, mode: str, params: list[str],
                 key: list[str] | None = None) -> pd.DataFrame:
    """One row per configuration (rows of `trials` sharing `key`, by default the `config` column), best mean
    first: key, params, n, statuses, n_ok, mean/std/ci95_low/ci95_high of the final and of the best metric and of
    each test score at the best epoch (NAME_at_best), best and worst replicate (trial ids), p_vs_best and verdict.
    `trials` is a trials.csv table."""
    key = key or ["config"]
    best_col = f"best_{metric}"
    averaged = [metric, best_col, *(c for c in trials.columns if str(c).endswith(AT_BEST))]
    # The columns as arrays once, each configuration as positions into them: pandas calls per configuration cost
    # milliseconds each, seconds for a random search of 1,000.
    numbers = {c: pd.to_numeric(trials[c], errors="coerce").to_numpy(dtype=float) if c in trials
               else np.full(len(trials), np.nan) for c in averaged}
    done = (trials["status"] == str(Status.COMPLETED)).to_numpy()
    ids, statuses = trials["trial"].to_numpy(), trials["status"].to_numpy()
    heads = trials[key + params].to_dict("records")
    codes = trials.groupby(key, sort=False, dropna=False).ngroup().to_numpy()  # in order of first appearance
    groups = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1]) if len(codes) else []
    rows, samples = [], []
    for pos in groups:
        ok = pos[done[pos]]
        row = {**heads[pos[0]], "n": len(pos), "statuses": status_counts(statuses[pos]), "n_ok": len(ok)}
        for col in averaged:
            row.update({f"{col}_{s}": v for s, v in mean_ci(finite_at(numbers[col], ok)).items()})
        scored = ok[~np.isnan(numbers[best_col][ok])]
        order = scored[np.argsort(numbers[best_col][scored] * (1 if mode == "min" else -1), kind="stable")]
        row["best_replicate"] = ids[order[0]] if len(order) else ""
        row["worst_replicate"] = ids[order[-1]] if len(order) else ""
        rows.append(row)
        samples.append(finite_at(numbers[best_col], ok))
    table = pd.DataFrame(rows, columns=[*key, *params, "n", "statuses", "n_ok",
                                        *(f"{c}_{s}" for c in averaged for s in STATS),
                                        "best_replicate", "worst_replicate"])
    means = table[f"{best_col}_mean"]
    comparable = table["n_ok"] >= 2
    means = means.where(comparable) if comparable.any() else means
    best = (means.idxmin() if mode == "min" else means.idxmax()) if means.notna().any() else None
    judged = [verdict(v, samples[best], i == best) if best is not None else (FEW, math.nan)
              for i, v in enumerate(samples)]
    table["p_vs_best"] = [p for _, p in judged]
    table["verdict"] = [v for v, _ in judged]
    order = table.assign(_best=table.index == best).sort_values(
        ["_best", f"{best_col}_mean"], ascending=[False, mode == "min"], na_position="last", kind="stable")
    return order.drop(columns="_best").reset_index(drop=True)


def finite_at(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The finite ones of values[positions]: an inf or NaN is never averaged."""
    picked = values[positions]
    return picked[np.isfinite(picked)]


def plus_minus(row: pd.Series, col: str) -> str | None:
    """A configuration's `col` as "mean ± half-width of its 95% CI" (4 significant digits), the mean alone where
    one replicate gives no interval, None where no replicate completed."""
    mean, low, high = row.get(f"{col}_mean"), row.get(f"{col}_ci95_low"), row.get(f"{col}_ci95_high")
    if mean is None or pd.isna(mean):
        return None
    if low is None or pd.isna(low) or pd.isna(high):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {(high - low) / 2:.4g}"
