"""The report page: one self-contained HTML file, every image inlined as a base64 data URI (no network, no JS),
so it reads offline or attached to a mail; of a sweep of more than BIG trials, the grids not shown are linked to
their files beside it (gallery.py). `build_report` writes it with its plots."""
from __future__ import annotations

import datetime as _dt
from importlib import resources
from pathlib import Path

import pandas as pd

from library.files import atomic_write
from library.replicates import BEST, SAME, plus_minus
from library.report.format import MISSING, badge, e, fmt, fmt_seconds, short_names, sort_key
from library.report.gallery import data_uri, gallery, read_png
from library.report.load import GOOD, SweepInfo, load, load_configs
from library.sweep import BIG
from library.report.plots import make_plots
from library.trial import AT_BEST

REPORT = "report.html"
PLOTS = "plots"


def status_counts(trials: pd.DataFrame) -> str:
    """How many trials have each status, finished ones first: "completed 4 · diverged 1 · failed 1"."""
    order = ["completed", "running", "diverged", "failed", "not run"]
    counts = trials["status"].value_counts()
    keys = [k for k in order if k in counts] + sorted(k for k in counts.index if k not in order)
    return " · ".join(f"{badge(k)} {int(counts[k])}" for k in keys) or "no trials"


def at_best_head(column: str) -> str:
    """"test_accuracy_at_best" -> "test_accuracy at best epoch"."""
    return column.removesuffix(AT_BEST) + " at best epoch"


def summary_table(sweep: SweepInfo, trials: pd.DataFrame) -> str:
    """Every trial, best first; the reason column only when some trial has a reason or a mode collapse."""
    short = short_names(sweep.params)
    m = sweep.metric
    reasons = bool(((trials["reason"] != "") | (trials["mode_collapse"] != "")).any())
    replicated = sweep.repeats > 1 and "replicate" in trials
    floor = f"{m}_floor" in trials
    head = (["#"] + [f'<span title="{e(p)}">{e(short[p])}</span>' for p in sweep.params]
            + (["replicate"] if replicated else [])
            + ["status", f"best {e(m)}", "best epoch"] + [e(at_best_head(c)) for c in sweep.at_best]
            + [f"final {e(m)}"] + ["real-vs-real floor"] * floor + ["epochs"]
            + ["wall time", "trial"] + (["reason"] if reasons else []))
    rows = []
    for _, r in trials.iterrows():
        bad = r["status"] not in GOOD or pd.isna(r["score"])
        cls = "bad" if bad else ("top" if r["rank"] == 1 else "")
        cells = [f'<td class="num">{e(fmt(r["rank"]))}</td>']
        cells += [f'<td class="num">{e(fmt(r[p]))}</td>' for p in sweep.params]
        if replicated:
            cells.append(f'<td class="num">{e(fmt(r["replicate"]))}</td>')
        cells.append(f"<td>{badge(r['status'])}</td>")
        cells.append(f'<td class="num">{e(fmt(r["score"]))}</td>')
        cells += [f'<td class="num">{e(fmt(r.get(c)))}</td>' for c in ("best_epoch", *sweep.at_best, m,
                                                                        *[f"{m}_floor"] * floor, "epochs")]
        cells.append(f'<td class="num">{e(fmt_seconds(r.get("wall_s")))}</td>')
        cells.append(f'<td class="id">{e(r["trial"])}</td>')
        if reasons:
            collapse = f"mode collapse: {r['mode_collapse']}" if r["mode_collapse"] else ""
            cells.append(f'<td class="reason">{e("; ".join(t for t in (r["reason"], collapse) if t))}</td>')
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    tall = " tall" if len(trials) > BIG else ""  # 1,000 rows: a box of its own, so the plots are not 20,000 px down
    return (f'<div class="scroll{tall}"><table class="summary"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "\n".join(rows) + "</tbody></table></div>")


CONFIGS_NOTE = ("Mean ± half-width of the 95% confidence interval (Student's t) over each configuration's completed "
                "replicates; a failed, diverged or unfinished replicate is counted in its statuses and never averaged "
                "in. Verdict: Welch's t-test (two-sided, 5%) of the configuration's replicates' best values against "
                "those of the configuration with the best mean; each comparison on its own, without correction for "
                "the number of configurations.")


def configs_table(sweep: SweepInfo, configs: pd.DataFrame) -> str:
    """Every configuration, best mean first: mean ± CI of the best and final metric, replicates and their
    statuses, the verdict against the best, the best and worst replicate."""
    short = short_names(sweep.params)
    m = sweep.metric
    head = (["#"] + [f'<span title="{e(p)}">{e(short[p])}</span>' for p in sweep.params]
            + ["n", "statuses", f"best {e(m)} (mean ± CI)"]
            + [f"{e(at_best_head(c))} (mean ± CI)" for c in sweep.at_best]
            + [f"final {e(m)} (mean ± CI)", "verdict", "best replicate", "worst replicate"])
    rows = []
    for i, r in configs.iterrows():
        cls = "top" if r["verdict"] == BEST else ("bad" if pd.isna(r[f"best_{m}_mean"]) else "")
        cells = [f'<td class="num">{i + 1}</td>'] + [f'<td class="num">{e(fmt(r[p]))}</td>' for p in sweep.params]
        cells += [f'<td class="num">{e(fmt(r["n"]))}</td>', f'<td class="statuses">{e(r["statuses"])}</td>']
        cells += [f'<td class="num">{e(plus_minus(r, c) or MISSING)}</td>' for c in (f"best_{m}", *sweep.at_best, m)]
        cells.append(f"<td>{e(r['verdict'])}</td>")
        cells += [f'<td class="id">{e(fmt(r[c]))}</td>' for c in ("best_replicate", "worst_replicate")]
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    return (f'<p class="meta">{e(CONFIGS_NOTE)}</p><div class="scroll"><table class="configs"><thead><tr>'
            + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>" + "\n".join(rows)
            + "</tbody></table></div>")


def best_config(sweep: SweepInfo, configs: pd.DataFrame) -> str:
    """The box naming the configuration with the best mean, and how many others the data cannot tell from it."""
    m = sweep.metric
    best = configs[configs["verdict"] == BEST]
    if best.empty:
        return ""
    b = best.iloc[0]
    same = int((configs["verdict"] == SAME).sum())
    return (f'<div class="best">Best configuration (by mean over replicates): <b>{e(b["label"])}</b> — best {e(m)} '
            f'<b>{e(plus_minus(b, f"best_{m}"))}</b> (n={e(fmt(b["n_ok"]))} completed); {same} other '
            f'configuration{"s" * (same != 1)} not distinguishable from it (Welch\'s t-test, 5%)</div>')


def grid_cells(sweep: SweepInfo, trials: pd.DataFrame, configs: pd.DataFrame | None) -> pd.DataFrame:
    """What each grid cell shows: the params, `value` (what colours it, and sets the colour scale), `ok` (whether
    it shows `text`, else `empty`) and `top`. One cell per trial (a failed or diverged one shows its status), or
    with replicates per configuration: the mean ± 95% CI of its best metric, its statuses where none completed."""
    if configs is None:
        ok = trials["status"].isin(GOOD) & trials["score"].notna()
        return trials[sweep.params].assign(value=trials["score"], ok=ok, text=trials["score"].map(fmt),
                                            empty=trials["status"].map(badge), top=trials["rank"] == 1)
    col = f"best_{sweep.metric}"
    return configs[sweep.params].assign(value=configs[f"{col}_mean"], ok=configs[f"{col}_mean"].notna(),
                                        text=[plus_minus(r, col) or MISSING for _, r in configs.iterrows()],
                                        empty=configs["statuses"].map(e), top=configs["verdict"] == BEST)


def grid_table(sweep: SweepInfo, trials: pd.DataFrame, configs: pd.DataFrame | None = None) -> str:
    """For a 2-param grid: rows = first param, columns = second, cells = best metric (or the status); with
    replicates, each configuration's mean ± 95% CI (see grid_cells)."""
    if len(sweep.params) != 2 or trials.empty:
        return ""
    a, b = sweep.params
    va = sorted(trials[a].dropna().unique(), key=sort_key)
    vb = sorted(trials[b].dropna().unique(), key=sort_key)
    if len(va) * len(vb) > 400:
        return ""
    cells = grid_cells(sweep, trials, configs)
    finite = cells["value"].dropna()
    lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    short = short_names(sweep.params)
    out = [f'<div class="scroll"><table class="grid"><thead><tr><th>{e(short[a])} \\ {e(short[b])}</th>']
    out += [f'<th>{e(fmt(v))}</th>' for v in vb] + ["</tr></thead><tbody>"]
    for x in va:
        out.append(f"<tr><th>{e(fmt(x))}</th>")
        for y in vb:
            hit = cells[(cells[a] == x) & (cells[b] == y)]
            if hit.empty:
                out.append('<td class="num">–</td>')
                continue
            r = hit.iloc[0]
            if not r["ok"]:
                out.append(f'<td class="num">{r["empty"]}</td>')
                continue
            t = 0.0 if hi == lo else (r["value"] - lo) / (hi - lo)
            goodness = 1 - t if sweep.mode == "min" else t
            alpha = 0.12 + 0.55 * goodness
            weight = "font-weight:700;" if r["top"] else ""
            out.append(f'<td class="num" style="background:rgba(46,160,67,{alpha:.2f});{weight}">'
                       f'{e(r["text"])}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


FAILURE_GROUPS = 30  # a big sweep's failures: this many reasons listed, the most frequent first (our choice)
IDS_LISTED = 10  # and this many trial ids of each


def failures(trials: pd.DataFrame) -> str:
    """The failed and diverged trials with their reasons, and the mode collapses, or "none"; for more than BIG
    trials, grouped by identical reason with counts (grouped_failures)."""
    bad = trials[trials["status"].isin(["failed", "diverged"])]
    collapsed = trials[trials["mode_collapse"] != ""]
    if bad.empty and collapsed.empty:
        return "<p>none</p>"
    if len(trials) > BIG:
        return grouped_failures(bad, collapsed)
    items = [f"<li>{badge(r['status'])} <b>{e(r['label'])}</b> <span class=\"id\">{e(r['trial'])}</span>: "
             f"{e(r['reason'] or '(no reason recorded)')}</li>" for _, r in bad.iterrows()]
    items += [f"<li><b>mode collapse</b> <b>{e(r['label'])}</b> <span class=\"id\">{e(r['trial'])}</span>: "
              f"{e(r['mode_collapse'])}</li>" for _, r in collapsed.iterrows()]
    return '<ul class="failures">' + "\n".join(items) + "</ul>"


def grouped_failures(bad: pd.DataFrame, collapsed: pd.DataFrame) -> str:
    """One line per (status, reason), the most frequent first, with how many trials and the first IDS_LISTED of
    them; past FAILURE_GROUPS reasons, how many more (every one is in trials.csv)."""
    kinds = pd.concat([pd.DataFrame({"kind": bad["status"], "why": bad["reason"].replace("", "(no reason recorded)"),
                                     "trial": bad["trial"]}),
                       pd.DataFrame({"kind": "mode collapse", "why": collapsed["mode_collapse"],
                                     "trial": collapsed["trial"]})])
    groups = sorted(kinds.groupby(["kind", "why"], sort=False)["trial"], key=lambda g: -len(g[1]))
    items = []
    for (kind, why), ids in groups[:FAILURE_GROUPS]:
        head = badge(kind) if kind != "mode collapse" else "<b>mode collapse</b>"
        more = f" and {len(ids) - IDS_LISTED} more" if len(ids) > IDS_LISTED else ""
        items.append(f"<li>{head} <b>{len(ids)} trial{'s' * (len(ids) != 1)}:</b> {e(why)} — "
                     f'<span class="id">{e(", ".join(ids[:IDS_LISTED]))}</span>{more}</li>')
    if len(groups) > FAILURE_GROUPS:
        rest = groups[FAILURE_GROUPS:]
        items.append(f"<li>{len(rest)} other reasons ({sum(len(ids) for _, ids in rest)} trials): "
                     "see trials.csv</li>")
    return '<ul class="failures">' + "\n".join(items) + "</ul>"


def render(sweep: SweepInfo, trials: pd.DataFrame, plots: list[tuple[str, Path]], results_dir: Path,
           configs: pd.DataFrame | None = None) -> str:
    """The whole page: header and best trial, trials table, grid (2 params), plots, samples, failures; with
    replicates (`configs`), the best configuration and the configurations table first, and the grid per
    configuration."""
    m = sweep.metric
    parts = [f"<h1>Sweep {e(sweep.name)}</h1>",
             f'<p class="meta">job <b>{e(sweep.job)}</b> · metric <b>{e(m)}</b> · mode <b>{e(sweep.mode)}</b> '
             f"({e(sweep.better)}) · swept: <b>{e(', '.join(sweep.params) or 'nothing (single trial)')}</b></p>",
             f'<p class="meta">{len(trials)} trial{"s" if len(trials) != 1 else ""}: {status_counts(trials)}</p>']
    if configs is not None:
        parts.append(f'<p class="meta">{len(configs)} configurations x {sweep.repeats} replicates, '
                     "each replicate with its own seed</p>")
    if sweep.base:
        base = ", ".join(f"{k}={fmt(v)}" for k, v in sorted(sweep.base.items()))
        parts.append(f'<p class="meta">base config: {e(base)}</p>')
    if configs is not None:
        parts.append(best_config(sweep, configs))
    for value, n in sweep.floors:
        parts.append(f'<p class="meta">real-vs-real floor of {e(m)}: <b>{e(fmt(value))}</b> (two disjoint halves of '
                     f"the real data, {n} images each: what a perfect generator would score)</p>")
    ranked = trials[trials["status"].isin(GOOD) & trials["score"].notna()]
    if sweep.unranked:
        parts.append(f'<div class="best" style="background:#ffebe9;border-color:#ff8182">{e(sweep.unranked)}</div>')
    elif len(ranked):
        b = ranked.iloc[0]
        parts.append(f'<div class="best">Best trial: <b>{e(b["label"])}</b> '
                     f'<span class="id">{e(b["trial"])}</span> — best {e(m)} <b>{e(fmt(b["score"]))}</b>'
                     f' at epoch {e(fmt(b.get("best_epoch")))}'
                     + "".join(f"; {e(c.removesuffix(AT_BEST))} there <b>{e(fmt(b.get(c)))}</b>" for c in sweep.at_best)
                     + "</div>")
    else:
        parts.append(f'<div class="best" style="background:#ffebe9;border-color:#ff8182">'
                     f"No trial reported {e(m)}.</div>")
    if configs is not None:
        parts += [f"<h2>Configurations, best mean {e(m)} first</h2>", configs_table(sweep, configs)]
    order = "in trial order (not ranked)" if sweep.unranked else f"best {e(m)} first"
    parts += [f"<h2>Trials, {order}</h2>", summary_table(sweep, trials)]
    grid = grid_table(sweep, trials, configs)
    if grid:
        parts += [f"<h2>Grid of best {e(m)}{' (mean ± 95% CI)' * (configs is not None)}</h2>", grid]
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
    css = resources.files("library.report").joinpath("style.css").read_text(encoding="utf-8")  # inlined: no <link>
    parts.append(f"<footer>Generated {e(stamp)} from {e(str(results_dir))} by library.report.</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Sweep {e(sweep.name)} — {e(m)}</title><style>{css}</style></head>\n"
            "<body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n")


def build_report(results_dir: Path) -> Path:
    """Write results_dir/plots/*.png and results_dir/report.html; return the report's path."""
    results_dir = Path(results_dir)
    sweep, trials, curves = load(results_dir)
    configs = load_configs(results_dir, sweep)
    plots = make_plots(sweep, trials, curves, results_dir / PLOTS, configs)
    page = render(sweep, trials, plots, results_dir, configs)
    out = results_dir / REPORT
    atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return out


