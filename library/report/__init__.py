"""The self-contained HTML report of a sweep: `results/SWEEP/report.html` plus PNG plots in `results/SWEEP/plots/`.

Reads what `library.results` wrote (sweep.json, trials.csv, curves.csv, samples/TRIAL.png) and draws:
  plots/metric_vs_PARAM.png  best metric per trial against each swept param (coloured by the other param)
  plots/curves_METRIC.png    the sweep metric per epoch, one line per trial
  plots/curves_losses.png    loss_* per epoch (per training step where trials logged train.log_every_steps),
                             one panel per loss
The HTML embeds every image as a base64 data URI: no network, no JS, readable offline or attached to a mail.
A sweep of more than library.sweep.BIG (50) trials gets a page that stays small (~1.5 MB at 1,000 trials): its
gallery inlines the best, the worst and a sample of the other trials' grids and links the rest to samples/TRIAL.png
beside the page (gallery.py), its curves draw the best few in colour and the rest faint, its failures are grouped by
reason.

    python -m library.report gan_betas [--results-dir results] [--wandb]

load.py reads the folder, format.py writes values and labels, plots.py draws, gallery.py shows the sample
grids, page.py (with style.css) writes the page; the W&B report is library.wandb_report's.
"""
from library.report.page import build_report

__all__ = ["build_report"]
