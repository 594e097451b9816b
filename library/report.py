"""The self-contained HTML report of a sweep: `results/SWEEP/report.html` plus PNG plots in `results/SWEEP/plots/`.

Reads what `library.results` wrote (sweep.json, trials.csv, curves.csv, samples/TRIAL.png) and draws:
  plots/metric_vs_PARAM.png  best metric per trial against each swept param (coloured by the other param)
  plots/curves_METRIC.png    the sweep metric per epoch, one line per trial
  plots/curves_losses.png    loss_* per epoch, one panel per loss
The HTML embeds every image as a base64 data URI: no network, no JS, readable offline or attached to a mail.

    python -m library.report gan_betas [--results-dir results]
"""
from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import io
import math
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from library.files import atomic_write, read_json  # noqa: E402

REPORT = "report.html"
PLOTS = "plots"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GOOD = ("completed", "running", "stopped")  # ranked by metric; every other status goes last
STATUS_COLOURS = {"completed": "#1a7f37", "running": "#0969da", "stopped": "#8250df", "diverged": "#bc4c00",
                  "failed": "#cf222e", "not run": "#6e7781"}
PARAM_LOG_SPAN = 20.0  # a param axis goes log from 20x: lr {2e-4, 1e-3, 1e-2} spans 50x and reads best on log
METRIC_LOG_SPAN = 10.0  # metric axes go log from 10x: a few collapsed trials must not flatten the good ones
STYLE = {"font.size": 11, "axes.titlesize": 13, "axes.labelsize": 11, "legend.fontsize": 9,
         "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}


# ---------------------------------------------------------------------------------------------- loading
class SweepInfo:
    """What the report needs to know about a sweep, from sweep.json (with fallbacks when it is missing)."""

    def __init__(self, results_dir: Path, trials: pd.DataFrame):
        spec = read_json(results_dir / "sweep.json", {}) or {}
        self.name: str = str(spec.get("name") or results_dir.name)
        self.job: str = str(spec.get("job") or "?")
        metric = spec.get("metric")
        if not metric:  # guess from a best_* column
            metric = next((c[5:] for c in trials.columns if c.startswith("best_") and c != "best_epoch"), "metric")
        self.metric: str = str(metric)
        self.mode: str = "max" if spec.get("mode") == "max" else "min"
        self.params: list[str] = [p for p in spec.get("params") or [] if p in trials.columns]
        self.base: dict = spec.get("base") or {}

    @property
    def better(self) -> str:
        return "lower is better" if self.mode == "min" else "higher is better"


def _read_table(stem: Path) -> pd.DataFrame | None:
    if stem.with_suffix(".csv").exists():
        return pd.read_csv(stem.with_suffix(".csv"))
    if stem.with_suffix(".parquet").exists():
        return pd.read_parquet(stem.with_suffix(".parquet"))
    return None


def load(results_dir: Path) -> tuple[SweepInfo, pd.DataFrame, pd.DataFrame]:
    """sweep, trials (sorted best first, with `score`, `rank`, `label` columns) and curves."""
    trials = _read_table(results_dir / "trials")
    if trials is None:
        trials = pd.DataFrame(columns=["trial", "status", "reason"])
    curves = _read_table(results_dir / "curves")
    if curves is None or not {"trial", "epoch", "metric", "value"} <= set(curves.columns):
        curves = pd.DataFrame(columns=["trial", "epoch", "metric", "value"])
    sweep = SweepInfo(results_dir, trials)

    trials = trials.copy()
    trials["trial"] = trials["trial"].astype(str)
    for col, default in (("status", "not run"), ("reason", ""), ("mode_collapse", "")):
        values = trials[col] if col in trials else pd.Series(default, index=trials.index)
        trials[col] = [default if pd.isna(v) or str(v) == "" else str(v) for v in values]
    best = _numeric(trials, f"best_{sweep.metric}")
    trials["score"] = best.fillna(_numeric(trials, sweep.metric))
    trials["_group"] = (~trials.status.isin(GOOD) | trials.score.isna()).astype(int)
    trials = trials.sort_values(["_group", "score"], ascending=[True, sweep.mode == "min"],
                                na_position="last", kind="stable").reset_index(drop=True)
    trials["rank"] = range(1, len(trials) + 1)
    trials["label"] = labels(trials, sweep.params)

    curves = curves.copy()
    curves["trial"] = curves["trial"].astype(str)
    curves["epoch"] = pd.to_numeric(curves["epoch"], errors="coerce")
    curves["value"] = pd.to_numeric(curves["value"], errors="coerce")
    curves = curves[np.isfinite(curves["epoch"]) & np.isfinite(curves["value"])]
    return sweep, trials, curves


def _numeric(frame: pd.DataFrame, col: str) -> pd.Series:
    if col not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    values = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return values.where(np.isfinite(values))


# ---------------------------------------------------------------------------------------------- formatting
def fmt(value: Any) -> str:
    """4 significant digits for floats, '–' for missing."""
    if value is None or (isinstance(value, str) and value == ""):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    return str(value)


def fmt_seconds(value: Any) -> str:
    try:
        s = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(s):
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def short_names(params: list[str]) -> dict[str, str]:
    """'optim.beta1' -> 'beta1' when the last dotted part is unambiguous."""
    last = [p.split(".")[-1] for p in params]
    return {p: (s if last.count(s) == 1 else p) for p, s in zip(params, last)}


def labels(trials: pd.DataFrame, params: list[str]) -> list[str]:
    short = short_names(params)
    out = [", ".join(f"{short[p]}={fmt(row[p])}" for p in params) or row["trial"] for _, row in trials.iterrows()]
    if len(set(out)) < len(out):  # e.g. random search repeats: disambiguate with the id
        out = [f"{lab} [{t}]" if lab != t else lab for lab, t in zip(out, trials["trial"])]
    return out


def trial_colours(trials: pd.DataFrame) -> dict[str, Any]:
    n = max(len(trials), 1)
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "viridis")
    return {t: cmap(i if n <= 20 else i / max(n - 1, 1)) for i, t in enumerate(trials["trial"])}


# ---------------------------------------------------------------------------------------------- plots
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
    values = series.dropna()
    if len(values) == 0 or pd.api.types.is_bool_dtype(values):
        return False
    if values.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return False
    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def _sort_key(value: Any) -> tuple:
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def _legend(ax, title: str | None = None, n: int = 0) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  fontsize=9 if n <= 12 else 7, ncol=1 if n <= 25 else 2)


def plot_metric_vs_param(sweep: SweepInfo, trials: pd.DataFrame, param: str, path: Path) -> Path:
    short = short_names(sweep.params)
    others = [p for p in sweep.params if p != param]
    ok = trials[trials["score"].notna() & trials[param].notna()]
    missing = len(trials) - len(ok)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.2, 4.4))
        ax.set_title(f"best {sweep.metric} vs {param}")
        ax.set_xlabel(param)
        ax.set_ylabel(f"best {sweep.metric} ({sweep.better})")
        if ok.empty:
            _empty(ax, f"no trial reported {sweep.metric}")
            return _save(fig, path)
        numeric = _is_numeric(trials[param])
        if numeric:
            x_of = lambda v: float(v)  # noqa: E731
            _maybe_log(ax, pd.to_numeric(trials[param], errors="coerce"), "x", span=PARAM_LOG_SPAN)
            _ticks_at_values(ax, pd.to_numeric(trials[param], errors="coerce"))
            ax.margins(x=0.08)
        else:
            cats = sorted({str(v) for v in trials[param].dropna()}, key=_sort_key)
            pos = {c: i for i, c in enumerate(cats)}
            x_of = lambda v: pos[str(v)]  # noqa: E731
            ax.set_xticks(range(len(cats)), cats)
            ax.set_xlim(-0.5, len(cats) - 0.5)
        if others:
            key = ok[others].astype(str).agg(" ".join, axis=1) if len(others) > 1 else ok[others[0]]
            groups = sorted(key.unique(), key=_sort_key)
            cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "viridis")
            for i, g in enumerate(groups):
                sub = ok[key == g]
                sub = sub.assign(_x=[x_of(v) for v in sub[param]]).sort_values("_x")
                label = ", ".join(f"{short[o]}={fmt(sub.iloc[0][o])}" for o in others)
                colour = cmap(i if len(groups) <= 10 else i / max(len(groups) - 1, 1))
                ax.plot(sub["_x"], sub["score"], "o-", color=colour, label=label, ms=7, lw=1.5, alpha=0.9)
            if len(groups) <= 8:
                ax.legend(title=", ".join(short[o] for o in others), loc="best", fontsize=9, framealpha=0.8)
            else:
                _legend(ax, title=", ".join(short[o] for o in others), n=len(groups))
        else:
            sub = ok.assign(_x=[x_of(v) for v in ok[param]]).sort_values("_x")
            ax.plot(sub["_x"], sub["score"], "o-", color="C0", ms=7, lw=1.5)
        _maybe_log(ax, ok["score"], "y", span=METRIC_LOG_SPAN)
        bad = ok[~ok["status"].isin(GOOD)]
        if len(bad):
            ax.scatter([x_of(v) for v in bad[param]], bad["score"], marker="x", s=110, color="#cf222e", lw=2.2,
                       zorder=6)
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


def _per_trial_lines(ax, trials: pd.DataFrame, curves: pd.DataFrame, metric: str, colours: dict,
                     span: float = 100.0) -> int:
    drawn = 0
    sub = curves[curves["metric"] == metric]
    for _, row in trials.iterrows():
        c = sub[sub["trial"] == row["trial"]].sort_values("epoch")
        if c.empty:
            continue
        bad = row["status"] not in GOOD
        label = row["label"] + (f" ({row['status']})" if row["status"] != "completed" else "")
        ax.plot(c["epoch"], c["value"], "--" if bad else "-", marker="o", ms=3.5, lw=1.6,
                color=colours[row["trial"]], label=label, alpha=0.9)
        drawn += 1
    if drawn:
        _maybe_log(ax, sub["value"], "y", span=span)
        epochs = sub["epoch"]
        if len(epochs) and epochs.max() <= 20:
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
        _legend(ax, n=len(trials))
        return _save(fig, path)


def plot_loss_curves(sweep: SweepInfo, trials: pd.DataFrame, curves: pd.DataFrame, path: Path) -> Path:
    colours = trial_colours(trials)
    losses = sorted(m for m in curves["metric"].unique() if str(m).startswith("loss"))[:6]
    with plt.rc_context(STYLE):
        if not losses:
            fig, ax = plt.subplots(figsize=(8.5, 3.5))
            ax.set_title("losses per epoch")
            _empty(ax, "no trial reported a loss per epoch")
            return _save(fig, path)
        fig, axes = plt.subplots(1, len(losses), figsize=(5.2 * len(losses), 4.4), squeeze=False)
        for ax, loss in zip(axes[0], losses):
            ax.set_title(f"{loss} per epoch")
            ax.set_xlabel("epoch")
            ax.set_ylabel(loss)
            _per_trial_lines(ax, trials, curves, loss, colours)
        _legend(axes[0][-1], n=len(trials))
        fig.tight_layout()
        return _save(fig, path)


def make_plots(sweep: SweepInfo, trials: pd.DataFrame, curves: pd.DataFrame, plot_dir: Path) -> list[tuple[str, Path]]:
    out = []
    for p in sweep.params:
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in p)
        out.append((f"Best {sweep.metric} vs {p}",
                    plot_metric_vs_param(sweep, trials, p, plot_dir / f"metric_vs_{safe}.png")))
    out.append((f"{sweep.metric} per epoch", plot_metric_curves(sweep, trials, curves,
                                                                plot_dir / f"curves_{sweep.metric}.png")))
    out.append(("Losses per epoch", plot_loss_curves(sweep, trials, curves, plot_dir / "curves_losses.png")))
    return out


# ---------------------------------------------------------------------------------------------- html
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       color: #1f2328; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
.meta { color: #57606a; margin: 2px 0; }
.meta b { color: #1f2328; }
.best { background: #dafbe1; border: 1px solid #aceebb; border-radius: 6px; padding: 10px 14px; margin: 14px 0; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { padding: 5px 9px; border-bottom: 1px solid #d8dee4; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id { white-space: nowrap; }
td.id, span.id { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; color: #57606a; }
tr.top td { background: #f0fff4; font-weight: 600; }
tr.bad td { background: #fff5f5; color: #57606a; }
td.reason { min-width: 180px; max-width: 300px; color: #82071e; font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px;
         font-weight: 600; white-space: nowrap; }
.scroll { overflow-x: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: flex-start; }
.plot { margin: 6px 0 14px; }
.plot.half { max-width: calc(50% - 10px); }
.plot img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
.plot figcaption, .cell figcaption { color: #57606a; font-size: 13px; }
.gallery { display: flex; flex-wrap: wrap; gap: 18px; }
.cell { margin: 0; padding: 8px; border: 1px solid #d0d7de; border-radius: 6px; background: #f6f8fa; }
.cell.bad { border-color: #ff8182; background: #fff5f5; }
.cell img { display: block; image-rendering: pixelated; image-rendering: crisp-edges; }
.cell .nosample { display: flex; align-items: center; justify-content: center; color: #57606a;
                  background: #eaeef2; font-size: 13px; }
.cell figcaption { margin-top: 6px; line-height: 1.45; }
.cell figcaption b { color: #1f2328; }
ul.failures li { margin: 6px 0; }
.grid td.num { min-width: 70px; }
footer { margin-top: 40px; color: #8c959f; font-size: 12px; }
"""

e = html.escape


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#6e7781")
    return f'<span class="badge" style="background:{colour}">{e(status)}</span>'


def read_png(path: Path) -> tuple[bytes, tuple[int, int]] | None:
    """The file's bytes and (width, height) if it is a readable PNG, else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_MAGIC):
        return None
    try:
        from PIL import Image
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            return data, im.size
    except Exception:  # noqa: BLE001 - a broken sample must not break the report
        return None


def status_counts(trials: pd.DataFrame) -> str:
    order = ["completed", "running", "diverged", "failed", "not run"]
    counts = trials["status"].value_counts()
    keys = [k for k in order if k in counts] + sorted(k for k in counts.index if k not in order)
    return " · ".join(f"{badge(k)} {int(counts[k])}" for k in keys) or "no trials"


def summary_table(sweep: SweepInfo, trials: pd.DataFrame) -> str:
    short = short_names(sweep.params)
    m = sweep.metric
    reasons = bool(((trials["reason"] != "") | (trials["mode_collapse"] != "")).any())
    head = (["#"] + [f'<span title="{e(p)}">{e(short[p])}</span>' for p in sweep.params]
            + ["status", f"best {e(m)}", "best epoch", f"final {e(m)}", "epochs"]
            + ["wall time", "trial"] + (["reason"] if reasons else []))
    rows = []
    for _, r in trials.iterrows():
        bad = r["status"] not in GOOD or pd.isna(r["score"])
        cls = "bad" if bad else ("top" if r["rank"] == 1 else "")
        cells = [f'<td class="num">{r["rank"]}</td>']
        cells += [f'<td class="num">{e(fmt(r[p]))}</td>' for p in sweep.params]
        cells.append(f"<td>{badge(r['status'])}</td>")
        cells.append(f'<td class="num">{e(fmt(r["score"]))}</td>')
        cells += [f'<td class="num">{e(fmt(r.get(c)))}</td>' for c in ("best_epoch", m, "epochs")]
        cells.append(f'<td class="num">{e(fmt_seconds(r.get("wall_s")))}</td>')
        cells.append(f'<td class="id">{e(r["trial"])}</td>')
        if reasons:
            collapse = f"mode collapse: {r['mode_collapse']}" if r["mode_collapse"] else ""
            cells.append(f'<td class="reason">{e("; ".join(t for t in (r["reason"], collapse) if t))}</td>')
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    return ('<div class="scroll"><table class="summary"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "\n".join(rows) + "</tbody></table></div>")


def grid_table(sweep: SweepInfo, trials: pd.DataFrame) -> str:
    """For a 2-param grid: rows = first param, columns = second, cells = best metric (or the status)."""
    if len(sweep.params) != 2 or trials.empty:
        return ""
    a, b = sweep.params
    va = sorted(trials[a].dropna().unique(), key=_sort_key)
    vb = sorted(trials[b].dropna().unique(), key=_sort_key)
    if len(va) * len(vb) > 400:
        return ""
    finite = trials["score"].dropna()
    lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    short = short_names(sweep.params)
    out = [f'<div class="scroll"><table class="grid"><thead><tr><th>{e(short[a])} \\ {e(short[b])}</th>']
    out += [f'<th>{e(fmt(v))}</th>' for v in vb] + ["</tr></thead><tbody>"]
    for x in va:
        out.append(f"<tr><th>{e(fmt(x))}</th>")
        for y in vb:
            hit = trials[(trials[a] == x) & (trials[b] == y)]
            if hit.empty:
                out.append('<td class="num">–</td>')
                continue
            r = hit.iloc[0]
            if r["status"] not in GOOD or pd.isna(r["score"]):
                out.append(f'<td class="num">{badge(r["status"])}</td>')
                continue
            t = 0.0 if hi == lo else (r["score"] - lo) / (hi - lo)
            goodness = 1 - t if sweep.mode == "min" else t
            alpha = 0.12 + 0.55 * goodness
            weight = "font-weight:700;" if r["rank"] == 1 else ""
            out.append(f'<td class="num" style="background:rgba(46,160,67,{alpha:.2f});{weight}">'
                       f'{e(fmt(r["score"]))}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _epoch(value: Any) -> int | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return int(value) if math.isfinite(value) else None


def samples_epoch(r: pd.Series) -> str:
    """Which epoch a trial's gallery grid is from (`samples_epoch`, written by library.results): the best epoch's
    grid where it was saved, else the last evaluated epoch's (as in results written before that column)."""
    shown, best = _epoch(r.get("samples_epoch")), _epoch(r.get("best_epoch"))
    if shown is None:
        return "samples of the last epoch"
    if shown == best:
        return f"samples of epoch {shown} (the best)"
    return f"samples of the last epoch, {shown}" + (f" (no grid of best epoch {best})" if best is not None else "")


def gallery(sweep: SweepInfo, trials: pd.DataFrame, samples: Path) -> str:
    cells = []
    for _, r in trials.iterrows():
        bad = r["status"] not in GOOD
        png = read_png(samples / f"{r['trial']}.png")
        if png:
            data, (w, h) = png
            scale = max(1, round(280 / max(w, 1)))
            img = (f'<img src="{data_uri(data)}" width="{w * scale}" height="{h * scale}" '
                   f'alt="samples of {e(r["label"])}">')
        else:
            img = '<div class="nosample" style="width:276px;height:276px">no sample grid</div>'
        shown = f"<br>{e(samples_epoch(r))}" if png else ""
        caption = (f"<b>{e(r['label'])}</b><br>{badge(r['status'])} best {e(sweep.metric)} "
                   f"<b>{e(fmt(r['score']))}</b>{shown}<br><span class=\"id\">{e(r['trial'])}</span>")
        cells.append(f'<figure class="cell{" bad" if bad else ""}">{img}<figcaption>{caption}</figcaption></figure>')
    return '<div class="gallery">' + "\n".join(cells) + "</div>" if cells else "<p>No trials.</p>"


def failures(trials: pd.DataFrame) -> str:
    bad = trials[trials["status"].isin(["failed", "diverged"])]
    collapsed = trials[trials["mode_collapse"] != ""]
    if bad.empty and collapsed.empty:
        return "<p>none</p>"
    items = [f"<li>{badge(r['status'])} <b>{e(r['label'])}</b> <span class=\"id\">{e(r['trial'])}</span>: "
             f"{e(r['reason'] or '(no reason recorded)')}</li>" for _, r in bad.iterrows()]
    items += [f"<li><b>mode collapse</b> <b>{e(r['label'])}</b> <span class=\"id\">{e(r['trial'])}</span>: "
              f"{e(r['mode_collapse'])}</li>" for _, r in collapsed.iterrows()]
    return '<ul class="failures">' + "\n".join(items) + "</ul>"


def render(sweep: SweepInfo, trials: pd.DataFrame, plots: list[tuple[str, Path]], results_dir: Path) -> str:
    m = sweep.metric
    parts = [f"<h1>Sweep {e(sweep.name)}</h1>",
             f'<p class="meta">job <b>{e(sweep.job)}</b> · metric <b>{e(m)}</b> · mode <b>{e(sweep.mode)}</b> '
             f"({e(sweep.better)}) · swept: <b>{e(', '.join(sweep.params) or 'nothing (single trial)')}</b></p>",
             f'<p class="meta">{len(trials)} trial{"s" if len(trials) != 1 else ""}: {status_counts(trials)}</p>']
    if sweep.base:
        base = ", ".join(f"{k}={fmt(v)}" for k, v in sorted(sweep.base.items()))
        parts.append(f'<p class="meta">base config: {e(base)}</p>')
    ranked = trials[trials["status"].isin(GOOD) & trials["score"].notna()]
    if len(ranked):
        b = ranked.iloc[0]
        parts.append(f'<div class="best">Best trial: <b>{e(b["label"])}</b> '
                     f'<span class="id">{e(b["trial"])}</span> — best {e(m)} <b>{e(fmt(b["score"]))}</b>'
                     f' at epoch {e(fmt(b.get("best_epoch")))}</div>')
    else:
        parts.append(f'<div class="best" style="background:#ffebe9;border-color:#ff8182">'
                     f"No trial reported {e(m)}.</div>")
    parts += [f"<h2>Trials, best {e(m)} first</h2>", summary_table(sweep, trials)]
    grid = grid_table(sweep, trials)
    if grid:
        parts += [f"<h2>Grid of best {e(m)}</h2>", grid]
    parts.append("<h2>Plots</h2>")
    parts.append('<div class="plots">')
    halves = len([p for _, p in plots if p.name.startswith("metric_vs_")]) > 1
    for title, path in plots:
        png = read_png(path)
        if png:
            half = " half" if halves and path.name.startswith("metric_vs_") else ""
            parts.append(f'<figure class="plot{half}"><img src="{data_uri(png[0])}" alt="{e(title)}">'
                         f"<figcaption>{e(title)} — plots/{e(path.name)}</figcaption></figure>")
    parts.append("</div>")
    parts += ["<h2>Samples</h2>", gallery(sweep, trials, results_dir / "samples"),
              "<h2>Failed and diverged trials; mode collapse</h2>", failures(trials)]
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts.append(f"<footer>Generated {e(stamp)} from {e(str(results_dir))} by library.report.</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Sweep {e(sweep.name)} — {e(m)}</title><style>{CSS}</style></head>\n"
            "<body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n")


def build_report(results_dir: Path) -> Path:
    """Write results_dir/plots/*.png and results_dir/report.html; return the report's path."""
    results_dir = Path(results_dir)
    sweep, trials, curves = load(results_dir)
    plots = make_plots(sweep, trials, curves, results_dir / PLOTS)
    page = render(sweep, trials, plots, results_dir)
    out = results_dir / REPORT
    atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m library.report",
                                     description="Build results/SWEEP/report.html (self-contained) and plots/.")
    parser.add_argument("sweep", help="sweep name: the folder under --results-dir")
    parser.add_argument("--results-dir", default="results", type=Path, help="default: results")
    parser.add_argument("--wandb", action="store_true", help="also publish the W&B report (needs `wandb login`)")
    parser.add_argument("--entity", help="W&B entity (default: your default entity)")
    args = parser.parse_args(argv)
    folder = args.results_dir / args.sweep
    if not folder.is_dir():
        parser.error(f"{folder} does not exist: run the sweep first")
    print(build_report(folder))
    if args.wandb:
        print(publish_wandb(folder, args.entity))


def publish_wandb(folder: Path, entity: str | None = None) -> str:
    """Publish the sweep's W&B report; returns its URL. Raises RuntimeError with what to do when offline."""
    from library.files import read_json
    from library.wandb_report import publish

    spec = read_json(folder / "sweep.json")
    return publish(spec["name"], spec["project"], entity, spec["metric"], spec["mode"], spec["params"], spec["job"])


if __name__ == "__main__":
    main()
