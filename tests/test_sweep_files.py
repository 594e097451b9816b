"""Every sweep file in sweeps/ validates (--dry-run) and its last trial trains for real, shrunk to a tiny budget;
every one says which report it reproduces, and its `--preset=seed` (the report's setup) validates too."""
import importlib.util
import math
import re
from pathlib import Path

import pytest

from helpers import ROOT, TINY, write_pathmnist
from library.config import parse, to_dict
from library.driver import main
from library.job import load_job
from library.resources import Resources
from library.sweep import resolve
from library.train import fit

SWEEPS = sorted((ROOT / "sweeps").glob("*.py"))

# Per job: overrides that shrink a trial to one epoch of seconds on CPU (data and evaluation sizes only).
SHRINK = {
    "gan": TINY,
    "vae": {"train.epochs": 1, "data.limit": 256},
    "sentiment": {"train.epochs": 1},
    "charrnn": {"train.epochs": 1, "data.limit_chars": 1_000, "data.seq_len": 10, "eval.sample_chars": 20},
    "langid": {"train.epochs": 1, "data.per_language": 20, "data.snippet_chars": 16},
    "palindrome": {"train.epochs": 1, "data.train_size": 512, "data.test_size": 101},
}


def pathmnist_fixture(root: Path) -> dict:
    """16 tiles in medmnist's real 64 px npz format; batch 8 keeps the 64 px DCGAN pair to two CPU steps."""
    write_pathmnist(root / "medmnist", 64, n=16)
    return {"data.root": str(root), "train.batch_size": 8}


# Per dataset that needs `prepare`: writes a small copy in its real format under a root, returns the overrides.
FIXTURES = {"pathmnist": pathmnist_fixture}


def load_sweep(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SWEEP


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_file_dry_runs_and_its_last_trial_trains(path, tmp_path, capsys):
    sweep = load_sweep(path)
    assert sweep.name == path.stem, "a sweep's name is its file's name (results/NAME, runs/NAME)"
    main(sweep, ["--dry-run", "--backend=local", f"--runs-dir={tmp_path}"])
    sweep, trials = resolve(sweep)  # the metric the sweep ranks by, the job's for this config
    assert f"{len(trials)} trials" in capsys.readouterr().out

    job = load_job(sweep.job)
    name = trials[-1].config.get("data.name")
    fixture = FIXTURES[name](tmp_path / "data") if name in FIXTURES else {}
    config = to_dict(parse(job.Config, {**trials[-1].config, **SHRINK[sweep.job], **fixture}))
    job.prepare(parse(job.Config, config))
    status = fit(sweep.job, config, tmp_path / "trial", Resources())
    assert status["status"] in ("completed", "diverged"), status.get("reason")
    assert status["epoch"] == 1, status
    if status["status"] == "completed":  # scored by the metric the sweep ranks by
        assert math.isfinite(status["final"][sweep.metric]), status["final"]
        assert status[f"best_{sweep.metric}"] == status["final"][sweep.metric] and status["best_epoch"] == 1
    else:  # e.g. the learning rate under study blows this tiny trial up: said so, naming the epoch
        assert status["reason"].endswith(" in epoch 1"), status["reason"]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_file_names_its_report_and_its_seed_preset_dry_runs(path, tmp_path, capsys):
    sweep = load_sweep(path)
    doc = importlib.util.spec_from_file_location(path.stem, path).loader.get_source(path.stem)
    assert re.search(r"report 00[0-4]", doc) and "--preset=seed" in doc, "the docstring says which report it follows"
    assert "seed" in sweep.presets
    _, trials = resolve(sweep.with_preset("seed"))
    main(sweep, ["--dry-run", "--preset=seed", "--backend=local", f"--runs-dir={tmp_path}"])
    assert f"{sweep.name}-seed: {len(trials)} trials" in capsys.readouterr().out
    default = {t.id for t in resolve(sweep)[1]}
    assert {t.id for t in trials} != default, "the seed preset is another setup than the quick default"
