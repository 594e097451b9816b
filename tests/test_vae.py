"""The VAE job learns on real digits through the harness: the held-out loss falls far below an untrained model's;
it is scored on sampled z, on validation and test splits that share no image with training."""
import pytest
import torch
from PIL import Image

from helpers import write_pathmnist
from jobs.vae import JOB, splits
from library.checkpoint import load_checkpoint
from library.config import ConfigError, parse, to_dict
from library.files import read_json
from library.models.vae import VAE, interpolate, vae_loss
from library.resources import Resources
from library.train import fit


def elbo_losses(vae: VAE, x: torch.Tensor, draws: int) -> tuple[float, float]:
    """(the loss training minimises, z sampled from q(z|x), averaged over many fresh draws; the loss with z at the
    posterior mean, which is not what training minimises)."""
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        sampled = [vae_loss(x, vae.decode(mu + torch.randn(mu.shape, generator=gen) * (0.5 * logvar).exp()), mu,
                            logvar)["loss"].item() for _ in range(draws)]
        return sum(sampled) / draws, vae_loss(x, vae.decode(mu), mu, logvar)["loss"].item()


def test_vae_learns_and_writes_samples_and_interpolation(tmp_path):
    cfg = parse(JOB.Config, {"train.epochs": 3, "model.latent_dim": 8})
    status = fit("vae", to_dict(cfg), tmp_path, Resources())
    assert status["status"] == "completed", status.get("reason")
    history = read_json(tmp_path / "metrics.json")
    test = splits(cfg)["test"].float() / 255
    torch.manual_seed(cfg.train.seed)  # the harness seeds the same way before building the model
    untrained, _ = elbo_losses(VAE((1, 28, 28), cfg.model.hidden, cfg.model.latent_dim), test, 8)
    losses = [entry["test_loss"] for entry in history]
    print(f"\nheld-out loss: untrained {untrained:.1f}, per epoch {[round(v, 1) for v in losses]}")
    assert losses[-1] < 0.5 * untrained and losses[-1] < losses[0]
    assert status["best_val_loss"] == min(h["val_loss"] for h in history) and history[-1]["test_kl"] > 0
    assert status["test_loss_at_best"] == history[status["best_epoch"] - 1]["test_loss"]

    # The test loss is the sampled-z loss training minimises (checked against 64 fresh draws), not the lower loss of
    # decoding the posterior mean.
    vae = VAE((1, 28, 28), cfg.model.hidden, cfg.model.latent_dim)
    vae.load_state_dict(load_checkpoint(tmp_path)["models"]["vae"])
    sampled, at_mean = elbo_losses(vae, test, 64)
    print(f"final test loss {losses[-1]:.2f}; sampled z (64 draws) {sampled:.2f}; z at the mean {at_mean:.2f}")
    assert abs(losses[-1] - sampled) < 0.3 and sampled - at_mean > 0.6

    data = splits(cfg)  # mnist5k has neither a test nor a val split: a fixed 10% held out for each, disjoint
    assert len(data["test"]) == len(data["val"]) == 500 and len(data["train"]) == 4000
    seen = {bytes(x.numpy()) for x in data["train"]}
    val, test = {bytes(x.numpy()) for x in data["val"]}, {bytes(x.numpy()) for x in data["test"]}
    assert not seen & val and not seen & test and not val & test
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


def test_pathmnist_uses_its_own_validation_and_test_splits(tmp_path):
    arrays = write_pathmnist(tmp_path / "medmnist", 28, n=6)
    data = splits(parse(JOB.Config, {"data.name": "pathmnist", "data.root": str(tmp_path), "train.batch_size": 4}))
    for split in ("train", "val", "test"):  # all of each published split, as published (N x H x W x C -> N x C x H x W)
        assert torch.equal(data[split], torch.from_numpy(arrays[f"{split}_images"]).permute(0, 3, 1, 2)), split
