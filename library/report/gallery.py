"""The samples gallery of the report. Every trial's grid, inlined, for a sweep of up to BIG trials; for a bigger
one (a random search of 1,000), the best and the worst GALLERY_K by the metric and GALLERY_SAMPLE of the others
drawn at random (seeded by the sweep's name: a rebuilt page shows the same ones), inlined, and every other
trial's grid linked to its file in samples/ beside the page (a relative link: the folder can be moved or zipped)."""
from __future__ import annotations

import base64
import io
import math
import random
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from library.report.format import badge, e, fmt
from library.report.load import GOOD, SweepInfo
from library.sweep import BIG

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GALLERY_K = 8  # a big sweep's best and worst trials shown (our choice)
GALLERY_SAMPLE = 16  # and this many of the others, drawn at random (our choice)
INLINE_BYTES = 2_000_000
"""At most this many bytes of PNG inlined in a big sweep's gallery (2.7 MB in base64), so that the page stays under
~5 MB whatever the size of a grid (an 8x8 grid of 64x64 RGB faces is hundreds of KB; one of MNIST digits ~20 KB);
a shown trial past it links its grid instead."""
SAMPLES = "samples"  # results/SWEEP/samples/TRIAL.png, written by library.results.collect


def data_uri(png: bytes) -> str:
    """The PNG inlined in the page, which then needs no file beside it."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


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


def link(trial: str) -> str:
    """The relative address of a trial's grid from report.html, which sits beside samples/."""
    return f"{SAMPLES}/{quote(trial)}.png"


def cell(sweep: SweepInfo, r: pd.Series, png: tuple[bytes, tuple[int, int]] | None, inline: bool = True) -> str:
    """One trial's figure: its grid scaled by a whole factor to about 280 px so small grids are legible (or, not
    `inline`, a link to its file), and its label, status, score and id."""
    if png and inline:
        data, (w, h) = png
        scale = max(1, round(280 / max(w, 1)))
        img = (f'<img src="{data_uri(data)}" width="{w * scale}" height="{h * scale}" '
               f'alt="samples of {e(r["label"])}">')
    elif png:
        img = (f'<div class="nosample" style="width:276px;height:276px"><a href="{link(r["trial"])}">'
               "sample grid (not inlined: page size)</a></div>")
    else:
        img = '<div class="nosample" style="width:276px;height:276px">no sample grid</div>'
    shown = f"<br>{e(samples_epoch(r))}" if png else ""
    caption = (f"<b>{e(r['label'])}</b><br>{badge(r['status'])} best {e(sweep.metric)} "
               f"<b>{e(fmt(r['score']))}</b>{shown}<br><span class=\"id\">{e(r['trial'])}</span>")
    bad = " bad" if r["status"] not in GOOD else ""
    return f'<figure class="cell{bad}">{img}<figcaption>{caption}</figcaption></figure>'


def gallery(sweep: SweepInfo, trials: pd.DataFrame, samples: Path) -> str:
    """Every trial's grid, best first; for more than BIG trials, the best, the worst and a sample (see pick)."""
    if len(trials) > BIG:
        return big_gallery(sweep, trials, samples)
    cells = [cell(sweep, r, read_png(samples / f"{r['trial']}.png")) for _, r in trials.iterrows()]
    return '<div class="gallery">' + "\n".join(cells) + "</div>" if cells else "<p>No trials.</p>"


def pick(sweep: SweepInfo, trials: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The best and the worst GALLERY_K of the ranked trials (`trials` is sorted best first; a trial without a
    score, or failed or diverged, is neither; a sweep whose scores cannot be ranked has neither), and a sample of
    GALLERY_SAMPLE of the others (and as many more as best and worst fell short of 2 * GALLERY_K), drawn with
    the sweep's name as seed, in page order."""
    ranked = trials[trials["status"].isin(GOOD) & trials["score"].notna()] if not sweep.unranked else trials[:0]
    best = ranked.head(GALLERY_K)
    worst = ranked.iloc[len(best):].tail(GALLERY_K)
    others = trials.drop(index=best.index.union(worst.index))
    k = GALLERY_SAMPLE + 2 * GALLERY_K - len(best) - len(worst)
    drawn = random.Random(sweep.name).sample(list(others.index), min(k, len(others)))
    return best, worst, others.loc[sorted(drawn)]


def big_gallery(sweep: SweepInfo, trials: pd.DataFrame, samples: Path) -> str:
    """The best, the worst and a sample of the others inlined (up to INLINE_BYTES); the other grids linked."""
    best, worst, drawn = pick(sweep, trials)
    shown = best.index.union(worst.index).union(drawn.index)
    rest = trials.drop(index=shown)
    budget, parts = INLINE_BYTES, []
    if len(best):
        picked = (f"the best {len(best)} and the worst {len(worst)} by {e(sweep.metric)} ({e(sweep.better)}) and "
                  f"{len(drawn)} drawn at random from the other {len(trials) - len(best) - len(worst)}")
    else:  # nothing ranks: all failed, or the scores were measured differently
        picked = f"{len(drawn)} drawn at random" + (", as the scores cannot be ranked" if sweep.unranked else "")
    intro = (f"{len(trials)} trials: {len(shown)} grids shown here, {picked}; the other {len(rest)} trials' grids "
             f"are linked below, files in {SAMPLES}/ beside this page.")
    parts.append(f'<p class="meta">{intro}</p>')
    for title, rows in ((f"Best {len(best)}, best first", best), (f"Worst {len(worst)}, worst last", worst),
                        (f"{len(drawn)} {'of the others, ' * (len(best) > 0)}drawn at random", drawn)):
        if rows.empty:
            continue
        cells = []
        for _, r in rows.iterrows():
            png = read_png(samples / f"{r['trial']}.png")
            inline = png is not None and len(png[0]) <= budget
            budget -= len(png[0]) if inline else 0
            cells.append(cell(sweep, r, png, inline))
        parts.append(f'<h3>{title}</h3><div class="gallery">' + "\n".join(cells) + "</div>")
    links = [f'<a href="{link(r.trial)}">{e(r.trial)}</a> {e(fmt(r.score))}' for r in rest.itertuples()
             if (samples / f"{r.trial}.png").is_file()]
    parts.append(f"<h3>The other {len(rest)} trials' grids, {'in trial order' if sweep.unranked else 'best first'}"
                 f"</h3><p class=\"links\">{' · '.join(links) or 'none'}</p>")
    if len(links) < len(rest):
        parts.append(f'<p class="meta">{len(rest) - len(links)} of them have no sample grid.</p>')
    return "\n".join(parts)
