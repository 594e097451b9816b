"""library.report at 1,000 trials (a random search): the page stays small and usable. The run dirs are synthetic
(tests/helpers.synthetic_sweep_runs: written as the harness writes them, by trials that never trained); from them
on, the real code: library.results.collect, build_report, headless Chromium."""
from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import CHROMIUM, SYNTHETIC_REASONS, chromium, loaded_images, synthetic_sweep_runs
from library.report import build_report
from library.report.gallery import GALLERY_K, GALLERY_SAMPLE, gallery
from library.report.load import load
from library.results import collect
from library.sweep import BIG

MB = 1_000_000


def synthetic_results(root: Path, n: int, mode: str = "min") -> Path:
    sweep, trials = synthetic_sweep_runs(root, n, mode=mode)
    out = root / "results" / sweep.name
    collect(sweep, trials, root / "runs" / sweep.name, out)
    return out


def ranked(out: Path, mode: str = "min") -> list[str]:
    """The trials that rank, best first, as trials.csv says: completed, with a score."""
    table = pd.read_csv(out / "trials.csv")
    table = table[(table.status == "completed") & table.best_fd_domain.notna()]
    return table.sort_values("best_fd_domain", ascending=mode == "min", kind="stable").trial.tolist()


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def gallery_parts(page: str) -> dict[str, list[str]]:
    """The samples section's h3 parts as {heading: the trial ids of its figures, or of its links}."""
    samples = re.search(r"<h2>Samples</h2>(.*?)<h2>", page, re.S).group(1)
    parts = {}
    for head, body in re.findall(r"<h3>(.*?)</h3>(.*?)(?=<h3>|$)", samples, re.S):
        figures = re.findall(r'<figure class="cell[^"]*">.*?<span class="id">([^<]+)</span>', body, re.S)
        parts[head] = figures or re.findall(r'<a href="[^"]+">([^<]+)</a>', body)
    return parts


def samples_section(out: Path) -> str:
    """The page's samples section as build_report writes it, without drawing the plots (seconds each)."""
    sweep, trials, _ = load(out)
    return f"<h2>Samples</h2>{gallery(sweep, trials, out / 'samples')}<h2>"


def test_a_1000_trial_report_of_synthetic_trials_is_small_summarised_linked_and_renders(tmp_path):
    out = synthetic_results(tmp_path, 1000)
    page_path = build_report(out)
    page = page_path.read_text()
    assert page_path.stat().st_size < 5 * MB

    best_first = ranked(out)
    parts = gallery_parts(page)
    best, worst, drawn, linked = (parts[h] for h in parts)
    assert list(parts)[:2] == [f"Best {GALLERY_K}, best first", f"Worst {GALLERY_K}, worst last"]
    assert best == best_first[:GALLERY_K] and worst == best_first[-GALLERY_K:]
    assert len(drawn) == GALLERY_SAMPLE and not set(drawn) & set(best + worst)
    assert "1000 trials: 32 grids shown here" in text(page)
    table = pd.read_csv(out / "trials.csv")
    with_grid = set(table.trial[table.samples_epoch.notna()])  # a failed trial has none
    section = page.split("<h2>Samples")[1]
    assert len(re.findall(r'<img src="data:image/png', section)) == len(with_grid & set(best + worst + drawn))

    # Every other trial with a grid is linked, relative to the page, to its file in samples/.
    assert set(linked) == with_grid - set(best + worst + drawn) and len(linked) > 900
    hrefs = re.findall(r'<a href="([^"]+)">', section)
    assert len(hrefs) == len(linked)
    for href in hrefs:
        assert not href.startswith(("/", "file:")) and (page_path.parent / unquote(href)).is_file(), href

    # The same sample on a rebuild (of the gallery alone: the plots take seconds): the sweep's name is its seed.
    assert gallery_parts(samples_section(out)) == parts

    # Failures grouped by reason, with counts, not one line per trial.
    failures = re.search(r"<h2>Failed and diverged.*?</h2>(.*?)<footer>", page, re.S).group(1)
    failed = table[table.status == "failed"]
    assert failures.count("<li>") == len(SYNTHETIC_REASONS) + 1  # and the diverged ones' one reason
    for reason, count in failed.reason.value_counts().items():
        assert f"{count} trials: {reason}" in text(failures)

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): rendering not checked")
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", page_path.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (3000, 1200, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500 and (pixels < 128).any(axis=2).mean() > 0.01
    n_images = len(re.findall(r"<img\b", page))
    assert loaded_images(tmp_path, page_path) == (n_images, 0)


def test_mode_max_shows_the_highest_first_and_a_sweep_of_many_trials_exactly_is_shown_whole_synthetic_trials(tmp_path):
    out = synthetic_results(tmp_path / "max", BIG + 10, mode="max")
    parts = gallery_parts(samples_section(out))
    best, worst = list(parts.values())[:2]
    assert best == ranked(out, "max")[:GALLERY_K] and worst == ranked(out, "max")[-GALLERY_K:]

    whole = synthetic_results(tmp_path / "whole", BIG)
    page = samples_section(whole)
    assert "<h3>" not in page and "drawn at random" not in page  # today's page: every trial, one by one
    figures = re.findall(r'<figure class="cell[^"]*">.*?<span class="id">([^<]+)</span>', page, re.S)
    assert figures[:len(ranked(whole))] == ranked(whole) and len(figures) == BIG


def test_grids_past_the_inline_budget_are_linked_not_inlined_synthetic_trials(tmp_path, monkeypatch):
    """Big grids (faces: hundreds of KB each) must not push the page past ~5 MB: past INLINE_BYTES, a shown
    trial links its grid. Here the budget is set to what the best 3 grids weigh."""
    import library.report.gallery as gallery_module

    out = synthetic_results(tmp_path, BIG + 10)
    best3 = ranked(out)[:3]
    monkeypatch.setattr(gallery_module, "INLINE_BYTES", sum((out / "samples" / f"{t}.png").stat().st_size
                                                            for t in best3))
    section = samples_section(out)
    cells = re.findall(r'<figure class="cell[^"]*">.*?</figure>', section, re.S)
    inlined = [re.search(r'<span class="id">([^<]+)</span>', c).group(1) for c in cells if "<img " in c]
    assert inlined == best3
    not_inlined = [c for c in cells if "not inlined: page size" in c]
    assert len(not_inlined) == GALLERY_K * 2 + GALLERY_SAMPLE - 3 - sum("no sample grid" in c for c in cells)
    for c in not_inlined:
        assert (out / unquote(re.search(r'<a href="([^"]+)">', c).group(1))).is_file()  # out: the page's folder


def test_a_recollect_rewrites_only_the_sample_grids_that_changed_synthetic_trials(tmp_path):
    sweep, trials = synthetic_sweep_runs(tmp_path, 3)
    runs, out = tmp_path / "runs" / sweep.name, tmp_path / "results" / sweep.name
    collect(sweep, trials, runs, out)
    before = {p.name: p.stat().st_ino for p in (out / "samples").glob("*.png")}
    changed = trials[0].id
    Image.new("RGB", (64, 64), "red").save(runs / changed / "samples" / "epoch_0003.png")  # its best epoch's grid
    collect(sweep, trials, runs, out)
    after = {p.name: p.stat().st_ino for p in (out / "samples").glob("*.png")}
    assert after.keys() == before.keys() and len(after) == 3
    assert [n for n in after if after[n] != before[n]] == [f"{changed}.png"]  # atomic_write: a new file
    assert (out / "samples" / f"{changed}.png").read_bytes() == (runs / changed / "samples/epoch_0003.png").read_bytes()


def test_scores_measured_differently_show_no_best_or_worst_but_a_sample_synthetic_trials(tmp_path):
    out = synthetic_results(tmp_path, BIG + 10)
    table = pd.read_csv(out / "trials.csv")
    table["fingerprint"] = ["n_fake=1000" if i else "n_fake=100" for i in range(len(table))]
    table.to_csv(out / "trials.csv", index=False)
    page = samples_section(out)
    parts = gallery_parts(page)
    assert list(parts)[0] == f"{2 * GALLERY_K + GALLERY_SAMPLE} drawn at random" and "Best" not in " ".join(parts)
    assert "as the scores cannot be ranked" in text(page)
    drawn, linked = parts.values()
    assert set(linked) == set(table.trial[table.samples_epoch.notna()]) - set(drawn)


def test_the_terminal_table_of_a_big_sweep_shows_its_best_and_worst_and_groups_failures_synthetic_rows(capsys):
    from library.results import print_summary
    from library.sweep import Sweep

    rows = [{"trial": f"gan-{i:04d}", "status": "failed" if i % 2 else "completed",
             "reason": "CUDA out of memory\nTraceback ..." if i % 2 else "", "best_fd_domain": float(i)} for i in range(200)]
    print_summary(pd.DataFrame(rows), Sweep(name="big", job="gan", metric="fd_domain", mode="min"))
    printed = capsys.readouterr().out.splitlines()
    table = [line.split()[0] for line in printed if line.startswith("gan-")]
    assert table[:10] == [f"gan-{i:04d}" for i in range(10)] and len(table) == 15  # best 10 first, worst 5 last
    assert "... 185 more trials (all in trials.csv) ..." in printed
    assert "100 trials failed (gan-0001, gan-0003, gan-0005, ...): CUDA out of memory" in printed
