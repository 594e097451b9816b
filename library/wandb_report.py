"""The W&B report of one sweep, built with wandb-workspaces (`wandb_workspaces.reports.v2`).

`report_spec` builds the report offline; `publish` saves it to W&B (online, needs `wandb login`), and
`publish_results` does so for a sweep's results folder (`python -m library.report SWEEP --wandb`).
The report shows the sweep's runs (W&B group = sweep name): a parallel-coordinates plot of every swept
param against the best value of the metric, one scatter plot per param, learning curves per epoch, the
D/G losses, the "samples" images, and a run comparer. With replicates (the sweep's `repeats`) the runs are
grouped by configuration: every run's config holds `config_id` and `replicate` (library.trial's Trial.labels),
and W&B draws each group's mean and range.

Config keys: a trial's config is logged flat, with dotted keys ("optim.beta1"), which W&B stores as
{"optim.beta1": {"value": ...}}, so its accessor is "config:optim.beta1.value". wandb-workspaces'
`Config("optim.beta1")` assumes a nested dict instead and writes "config:optim.value.beta1", which would
match nothing; the two small subclasses below write the flat accessor.
"""
from __future__ import annotations

from pathlib import Path

import wandb_workspaces.reports.v2 as wr
from wandb_workspaces import expr

from library.files import read_json
from library.sweep import Sweep
from library.tracking import wandb_logged_in

MODES = {"min": "lower is better", "max": "higher is better"}


def config_accessor(key: str) -> str:
    """The W&B accessor of a flat config key, dots and all: "optim.beta1" -> "config:optim.beta1.value"."""
    return f"config:{key}.value"


class _FlatConfigColumn(wr.ParallelCoordinatesPlotColumn):
    """A parallel-coordinates column of a flat (possibly dotted) config key."""

    def _to_model(self):
        model = super()._to_model()
        if isinstance(self.metric, wr.Config):
            model.accessor = config_accessor(self.metric.name)
        return model


class _FlatConfigScatter(wr.ScatterPlot):
    """A scatter plot whose x is a flat (possibly dotted) config key."""

    def _to_model(self):
        model = super()._to_model()
        if isinstance(self.x, wr.Config):
            model.config.x_axis = config_accessor(self.x.name)
        return model


def report_spec(sweep: str, project: str, entity: str | None, metric: str, mode: str, params: list[str],
                job: str, repeats: int = 1, preset: str = "") -> wr.Report:
    """The wandb_workspaces.reports.v2.Report object for one sweep (not saved).

    entity None leaves it empty (building then needs no network); `publish` fills in the default entity.
    With repeats > 1 the runset is grouped by the runs' config_id: one group per configuration.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    best = wr.SummaryMetric(f"best_{metric}")  # what the harness puts in each run's summary
    title = f"{sweep}: {metric} over {', '.join(params)}"
    runset = wr.Runset(
        entity=entity or "", project=project, name=sweep,
        filters=expr.And(expr.Metric("Group") == sweep),
        order=[wr.OrderBy(best, ascending=mode == "min")],
        # "config.config_id": a top-level key, which wandb-workspaces turns into the accessor config_id.value
        groupby=["config.config_id"] if repeats > 1 else [],
        pinned_columns=[config_accessor(p) for p in params] + [f"summary:best_{metric}"])
    panels = [
        wr.ParallelCoordinatesPlot(
            title=f"best {metric} by {', '.join(params)}",
            columns=[_FlatConfigColumn(metric=wr.Config(p), display_name=p) for p in params]
            + [wr.ParallelCoordinatesPlotColumn(metric=best, display_name=f"best {metric}")],
            layout=wr.Layout(w=24, h=8)),
        *(_FlatConfigScatter(title=f"best {metric} vs {p}", x=wr.Config(p), y=best) for p in params),
        wr.LinePlot(title=f"{metric} per epoch", x="epoch", y=[metric]),
        wr.LinePlot(title="D and G losses per epoch", x="epoch", y=["loss_d", "loss_g"]),
        wr.MediaBrowser(title="samples", media_keys=["samples"], gallery_axis="step",
                        layout=wr.Layout(w=24, h=10)),
        wr.RunComparer(diff_only="split", layout=wr.Layout(w=24, h=10)),
    ]
    text = [f"Sweep {sweep} (job {job}): {len(params)} swept param(s), {', '.join(params)}; "
            f"metric {metric}, best per run, {MODES[mode]}. "
            + (f"{repeats} replicates (seeds) per configuration, runs grouped by configuration (config_id); "
               f"results/{sweep}/configs.csv says which differ from the best (Welch's t-test, 5%). " if repeats > 1
               else "") + "Reproduce with ",
            wr.InlineCode(Sweep(name=sweep, job=job, metric=metric, preset=preset).command
                          + (f" --repeats={repeats}" if repeats > 1 else "")), "."]
    return wr.Report(
        project=project, entity=entity or "", title=title[:128],
        description=f"{metric} ({MODES[mode]}) over {', '.join(params)}",
        blocks=[wr.P(text=text), wr.PanelGrid(runsets=[runset], panels=panels)])


def publish(sweep: str, project: str, entity: str | None, metric: str, mode: str, params: list[str],
            job: str, repeats: int = 1, preset: str = "") -> str:
    """Save the report online (needs `wandb login`); returns its URL."""
    if not wandb_logged_in():  # fail before wandb.Api() would prompt for a key or wait on the network
        raise RuntimeError("no W&B API key is configured: run `wandb login`, "
                           f"then `python -m library.report {sweep} --wandb`")
    import wandb

    entity = entity or wandb.Api().default_entity
    report = report_spec(sweep, project, entity, metric, mode, params, job, repeats, preset)
    report.save()
    return report.url


def publish_results(results_dir: Path, entity: str | None = None) -> str:
    """Publish the W&B report of the sweep whose results are in results_dir, as its sweep.json describes it;
    returns the report's URL. Raises RuntimeError saying what to do when no W&B login is configured."""
    path = Path(results_dir) / "sweep.json"
    spec = read_json(path)
    if spec is None:
        raise RuntimeError(f"{path} does not exist: the W&B report is made from the sweep's results")
    # A sweep.json written before repeats existed is a sweep of one replicate per configuration.
    return publish(spec["name"], spec["project"], entity, spec["metric"], spec["mode"], spec["params"], spec["job"],
                   spec.get("repeats", 1), spec.get("preset", ""))
