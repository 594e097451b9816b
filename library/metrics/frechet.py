"""Fréchet distance between generated and real images, computed by torch-fidelity.

Two feature extractors: torch-fidelity's Inception-v3 (the score is FID; its weights must be cached
beforehand because compute nodes are offline) and a small classifier trained on the real set (the
score is `fd_domain`; works anywhere). The real set's statistics are cached per dataset and extractor
weights, so a trial only pays for its own generated images.
"""

import hashlib
import os
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from library.metrics.domain_extractor import EXTRACTOR_NAME, load_or_train

_METRIC_NAMES = {"inception": "fid", "domain": "fd_domain"}
_FIDELITY_EXTRACTORS = {"inception": "inception-v3-compat", "domain": EXTRACTOR_NAME}


def metric_name(extractor: str) -> str:
    """Only Inception features give FID; any other Fréchet distance is named after its extractor."""
    if extractor not in _METRIC_NAMES:
        raise ValueError(f"unknown feature extractor {extractor!r}; expected one of {sorted(_METRIC_NAMES)}")
    return _METRIC_NAMES[extractor]


def inception_weights_path(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "inception" / URL_INCEPTION_V3.rsplit("/", 1)[1]


def inception_available(cache_dir: str | os.PathLike) -> bool:
    """Whether FID can run offline with this cache dir."""
    return inception_weights_path(cache_dir).is_file()


def _missing_inception_message(cache_dir: Path) -> str:
    return (
        f"FID needs torch-fidelity's Inception-v3 weights at {inception_weights_path(cache_dir)}, "
        f"and they are not there. Run the prepare step on the login node, which has internet: "
        f"FrechetScorer(..., extractor='inception', cache_dir='{cache_dir}').prepare() downloads them from "
        f"{URL_INCEPTION_V3} (or copy that file there yourself). Offline, use extractor='domain' instead."
    )


class _UInt8RGB(Dataset):
    """Images as torch-fidelity wants them: uint8 3 x H x W, gray repeated to three channels."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            got = f"{images.dtype} {list(images.shape)}"
            raise ValueError(f"expected uint8 N x C x H x W images with C = 1 or 3, got {got}")
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].expand(3, -1, -1)


def _short_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:10]


class FrechetScorer:
    """Scores generated images against one fixed real set.

    `dataset_key` names the real set (dataset, split, size: "mnist5k-train-28"); it keys the trained
    domain extractor and the cached statistics, so it must change when the real set does.
    """

    def __init__(
        self,
        real_images: torch.Tensor,
        real_labels: torch.Tensor | None,
        num_classes: int | None,
        dataset_key: str,
        extractor: str,
        cache_dir: str | os.PathLike,
        device: str = "cpu",
    ):
        self.metric = metric_name(extractor)
        if extractor == "domain" and (real_labels is None or num_classes is None):
            raise ValueError("the domain extractor is a classifier: it needs real_labels and num_classes")
        self.real = _UInt8RGB(real_images)
        self.real_labels, self.num_classes = real_labels, num_classes
        self.dataset_key, self.extractor = dataset_key, extractor
        self.cache_dir, self.device = Path(cache_dir), device
        self._kwargs = None  # torch-fidelity arguments, resolved on first use (that may train the extractor)

    def prepare(self) -> None:
        """Train/load (or download) the extractor and cache the real statistics: once, on the login node."""
        kwargs = self._fidelity_kwargs(may_download=True)
        # The real set as both inputs under one cache name: its features are computed once, and its
        # statistics land in the cache where score() finds them.
        torch_fidelity.calculate_metrics(input1=self.real, input1_cache_name=kwargs["input2_cache_name"],
                                         **kwargs)

    def score(self, fake_images: torch.Tensor) -> dict[str, float]:
        fake = _UInt8RGB(fake_images)
        result = torch_fidelity.calculate_metrics(input1=fake, **self._fidelity_kwargs(may_download=False))
        return {
            # torch-fidelity names it "frechet_inception_distance" whatever the extractor
            self.metric: result[torch_fidelity.KEY_METRIC_FID],
            f"{self.metric}_n_fake": len(fake),
            f"{self.metric}_n_real": len(self.real),
        }

    def _fidelity_kwargs(self, may_download: bool) -> dict:
        if self._kwargs is None:
            weights = self._extractor_weights(may_download)
            self._kwargs = dict(
                input2=self.real,
                # The weights' hash in the name: a retrained extractor must not reuse stale statistics.
                input2_cache_name=f"{self.dataset_key}-{_short_hash(weights)}",
                fid=True,
                feature_extractor=_FIDELITY_EXTRACTORS[self.extractor],
                feature_extractor_weights_path=str(weights),
                cache=True,
                cache_root=str(self.cache_dir / "fidelity"),
                cuda=self.device.startswith("cuda"),
                save_cpu_ram=True,  # the only switch that stops torch-fidelity starting 4 DataLoader workers
                verbose=False,
            )
        return self._kwargs

    def _extractor_weights(self, may_download: bool) -> Path:
        if self.extractor == "domain":
            path = self.cache_dir / "extractors" / f"{self.dataset_key}.pt"
            return load_or_train(path, self.real.images, self.real_labels, self.num_classes, self.device)
        path = inception_weights_path(self.cache_dir)
        if not path.is_file():
            if not may_download:
                raise FileNotFoundError(_missing_inception_message(self.cache_dir))
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                # Downloads to a temporary file and moves it into place: never a half-written file.
                torch.hub.download_url_to_file(URL_INCEPTION_V3, str(path), progress=False)
            except OSError as e:
                raise FileNotFoundError(_missing_inception_message(self.cache_dir)) from e
        return path
