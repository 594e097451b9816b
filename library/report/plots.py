"""The report's PNG plots (matplotlib): best metric against each swept param, the metric per epoch, the losses per
epoch. Each plot says so in its own panel when there is nothing to draw, so the page never has a hole."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")  # no display on a login or compute node; only PNG files are written
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
import pandas as pd  # noqa: E402

from library.files import atomic_write  # noqa: E402
from library.report.format import fmt, short_names, sort_key  # noqa: E402
from library.report.load import GOOD, SweepInfo  # noqa: E402
from library.sweep import BIG  # noqa: E402

PARAM_LOG_SPAN = 20.0  # a param axis goes log from 20x: lr {2e-4, 1e-3, 1e-2} spans 50x and reads best on log
METRIC_LOG_SPAN = 10.0  # metric axes go log from 10x: a few collapsed trials must not flatten the good ones
CURVES_K = 5  # of more than BIG trials, the curves of the best this many are drawn in colour, the rest faint
STYLE = {"font.size": 11, "axes.titlesize": 13, "axes.labelsize": 11, "legend.fontsize": 9,
         "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}


def trial_colours(trials: pd.DataFrame) -> dict[str, Any]:
    """One colour per trial, the same in every curve plot; distinct hues up to 20 trials, a gradient beyond; for
    more than BIG, distinct hues for the first CURVES_K (the best) and none for the rest (drawn faint)."""
    n = max(len(trials), 1)
    if n > BIG:
        return {t: plt.get_cmap("tab10")(i) for i, t in enumerate(trials["trial"][:CURVES_K])}
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "viridis")
    return {t: cmap(i if n <= 20 else i / max(n - 1, 1)) for i, t in enumerate(trials["trial"])}


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="#57606a")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


class _PlainLog(matplotlib.ticker.LogFormatter):
    """Log-axis labels as plain numbers: 0.01, 20, 300."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:.4g}"


def _maybe_log(ax, values: Iterable[float], axis: str, span: float = 100.0) -> None:
    """Log scale when every value is positive and they span `span`x or more (2 decades by default)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) >= 2 and (v > 0).all() and v.max() / v.min() >= span:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        which = ax.xaxis if axis == "x" else ax.yaxis  # plain "20", "300", "0.001" rather than 2x10^1
        which.set_major_formatter(_PlainLog())
        which.set_minor_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _ticks_at_values(ax, values: Iterable[float]) -> None:
    """Few distinct x values (a grid): put the ticks exactly on them, unless they would collide."""
    v = np.unique(np.asarray([x for x in values if np.isfinite(x)], dtype=float))
    if not 1 <= len(v) <= 8:
        return
    pos = np.log10(v) if ax.get_xscale() == "log" else v
    if len(v) > 1 and np.diff(pos).min() < 0.1 * (pos.max() - pos.min()):
        return
    ax.set_xticks(v, [fmt(float(x)) for x in v])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _is_numeric(series: pd.Series) -> bool:
    """Whether a param gets a numeric axis: every value a number. Flags (bools) and text are categories."""
    values = series.dropna()
    if len(values) == 0 or pd.api.types.is_bool_dtype(values):
        return False
    if values.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return False
    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def _legend(ax, title: str | None = None, n: int = 0) -> None:
    """The legend outside the axes, on the right: inside, the labels of many trials would cover their lines."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  fontsize=9 if n <= 12 else 7, ncol=1 if n <= 25 else 2)


def _metric_vs_param_axes(sweep: SweepInfo, param: str, title: str):
    """The figure and axes of a plot of the best metric (y) against a param (x)."""
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    ax.set_title(title)
    ax.set_xlabel(param)
    ax.set_ylabel(f"best {sweep.metric} ({sweep.better})")
    return fig, ax


def plot_metric_vs_param(sweep: SweepInfo, trials: pd.DataFrame, param: str, path: Path) -> Path:
    """Best metric per trial against one param, one line per combination of the other params; failed and
    diverged trials that have a value are crossed out in red, the best one circled."""
    short = short_names(sweep.params)
    others = [p for p in sweep.params if p != param]
    ok = trials[trials["score"].notna() & trials[param].notna()]
    missing = len(trials) - len(ok)
    with plt.rc_context(STYLE):
        fig, ax = _metric_vs_param_axes(sweep, param, f"best {sweep.metric} vs {param}")
        if ok.empty:
            _empty(ax, f"no trial reported {sweep.metric}")
            return _save(fig, path)
        x_of = _param_axis(ax, trials[param])
        many = len(trials) > BIG
        if many:
            _scatter(ax, ok[ok["status"].isin(GOOD)], param, others, x_of, short)
        else:
            alpha = 0.9 if others else None  # one line alone is drawn opaque
            for sub, colour, label in _lines(ok, param, others, x_of, short):
                ax.plot(sub["_x"], sub["score"], "o-", color=colour, label=label, ms=7, lw=1.5, alpha=alpha)
            _lines_legend(ax, others, short, ok)
        _maybe_log(ax, ok["score"], "y", span=METRIC_LOG_SPAN)
        bad = ok[~ok["status"].isin(GOOD)]
        if len(bad):
            ax.scatter([x_of(v) for v in bad[param]], bad["score"], marker="x", s=40 if many else 110,
                       color="#cf222e", lw=1.5 if many else 2.2, zorder=6,
                       label=f"diverged or failed ({len(bad)})" if many else None)
            if many:  # one legend entry, not a label per point
                ax.legend(loc="best", fontsize=9, framealpha=0.8)
            else:
                for _, r in bad.iterrows():
                    ax.annotate(r["status"], (x_of(r[param]), r["score"]), textcoords="offset points",
                                xytext=(8, -12), fontsize=8, color="#cf222e")
        best = ok.iloc[0]  # sorted best first
        if best["status"] in GOOD:
            ax.scatter([x_of(best[param])], [best["score"]], s=260, facecolors="none", edgecolors="k", lw=1.5,
                       zorder=5)
            ax.annotate("best", (x_of(best[param]), best["score"]), textcoords="offset points", xytext=(10, 8),
                        fontsize=9)
        if missing:
            ax.annotate(f"{missing} trial(s) without a value not shown", xy=(1, 0), xycoords="axes fraction",
                        xytext=(0, -46), textcoords="offset points", ha="right", va="top", fontsize=8,
                        color="#cf222e")
        return _save(fig, path)


def _scatter(ax, rows: pd.DataFrame, param: str, others: list[str], x_of, short: dict[str, str]) -> None:
    """Many trials (a random search): one point each, as lines through scattered draws would be noise; coloured
    by the other param where there is exactly one and it is numeric (with its colour bar)."""
    x = [x_of(v) for v in rows[param]]
    by = others[0] if len(others) == 1 and _is_numeric(rows[others[0]]) else None
    if by is None:
        ax.scatter(x, rows["score"], s=14, color="C0", alpha=0.5, lw=0)
        return
    values = pd.to_numeric(rows[by], errors="coerce")
    wide = len(values) and (values > 0).all() and values.max() / values.min() >= PARAM_LOG_SPAN
    points = ax.scatter(x, rows["score"], c=values, cmap="viridis", norm=LogNorm() if wide else None, s=14,
                        alpha=0.75, lw=0)
    ax.figure.colorbar(points, ax=ax, label=short[by], pad=0.02)


def _param_axis(ax, values: pd.Series):
    """Sets up the x axis of a param (numeric, log where it spans PARAM_LOG_SPAN, or categories); returns the
    function from a param value to its x."""
    if _is_numeric(values):
        _maybe_log(ax, pd.to_numeric(values, errors="coerce"), "x", span=PARAM_LOG_SPAN)
        _ticks_at_values(ax, pd.to_numeric(values, errors="coerce"))
        ax.margins(x=0.08)
        return float
    cats = sorted({str(v) for v in values.dropna()}, key=sort_key)
    pos = {c: i for i, c in enumerate(cats)}
    ax.set_xticks(range(len(cats)), cats)
    ax.set_xlim(-0.5, len(cats) - 0.5)
    return lambda v: pos[str(v)]


def _lines(rows: pd.DataFrame, param: str, others: list[str], x_of, short: dict[str, str]):
    """The rows split into one line per combination of the other params, each sorted by x (column `_x`), with its
    colour and legend label ("" with no other param)."""
    if not others:
        yield rows.assign(_x=[x_of(v) for v in rows[param]]).sort_values("_x"), "C0", None
        return
    key = rows[others].astype(str).agg(" ".join, axis=1) if len(others) > 1 else rows[others[0]]
    groups = sorted(key.unique(), key=sort_key)
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "viridis")
    for i, g in enumerate(groups):
        sub = rows[key == g]
        sub = sub.assign(_x=[x_of(v) for v in sub[param]]).sort_values("_x")
        label = ", ".join(f"{short[o]}={fmt(sub.iloc[0][o])}" for o in others)
        yield sub, cmap(i if len(groups) <= 10 else i / max(len(groups) - 1, 1)), label


def _lines_legend(ax, others: list[str], short: dict[str, str], rows: pd.DataFrame) -> None:
    """The legend of _lines: inside the axes for a few lines, outside for many."""
    if not others:
        return
    n = len(rows[others].drop_duplicates())
    if n <= 8:
        ax.legend(title=", ".join(short[o] for o in others), loc="best", fontsize=9, framealpha=0.8)
    else:
        _legend(ax, title=", ".join(short[o] for o in others), n=n)


def plot_configs_vs_param(sweep: SweepInfo, trials: pd.DataFrame, configs: pd.DataFrame, param: str,
                          path: Path) -> Path:
    """With replicates: each configuration's mean best metric against one param, its 95% confidence interval as
    an error bar, one line per combination of the other params, each completed replicate a faint point at the
    same x; the best configuration circled."""
    short = short_names(sweep.params)
    others = [p for p in sweep.params if p != param]
    col = f"best_{sweep.metric}"
    ok = configs[configs[f"{col}_mean"].notna() & configs[param].notna()]
    done = trials[(trials["status"] == "completed") & trials["score"].notna()]
    with plt.rc_context(STYLE):
        fig, ax = _metric_vs_param_axes(sweep, param, f"best {sweep.metric} vs {param}: mean ± 95% CI")
        if ok.empty:
            _empty(ax, f"no configuration has a completed replicate with {sweep.metric}")
            return _save(fig, path)
        x_of = _param_axis(ax, configs[param])
        many = len(configs) > BIG  # a random search's configurations: points, not lines, and no legend
        for sub, colour, label in _lines(ok, param, [] if many else others, x_of, short):
            mean = sub[f"{col}_mean"]
            below, above = (mean - sub[f"{col}_ci95_low"]).fillna(0), (sub[f"{col}_ci95_high"] - mean).fillna(0)
            style = dict(fmt="o", ms=4, lw=1, capsize=2, alpha=0.6) if many else \
                dict(fmt="o-", ms=7, lw=1.5, capsize=4, alpha=0.9)
            ax.errorbar(sub["_x"], mean, yerr=[below, above], color=colour, label=label, **style)
            reps = done[done["config"].isin(sub["config"])]
            ax.scatter([x_of(v) for v in reps[param]], reps["score"], s=18, color=colour, alpha=0.35, zorder=4)
        _lines_legend(ax, [] if many else others, short, ok)
        _maybe_log(ax, pd.concat([ok[f"{col}_ci95_low"], ok[f"{col}_ci95_high"], done["score"]]), "y",
                   span=METRIC_LOG_SPAN)
        best = ok.iloc[0]  # configs.csv is sorted best mean first
        ax.scatter([x_of(best[param])], [best[f"{col}_mean"]], s=260, facecolors="none", edgecolors="k", lw=1.5,
                   zorder=5)
        ax.annotate("best mean", (x_of(best[param]), best[f"{col}_mean"]), textcoords="offset points",
                    xytext=(10, 8), fontsize=9)
        return _save(fig, path)


def per(curves: pd.DataFrame, x: str) -> pd.DataFrame:
    """The long table's per-epoch rows (x="epoch") or its per-step rows (x="step", train.log_every_steps)."""
    steps = curves["step"] if "step" in curves else pd.Series(np.nan, index=curves.index)
    return curves[steps.notna()] if x == "step" else curves[steps.isna()]


def _per_trial_lines(ax, trials: pd.DataFrame, curves: pd.DataFrame, metric: str, colours: dict,
                     span: float = 100.0, x: str = "epoch") -> int:
    """One line per trial (dashed for failed and diverged ones) against x (epoch or step); for more than BIG
    trials, those in `colours` (the best) so and the others as faint lines under one legend entry. How many were
    drawn."""
    drawn = 0
    sub = per(curves, x)
    sub = sub[sub["metric"] == metric]
    lines = {t: c.sort_values(x) for t, c in sub.groupby("trial", sort=False)}
    many = len(trials) > BIG
    for _, row in trials[trials["trial"].isin(colours)].iterrows():
        c = lines.get(row["trial"])
        if c is None:
            continue
        bad = row["status"] not in GOOD
        label = row["label"] + (f" ({row['status']})" if row["status"] != "completed" else "")
        ax.plot(c[x], c["value"], "--" if bad else "-", marker="o" if x == "epoch" else None, ms=3.5, lw=1.6,
                color=colours[row["trial"]], label=label, alpha=0.9, zorder=3 if many else None)
        drawn += 1
    faint = [c[[x, "value"]].to_numpy(float) for t, c in lines.items() if t not in colours] if many else []
    if faint:  # one collection: 1,000 Line2D artists take seconds to draw
        ax.add_collection(LineCollection(faint, colors="#8c959f", linewidths=0.7, alpha=0.3, zorder=1,
                                         label=f"the other {len(faint)} trials"))
        ax.autoscale_view()
        drawn += len(faint)
    if drawn:
        _maybe_log(ax, sub["value"], "y", span=span)
        if len(sub) and sub[x].max() <= 20:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    return drawn


def plot_metric_curves(sweep: SweepInfo, trials: pd.DataFrame, curves: pd.DataFrame, path: Path) -> Path:
    colours = trial_colours(trials)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8.5, 4.8))
        ax.set_title(f"{sweep.metric} per epoch ({sweep.better})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{sweep.metric} ({sweep.better})")
        if not _per_trial_lines(ax, trials, curves, sweep.metric, colours, span=METRIC_LOG_SPAN):
            _empty(ax, f"no trial reported {sweep.metric} per epoch")
            fig.set_size_inches(8.5, 2.4)
        _legend(ax, *_best_title(sweep, trials))
        return _save(fig, path)


def _best_title(sweep: SweepInfo, trials: pd.DataFrame) -> tuple[str | None, int]:
    """The curves' legend title and its number of entries: for more than BIG trials, the coloured ones are the
    best CURVES_K (or the first, in trial order, where the scores cannot be ranked)."""
    if len(trials) <= BIG:
        return None, len(trials)
    return (f"the first {CURVES_K}" if sweep.unranked else f"the best {CURVES_K} by {sweep.metric}"), CURVES_K + 1


def loss_axis(curves: pd.DataFrame) -> str:
    """Losses are drawn per step where trials logged them per step (train.log_every_steps), else per epoch."""
    steps = per(curves, "step")
    return "step" if steps["metric"].astype(str).str.startswith("loss").any() else "epoch"


def plot_loss_curves(sweep: SweepInfo, trials: pd.DataFrame, curves: pd.DataFrame, path: Path) -> Path:
    colours = trial_colours(trials)
    x = loss_axis(curves)
    losses = sorted(m for m in per(curves, x)["metric"].unique() if str(m).startswith("loss"))[:6]
    with plt.rc_context(STYLE):
        if not losses:
            fig, ax = plt.subplots(figsize=(8.5, 3.5))
            ax.set_title("losses per epoch")
            _empty(ax, "no trial reported a loss per epoch")
            return _save(fig, path)
        fig, axes = plt.subplots(1, len(losses), figsize=(5.2 * len(losses), 4.4), squeeze=False)
        for ax, loss in zip(axes[0], losses):
            ax.set_title(f"{loss} per {x}")
            ax.set_xlabel(f"training {x}" if x == "step" else x)
            ax.set_ylabel(loss)
            _per_trial_lines(ax, trials, curves, loss, colours, x=x)
        _legend(axes[0][-1], *_best_title(sweep, trials))
        fig.tight_layout()
        return _save(fig, path)


def make_plots(sweep: SweepInfo, trials: pd.DataFrame, curves: pd.DataFrame, plot_dir: Path,
               configs: pd.DataFrame | None = None) -> list[tuple[str, Path]]:
    """Writes every plot into plot_dir; (title, path) of each, in the order the page shows them. With replicates
    (`configs`), the metric-vs-param plots show configurations with error bars."""
    out = []
    for p in sweep.params:
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in p)
        path = plot_dir / f"metric_vs_{safe}.png"
        if configs is None:
            out.append((f"Best {sweep.metric} vs {p}", plot_metric_vs_param(sweep, trials, p, path)))
        else:
            out.append((f"Best {sweep.metric} vs {p}: mean ± 95% CI per configuration, replicates as faint points",
                        plot_configs_vs_param(sweep, trials, configs, p, path)))
    out.append((f"{sweep.metric} per epoch", plot_metric_curves(sweep, trials, curves,
                                                                plot_dir / f"curves_{sweep.metric}.png")))
    out.append((f"Losses per {loss_axis(curves)}", plot_loss_curves(sweep, trials, curves,
                                                                   plot_dir / "curves_losses.png")))
    return out

