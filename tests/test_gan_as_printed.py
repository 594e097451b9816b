"""The GANs as the reports state them: report 000's PathMNIST pair module for module (its printed listing is
tests/golden/report000_pathmnist64.txt, copied from the report), the MLP GAN of report 002's template, and the
WGAN-GP critic objective (Gulrajani et al. 2017): its penalty, its fp16 path, and a run on real digits that learns."""
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import gan_config, write_pathmnist
from jobs.gan import JOB, GANConfig
from library.config import ConfigError, parse, to_dict
from library.files import read_json
from library.losses import gradient_penalty
from library.models.gan import build, sample_noise
from library.pixels import to_uint8
from library.resources import Resources
from library.train import fit, make_context
from library.trial import METRICS

LISTING = Path(__file__).parent / "golden" / "report000_pathmnist64.txt"


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def pathmnist64(**overrides):
    cfg = parse(GANConfig, {"data.name": "pathmnist", "data.image_size": 64, "model.arch": "pathmnist64", **overrides})
    return build(cfg.model, 64, 3, 9)


def test_report000_pair_prints_as_the_report_lists_it_and_has_its_parameter_counts():
    g, d = pathmnist64()
    printed = f"{g}\n{d}\n"
    # Our torch also prints BatchNorm's newer `bias` flag, which the report's torch did not have; True is its
    # default, and the report's norms are affine. Everything else must match line for line.
    printed = re.sub(r"(BatchNorm2d\(.*affine=True), bias=True", r"\1", printed)
    assert printed.splitlines() == LISTING.read_text().splitlines()
    assert (count(g), count(d)) == (12_672_768, 2_765_824)

    fake = g(torch.randn(2, 100))
    assert fake.shape == (2, 3, 64, 64) and fake.abs().max() <= 1
    seen = []  # the attention branch reads conv3's 256-channel 8x8 map, and its weights change D's score
    d.attention.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    d.eval()
    before = d(fake)
    assert seen == [(2, 256, 8, 8)] and before.shape == (2,)
    with torch.no_grad():
        d.attention[0].weight.add_(1.0)
    assert not torch.allclose(d(fake), before)


@pytest.mark.parametrize("overrides, key, allowed", [
    ({"data.image_size": 32}, "data.image_size", "64 for model.arch='pathmnist64'"),
    ({"data.name": "mnist5k"}, "data.name", "a 3-channel dataset"),
    ({"model.attention": "branch"}, "model.attention", "printed branch built in"),
    ({"model.conditional": True}, "model.conditional", "takes no label"),
])
def test_pathmnist64_refuses_what_the_printed_pair_cannot_do(overrides, key, allowed):
    with pytest.raises(ConfigError) as error:
        parse(GANConfig, {"data.name": "pathmnist", "data.image_size": 64, "model.arch": "pathmnist64", **overrides})
    assert error.value.key == key and allowed in error.value.allowed


def test_mlp_gan_has_the_layers_of_report_002s_template():
    # The template's comments: G latent -> 128 -> 256 -> 512 -> 1024 -> 784, Bnorm from 256 on; D 784 -> 512 -> 256 -> 1.
    g, d = build(parse(GANConfig, {"model.arch": "mlp", "model.dropout": 0.0}).model, 28, 1, 10)

    def layers(model):
        return [(m.in_features, m.out_features) if isinstance(m, nn.Linear) else type(m).__name__
                for m in model.modules() if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
    assert layers(g) == [(100, 128), (128, 256), "BatchNorm1d", (256, 512), "BatchNorm1d", (512, 1024), "BatchNorm1d",
                         (1024, 784)]
    assert layers(d) == [(784, 512), (512, 256), (256, 1)]


def test_gradient_penalty_is_the_papers_and_undoes_the_fp16_loss_scale():
    # A linear critic D(x) = w.x has gradient w at every point: the penalty is exactly (||w|| - 1)^2.
    torch.manual_seed(0)
    critic = nn.Linear(12, 1, bias=False)
    real, fake = torch.randn(16, 3, 2, 2), torch.randn(16, 3, 2, 2)
    expected = (critic.weight.norm() - 1).square().item()
    off = torch.amp.GradScaler("cpu", enabled=False)
    assert gradient_penalty(lambda x: critic(x.flatten(1)), real, fake, off).item() == pytest.approx(expected)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)  # the gradient is taken of the 65536-times output

    def fp16_critic(x):
        with torch.autocast("cpu", dtype=torch.float16):
            return critic(x.flatten(1))
    penalty = gradient_penalty(fp16_critic, real, fake, scaler)
    assert penalty.dtype == torch.float32 and penalty.item() == pytest.approx(expected, rel=1e-2)
    penalty.backward()  # and it trains the critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    w = critic.weight.detach()
    assert torch.allclose(critic.weight.grad, 2 * (w.norm() - 1) * w / w.norm(), atol=5e-3)  # w is fp16 in the forward


def test_wgan_gp_dcgan_critic_uses_layer_norm_and_a_step_trains_under_fp16_with_a_grad_scaler(tmp_path):
    cfg = parse(GANConfig, {"data.image_size": 32, "model.g_width": 8, "model.d_width": 8, "model.loss": "wgan-gp",
                            "model.d_steps": 2})
    ctx = make_context(cfg, tmp_path, want_gpu=False)
    ctx.amp_dtype, ctx.scaler = torch.float16, torch.amp.GradScaler("cpu")  # CPU autocast stands in for the GPU's
    job = JOB(cfg)
    ctx.models, ctx.optimizers = job.build(ctx)
    d = ctx.models["d"]
    norms = {type(m).__name__ for m in d.modules() if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d))}
    assert norms == {"GroupNorm"}  # layer norm in place of batch norm, as Gulrajani et al. advise
    images, labels = job.load_data()
    before = [p.detach().clone() for p in d.parameters()]
    for _ in range(4):  # the first steps overflow at the initial scale of 65536 and are skipped; the scale comes down
        out = job.step([images[:8], labels[:8]], ctx)
        assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in out.values()), out
    assert ctx.scaler.get_scale() < 2.0**16
    assert any(not torch.equal(a, b) for a, b in zip(before, d.parameters()))


def test_report000_pair_trains_as_a_wgan_gp_critic_with_its_printed_batch_norm(tmp_path):
    # bf16 autocast: CPU fp16 takes a minute a step for this pair (see the fp16 test above for the scaler path).
    write_pathmnist(tmp_path / "data" / "medmnist", 64, n=8)
    cfg = parse(GANConfig, {"data.name": "pathmnist", "data.root": str(tmp_path / "data"), "data.image_size": 64,
                            "model.arch": "pathmnist64", "model.loss": "wgan-gp"})
    ctx = make_context(cfg, tmp_path, want_gpu=False)
    ctx.amp_dtype = torch.bfloat16
    job = JOB(cfg)
    ctx.models, ctx.optimizers = job.build(ctx)
    d = ctx.models["d"]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3  # as printed: conv2, conv3, conv4
    images, labels = job.load_data()
    before = [p.detach().clone() for p in d.parameters()]
    out = job.step([images, labels], ctx)
    assert all(torch.isfinite(v) for v in out.values()), out
    assert all(not torch.equal(a, b) for a, b in zip(before, d.parameters()))  # every critic weight moved


def test_train_compile_is_refused_with_the_gradient_penalty():
    with pytest.raises(ConfigError) as error:
        parse(GANConfig, {"model.loss": "wgan-gp", "train.compile": True})
    assert error.value.key == "train.compile" and "differentiate twice" in error.value.allowed


def test_wgan_gp_learns_digits(tmp_path):
    # Budget: 3 epochs of 2,000 of the 5,000 digits at 28 px, batch 32, n_critic 5, widths 16 (about 30 s on 2
    # CPU cores). lr 5e-4 rather than the paper's 1e-4, which needs far more generator steps than this; measured
    # here: fd_domain 712 -> 414 -> 242.
    cfg = parse(GANConfig, {"model.loss": "wgan-gp", "model.d_steps": 5, "optim.lr": 5e-4, "optim.beta1": 0.0,
                            "optim.beta2": 0.9, "model.g_width": 16, "model.d_width": 16, "model.dropout": 0.0,
                            "data.limit": 2000, "train.batch_size": 32, "train.epochs": 3, "eval.num_samples": 500,
                            "eval.final_num_samples": 500})
    JOB.prepare(cfg)
    scorer = JOB.scorer(cfg, "cpu")
    torch.manual_seed(cfg.train.seed)
    untrained, _ = build(cfg.model, 28, 1, 10)
    with torch.no_grad():
        epoch0 = scorer.score(to_uint8(untrained(sample_noise(cfg.model, 500, "cpu"))))["fd_domain"]

    status = fit("gan", to_dict(cfg), tmp_path, Resources())
    assert status["status"] == "completed", status.get("reason")
    history = read_json(tmp_path / METRICS)
    scores = [h["fd_domain"] for h in history]
    assert scores[-1] < 0.5 * epoch0 and scores[-1] < scores[0], (epoch0, scores)
    assert history[-1]["loss_d"] < 0  # a critic's loss: D(G(z)) - D(x) + penalty, negative once D tells them apart


def test_wgan_gp_under_ddp_with_two_workers_keeps_replicas_identical(tmp_path):
    # DDP cannot differentiate twice: the penalty runs on the unwrapped critic before D's DDP passes, whose
    # synchronised backward then averages its gradient too. Were it left out of the average, the replicas (each
    # with its own interpolates) would drift apart.
    cfg = gan_config(**{"model.loss": "wgan-gp", "model.d_steps": 2, "model.g_width": 8, "model.d_width": 8,
                        "train.epochs": 2})
    status = fit("gan", cfg, tmp_path, Resources(workers=2))
    assert status["status"] == "completed", status.get("reason")
    assert [h["ddp_weight_spread"] for h in read_json(tmp_path / METRICS)] == [0.0, 0.0]
