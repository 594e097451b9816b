"""How the report writes values, durations, statuses and trial labels, in the tables and on the plots alike."""
from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

MISSING = "–"  # a value a trial never reported (or NaN): an en dash, so that a real "-1" cannot be mistaken for it
STATUS_COLOURS = {"completed": "#1a7f37", "running": "#0969da", "stopped": "#8250df", "diverged": "#bc4c00",
                  "failed": "#cf222e", "not run": "#6e7781"}

e = html.escape  # every text from a results folder goes through it: reasons hold "<", ">" and "&"


def fmt(value: Any) -> str:
    """4 significant digits for floats (18.125 -> 18.12), MISSING for None, "" and NaN."""
    if value is None or (isinstance(value, str) and value == ""):
        return MISSING
    if isinstance(value, (bool, np.bool_)):  # before int: bool is an int
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    return str(value)


def badge(status: str) -> str:
    """A trial's status as a coloured pill, the same colour in the table, the grid, the gallery and the failures."""
    colour = STATUS_COLOURS.get(status, "#6e7781")
    return f'<span class="badge" style="background:{colour}">{e(status)}</span>'


def fmt_seconds(value: Any) -> str:
    """61.0 -> "1m 01s": wall times range from seconds (a failed start) to hours."""
    try:
        s = float(value)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(s):
        return MISSING
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def short_names(params: list[str]) -> dict[str, str]:
    """'optim.beta1' -> 'beta1' when the last dotted part is unambiguous: column heads and legends stay narrow."""
    last = [p.split(".")[-1] for p in params]
    return {p: (s if last.count(s) == 1 else p) for p, s in zip(params, last)}


def labels(trials: pd.DataFrame, params: list[str]) -> list[str]:
    """A trial's swept values ("beta1=0.5, lr=0.001"), which say more to a reader than its id; the id without params."""
    short = short_names(params)
    out = [", ".join(f"{short[p]}={fmt(row[p])}" for p in params) or row["trial"] for _, row in trials.iterrows()]
    if len(set(out)) < len(out):  # e.g. random search repeats: disambiguate with the id
        out = [f"{lab} [{t}]" if lab != t else lab for lab, t in zip(out, trials["trial"])]
    return out


def sort_key(value: Any) -> tuple:
    """Orders a param's values numerically where they are numbers ("2e-4" < "1e-3"), as text after them."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))
