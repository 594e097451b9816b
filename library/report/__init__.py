"""The self-contained HTML report of a sweep: `results/SWEEP/report.html` plus PNG plots in `results/SWEEP/plots/`.

Reads what `library.results` wrote (sweep.json, trials.csv, curves.csv, samples/TRIAL.png) and draws:
  plots/metric_vs_PARAM.png  best metric per trial against each swept param (coloured by the other param)
  plots/curves_METRIC.png    the sweep metric per epoch, one line per trial
  plots/curves_losses.png    loss_* per epoch (per training step where trials logged train.log_every_steps),
                             one panel per loss
The HTML embeds every image as a base64 data URI: no network, no JS, readable offline or attached to a mail.

    python -m library.report gan_betas [--results-dir results] [--wandb]

load.py reads the folder, format.py writes values and labels, plots.py draws, page.py (with style.css) writes
the page; the W&B report is library.wandb_report's.
"""
from library.report.page import build_report

__all__ = ["build_report"]
