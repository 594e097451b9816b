"""A sweep: one job, a base config, a grid of hyperparameters, a metric. `expand` turns it into validated
trials with ids derived from their configs; library.driver runs them.

A sweep file holds no logic:

    from library.driver import main
    from library.sweep import Sweep

    SWEEP = Sweep(name="gan_betas", job="gan", mode="min",
                  base={"train.epochs": 6}, grid={"optim.beta1": [0.3, 0.5, 0.999]},
                  presets={"seed": Preset(base={"data.name": "faces", ...}, grid={...})})
    if __name__ == "__main__":
        main(SWEEP)

The metric is the job's for the config (`resolve`): fd_domain by default, fid with --eval.extractor=inception.
`python sweeps/gan_betas.py --preset=seed` runs the preset's setup instead of the file's own (see Preset).
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from library.config import ConfigError, parse, require, to_dict
from library.job import load_job
from library.resources import Resources
from library.search import ASHA, draw
from library.seeds import replicate_seed
from library.tracking import DEFAULT_PROJECT, wandb_mode
from library.trial import Trial, trial_id

MAX_TRIALS = 5000
BIG = 50
"""A sweep of more trials than this is big (our choice of where): what it prints and its report sum up instead of
showing every trial. The plan before a run lists its first trials and each parameter's values; the results table
its best and worst rows, failures grouped by reason (every row stays in trials.csv); the report's gallery the best
and worst by the metric and a sample of the rest, the others linked, its curves the best in colour and the rest
faint. A sweep of this many or fewer shows every trial one by one."""
RECORD = "sweep.json"
"""A sweep's record (see Sweep.record): in results/SWEEP/ for the report, in runs/SWEEP/ray_slurm/ with the
trials for the driver inside a ray-slurm job."""


@dataclass(kw_only=True)
class Preset:
    """Another setup of a sweep's study, chosen with `--preset=NAME` (`seed`: the original report's). It replaces
    the sweep's base config and axes whole (nothing of the sweep file's own base leaks in); job, mode, repeats,
    early stopping and resources stay the sweep's (--gpus-per-worker sets those). Its trials and results live
    apart from the default's, under runs/SWEEP-NAME and results/SWEEP-NAME."""

    base: dict[str, Any]
    """Overrides of the job's config shared by every trial (Sweep.base)."""
    grid: dict[str, list] = field(default_factory=dict)
    """Config key -> values; every combination is one trial (Sweep.grid)."""
    search: dict[str, Any] = field(default_factory=dict)
    """Config key -> distribution: random search (Sweep.search)."""
    samples: int = 1
    """Random draws from `search` per grid point (Sweep.samples)."""


@dataclass(kw_only=True)
class Sweep:
    name: str
    """Names the results folder results/NAME and the run folder runs/NAME."""
    job: str
    """Module in jobs/ that every trial runs."""
    metric: str = ""
    """What the table is sorted by and the best epoch is chosen by. Leave it empty: it is the job's primary metric
    for the trials' config (`resolve`), so an override such as --eval.extractor=inception turns fd_domain into
    fid. A name given here must be that metric."""
    mode: str = ""
    """min or max: which way the metric is better; empty: the job's."""
    base: dict[str, Any] = field(default_factory=dict)
    """Overrides of the job's config shared by every trial."""
    grid: dict[str, list] = field(default_factory=dict)
    """Config key -> values; every combination is one trial."""
    search: dict[str, Any] = field(default_factory=dict)
    """Config key -> distribution (library.search: Uniform, LogUniform, IntRange, Choice): random search."""
    samples: int = 1
    """Random draws from `search` per grid point."""
    seed: int = 0
    """Seed of the random draws: the same seed gives the same trials on every re-run."""
    repeats: int = 1
    """Runs of every configuration (grid point or random draw), each with its own train.seed: replicate 0 with
    the configuration's, the others with library.seeds.replicate_seed. results/NAME/configs.csv then gives each
    configuration's mean and 95% confidence interval and which are distinguishable from the best."""
    early_stop: ASHA | None = None
    """Stop trials that fall behind (ASHA through Ray Tune; local and ray-slurm backends)."""
    resources: Resources = field(default_factory=Resources)
    """What each trial runs on."""
    project: str = DEFAULT_PROJECT
    """W&B project of the trials' runs (group = the sweep's name)."""
    presets: dict[str, Preset] = field(default_factory=dict)
    """Other setups of the study, by name, run with `--preset=NAME` (see Preset)."""
    preset: str = ""
    """The preset this sweep was set up by ("" = the sweep file's own setup); its name is then FILE-PRESET."""

    def with_preset(self, name: str) -> Sweep:
        """The sweep as preset `name` sets it up, named FILE-PRESET (its own runs/ and results/ folders)."""
        require(name in self.presets, "--preset", name,
                f"one of {', '.join(self.presets)}" if self.presets else f"none: sweep {self.name!r} has no presets")
        p = self.presets[name]
        return replace(self, name=f"{self.name}-{name}", base=p.base, grid=p.grid, search=p.search, samples=p.samples,
                       metric="", presets={}, preset=name)  # the metric: the job's for the preset's config

    @property
    def script(self) -> str:
        """The sweep file, sweeps/FILE.py (a preset's sweep is named FILE-PRESET)."""
        return f"sweeps/{self.name.removesuffix(f'-{self.preset}') if self.preset else self.name}.py"

    @property
    def command(self) -> str:
        """How a user runs this sweep: `python sweeps/FILE.py`, with its --preset."""
        return f"python {self.script}" + (f" --preset={self.preset}" if self.preset else "")

    @property
    def params(self) -> list[str]:
        """The config keys that vary between trials."""
        return [*self.grid, *self.search]

    def tracking(self) -> dict[str, Any]:
        """W&B settings for every trial, decided once on the login node (see library.tracking)."""
        return {"project": self.project, "group": self.name, "job_type": self.job, "tags": [self.name],
                "mode": wandb_mode()}

    def record(self, trials: list[Trial] | None = None) -> dict[str, Any]:
        """What another process needs to know of this sweep, as JSON (RECORD); with the trials to run, if given.
        The W&B settings are the login node's (its W&B mode), not those of wherever the record is read."""
        out = {"name": self.name, "job": self.job, "metric": self.metric, "mode": self.mode, "params": self.params,
               "base": self.base, "repeats": self.repeats, "project": self.project, "preset": self.preset,
               "resources": asdict(self.resources),
               "early_stop": asdict(self.early_stop) if self.early_stop else None, "tracking": self.tracking()}
        if trials is not None:
            out["trials"] = [t.to_json() for t in trials]
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Sweep:
        """The sweep as a record describes it, for running its trials (the grid itself is not kept: the record's
        trials are what runs)."""
        return cls(name=record["name"], job=record["job"], metric=record["metric"], mode=record["mode"],
                   base=record["base"], repeats=record["repeats"], project=record["project"],
                   preset=record.get("preset", ""), resources=Resources(**record["resources"]),
                   early_stop=ASHA(**record["early_stop"]) if record["early_stop"] else None)


def resolve(sweep: Sweep) -> tuple[Sweep, list[Trial]]:
    """The sweep with its metric and mode those its job reports for the trials' config, and its trials."""
    trials, (metric, mode) = _expand(sweep)
    return replace(sweep, metric=metric, mode=mode), trials


def expand(sweep: Sweep) -> list[Trial]:
    """Every grid point (times every random draw) as validated trials, `repeats` per configuration, replicates
    of one configuration next to each other; any bad value fails here, naming the field."""
    return _expand(sweep)[0]


def _expand(sweep: Sweep) -> tuple[list[Trial], tuple[str, str]]:
    """The trials and the (metric, mode) that the job reports for all of them."""
    require(sweep.mode in ("", "min", "max"), "mode", sweep.mode, "min or max (or empty: the job's)")
    require(bool(sweep.name) and sweep.name.replace("_", "").replace("-", "").isalnum(), "name", sweep.name,
            "letters, digits, - and _")
    for key, values in sweep.grid.items():
        require(isinstance(values, (list, tuple)) and len(values) > 0, f"grid.{key}", values, "a non-empty list")
        dupes = {repr(v) for v in values if list(values).count(v) > 1}
        require(not dupes, f"grid.{key}", values, f"distinct values (repeated: {', '.join(sorted(dupes))})")
    both = sorted(set(sweep.grid) & set(sweep.search))
    require(not both, "search", both, "keys that are not also in grid")
    require(isinstance(sweep.samples, int) and sweep.samples >= 1, "samples", sweep.samples, "an integer >= 1")
    check_repeats(sweep)
    size = (sweep.samples if sweep.search else 1) * sweep.repeats
    for values in sweep.grid.values():
        size *= len(values)
    require(size <= MAX_TRIALS, "grid", f"{size} trials", f"at most {MAX_TRIALS} trials per sweep; split the sweep")
    if sweep.early_stop is not None:
        sweep.early_stop.check()
    try:
        job = load_job(sweep.job)
    except ValueError as e:
        raise ConfigError("job", sweep.job, str(e)) from None
    trials, seen, scored = [], set(), {}
    draws = draw(sweep.search, sweep.samples, sweep.seed) if sweep.search else [{}]
    combos = list(itertools.product(*sweep.grid.values()))
    for combo in combos:
        for point in draws:
            cfg = parse(job.Config, {**sweep.base, **dict(zip(sweep.grid, combo)), **point})
            config = to_dict(cfg)
            trial = Trial(trial_id(job, config), {k: config[k] for k in sweep.params}, config)
            scored.setdefault(job.primary_metric(cfg), config)
            if trial.id not in seen:  # random draws from small Choice spaces can repeat a point
                seen.add(trial.id)
                trials += replicates(job, trial, sweep.repeats)
            if sweep.early_stop is not None:
                require(cfg.eval.every == 1, "eval.every", cfg.eval.every,
                        "1 with early_stop: ASHA compares trials by the metric of every epoch")
    if len(seen) < len(combos) * len(draws):  # only draws repeat: grid values are distinct
        print(f"{len(combos) * len(draws)} draws gave {len(seen)} distinct trials "
              "(repeated points of Choice/IntRange spaces are run once)")
    return trials, one_metric(sweep, scored)




def one_metric(sweep: Sweep, scored: dict[tuple[str, str], dict]) -> tuple[str, str]:
    """The one (metric, mode) of all trials (from `scored`: each to a config that reports it): a sweep ranks its
    trials on one metric, and a name the sweep gives must be that one."""
    if len(scored) > 1:
        (a, config_a), (b, config_b) = list(scored.items())[:2]
        differ = sorted(k for k in config_a if config_a[k] != config_b.get(k))
        raise ConfigError("grid", ", ".join(differ), f"values that keep one metric: trials report {a[0]} and {b[0]}; "
                          "put them in separate sweeps")
    ((metric, mode),) = scored
    require(sweep.metric in ("", metric), "metric", sweep.metric,
            f"{metric!r}: what job {sweep.job!r} reports with this config (or leave metric out)")
    require(sweep.mode in ("", mode), "mode", sweep.mode, f"{mode!r}: which way {metric} is better")
    return metric, mode


def check_repeats(sweep: Sweep) -> None:
    """repeats is a count, and one that the rest of the sweep leaves meaningful."""
    require(isinstance(sweep.repeats, int) and sweep.repeats >= 1, "repeats", sweep.repeats, "an integer >= 1")
    if sweep.repeats == 1:
        return
    require(sweep.early_stop is None, "repeats", sweep.repeats,
            "1 with early_stop: ASHA would stop each replicate on its own seed's metric, not on its configuration's "
            "mean; run the replicates without early_stop")
    require("train.seed" not in sweep.params, "repeats", sweep.repeats,
            "1 when the sweep varies train.seed itself (grid or search): each seed is then a configuration of its "
            "own; drop train.seed from the sweep and let repeats vary it")


def replicates(job, trial: Trial, repeats: int) -> list[Trial]:
    """A configuration's `repeats` runs: the trial itself as replicate 0 (so trials run before repeats existed
    count as replicate 0), then replicate r with train.seed = replicate_seed(trial.id, r), each with its own id."""
    out = [trial]
    for r in range(1, repeats):
        config = {**trial.config, "train.seed": replicate_seed(trial.id, r)}
        out.append(Trial(trial_id(job, config), trial.params, config, r, trial.id))
    return out
