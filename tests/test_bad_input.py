"""The bad-input catalogue: every case goes through the real entry point (`library.driver.main`, as
`python sweeps/NAME.py` calls it) and must exit 2 with one message naming the field, the value and what is
allowed, before anything is trained, written under runs/ or results/, or submitted to Slurm."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, TINY
from library.driver import main
from library.sweep import Sweep

NAME = "badinput"
SLURM = shutil.which("sbatch") is not None


def sweep(**kw) -> Sweep:
    return Sweep(**{"name": NAME, "job": "gan", "metric": "fd_domain", "base": dict(TINY),
                    "grid": {"optim.beta1": [0.3, 0.5]}, **kw})


def write(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def corrupt_mnist(tmp: Path) -> str:
    from library.data import DATASETS

    folder = tmp / "data" / DATASETS["mnist"].subdir
    folder.mkdir(parents=True)
    for download in DATASETS["mnist"].files[28]:
        (folder / download.filename).write_bytes(b"not a gzip file")
    return str(tmp / "data")


# (id, sweep overrides, command line (TMP = this case's folder), (field, value, allowed) the message must name)
CASES = [
    # wrong types
    ("int-field-given-text", {}, ["--train.epochs=abc"], ("train.epochs", "'abc'", "an int")),
    ("int-field-given-float", {}, ["--train.batch_size=2.5"], ("train.batch_size", "2.5", "an int, got float")),
    ("float-in-grid-given-text", {"grid": {"optim.beta1": [0.5, "high"]}}, [], ("optim.beta1", "'high'", "a float")),
    ("bool-in-grid-for-float", {"grid": {"optim.lr": [1e-3, True]}}, [], ("optim.lr", "True", "a float, got bool")),
    ("grid-not-a-list", {"grid": {"optim.beta1": 0.5}}, [], ("grid.optim.beta1", "0.5", "a non-empty list")),
    ("argument-without-dashes", {}, ["epochs=3"], ("epochs=3", "'epochs=3'", "--section.key=value")),
    # out-of-range values
    ("lr-zero", {}, ["--optim.lr=0"], ("optim.lr", "0.0", "a float in (0, 1]")),
    ("beta1-above-one", {}, ["--optim.beta1=1.5"], ("optim.beta1", "1.5", "a float in [0, 1)")),
    ("epochs-negative", {}, ["--epochs=-1"], ("train.epochs", "-1", "an integer in [1, 100000]")),
    ("epochs-too-many", {}, ["--train.epochs=100001"], ("train.epochs", "100001", "[1, 100000]")),
    ("image-size", {}, ["--data.image_size=48"], ("data.image_size", "48", "28, 32 or 64")),
    ("unknown-dataset", {}, ["--dataset=cifar"], ("data.name", "'cifar'", "one of [")),
    ("amp-mode", {}, ["--train.amp=fp8"], ("train.amp", "'fp8'", "auto, bf16, fp16 or off")),
    ("noise-kind", {}, ["--model.noise=gumbel"], ("model.noise", "'gumbel'", "normal or uniform")),
    ("out-of-range-in-grid", {"grid": {"optim.lr": [1e-3, 2.0]}}, [], ("optim.lr", "2.0", "a float in (0, 1]")),
    ("workers-negative", {}, ["--workers-per-trial=-1"], ("--workers-per-trial", "-1", "an integer >= 0")),
    ("gpus-negative", {}, ["--gpus-per-worker=-1"], ("--gpus-per-worker", "-1", "an integer >= 0")),
    ("gpus-per-trial-negative", {}, ["--gpus-per-trial=-1"], ("--gpus-per-trial", "-1.0", "a number >= 0")),
    ("a-fraction-of-a-gpu-for-ddp-ranks", {}, ["--workers-per-trial=2", "--gpus-per-trial=0.5"],
     ("--gpus-per-trial", "0.5", "2 workers share in whole GPUs")),
    ("gpus-per-trial-and-per-worker", {}, ["--gpus-per-trial=1", "--gpus-per-worker=1"],
     ("--gpus-per-trial", "1.0", "given alone")),
    ("trials-per-task-negative", {}, ["--trials-per-task=-1"], ("--trials-per-task", "-1", "an integer >= 0")),
    ("max-concurrent-negative", {}, ["--max-concurrent=-2"], ("--max-concurrent", "-2", "an integer >= 0")),
    ("nodes-zero", {}, ["--nodes=0"], ("--nodes", "0", "an integer >= 1")),
    ("samples-zero", {"search": {"optim.lr": None}, "samples": 0}, [], ("samples", "0", "an integer >= 1")),
    ("repeats-zero", {}, ["--repeats=0"], ("--repeats", "0", "an integer >= 1")),
    ("repeats-of-a-swept-seed", {"grid": {"train.seed": [0, 1]}}, ["--repeats=2"], ("repeats", "2", "varies train.seed")),
    # unknown keys
    ("unknown-key-typo", {}, ["--optim.betta1=0.5"], ("optim.betta1", "'0.5'", "did you mean 'optim.beta1'")),
    ("unknown-key-in-grid", {"grid": {"optim.momentum": [0.9]}}, [], ("optim.momentum", "0.9", "unknown key")),
    ("unknown-key-in-base", {"base": {**TINY, "train.epoch": 2}}, [], ("train.epoch", "2", "did you mean 'train.epochs'")),
    # empty grids, duplicates, too many trials
    ("empty-grid-axis", {"grid": {"optim.beta1": []}}, [], ("grid.optim.beta1", "[]", "a non-empty list")),
    ("duplicate-values", {"grid": {"optim.beta1": [0.5, 0.3, 0.5]}}, [], ("grid.optim.beta1", "[0.5, 0.3, 0.5]",
                                                                          "distinct values (repeated: 0.5)")),
    ("ten-thousand-trials", {"grid": {"train.seed": list(range(100)), "optim.lr": [(i + 1) / 1000 for i in range(100)]}},
     [], ("grid", "'10000 trials'", "at most 5000 trials per sweep")),
    ("replicates-count-as-trials", {"grid": {"optim.lr": [(i + 1) / 1000 for i in range(100)]}}, ["--repeats=60"],
     ("grid", "'6000 trials'", "at most 5000 trials per sweep")),
    # the sweep itself
    ("unknown-job", {"job": "nosuchjob"}, [], ("job", "'nosuchjob'", "unknown job 'nosuchjob'; available jobs: ")),
    ("metric-the-job-does-not-report", {"metric": "fid"}, [], ("metric", "'fid'", "'fd_domain'")),
    ("mode", {"mode": "best"}, [], ("mode", "'best'", "min or max")),
    ("mode-against-the-metric", {"mode": "max"}, [], ("mode", "'max'", "'min': which way fd_domain is better")),
    ("metric-against-the-override", {}, ["--eval.extractor=inception"], ("metric", "'fd_domain'", "'fid'")),
    ("two-metrics-in-one-sweep", {"grid": {"eval.extractor": ["domain", "inception"]}}, [],
     ("grid", "eval.extractor", "trials report fd_domain and fid")),
    ("sweep-name", {"name": "bad name!"}, [], ("name", "'bad name!'", "letters, digits, - and _")),
    # datasets
    ("missing-dataset", {}, ["--data.name=mnist", "--data.root=TMP/empty"],
     ("data.name", "'mnist'", "run: python -m library.data prepare mnist")),
    ("corrupt-dataset", {}, ["--data.name=mnist", "--data.root=DATA"],
     ("data.name", "'mnist'", "is corrupt; run: python -m library.data prepare mnist")),
    # result folders
    ("results-dir-is-a-file", {}, ["--results-dir=TMP/afile"], ("--results-dir", "afile", "a folder this user can write to")),
    ("runs-dir-under-a-file", {}, ["--runs-dir=TMP/afile/runs"], ("--runs-dir", "afile/runs", "a folder this user can")),
]


@pytest.mark.parametrize("overrides, argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_anything_runs(tmp_path, capsys, overrides, argv, expected):
    if overrides.get("search"):
        from library.search import Uniform

        overrides = {**overrides, "search": {"optim.lr": Uniform(1e-4, 1e-2)}}
    (tmp_path / "afile").write_text("not a folder")
    data = corrupt_mnist(tmp_path) if "--data.root=DATA" in argv else ""
    argv = [a.replace("TMP", str(tmp_path)).replace("DATA", data) for a in argv]
    message = refuse(sweep(**overrides), ["--backend=local", *argv], tmp_path, capsys)
    field, value, allowed = expected
    assert field in message and value in message and allowed in message, message


def refuse(spec: Sweep, argv: list[str], tmp: Path, capsys) -> str:
    """Run the sweep; it must exit 2 with one error line, leaving no runs/ or results/ and no Slurm job."""
    with pytest.raises(SystemExit) as e:
        main(spec, [f"--runs-dir={tmp / 'runs'}", f"--results-dir={tmp / 'results'}", *argv])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert not (tmp / "runs").exists() and not (tmp / "results").exists()
    if SLURM:
        queued = subprocess.run(["squeue", "-h", "-n", spec.name], capture_output=True, text=True).stdout
        assert queued.strip() == ""
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


SITES = [
    ("site-not-toml", "slurm_partition = debug\n", ("--site", "site.toml", "a readable TOML site profile")),
    ("site-missing-file", None, ("--site", "nosuch.toml", "a readable TOML site profile")),
    ("site-unknown-key", "partition = 'debug'\n", ("site.partition", "'debug'", "did you mean 'slurm_partition'")),
    ("site-wrong-type", "timeout_min = 'ten'\n", ("site.timeout_min", "'ten'", "an int")),
    ("site-out-of-range", "slurm_array_parallelism = 0\n", ("site.slurm_array_parallelism", "0", "an integer >= 1")),
    ("unknown-partition", "slurm_partition = 'nosuch'\n",
     ("site.slurm_partition", "'nosuch'", "one of this cluster's partitions: ['debug', 'gpu', 'short']")),
    ("time-over-the-partitions", "slurm_partition = 'short'\ntimeout_min = 10\n",
     ("site.timeout_min", "10", "at most 5 minutes, the time limit of partition 'short'")),
]


@pytest.mark.slurm
@pytest.mark.parametrize("site, expected", [c[1:] for c in SITES], ids=[c[0] for c in SITES])
def test_bad_site_profile_is_refused_before_sbatch(cluster, tmp_path, capsys, site, expected):
    path = tmp_path / ("site.toml" if site is not None else "nosuch.toml")
    if site is not None:
        path.write_text(site)
    message = refuse(sweep(), ["--backend=slurm", f"--site={path}"], tmp_path, capsys)
    field, value, allowed = expected
    assert field in message and value in message and allowed in message, message


def test_unknown_backend_is_refused_by_the_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(sweep(), ["--backend=kubernetes", f"--runs-dir={tmp_path / 'runs'}"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "--backend: invalid choice: 'kubernetes' (choose from 'auto', 'local', 'slurm', 'ray-slurm')" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command, message", [
    (["sweeps/gan_betas.py", "--optim.beta1=1.5"], "error: optim.beta1=1.5 is not allowed: a float in [0, 1)"),
    (["jobs/gan.py", "--train.epochs=0"], "error: train.epochs=0 is not allowed: an integer in [1, 100000]"),
])
def test_a_real_process_exits_2_with_the_one_line_message(tmp_path, command, message):
    out = subprocess.run([sys.executable, str(ROOT / command[0]), *command[1:]], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and out.stderr.strip() == message, out.stderr
    assert list(tmp_path.iterdir()) == []
