"""library.report: the self-contained HTML report of a sweep, built from a small realistic results folder."""
from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import CHROMIUM, chromium, loaded_images
from library.report import build_report
from library.report.__main__ import main
from library.report.load import load
from library.report.page import failures, summary_table

METRIC = "fd_domain"
# lr x loss grid: lr spans 2 decades (log axis), loss is categorical. One diverged, one failed.
TRIALS = [  # id, lr, loss, status, reason, best
    ("gan-aaaa0001", 2e-4, "bce", "completed", "", 21.5),
    ("gan-aaaa0002", 1e-3, "bce", "completed", "", 35.25),
    ("gan-aaaa0003", 2e-4, "lsgan", "completed", "", 18.125),
    ("gan-aaaa0004", 1e-3, "lsgan", "completed", "", 60.0),
    ("gan-aaaa0005", 1e-2, "bce", "diverged", "loss_d is 3.8e+04 in epoch 3", 150.0),
    ("gan-aaaa0006", 1e-2, "lsgan", "failed", "RuntimeError: CUDA out of memory <boom> & co", None),
]
BEST_FIRST = ["gan-aaaa0003", "gan-aaaa0001", "gan-aaaa0002", "gan-aaaa0004"]


def sample_png(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    grid = (rng.random((4 * 30 + 2, 4 * 30 + 2, 3)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)


def make_results(root: Path, trials=TRIALS, params=("optim.lr", "loss"), mode="min", epochs=4,
                 curves=True, samples=True) -> Path:
    out = root / "results" / "demo"
    out.mkdir(parents=True)
    (out / "sweep.json").write_text(json.dumps({"name": "demo", "job": "gan", "metric": METRIC, "mode": mode,
                                                "params": list(params), "base": {"train.epochs": epochs}}))
    rows, long = [], []
    for i, (tid, lr, loss, status, reason, best) in enumerate(trials):
        row = {"trial": tid, **dict(zip(params, (lr, loss))), "status": status, "reason": reason,
               "epochs": 0 if status == "failed" else epochs, METRIC: None if best is None else best * 1.05,
               f"best_{METRIC}": best, "best_epoch": None if best is None else epochs,
               f"{METRIC}_n_fake": 1000, "loss_d": None if best is None else 0.7, "loss_g": 1.5,
               "wall_s": 61.0 + i, "startup_s": 2.0, "checkpoint": "", "run_dir": f"/runs/demo/{tid}"}
        rows.append(row)
        if curves and best is not None:
            for ep in range(1, epochs + 1):
                for name, value in ((METRIC, best * (epochs + 1 - ep)), ("loss_d", 0.5 / ep + i / 10), ("loss_g", 1 + ep * (1 + i / 5)),
                                    ("elapsed_s", 10.0 * ep)):
                    long.append({"trial": tid, "epoch": ep, "metric": name, "value": value})
        if samples and status != "failed":
            sample_png(out / "samples" / f"{tid}.png", i)
    pd.DataFrame(rows).to_csv(out / "trials.csv", index=False)
    pd.DataFrame(long, columns=["trial", "epoch", "metric", "value"]).to_csv(out / "curves.csv", index=False)
    return out


def images(page: str) -> list[str]:
    return re.findall(r"<img\b[^>]*>", page)


def check_self_contained(page: str) -> list[Image.Image]:
    """No external resource of any kind; every <img> is an inline PNG that decodes. Returns the images."""
    low = page.lower()
    for bad in ('src="http', "src='http", "<link", "<script", "url(", "@import", "@font-face"):
        assert bad not in low, bad
    decoded = []
    for tag in images(page):
        m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', tag)
        assert m, tag[:120]
        im = Image.open(io.BytesIO(base64.b64decode(m.group(1), validate=True)))
        im.load()  # raises on a truncated or corrupt PNG
        assert im.format == "PNG" and im.width > 0 and im.height > 0
        decoded.append(im)
    return decoded


def summary_order(page: str) -> list[str]:
    table = re.search(r'<table class="summary">(.*?)</table>', page, re.S).group(1)
    return re.findall(r'<td class="id">([^<]+)</td>', table)


def test_report_is_self_contained_with_plots_and_samples(tmp_path):
    out = make_results(tmp_path)
    path = build_report(out)
    assert path == out / "report.html"
    page = path.read_text()
    decoded = check_self_contained(page)
    plots = ["metric_vs_optim.lr.png", "metric_vs_loss.png", f"curves_{METRIC}.png", "curves_losses.png"]
    for name in plots:
        assert Image.open(out / "plots" / name).format == "PNG"
    assert len(decoded) == len(plots) + 5  # the failed trial has no sample grid
    assert "no sample grid" in page and "image-rendering: pixelated" in page
    assert "Sweep demo" in page and "lower is better" in page and METRIC in page
    assert not list(out.glob(".*.tmp")) and not list((out / "plots").glob(".*.tmp"))  # atomic writes left nothing


def test_table_best_first_and_failures_last_with_reasons(tmp_path):
    page = build_report(make_results(tmp_path)).read_text()
    order = summary_order(page)
    assert order[:4] == BEST_FIRST
    assert set(order[4:]) == {"gan-aaaa0005", "gan-aaaa0006"}
    assert page.count('class="bad"') == 2
    assert "loss_d is 3.8e+04 in epoch 3" in page
    assert "CUDA out of memory &lt;boom&gt; &amp; co" in page and "<boom>" not in page  # escaped
    failures = page.split("Failed and diverged trials", 1)[1]
    assert "gan-aaaa0005" in failures and "gan-aaaa0006" in failures and "<p>none</p>" not in failures
    assert "18.12" in page and "18.125" not in page.split("<h2>Plots", 1)[0]  # 4 significant digits


def test_mode_collapse_is_shown_with_its_reason(tmp_path):
    out = make_results(tmp_path)
    table = pd.read_csv(out / "trials.csv")
    why = "modes_covered fell from 10 (epoch 2) to 6 (epoch 4)"
    table["mode_collapse"] = [why if t == "gan-aaaa0004" else "" for t in table.trial]
    table.to_csv(out / "trials.csv", index=False)
    sweep, trials, _ = load(out)  # the two parts of the page that show it (no plots: faster)
    assert why in summary_table(sweep, trials)
    assert why in failures(trials) and "gan-aaaa0004" in failures(trials)


def test_mode_max_ranks_highest_first(tmp_path):
    page = build_report(make_results(tmp_path, mode="max")).read_text()
    assert summary_order(page)[:4] == BEST_FIRST[::-1]
    assert "higher is better" in page


def text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags dropped, entities decoded, white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def summary_rows(page: str) -> dict[str, dict[str, str]]:
    """The trials table as {trial id: {column head: cell text, "class": the row's class}}, in page order."""
    table = re.search(r'<table class="summary">(.*?)</table>', page, re.S).group(1)
    heads = [text(h) for h in re.findall(r"<th>(.*?)</th>", table)]
    rows = {}
    for cls, cells in re.findall(r'<tr class="([^"]*)">(.*?)</tr>', table, re.S):
        row = dict(zip(heads, (text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", cells))), **{"class": cls})
        rows[row["trial"]] = row
    return rows


def section(page: str, heading: str) -> str:
    """The page from the <h2> that starts with heading to the next <h2>."""
    return re.search(rf"<h2>{re.escape(heading)}.*?</h2>(.*?)(?=<h2>|<footer>)", page, re.S).group(1)


def gallery_cells(page: str) -> dict[str, str]:
    """Each trial's figure in the samples gallery, by trial id."""
    cells = re.findall(r'<figure class="cell[^"]*">.*?</figure>', section(page, "Samples"), re.S)
    return {re.search(r'<span class="id">([^<]+)</span>', c).group(1): c for c in cells}


def metric_plots(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "plots").glob("metric_vs_*.png"))


def test_all_failed_says_no_trial_has_a_metric_and_lists_every_reason(tmp_path):
    trials = [(t, lr, loss, "failed", "ValueError: bad", None) for t, lr, loss, *_ in TRIALS]
    page = build_report(make_results(tmp_path, trials=trials)).read_text()
    check_self_contained(page)
    assert f"No trial reported {METRIC}." in page and "Best trial" not in page
    rows = summary_rows(page)
    assert len(rows) == len(TRIALS)
    assert {(r["class"], r["status"], r[f"best {METRIC}"], r["reason"]) for r in rows.values()} == {
        ("bad", "failed", "–", "ValueError: bad")}
    listed = section(page, "Failed and diverged trials")
    assert text(listed).count("ValueError: bad") == len(TRIALS)
    assert all(t in listed for t, *_ in TRIALS)
    grid = section(page, f"Grid of best {METRIC}")
    assert [text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", grid)] == ["failed"] * len(TRIALS)
    assert all("no sample grid" in cell for cell in gallery_cells(page).values())


def test_empty_sweep_says_there_is_no_trial(tmp_path):
    page = build_report(make_results(tmp_path, trials=[])).read_text()  # crashed on the empty trials.csv
    check_self_contained(page)
    assert "0 trials: no trials" in text(page)
    assert f"No trial reported {METRIC}." in page
    assert summary_rows(page) == {}
    assert text(section(page, "Samples")) == "No trials."
    assert text(section(page, "Failed and diverged trials")) == "none"


def test_a_nan_metric_shows_as_a_dash_and_ranks_last(tmp_path):
    trials = [(t, lr, loss, status, reason, math.nan if t == "gan-aaaa0002" else best)
              for t, lr, loss, status, reason, best in TRIALS]
    page = build_report(make_results(tmp_path, trials=trials)).read_text()
    rows = summary_rows(page)
    nan = rows["gan-aaaa0002"]
    assert (nan["status"], nan[f"best {METRIC}"], nan[f"final {METRIC}"], nan["class"]) == (
        "completed", "–", "–", "bad")
    assert list(rows)[:3] == [t for t in BEST_FIRST if t != "gan-aaaa0002"]
    assert list(rows)[3:] == ["gan-aaaa0005", "gan-aaaa0002", "gan-aaaa0006"]  # a diverged value beats none
    assert not re.search(r"\bnan\b", text(page), re.I)
    assert "Best trial: lr=0.0002, loss=lsgan gan-aaaa0003 — best fd_domain 18.12 at epoch 4" in text(page)


def test_one_param_has_its_plot_no_grid_and_labels_told_apart_by_id(tmp_path):
    out = make_results(tmp_path, params=("optim.lr",))
    page = build_report(out).read_text()
    check_self_contained(page)
    assert metric_plots(out) == ["metric_vs_optim.lr.png"]
    assert "Grid of best" not in page
    assert "lr" in next(iter(summary_rows(page).values())) and "loss" not in next(iter(summary_rows(page).values()))
    # Two trials share lr=0.0002 (they differ in a param that is not swept here): the id tells them apart.
    assert "Best trial: lr=0.0002 [gan-aaaa0003]" in text(page)


def test_single_trial_has_no_param_plot_and_no_failures(tmp_path):
    out = make_results(tmp_path, trials=TRIALS[:1], params=())
    page = build_report(out).read_text()
    check_self_contained(page)
    assert metric_plots(out) == [] and "Grid of best" not in page
    assert "swept: nothing (single trial)" in text(page) and "1 trial: completed 1" in text(page)
    assert "Best trial: gan-aaaa0001 gan-aaaa0001 — best fd_domain 21.5 at epoch 4" in text(page)
    assert "reason" not in summary_rows(page)["gan-aaaa0001"]  # no column of empty reasons
    assert text(section(page, "Failed and diverged trials")) == "none"


def test_no_curves_and_no_samples_keep_the_plots_and_say_no_sample_grid(tmp_path):
    out = make_results(tmp_path, curves=False, samples=False)
    (out / "curves.csv").unlink()
    page = build_report(out).read_text()
    # The two param plots and both curve panels (which then say no trial reported a value), and no sample.
    assert len(check_self_contained(page)) == 4
    cells = gallery_cells(page)
    assert len(cells) == len(TRIALS) and all("no sample grid" in c and "samples of" not in c for c in cells.values())


def test_a_broken_sample_png_is_shown_as_missing(tmp_path):
    out = make_results(tmp_path)
    (out / "samples" / "gan-aaaa0001.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    page = build_report(out).read_text()
    check_self_contained(page)
    cells = gallery_cells(page)
    missing = sorted(t for t, c in cells.items() if "no sample grid" in c)
    assert missing == ["gan-aaaa0001", "gan-aaaa0006"]  # the broken one and the failed trial's
    assert all("<img" in c for t, c in cells.items() if t not in missing)


def test_cli(tmp_path, capsys):
    out = make_results(tmp_path)
    main(["demo", "--results-dir", str(out.parent)])
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    with pytest.raises(SystemExit):
        main(["nope", "--results-dir", str(out.parent)])
    assert "does not exist: run the sweep first" in capsys.readouterr().err


def test_python_m_library_report(tmp_path):
    """The command line as a user types it; the page's style sheet is found as a file of the package."""
    out = make_results(tmp_path, trials=TRIALS[:1], params=(), curves=False, samples=False)
    done = subprocess.run([sys.executable, "-m", "library.report", "demo", "--results-dir", str(out.parent)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out / "report.html")
    assert "image-rendering: pixelated" in (out / "report.html").read_text()


# ---------------------------------------------------------------------------------------------- real browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_renders_in_headless_chromium(tmp_path):
    out = make_results(tmp_path)
    page = build_report(out)
    n_images = len(images(page.read_text()))

    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri())
    assert shot.exists(), "chromium wrote no screenshot"
    im = Image.open(shot).convert("RGB")
    assert im.size == (1200, 3000)
    pixels = np.asarray(im)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # text, plots and noisy samples, not a blank page
    assert (pixels < 128).any(axis=2).mean() > 0.01  # some dark ink

    assert loaded_images(tmp_path, page) == (n_images, 0)
    # The probe itself must catch a broken image.
    broken = out / "broken.html"
    broken.write_text('<html><body><img src="data:image/png;base64,iVBORw0KGgoAAAA="></body></html>')
    assert loaded_images(tmp_path, broken) == (1, 1)


FINGERPRINT = ("extractor=library-domain-cnn; weights_sha256=5e1f; torch_fidelity=0.4.0; input=28x28, as generated "
               "(no resize); n_real=5000; n_fake=1000; reference=mnist5k-train-28-2c34bbbc45")


def with_fingerprints(out: Path, other: dict[str, str]) -> None:
    """Every trial scored as FINGERPRINT, except those in `other` (trial -> its fingerprint); a floor beside."""
    table = pd.read_csv(out / "trials.csv")
    table["fingerprint"] = [other.get(t, FINGERPRINT) for t in table.trial]
    table[f"{METRIC}_floor"], table[f"{METRIC}_floor_n"] = 3.25, 1000
    table.to_csv(out / "trials.csv", index=False)


def test_scores_measured_alike_rank_with_the_real_vs_real_floor_beside_them(tmp_path):
    out = make_results(tmp_path)
    with_fingerprints(out, {})
    page = build_report(out).read_text()
    assert summary_order(page)[:4] == BEST_FIRST and "Best trial" in page and "not ranked" not in page
    assert "real-vs-real floor of fd_domain: <b>3.25</b>" in page and "1000 images each" in page
    assert "<th>real-vs-real floor</th>" in page


def test_scores_measured_differently_are_not_ranked_and_the_report_and_table_say_why(tmp_path, capsys):
    from library.results import print_summary
    from library.sweep import Sweep

    out = make_results(tmp_path)
    with_fingerprints(out, {"gan-aaaa0003": FINGERPRINT.replace("n_fake=1000", "n_fake=100")})
    page = build_report(out).read_text()
    why = "not ranked: the scores were measured differently (n_fake 1000 (gan-aaaa0001, gan-aaaa0002, gan-aaaa0004)"
    assert html.escape(why) in page and "100 (gan-aaaa0003)" in page
    assert "Best trial" not in page and "in trial order (not ranked)" in page
    assert summary_order(page) == sorted(summary_order(page))  # trial order, no "best first"
    print_summary(pd.read_csv(out / "trials.csv"), Sweep(name="demo", job="gan", metric=METRIC, mode="min"))
    printed = capsys.readouterr().out
    assert f"{METRIC}: {why}" in printed
    rows = [line.split()[0] for line in printed.splitlines() if line.startswith("gan-aaaa")]
    assert rows[:6] == sorted(rows[:6])
