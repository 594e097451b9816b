"""Bad input fails on the login node, before anything trains, with one message naming field, value and range."""
import subprocess
import sys

import pytest

from helpers import ROOT, sweep_cli
from jobs.charrnn import CharRNNConfig
from jobs.gan import GANConfig
from jobs.sentiment import SentimentConfig
from jobs.vae import VAEConfig
from library.config import ConfigError, parse, to_dict
from library.sweep import Sweep, expand
from library.trial import trial_id


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


# Every range check of the harness's keys (shared by all jobs) and of the jobs' own eval/data sections: the bad
# value is refused naming the field and what is allowed, and the edge of the range is accepted.
@pytest.mark.parametrize("config, key, bad, edge, allowed", [
    (GANConfig, "optim.beta2", 1.0, 0.0, "a float in [0, 1)"),
    (GANConfig, "optim.beta2", -0.1, 0.999999, "a float in [0, 1)"),
    (VAEConfig, "optim.beta2", 1.0, 0.0, "a float in [0, 1)"),
    (GANConfig, "train.batch_size", 0, 1, "an integer >= 1"),
    (GANConfig, "train.checkpoint_every", 0, 1, "an integer >= 1"),
    (GANConfig, "train.keep_checkpoints", 0, 1, "an integer >= 1"),
    (GANConfig, "train.max_loss", 0.0, 1e-6, "a float > 0"),
    (GANConfig, "train.max_loss", -1.0, 1e-6, "a float > 0"),
    (GANConfig, "eval.every", 0, 1, "an integer >= 1"),
    (VAEConfig, "eval.every", 0, 1, "an integer >= 1"),
    (SentimentConfig, "eval.every", 0, 1, "an integer >= 1"),
    (CharRNNConfig, "eval.every", 0, 1, "an integer >= 1"),
    (GANConfig, "eval.num_samples", 9, 10, "an integer >= 10"),
    (GANConfig, "eval.final_num_samples", 9, 10, "an integer >= 10"),
    (GANConfig, "data.limit", -1, 0, "an integer >= 0"),
    (VAEConfig, "data.limit", -1, 0, "an integer >= 0"),
    (SentimentConfig, "data.limit", -1, 0, "an integer >= 0"),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_each_range_check_refuses_a_value_outside_naming_the_field_and_accepts_its_edge(config, key, bad, edge,
                                                                                        allowed):
    with pytest.raises(ConfigError) as e:
        parse(config, {key: bad})
    assert (e.value.key, e.value.value) == (key, bad)
    assert str(e.value).startswith(f"{key}={bad!r} is not allowed: {allowed}"), str(e.value)
    assert to_dict(parse(config, {key: edge}))[key] == edge


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
    return sweep_cli(ROOT / "sweeps/gan_betas.py", *args, cwd=cwd, check=False, timeout=120)


def test_dry_run_lists_six_trials_and_writes_nothing(tmp_path):
    out = run_sweep_cli("--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("gan-")]
    assert len(rows) == 6 and all(line.endswith("not run") for line in rows)
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_a_bad_value_with_exit_2_and_one_clear_line(tmp_path):
    out = run_sweep_cli("--optim.lr=0", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: optim.lr=0.0 is not allowed: a float in (0, 1]"
    assert list(tmp_path.iterdir()) == []


def test_a_jobs_own_section_defaults_are_its_defaults_and_overrides_still_win():
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
    cfg = parse(CharRNNConfig, {"data.files": "['a.txt', 'b.txt']"})
    assert cfg.data.files == ["a.txt", "b.txt"]
    assert parse(CharRNNConfig, {"data.files": ["c.txt"]}).data.files == ["c.txt"]  # a sweep's Python value


@pytest.mark.parametrize("value", ["['a.txt'", "a.txt", "[1, 2]", "'a.txt'"])
def test_a_bad_list_string_names_the_key_and_what_is_allowed(value):
    with pytest.raises(ConfigError) as e:
        parse(CharRNNConfig, {"data.files": value})
    assert e.value.key == "data.files" and e.value.value == value
    syntax = '"' + "['a', 'b']" + '"'
    assert str(e.value) == f"data.files={value!r} is not allowed: a list of str, written as a Python list like {syntax}"


def test_a_job_whose_config_lacks_what_the_harness_reads_is_refused_when_loaded_naming_the_key(tmp_path, monkeypatch):
    """The harness reads cfg.train.* and cfg.eval.every of every job: a job without them fails on the login node."""
    import sys

    from library.job import load_job

    (tmp_path / "jobs").mkdir()
    jobs_pkg = sys.modules["jobs"]
    monkeypatch.setattr(jobs_pkg, "__path__", [*jobs_pkg.__path__, str(tmp_path / "jobs")])
    (tmp_path / "jobs" / "noeval.py").write_text(
        "from dataclasses import dataclass, field\n"
        "from library.config import TrainConfig\n"
        "from library.job import Job\n"
        "@dataclass\nclass Cfg:\n    train: TrainConfig = field(default_factory=TrainConfig)\n"
        "class NoEval(Job):\n    name = 'noeval'\n    Config = Cfg\n"
        "JOB = NoEval\n")
    with pytest.raises(ValueError, match=r"job 'noeval': Cfg lacks .*: eval \(EvalSchedule\)"):
        load_job("noeval")
    assert load_job("gan").name == "gan"
