"""What identifies a trial: the keys that change its result. Run mechanics and new keys at their default leave
every id alone, a checkpoint resumes under other mechanics, and the results table keeps earlier runs' trials."""
from dataclasses import dataclass
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from helpers import gan_config
from jobs.gan import GANConfig, JOB
from library.config import MECHANICS, TrainConfig, default_values, identity, parse, section, to_dict
from library.files import write_json
from library.sweep import Sweep, expand
from library.trial import trial_id
from library.checkpoint import CHECKPOINTS, restore
from library.resources import Resources
from library.train import fit, make_context
from library.trial import STATUS


def ids(**base):
    return [t.id for t in expand(Sweep(name="t", job="gan", metric="fd_domain", base=base,
                                       grid={"optim.beta1": [0.3, 0.5]}))]


@pytest.mark.parametrize("key, value", [("train.keep_checkpoints", 3), ("train.checkpoint_every", 2),
                                        ("train.compile", True), ("train.channels_last", False),
                                        ("data.root", "/scratch/elsewhere")])
def test_run_mechanics_leave_trial_ids_unchanged_and_a_result_key_changes_them(key, value):
    assert key in MECHANICS
    assert ids(**{key: value}) == ids() != ids(**{key: value, "optim.lr": 1e-3})


@dataclass(kw_only=True)
class TrainWithWarmup(TrainConfig):
    warmup: int = 0
    """A key added to the code later, at a default that keeps the old behaviour."""


@dataclass(kw_only=True)
class GANConfigWithWarmup(GANConfig):
    train: TrainWithWarmup = section(TrainWithWarmup)


def test_a_new_key_at_its_default_leaves_every_id_unchanged():
    later = SimpleNamespace(name="gan", Config=GANConfigWithWarmup)  # the job after the key was added
    for beta1 in (0.3, 0.5):
        before = to_dict(parse(GANConfig, {"optim.beta1": beta1}))
        after = to_dict(parse(GANConfigWithWarmup, {"optim.beta1": beta1}))
        assert after["train.warmup"] == 0 and trial_id(later, after) == trial_id(JOB, before)
        assert trial_id(later, {**after, "train.warmup": 5}) != trial_id(JOB, before)
    only_beta1 = to_dict(parse(GANConfigWithWarmup, {"optim.beta1": 0.3, "train.keep_checkpoints": 3}))
    assert identity(only_beta1, default_values(GANConfigWithWarmup)) == {"optim.beta1": 0.3}


def test_a_checkpoint_resumes_under_other_run_mechanics_and_new_keys_but_not_under_another_config(tmp_path):
    config = gan_config(**{"train.epochs": 2, "train.keep_checkpoints": 2})
    assert fit("gan", config, tmp_path, Resources())["status"] == "completed"
    (tmp_path / CHECKPOINTS / "epoch_00002.pt").unlink()  # interrupted after epoch 1
    path = tmp_path / CHECKPOINTS / "epoch_00001.pt"  # ... by code that had no train.max_loss yet
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    del ckpt["config"]["train.max_loss"]
    torch.save(ckpt, path)
    resumed = fit("gan", {**config, "train.keep_checkpoints": 3}, tmp_path, Resources())
    assert resumed["status"] == "completed", resumed.get("reason")
    assert resumed["resumed_from_epoch"] == 1
    refused = fit("gan", {**config, "optim.lr": 1e-3}, tmp_path, Resources())
    assert refused["status"] == "failed"
    assert "holds a checkpoint of a different config (changed: ['optim.lr'])" in refused["reason"]


@pytest.mark.parametrize("saved, now, changed", [
    ({"optim.beta1": 0.3}, {}, ["optim.beta1"]),  # the checkpoint has a value where the config now has the default
    ({}, {"optim.lr": 1e-3}, ["optim.lr"]),  # ... the default where the config now has a value
    ({"optim.lr": 1e-3, "train.seed": 1}, {"optim.lr": 2e-3, "train.seed": 1}, ["optim.lr"]),
    ({"train.keep_checkpoints": 5}, {"optim.lr": 1e-3, "train.keep_checkpoints": 1}, ["optim.lr"]),  # not mechanics
])
def test_restore_refuses_a_checkpoint_of_another_config_naming_each_changed_key(tmp_path, saved, now, changed):
    (tmp_path / CHECKPOINTS).mkdir()
    checkpoint = tmp_path / CHECKPOINTS / "epoch_00001.pt"
    torch.save({"config": gan_config(**saved), "epoch": 1}, checkpoint)
    written = checkpoint.read_bytes()
    cfg = parse(GANConfig, gan_config(**now))
    with pytest.raises(RuntimeError) as e:
        restore(make_context(cfg, tmp_path, want_gpu=False), to_dict(cfg))
    assert f"holds a checkpoint of a different config (changed: {changed}); refusing to resume it" in str(e.value)
    assert checkpoint.read_bytes() == written  # refused, and left for the user to look at


def fake_trial(run_dir, config, fd):
    """A finished trial's run dir as the harness leaves it: a checkpoint holding its config, and its status."""
    (run_dir / CHECKPOINTS).mkdir(parents=True)
    torch.save({"config": config, "epoch": 2}, run_dir / CHECKPOINTS / "epoch_00002.pt")
    write_json(run_dir / STATUS, {"status": "completed", "epoch": 2, "final": {"fd_domain": fd},
                                  "best_fd_domain": fd, "best_epoch": 2})
    write_json(run_dir / "metrics.json", [{"epoch": 1, "fd_domain": fd + 1}, {"epoch": 2, "fd_domain": fd}])


def test_results_keep_the_finished_trials_of_an_earlier_run_of_the_sweep(tmp_path, capsys):
    from library import results
    from library.driver import finish

    sweep = Sweep(name="t", job="gan", metric="fd_domain", grid={"optim.beta1": [0.3, 0.5]})
    earlier_run = expand(sweep)
    run_root, out_dir = tmp_path / "runs", tmp_path / "results"
    for t, fd in zip(earlier_run, (2.0, 3.0)):
        fake_trial(run_root / t.id, t.config, fd)
    (run_root / "slurm" / "123").mkdir(parents=True)  # not a trial: no checkpoint, no status
    narrowed = expand(Sweep(name="t", job="gan", metric="fd_domain", grid={"optim.beta1": [0.3]}))  # --optim.beta1=0.3
    assert [t.id for t in narrowed] == [earlier_run[0].id]

    finish(sweep, narrowed, run_root, out_dir, [])
    table = pd.read_csv(out_dir / "trials.csv")
    assert table[["trial", "optim.beta1", "status", "best_fd_domain", "current"]].values.tolist() == [
        [earlier_run[0].id, 0.3, "completed", 2.0, True], [earlier_run[1].id, 0.5, "completed", 3.0, False]]
    assert set(pd.read_csv(out_dir / "curves.csv").trial) == {t.id for t in earlier_run}
    assert "1 row from earlier runs of this sweep kept (column current=False)" in capsys.readouterr().out
    assert results.collect(sweep, earlier_run, run_root, out_dir).current.tolist() == [True, True]
