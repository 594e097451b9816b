"""Sample-quality metrics. The Fréchet distance (FID, or fd_domain offline) is computed by torch-fidelity."""

from library.metrics.frechet import FrechetScorer, inception_available, metric_name

__all__ = ["FrechetScorer", "inception_available", "metric_name"]
