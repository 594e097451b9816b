"""The one training harness under real Ray Train: learning, DDP synchronisation, exact resume, the guards."""
import torch

from jobs.gan import GANConfig, JOB
from library.config import parse, to_dict
from library.files import read_json
from library.models.gan import build, sample_noise
from library.train import CHECKPOINTS, METRICS, STATUS, Resources, fit, shard


def config(**overrides):
    base = {"train.epochs": 2, "data.limit": 640, "eval.num_samples": 500, "eval.final_num_samples": 500}
    return to_dict(parse(GANConfig, {**base, **overrides}))


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


def test_shards_are_disjoint_equal_and_reshuffled_each_epoch():
    a, b = shard(101, 0, 0, 0, 2), shard(101, 0, 0, 1, 2)
    assert len(a) == len(b) == 50 and not set(a.tolist()) & set(b.tolist())
    assert not torch.equal(a, shard(101, 1, 0, 0, 2))


def test_ddp_with_two_ray_train_workers_keeps_replicas_identical(tmp_path):
    status = fit("gan", config(), tmp_path, Resources(workers=2))
    assert status["status"] == "completed", status.get("reason")
    assert status["workers"] == 2
    history = read_json(tmp_path / METRICS)
    # Each rank stepped on its own half of every batch; after all-reduced gradients the weights still agree.
    assert [h["ddp_weight_spread"] for h in history] == [0.0, 0.0]


def test_resume_from_checkpoint_ends_exactly_like_an_uninterrupted_run(tmp_path):
    cfg = config(**{"train.epochs": 3})
    straight = fit("gan", cfg, tmp_path / "a", Resources())
    fit("gan", cfg, tmp_path / "b", Resources())
    # Interrupt "b" after epoch 2: its last checkpoint and status never got written.
    (tmp_path / "b" / CHECKPOINTS / "epoch_00003.pt").unlink()
    resumed = fit("gan", cfg, tmp_path / "b", Resources())
    assert resumed["resumed_from_epoch"] == 2
    assert resumed["final"] | {"elapsed_s": 0} == straight["final"] | {"elapsed_s": 0}


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    cfg = config(**{"train.epochs": 3})
    fit("gan", cfg, tmp_path, Resources())
    (tmp_path / CHECKPOINTS / "epoch_00003.pt").write_bytes(b"truncated")
    status = fit("gan", cfg, tmp_path, Resources())
    assert status["status"] == "completed" and status["resumed_from_epoch"] == 2


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
