"""The one training harness under real Ray Train: learning, DDP synchronisation and sharding, exact resume (also
on another worker count), checkpoint files, the guards."""
import math

import pytest
import torch

from helpers import assert_same_run, gan_config
from jobs.gan import GANConfig, GANJob, JOB
from library.config import parse
from library.files import read_json
from library.models.gan import build, sample_noise
from library.checkpoint import CHECKPOINTS
from library.job import Context, Job
from library.resources import Resources
from library.train import divergence, fit, run_epoch, shard
from library.trial import METRICS, STATUS


def config(**overrides):
    return gan_config(**{"train.epochs": 2, **overrides})


def test_dcgan_learns_digits_in_ray_train_local_mode(tmp_path):
    cfg = config(**{"train.epochs": 3, "data.limit": 0, "eval.final_num_samples": 1000, "eval.num_samples": 1000})
    status = fit("gan", cfg, tmp_path, Resources(workers=0))
    assert status["status"] == "completed", status.get("reason")
    history = read_json(tmp_path / METRICS)
    assert [h["epoch"] for h in history] == [1, 2, 3]

    # Epoch 0: the same seeded generator before any step, scored on the same number of samples.
    parsed = parse(GANConfig, cfg)
    torch.manual_seed(parsed.train.seed)
    g, _ = build(parsed.model, 28, 1)
    g.eval()
    with torch.no_grad():
        fake = ((g(sample_noise(parsed.model, 1000, "cpu")).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    untrained = JOB.scorer(parsed, "cpu").score(fake)["fd_domain"]

    final = history[-1]["fd_domain"]
    assert final < 0.5 * untrained, (untrained, [h["fd_domain"] for h in history])
    assert final < history[0]["fd_domain"]
    assert status["best_fd_domain"] == min(h["fd_domain"] for h in history)
    assert (tmp_path / "best.pt").exists() and (tmp_path / "samples.png").exists()


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_are_disjoint_equal_and_reshuffled_each_epoch(world):
    shards = [shard(101, 0, 0, rank, world) for rank in range(world)]
    assert [len(s) for s in shards] == [101 // world] * world
    seen = torch.cat(shards).tolist()
    assert len(set(seen)) == len(seen) == 101 - 101 % world and set(seen) <= set(range(101))  # each sample once
    assert torch.equal(shards[0], shard(101, 0, 0, 0, world))  # the same order again: what resume relies on
    assert not torch.equal(shards[0], shard(101, 1, 0, 0, world))  # another epoch, another order
    assert not torch.equal(shards[0], shard(101, 0, 1, 0, world))  # another seed, another order


class Recorder(Job):
    """A job whose every sample is its own index: its step records what its rank trained on."""

    def __init__(self):
        super().__init__(None)
        self.batches = []

    def step(self, batch, ctx):
        self.batches.append(batch[0].tolist())
        return {"loss": torch.zeros(())}


def test_each_ddp_rank_steps_through_its_own_shard_of_the_epoch(tmp_path, monkeypatch):
    # run_epoch as each of 2 ranks runs it; the ranks run one after the other here, so the all-reduces that
    # would average their step means (and agree on stop requests) do nothing.
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda *args, **kwargs: None)
    cfg = parse(GANConfig, {"train.batch_size": 8})
    data = [torch.arange(100)]
    seen = []
    for rank in range(2):
        job = Recorder()
        ctx = Context(cfg=cfg, run_dir=tmp_path, rank=rank, world_size=2, device=torch.device("cpu"), amp_dtype=None,
                      scaler=torch.amp.GradScaler("cpu", enabled=False), epoch=3)
        run_epoch(job, ctx, data)
        assert [len(b) for b in job.batches] == [4] * 12  # half the global batch of 8, 12 full steps of 50 samples
        seen.append([i for b in job.batches for i in b])
        assert seen[rank] == shard(100, 3, 0, rank, 2)[:48].tolist()  # this rank's shard, in its order
    assert not set(seen[0]) & set(seen[1])  # no sample trained twice in the epoch
    assert len(set(seen[0]) | set(seen[1])) == 96  # and together all but each rank's partial last batch


def test_ddp_with_two_ray_train_workers_keeps_replicas_identical(tmp_path):
    status = fit("gan", config(), tmp_path, Resources(workers=2))
    assert status["status"] == "completed", status.get("reason")
    assert status["workers"] == 2
    history = read_json(tmp_path / METRICS)
    # Each rank stepped on its own half of every batch; after all-reduced gradients the weights still agree.
    assert [h["ddp_weight_spread"] for h in history] == [0.0, 0.0]


def test_resume_from_checkpoint_ends_exactly_like_an_uninterrupted_run(tmp_path):
    cfg = config(**{"train.epochs": 3})
    fit("gan", cfg, tmp_path / "a", Resources())
    fit("gan", cfg, tmp_path / "b", Resources())
    # Interrupt "b" after epoch 2: its last checkpoint and status never got written.
    (tmp_path / "b" / CHECKPOINTS / "epoch_00003.pt").unlink()
    resumed = fit("gan", cfg, tmp_path / "b", Resources())
    assert resumed["resumed_from_epoch"] == 2
    assert_same_run(tmp_path / "b", tmp_path / "a")


def test_a_checkpoint_of_one_process_resumes_on_two_ddp_workers_and_the_run_goes_on(tmp_path):
    cfg = config()
    fit("gan", cfg, tmp_path, Resources(workers=0))
    (tmp_path / CHECKPOINTS / "epoch_00002.pt").unlink()  # interrupted after epoch 1
    status = fit("gan", cfg, tmp_path, Resources(workers=2))
    assert status["status"] == "completed", status.get("reason")
    assert status["resumed_from_epoch"] == 1 and status["workers"] == 2 and status["epoch"] == 2
    history = read_json(tmp_path / METRICS)
    assert [h["epoch"] for h in history] == [1, 2]
    assert "ddp_weight_spread" not in history[0]  # epoch 1 is the single process's, kept from its checkpoint
    assert history[1]["ddp_weight_spread"] == 0.0 and math.isfinite(history[1]["fd_domain"])
    assert torch.load(tmp_path / CHECKPOINTS / "epoch_00002.pt", weights_only=True)["epoch"] == 2


@pytest.mark.parametrize("epochs, every, keep, kept", [
    (5, 2, 10, [2, 4, 5]),  # every 2nd epoch, and always the last one
    (3, 1, 2, [2, 3]),  # only the newest 2
])
def test_checkpoint_every_and_keep_checkpoints_decide_the_checkpoint_files(tmp_path, epochs, every, keep, kept):
    status = fit("gan", config(**{"train.epochs": epochs, "train.checkpoint_every": every,
                                  "train.keep_checkpoints": keep, "eval.every": epochs}), tmp_path, Resources())
    assert status["status"] == "completed", status.get("reason")
    files = sorted((tmp_path / CHECKPOINTS).iterdir())
    assert [p.name for p in files] == [f"epoch_{e:05d}.pt" for e in kept]
    assert [torch.load(p, weights_only=True)["epoch"] for p in files] == kept


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    cfg = config(**{"train.epochs": 3})
    fit("gan", cfg, tmp_path, Resources())
    (tmp_path / CHECKPOINTS / "epoch_00003.pt").write_bytes(b"truncated")
    status = fit("gan", cfg, tmp_path, Resources())
    assert status["status"] == "completed" and status["resumed_from_epoch"] == 2


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_primary_metric_with_finite_losses_is_divergence(value):
    metrics = {"epoch": 2, "loss_d": 0.7, "loss_g": 1.3, "d_real": 0.6, "kd_domain": 2.0, "fd_domain": value}
    assert divergence(metrics, "fd_domain", 1000.0) == f"fd_domain={value}"
    assert divergence({**metrics, "fd_domain": 40.0}, "fd_domain", 1000.0) == ""


def test_a_nan_score_alone_ends_the_trial_as_diverged_after_its_last_good_epoch(tmp_path, monkeypatch):
    # Losses stay finite; the score of epoch 2 comes out NaN (as a degenerate covariance can make it).
    real = GANJob.evaluate

    def nan_in_epoch_2(self, ctx, final):
        scores = real(self, ctx, final)
        return {**scores, "fd_domain": math.nan} if ctx.epoch == 1 else scores

    monkeypatch.setattr(GANJob, "evaluate", nan_in_epoch_2)  # workers=0: the trial trains in this process
    status = fit("gan", config(**{"train.epochs": 3}), tmp_path, Resources())
    assert status["status"] == "diverged" and status["reason"] == "fd_domain=nan in epoch 2", status["reason"]
    assert status["final"]["epoch"] == 1 and math.isfinite(status["final"]["loss_d"])
    assert status["best_epoch"] == 1 and [h["epoch"] for h in read_json(tmp_path / METRICS)] == [1]
    assert [p.name for p in (tmp_path / CHECKPOINTS).iterdir()] == ["epoch_00001.pt"]  # nothing trained past it


def test_exploding_loss_ends_the_trial_as_diverged_with_its_reason(tmp_path):
    status = fit("gan", config(**{"train.max_loss": 0.05}), tmp_path, Resources())
    assert status["status"] == "diverged"
    assert "loss_d=" in status["reason"] and "exceeds train.max_loss=0.05" in status["reason"]


def test_a_crashing_trial_is_recorded_as_failed_with_the_fix(tmp_path):
    status = fit("gan", config(**{"data.name": "mnist", "data.root": str(tmp_path / "nothing")}), tmp_path / "run",
                 Resources())
    assert status["status"] == "failed"
    assert "python -m library.data prepare mnist" in status["reason"]
    assert read_json(tmp_path / "run" / STATUS)["status"] == "failed"


def test_a_compiled_model_checkpoints_as_the_plain_model(tmp_path):
    from library.train import make_context, place_model

    cfg = parse(GANConfig, {"train.compile": True})
    ctx = make_context(cfg, tmp_path, want_gpu=False)
    g, d = build(cfg.model, 28, 1)
    ctx.models = {"g": place_model(g, ctx)}
    assert ctx.models["g"] is not g  # wrapped by torch.compile (lazily: nothing is compiled until a call)
    # Checkpoints hold ctx.model(): loadable into a model that was never compiled, keys without "_orig_mod."
    assert ctx.model("g") is g
    assert list(ctx.model("g").state_dict()) == list(build(cfg.model, 28, 1)[0].state_dict())
