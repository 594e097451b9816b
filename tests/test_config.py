"""Bad input fails on the login node, before anything trains, with one message naming field, value and range."""
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.gan import GANConfig
from library.config import ConfigError, parse, to_dict
from library.sweep import Sweep, expand, trial_id

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("key, value, allowed", [
    ("optim.beta1", 1.5, "[0, 1)"),
    ("optim.lr", 0.0, "(0, 1]"),
    ("optim.lr", -1e-3, "(0, 1]"),
    ("model.noise_dim", 0, "[1, 4096]"),
    ("train.epochs", 0, "[1, 100000]"),
    ("data.image_size", 48, "28, 32 or 64"),
    ("data.name", "cifar", "mnist5k"),
    ("eval.extractor", "vgg", "domain or inception"),
])
def test_out_of_range_values_name_the_field_value_and_range(key, value, allowed):
    with pytest.raises(ConfigError) as e:
        parse(GANConfig, {key: value})
    assert e.value.key == key and e.value.value == value
    assert key in str(e.value) and allowed in str(e.value)


def test_unknown_key_suggests_the_closest_valid_one():
    with pytest.raises(ConfigError, match=r"unknown key; did you mean 'optim.beta1'\?"):
        parse(GANConfig, {"optim.betta1": 0.5})


@pytest.mark.parametrize("value", ["abc", True, [0.5], None])
def test_wrong_python_type_is_rejected(value):
    with pytest.raises(ConfigError, match="optim.beta1"):
        parse(GANConfig, {"optim.beta1": value})


def test_command_line_strings_are_converted_by_the_field_type():
    cfg = parse(GANConfig, {"optim.beta1": 0.3, "train.epochs": 3, "model.noise": "uniform"})
    assert (cfg.optim.beta1, cfg.train.epochs, cfg.model.noise) == (0.3, 3, "uniform")
    from library.config import coerce
    assert coerce("train.epochs", "7", int) == 7 and coerce("optim.lr", "1e-3", float) == 1e-3
    assert coerce("x", "false", bool) is False
    with pytest.raises(ConfigError, match="an int"):
        coerce("train.epochs", "abc", int)


def test_trial_ids_are_deterministic_and_depend_on_every_value():
    from jobs.gan import JOB

    a = to_dict(parse(GANConfig, {"optim.beta1": 0.3}))
    assert trial_id(JOB, a) == trial_id(JOB, dict(reversed(list(a.items()))))
    assert trial_id(JOB, a) != trial_id(JOB, {**a, "train.seed": 1})


def sweep(**kw):
    return Sweep(**{"name": "t", "job": "gan", "metric": "fd_domain", **kw})


def test_grid_expands_to_every_combination_with_distinct_ids():
    trials = expand(sweep(grid={"optim.beta1": [0.3, 0.5, 0.999], "optim.beta2": [0.9, 0.999]}))
    assert len(trials) == 6 and len({t.id for t in trials}) == 6
    assert {(t.params["optim.beta1"], t.params["optim.beta2"]) for t in trials} == {
        (b1, b2) for b1 in (0.3, 0.5, 0.999) for b2 in (0.9, 0.999)}


@pytest.mark.parametrize("kw, field", [
    ({"grid": {"optim.lr": []}}, "grid.optim.lr"),
    ({"grid": {"optim.lr": [1e-3, 1e-3]}}, "grid.optim.lr"),
    ({"grid": {"optim.lr": [1e-3, 2.0]}}, "optim.lr"),
    ({"grid": {"train.seed": list(range(100)), "optim.lr": [i / 1000 + 1e-4 for i in range(100)]}}, "grid"),
    ({"metric": "fid"}, "metric"),
    ({"mode": "best"}, "mode"),
    ({"job": "nosuchjob"}, "job"),
])
def test_bad_sweeps_are_rejected_before_anything_runs(kw, field):
    with pytest.raises(ConfigError) as e:
        expand(sweep(**kw))
    assert e.value.key == field


def run_sweep_cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "sweeps/gan_betas.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_dry_run_lists_six_trials_and_writes_nothing(tmp_path):
    out = run_sweep_cli("--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("gan-")]
    assert len(rows) == 6 and all(line.split()[-1] == "new" for line in rows)
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_a_bad_value_with_exit_2_and_one_clear_line(tmp_path):
    out = run_sweep_cli("--optim.lr=0", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: optim.lr=0.0 is not allowed: a float in (0, 1]"
    assert list(tmp_path.iterdir()) == []


def test_a_jobs_own_section_defaults_are_its_defaults_and_overrides_still_win():
    from jobs.vae import VAEConfig

    cfg = parse(VAEConfig, {})
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.train.epochs, cfg.train.batch_size) == (1e-3, 0.9, 10, 32)
    assert cfg.optim.beta2 == 0.999 and cfg.train.seed == 0  # fields the job leaves alone keep the class's
    cfg = parse(VAEConfig, {"optim.lr": "0.01", "train.epochs": 3})
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.train.epochs, cfg.train.batch_size) == (0.01, 0.9, 3, 32)


def test_job_help_shows_the_jobs_own_section_defaults():
    out = subprocess.run([sys.executable, "jobs/vae.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--optim.lr=0.001 " in out.stdout and "--train.epochs=10 " in out.stdout
    assert "--train.batch_size=32 " in out.stdout


def test_a_list_field_is_set_from_a_command_line_string():
    from jobs.charrnn import CharRNNConfig

    cfg = parse(CharRNNConfig, {"data.files": "['a.txt', 'b.txt']"})
    assert cfg.data.files == ["a.txt", "b.txt"]
    assert parse(CharRNNConfig, {"data.files": ["c.txt"]}).data.files == ["c.txt"]  # a sweep's Python value


@pytest.mark.parametrize("value", ["['a.txt'", "a.txt", "[1, 2]", "'a.txt'"])
def test_a_bad_list_string_names_the_key_and_what_is_allowed(value):
    from jobs.charrnn import CharRNNConfig

    with pytest.raises(ConfigError) as e:
        parse(CharRNNConfig, {"data.files": value})
    assert e.value.key == "data.files" and e.value.value == value
    syntax = '"' + "['a', 'b']" + '"'
    assert str(e.value) == f"data.files={value!r} is not allowed: a list of str, written as a Python list like {syntax}"
