"""The VAE job learns on real digits through the harness: the held-out loss falls far below an untrained model's."""
import torch
from PIL import Image

from jobs.vae import JOB, splits
from library.config import ConfigError, parse, to_dict
from library.models.vae import VAE, interpolate, vae_loss
from library.files import read_json
from library.resources import Resources
from library.train import fit

import pytest


def untrained_held_out_loss(cfg) -> float:
    torch.manual_seed(cfg.train.seed)  # the harness seeds the same way before building the model
    vae = VAE((1, 28, 28), cfg.model.hidden, cfg.model.latent_dim)
    x = splits(cfg)[1].float() / 255
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        return vae_loss(x, vae.decode(mu), mu, logvar)["loss"].item()


def test_vae_learns_and_writes_samples_and_interpolation(tmp_path):
    cfg = parse(JOB.Config, {"train.epochs": 3, "model.latent_dim": 8})
    status = fit("vae", to_dict(cfg), tmp_path, Resources())
    assert status["status"] == "completed", status.get("reason")
    history = read_json(tmp_path / "metrics.json")
    untrained = untrained_held_out_loss(cfg)
    losses = [entry["test_loss"] for entry in history]
    print(f"\nheld-out loss: untrained {untrained:.1f}, per epoch {[round(v, 1) for v in losses]}")
    assert losses[-1] < 0.5 * untrained and losses[-1] < losses[0]
    assert status["best_test_loss"] == min(losses) and history[-1]["test_kl"] > 0  # the latent code is used
    assert len(splits(cfg)[1]) == 500  # mnist5k has no test split: a fixed 10% is held out
    with Image.open(tmp_path / "samples.png") as samples, Image.open(tmp_path / "interpolation.png") as grid:
        assert samples.size == (8 * 30 + 2, 8 * 30 + 2)  # 8 x 8 digits of 28 px, 2 px padding
        assert grid.size == (10 * 30 + 2, 8 * 30 + 2)  # 8 pairs, 10 steps each
    assert (tmp_path / "samples" / "epoch_0003.png").exists()


def test_interpolation_runs_from_one_code_to_the_other():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    path = interpolate(a, b, 5).reshape(2, 5, 3)
    assert torch.equal(path[:, 0], a) and torch.equal(path[:, -1], b)
    assert torch.allclose(path[0, 2], torch.full((3,), 0.5))


def test_bad_latent_dim_names_the_field():
    with pytest.raises(ConfigError, match="model.latent_dim=0"):
        parse(JOB.Config, {"model.latent_dim": 0})
