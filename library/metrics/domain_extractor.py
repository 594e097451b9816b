"""A small CNN classifier trained on the real images, used as torch-fidelity's feature extractor.

Compute nodes have no internet, so Inception weights may be missing there. A classifier trained on the
dataset itself has penultimate features that separate its classes, and a Fréchet distance on them ranks
generated sets by quality just as FID does; it is a different number, so it is named `fd_domain`.
"""

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import register_feature_extractor

from library.files import build_once
from library.pixels import to_float

EXTRACTOR_NAME = "library-domain-cnn"  # the name torch-fidelity knows it by (and puts in its cache files)
FEATURE = "penultimate"
FEATURE_DIM = 128


class DomainClassifier(nn.Module):
    """Two conv blocks and a 128-d penultimate layer; adaptive pooling lets any image size in."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.embed = nn.Sequential(
            # C x H x W
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            # 32 x H/2 x W/2
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            # 64 x 4 x 4, whatever H and W were
            nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURE_DIM), nn.ReLU(),
            # 128: the features the Fréchet distance compares
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def train_domain_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 5,
    max_steps: int = 1500,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
) -> DomainClassifier:
    """Train on uint8 N x C x H x W images with Adam. `max_steps` bounds the cost on large datasets."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded weight init without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = DomainClassifier(images.shape[1], num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    labels = labels.reshape(-1).long()  # medmnist labels come as N x 1
    epoch_orders = [torch.randperm(len(images), generator=generator) for _ in range(epochs)]
    batches = [idx for order in epoch_orders for idx in order.split(batch_size)]
    model.train()
    for idx in batches[:max_steps]:
        loss = F.cross_entropy(model(to_float(images[idx].to(device))), labels[idx].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def save_domain_classifier(model: DomainClassifier, path: Path) -> None:
    """A plain torch.save; `load_or_train` makes it atomic."""
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    torch.save({"in_channels": model.in_channels, "num_classes": model.num_classes, "state_dict": state}, path)


def load_domain_classifier(path: str | os.PathLike, device: str = "cpu") -> DomainClassifier:
    saved = torch.load(path, map_location=device, weights_only=True)
    model = DomainClassifier(saved["in_channels"], saved["num_classes"])
    model.load_state_dict(saved["state_dict"])
    return model.to(device).eval()


def load_or_train(
    path: Path, images: torch.Tensor, labels: torch.Tensor, num_classes: int, device: str = "cpu"
) -> Path:
    """Return `path`, training the classifier and saving it there first unless another trial already did."""
    return build_once(path, lambda tmp: save_domain_classifier(
        train_domain_classifier(images, labels, num_classes, device=device), tmp))


class DomainFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity's view of a saved DomainClassifier: uint8 B x 3 x H x W in, 128-d features out.

    torch-fidelity builds it itself, passing every `calculate_metrics` keyword argument; the classifier
    file comes through `feature_extractor_weights_path`.
    """

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"{EXTRACTOR_NAME} needs feature_extractor_weights_path (its classifier)")
        self.classifier = load_domain_classifier(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list():
        return (FEATURE,)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return FEATURE

    @staticmethod
    def can_be_compiled():
        return False

    def forward(self, x):
        if self.classifier.in_channels == 1:
            x = x.float().mean(dim=1, keepdim=True)  # gray images reach torch-fidelity repeated to RGB
        return (self.classifier.embed(to_float(x)),)


register_feature_extractor(EXTRACTOR_NAME, DomainFeatureExtractor)
