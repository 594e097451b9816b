"""A score's fingerprint: what a Fréchet or kernel distance depends on besides the generator (extractor and its
weights' sha256, torch-fidelity version, input size and resize, n_real, n_fake, the reference set). Two scores
with different fingerprints are different measurements, and must not be ranked against each other.

In a table the fingerprint is one text column, "key=value; key=value; ..." (library.metrics' FrechetScorer makes
it). Plain Python and pandas: the report reads it without torch.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from library.trial import Status

SEPARATOR = "; "


def as_text(fingerprint: Mapping | None) -> str:
    """The fingerprint as one table cell; "" for a score that has none (not a sample-quality score)."""
    return SEPARATOR.join(f"{k}={v}" for k, v in sorted((fingerprint or {}).items()))


def fields(text: str) -> dict[str, str]:
    """as_text, read back."""
    return dict(item.split("=", 1) for item in text.split(SEPARATOR)) if text else {}


def why_not_comparable(texts: Iterable[tuple[str, str]]) -> str:
    """Why the scores of these (name, fingerprint text) pairs cannot be ranked together, or "" when they can:
    every non-empty fingerprint is the same (a score without one, such as an accuracy, has nothing to compare)."""
    by_text: dict[str, list[str]] = {}
    for name, text in texts:
        if text:
            by_text.setdefault(text, []).append(name)
    if len(by_text) < 2:
        return ""
    parsed = [(fields(text), names) for text, names in by_text.items()]
    keys = list(dict.fromkeys(k for f, _ in parsed for k in f))
    differ = [k for k in keys if len({f.get(k) for f, _ in parsed}) > 1]
    groups = "; ".join(f"{k} " + " vs ".join(f"{f.get(k, '(none)')} ({', '.join(names[:3])}{', ...' * (len(names) > 3)})"
                                             for f, names in parsed) for k in differ)
    return (f"not ranked: the scores were measured differently ({groups}); score them alike (same extractor, "
            "weights, torch-fidelity, sample counts and reference) to compare them")


def not_comparable(table: pd.DataFrame, name: str = "trial") -> str:
    """Why the ranked rows of a trials table (completed, running or stopped trials) cannot be ranked together, or
    "" when they can; rows are named by their trial id, or "SWEEP/TRIAL" with name="sweep"."""
    if "fingerprint" not in table or table.empty:
        return ""
    ranked = table[table["status"].isin([s.value for s in Status if s.ranked])]
    names = ranked["trial"].astype(str)
    if name != "trial":
        names = ranked[name].astype(str) + "/" + names
    return why_not_comparable(zip(names, ranked["fingerprint"].fillna("").astype(str)))
