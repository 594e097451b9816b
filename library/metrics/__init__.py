"""Sample-quality metrics: Fréchet and kernel distances and precision/recall via torch-fidelity (FID/KID with
Inception, fd_domain/kd_domain with the dataset's own classifier), mode coverage and mode-collapse detection."""

from library.metrics.coverage import detect_mode_collapse, mode_coverage
from library.metrics.frechet import FrechetScorer, inception_available, metric_name, metric_names, names_of

__all__ = ["FrechetScorer", "detect_mode_collapse", "inception_available", "metric_name", "metric_names", "names_of",
           "mode_coverage"]
