"""Mode coverage of generated images, and mode-collapse detection from a trial's per-epoch history.

Coverage uses the dataset's own classifier (the domain extractor's CNN, trained on the labelled real set):
the histogram of its predictions on generated images says which classes the generator draws, and how far
that is from the real class distribution.
"""
from __future__ import annotations

import math

import torch

from library.metrics.domain_extractor import DomainClassifier
from library.pixels import to_float

MIN_CONFIDENCE = 0.7
"""Only images the classifier assigns to a class with at least this probability are counted: its
misreadings of real digits (~10% at argmax) are mostly unconfident, and would otherwise cover extra classes.
Not higher: at 0.9 a digit the classifier is unsure of (9s: 33 of 250 real ones confident) drops out of real sets."""

MIN_SHARE = 0.25
"""A class counts as covered when it gets at least this fraction of its real share of the samples
(a class with 10% of the real images needs 2.5% of the generated ones)."""

COVERAGE_DROP = 2
"""Mode collapse: modes_covered falls this many classes below its best."""

SCORE_RISE = 2.0
"""Mode collapse: the Fréchet score ends this many times above its best, with every loss finite."""

MIN_RECALL = 0.05
"""Mode collapse: the final recall (the share of real images inside the generated manifold) below this. Our
choice: the collapsed main-job trial ends at 0.0012."""

MIN_DIVERSITY = 0.25
"""Mode collapse: the fixed sample grid's mean pairwise distance below this fraction of the real data's. Our
choice: one pattern drawn in every cell gives about 0."""


def class_histogram(classifier: DomainClassifier, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """How many of the uint8 N x C x H x W images the classifier assigns to each class with confidence."""
    counts = torch.zeros(classifier.num_classes, dtype=torch.long)
    device = next(classifier.parameters()).device
    with torch.no_grad():
        for batch in images.split(batch_size):
            confidence, predicted = classifier(to_float(batch.to(device))).softmax(1).max(1)
            counts += torch.bincount(predicted[confidence >= MIN_CONFIDENCE].cpu(), minlength=classifier.num_classes)
    return counts


def mode_coverage(fake_counts: torch.Tensor, real_counts: torch.Tensor, n_fake: int) -> dict[str, float]:
    """From class_histogram of the generated and of the real images: modes_covered (classes drawn at least
    MIN_SHARE of their real share), num_modes, class_kl: KL(generated || real) between the class distributions
    in nats (0 = the real class balance), and confident_share: the share of the n_fake images the classifier
    recognised (the others are left out of both)."""
    out = {"modes_covered": 0, "num_modes": len(real_counts), "confident_share": fake_counts.sum().item() / n_fake}
    if fake_counts.sum() == 0:  # nothing recognisable: no mode covered, no class distribution (and no class_kl)
        return out
    fake = fake_counts.double() / fake_counts.sum()
    real = real_counts.double() / real_counts.sum()
    drawn = fake > 0  # 0 log 0 = 0; the real set has every class, so the KL is finite
    kl = (fake[drawn] * (fake[drawn] / real[drawn]).log()).sum().item()
    return {**out, "modes_covered": int((fake >= MIN_SHARE * real).sum()), "class_kl": kl}


def pairwise_spread(images: torch.Tensor) -> float:
    """The mean L2 distance between two different images of the uint8 set, pixels scaled to [-1, 1]."""
    flat = to_float(images).flatten(1).double()
    n = len(flat)
    return (torch.cdist(flat, flat).sum() / (n * (n - 1))).item()


def detect_mode_collapse(history: list[dict], metric: str, mode: str = "min", recall: str = "") -> str:
    """Why this trial looks mode-collapsed ("" if it does not), from its per-epoch metrics: coverage
    falling COVERAGE_DROP classes below its best, the Fréchet score `metric` (mode min) ending SCORE_RISE
    times above its best while the losses stay finite (a diverged trial is reported as diverged instead), the
    last `recall` below MIN_RECALL, or the last sample grid's grid_diversity below MIN_DIVERSITY."""
    reasons = []
    last = history[-1] if history else {}
    if last.get(recall) is not None and last[recall] < MIN_RECALL:
        reasons.append(f"{recall} {last[recall]:.3g} < {MIN_RECALL} (epoch {last['epoch']}): the samples cover "
                       "almost none of the real data")
    if last.get("grid_diversity") is not None and last["grid_diversity"] < MIN_DIVERSITY:
        reasons.append(f"grid_diversity {last['grid_diversity']:.3g} < {MIN_DIVERSITY} (epoch {last['epoch']}): "
                       "the fixed sample grid's images are near-identical")
    covered = [(e["epoch"], e["modes_covered"]) for e in history if e.get("modes_covered") is not None]
    if covered:
        best_epoch, best = max(covered, key=lambda item: item[1])
        last_epoch, last = covered[-1]
        if best - last >= COVERAGE_DROP:
            reasons.append(f"modes_covered fell from {best} (epoch {best_epoch}) to {last} (epoch {last_epoch})")
    scores = [(e["epoch"], e[metric]) for e in history if e.get(metric) is not None]
    losses_finite = all(math.isfinite(v) for e in history for k, v in e.items() if k.startswith("loss"))
    if mode == "min" and metric.startswith(("fid", "fd_")) and scores and losses_finite:
        best_epoch, best = min(scores, key=lambda item: item[1])
        last_epoch, last = scores[-1]
        if last > SCORE_RISE * best:
            reasons.append(f"{metric} rose from {best:.4g} (epoch {best_epoch}) to {last:.4g} (epoch {last_epoch}) "
                           "while the losses stayed finite")
    return "; ".join(reasons)
