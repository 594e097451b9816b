"""Every sweep file in sweeps/ validates (--dry-run) and its last trial trains for real, shrunk to a tiny budget."""
import importlib.util
from pathlib import Path

import pytest

from library.config import parse, to_dict
from library.sweep import expand, main
from library.train import Resources, fit, load_job
from test_data import write_pathmnist

SWEEPS = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.py"))

# Per job: overrides that shrink a trial to seconds on CPU (data and evaluation sizes only).
TINY = {
    "gan": {"train.epochs": 1, "data.limit": 256, "eval.num_samples": 100, "eval.final_num_samples": 100},
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
    trials = expand(sweep)
    assert f"{len(trials)} trials" in capsys.readouterr().out

    job = load_job(sweep.job)
    name = trials[-1].config.get("data.name")
    fixture = FIXTURES[name](tmp_path / "data") if name in FIXTURES else {}
    config = to_dict(parse(job.Config, {**trials[-1].config, **TINY[sweep.job], **fixture}))
    job.prepare(parse(job.Config, config))
    status = fit(sweep.job, config, tmp_path / "trial", Resources())
    assert status["status"] in ("completed", "diverged"), status.get("reason")
    assert status["epoch"] >= 1 and status["final"], status
