"""Generated vs real images: Fréchet and kernel distances, precision/recall (torch-fidelity), mode coverage.

Two feature extractors: torch-fidelity's Inception-v3 (FID and KID; its weights must be cached beforehand
because compute nodes are offline) and a small classifier trained on the real set (`fd_domain`,
`kd_domain`; works anywhere). The real set's features and statistics are cached per real set (its name and a
digest of its images) and extractor weights, so a trial only pays for its own generated images. On a labelled
dataset the same classifier also counts which classes the generated images fall into (library.metrics.coverage).
Every score carries its fingerprint (library.fingerprint: what else it depends on), a final score the real set's
floor (two disjoint halves of the real images against each other, cached), and the job adds the sample grid's
diversity (`diversity`) for mode-collapse detection.
"""

import hashlib
import json
import os
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from library.files import build_once, read_json
from library.metrics.coverage import class_histogram, mode_coverage, pairwise_spread
from library.metrics.domain_extractor import EXTRACTOR_NAME, load_domain_classifier, load_or_train

_FIDELITY_EXTRACTORS = {"inception": "inception-v3-compat", "domain": EXTRACTOR_NAME}
KID_SUBSET_SIZE = 1000  # torch-fidelity's default; smaller sample sets use subsets of all their images
MAX_REAL = 10_000  # reference images; more only slows precision/recall (its k-NN radii are not cached)
SPREAD_REAL = 256  # real images whose mean pairwise distance is the yardstick of grid_diversity (our choice)
INCEPTION_INPUT = "299x299, resized by torch-fidelity's TF1-compatible bilinear interpolation"


def metric_names(extractor: str) -> dict[str, str]:
    """The one naming rule. Inception features give the standard names (fid, kid, precision, recall); any
    other extractor gives different numbers, named after it: fd_domain, kd_domain, precision_domain..."""
    if extractor not in _FIDELITY_EXTRACTORS:
        raise ValueError(f"unknown feature extractor {extractor!r}; expected one of {sorted(_FIDELITY_EXTRACTORS)}")
    if extractor == "inception":
        return {"fd": "fid", "kd": "kid", "precision": "precision", "recall": "recall"}
    return {"fd": f"fd_{extractor}", "kd": f"kd_{extractor}", "precision": f"precision_{extractor}",
            "recall": f"recall_{extractor}"}


def metric_name(extractor: str) -> str:
    """The Fréchet distance's name: the primary metric of a generative job."""
    return metric_names(extractor)["fd"]


def names_of(metric: str) -> dict[str, str]:
    """metric_names of the extractor whose Fréchet distance is `metric` (fid, fd_domain); {} for any other metric."""
    return next((metric_names(e) for e in _FIDELITY_EXTRACTORS if metric_name(e) == metric), {})


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


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def content_hash(images: torch.Tensor, labels: torch.Tensor | None) -> str:
    """A digest of the real set's pixels and labels: sha1 runs at about 2 GB/s, so a 1 GB set costs half a second."""
    digest = hashlib.sha1(usedforsecurity=False)
    for tensor in (images, labels):
        if tensor is not None:
            digest.update(f"{tensor.dtype}{list(tensor.shape)}".encode())
            digest.update(tensor.cpu().contiguous().numpy())
    return digest.hexdigest()[:10]


class FrechetScorer:
    """Scores generated images against one fixed real set.

    `dataset_key` names the real set (dataset, split, size: "mnist5k-train-28"); with a digest of the real
    images and labels it keys the trained domain classifier and the cached statistics, so a dataset prepared
    again from other images gets its own. Labels
    (num_classes > 0) add mode coverage; without them (e.g. faces) only the Inception extractor works.
    At most `max_real` real images (a fixed random subset) are the reference.
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
        max_real: int = MAX_REAL,
    ):
        self.names = metric_names(extractor)
        self.metric = self.names["fd"]
        self.labelled = real_labels is not None and bool(num_classes)
        if extractor == "domain" and not self.labelled:
            raise ValueError(f"{dataset_key} has no labels, and the domain extractor is a classifier trained on "
                             "them: use extractor='inception' (eval.extractor=inception)")
        self.all_images, self.real_labels, self.num_classes = real_images, real_labels, num_classes
        keep = torch.randperm(len(real_images), generator=torch.Generator().manual_seed(0))[:max_real]
        self.real = _UInt8RGB(real_images if len(real_images) <= max_real else real_images[keep.sort().values])
        self.dataset_key, self.extractor = dataset_key, extractor
        # The name alone is not enough: re-preparing a dataset (a folder of faces, say) with other images
        # keeps its name, and would score against the old set's statistics and classifier. All the images, as
        # the classifier trains on all of them (the reference subset is drawn from them); labels only for it.
        self.cache_key = f"{dataset_key}-{content_hash(real_images, real_labels if self.labelled else None)}"
        self.cache_dir, self.device = Path(cache_dir), device
        self._kwargs = None  # torch-fidelity arguments, resolved on first use (that may train the extractor)
        self._weights_sha256 = None
        self._classifier = None
        self._real_counts = None
        self._real_spread = None

    def prepare(self) -> None:
        """Train/load (or download) the extractor and cache the real statistics: once, on the login node."""
        kwargs = self._fidelity_kwargs(may_download=True)
        # The real set as both inputs under one cache name: its features are computed once, and its
        # features and statistics land in the cache where score() finds them.
        torch_fidelity.calculate_metrics(input1=self.real, input1_cache_name=kwargs["input2_cache_name"],
                                         **kwargs)
        if self.labelled:
            self._classifier_weights()

    def score(self, fake_images: torch.Tensor, final: bool = False) -> dict[str, float]:
        """The Fréchet distance and, on a labelled dataset, mode coverage; `final` adds KID and precision/recall,
        which cost several times more (100 kernel subsets, k-NN radii of the real set) than an epoch's check."""
        fake = _UInt8RGB(fake_images)
        n_fake, n_real = len(fake), len(self.real)
        names = self.names
        # KID averages the kernel distance over 100 random subsets of KID_SUBSET_SIZE images from each set;
        # with fewer images than that, each subset is all of the smaller set.
        extra = dict(kid=True, kid_subset_size=min(KID_SUBSET_SIZE, n_fake, n_real), prc=True) if final else {}
        result = torch_fidelity.calculate_metrics(input1=fake, **extra, **self._fidelity_kwargs(may_download=False))
        # torch-fidelity names them "frechet_inception_distance" etc. whatever the extractor
        scores = {names["fd"]: result[torch_fidelity.KEY_METRIC_FID], f"{names['fd']}_n_fake": n_fake,
                  f"{names['fd']}_n_real": n_real, "fingerprint": self.fingerprint(n_fake)}
        if final:
            floor, floor_n = self.floor(n_fake)
            scores.update({
                f"{names['fd']}_floor": floor, f"{names['fd']}_floor_n": floor_n,
                names["kd"]: result[torch_fidelity.KEY_METRIC_KID_MEAN],
                f"{names['kd']}_std": result[torch_fidelity.KEY_METRIC_KID_STD],
                # generated = input1 here: precision is the share of fakes inside the real manifold, recall the
                # share of real images inside the generated one (checked in tests/test_metrics.py)
                names["precision"]: result[torch_fidelity.KEY_METRIC_PRECISION],
                names["recall"]: result[torch_fidelity.KEY_METRIC_RECALL],
            })
        if self.labelled:
            if self._real_counts is None:  # the real class mix as the same classifier sees it: its blind spots cancel
                self._real_counts = class_histogram(self.classifier(), self.real.images)
            scores.update(mode_coverage(class_histogram(self.classifier(), fake_images), self._real_counts, n_fake))
        return scores

    def fingerprint(self, n_fake: int) -> dict:
        """What a score depends on besides the generator: two scores rank against each other only if these agree."""
        self._fidelity_kwargs(may_download=False)
        return {
            "extractor": _FIDELITY_EXTRACTORS[self.extractor], "weights_sha256": self._weights_sha256,
            "torch_fidelity": torch_fidelity.__version__,
            "input": INCEPTION_INPUT if self.extractor == "inception" else
            "x".join(map(str, self.real.images.shape[2:])) + ", as generated (no resize)",
            "n_real": len(self.real), "n_fake": n_fake, "reference": self.cache_key,
        }

    def floor(self, n: int) -> tuple[float, int]:
        """The Fréchet distance between two disjoint random halves of the real set, each of n images (at most half
        the set): what a perfect generator would score with n samples. Computed once per real set, extractor and
        n, and cached as JSON; returns (distance, images per half)."""
        n = min(n, len(self.all_images) // 2)
        path = self.cache_dir / "floors" / f"{self._fidelity_kwargs(False)['input2_cache_name']}-{n}.json"

        def compute(tmp: Path) -> None:
            order = torch.randperm(len(self.all_images), generator=torch.Generator().manual_seed(1))
            halves = [_UInt8RGB(self.all_images[idx.sort().values]) for idx in (order[:n], order[n:2 * n])]
            kwargs = {k: v for k, v in self._kwargs.items() if not k.startswith("input2")}
            result = torch_fidelity.calculate_metrics(input1=halves[0], input2=halves[1], **{**kwargs, "cache": False})
            tmp.write_text(json.dumps({"fd": result[torch_fidelity.KEY_METRIC_FID], "n": n}))

        return read_json(build_once(path, compute))["fd"], n

    def diversity(self, images: torch.Tensor) -> float:
        """The mean pairwise pixel distance of uint8 `images` (the fixed sample grid) over that of real images:
        about 1 for samples as varied as the data, near 0 when the generator draws one pattern everywhere."""
        if self._real_spread is None:
            keep = torch.randperm(len(self.all_images), generator=torch.Generator().manual_seed(2))[:SPREAD_REAL]
            self._real_spread = pairwise_spread(self.all_images[keep])
        return pairwise_spread(images) / self._real_spread

    def classifier(self):
        """The dataset's classifier (the domain extractor's CNN), for mode coverage."""
        if self._classifier is None:
            self._classifier = load_domain_classifier(self._classifier_weights(), self.device)
        return self._classifier

    def _classifier_weights(self) -> Path:
        path = self.cache_dir / "extractors" / f"{self.cache_key}.pt"
        return load_or_train(path, self.all_images, self.real_labels, self.num_classes, self.device)

    def _fidelity_kwargs(self, may_download: bool) -> dict:
        if self._kwargs is None:
            weights = self._extractor_weights(may_download)
            self._weights_sha256 = _sha256(weights)
            self._kwargs = dict(
                input2=self.real,
                # The weights' hash in the name: a retrained extractor must not reuse stale statistics.
                input2_cache_name=f"{self.cache_key}-{len(self.real)}-{self._weights_sha256[:10]}",
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
            return self._classifier_weights()
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
