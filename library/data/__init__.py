"""Dataset registry: `load_images(name, root, split, image_size)` for every image set the studies use.

Files live under a root as their publishers distribute them; `python -m library.data prepare NAME`
fetches and verifies them on a machine with internet (the login node). Loading never downloads:
compute nodes have no internet, so a missing or broken file raises DatasetNotReady with the command
that fixes it.
"""
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from library.data.images import (CorruptFile, idx_filenames, medmnist_filename, read_idx_split,
                                 read_mnist5k, read_npz_split, resize)

UNLABELLED = -1  # the label of every image of a dataset without classes (num_classes = 0)

__all__ = ["load_images", "ImageData", "DatasetNotReady", "DATASETS", "default_root"]


class DatasetNotReady(Exception):
    """A dataset file is missing or corrupt; the message names it and the prepare command."""


@dataclass(frozen=True)
class ImageData:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N
    num_classes: int


@dataclass(frozen=True)
class Download:
    filename: str
    url: str
    md5: str  # "" where the publisher's file changes over time: then it is verified by parsing it


Reader = Callable[[Path, str, int], tuple[np.ndarray, np.ndarray]]  # (directory, split, size)


@dataclass(frozen=True)
class DatasetSpec:
    splits: tuple[str, ...]
    channels: int
    num_classes: int
    files: dict[int, tuple[Download, ...]]  # native image size -> the files holding it; () = embedded
    read: Reader
    subdir: str = ""  # folder under the data root
    placed: str = ""  # no download: what the user puts in the folder by hand; prepare converts it into `files`

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(self.files)

    @property
    def embedded(self) -> bool:
        return not any(self.files.values())

    def native_size(self, image_size: int | None) -> int:
        """The native size to read for image_size: an exact match, else the nearest larger one (so
        resizing only shrinks), else the largest."""
        if image_size is None:
            return self.sizes[0]
        larger = [s for s in self.sizes if s >= image_size]
        return min(larger) if larger else max(self.sizes)


def _idx_downloads(base_url: str, md5s: list[str]) -> tuple[Download, ...]:
    names = [name for split in ("train", "test") for name in idx_filenames(split)]
    return tuple(Download(name, base_url + name, md5) for name, md5 in zip(names, md5s))


def _pathmnist_download(size: int, md5: str) -> Download:
    name = medmnist_filename("pathmnist", size)
    return Download(name, f"https://zenodo.org/records/10519652/files/{name}?download=1", md5)


def _read_mnist5k(directory: Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    return read_mnist5k()


def _read_idx(directory: Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    return read_idx_split(directory, split)


def _read_pathmnist(directory: Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    return read_npz_split(directory / medmnist_filename("pathmnist", size), split)


def faces_filename(size: int) -> str:
    return f"faces_{size}.npy"


def _read_faces(directory: Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        images = np.load(directory / faces_filename(size), allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise CorruptFile(f"{directory / faces_filename(size)}: {e}") from e
    return images, np.full(len(images), UNLABELLED, np.int64)


# Mirrors and md5 sums as torchvision 0.29 (datasets/mnist.py) and medmnist 3.0.2 (info.py) have them.
DATASETS: dict[str, DatasetSpec] = {
    "mnist5k": DatasetSpec(splits=("train",), channels=1, num_classes=10, files={28: ()}, read=_read_mnist5k),
    "mnist": DatasetSpec(
        splits=("train", "test"), channels=1, num_classes=10, read=_read_idx, subdir="mnist",
        files={28: _idx_downloads("https://ossci-datasets.s3.amazonaws.com/mnist/", [
            "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"])}),
    "fashion_mnist": DatasetSpec(
        splits=("train", "test"), channels=1, num_classes=10, read=_read_idx, subdir="fashion_mnist",
        files={28: _idx_downloads("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", [
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"])}),
    "pathmnist": DatasetSpec(
        splits=("train", "val", "test"), channels=3, num_classes=9, read=_read_pathmnist, subdir="medmnist",
        files={28: (_pathmnist_download(28, "a8b06965200029087d5bd730944a56c1"),),
               64: (_pathmnist_download(64, "55aa9c1e0525abe5a6b9d8343a507616"),)}),
    # Any folder of face photos, e.g. aligned CelebA (img_align_celeba/, 202,599 JPEGs behind Google Drive, so
    # never downloaded): prepare center-crops each to a square, resizes it to 64 and stores one array. No labels.
    "faces": DatasetSpec(
        splits=("train",), channels=3, num_classes=0, read=_read_faces, subdir="faces",
        files={64: (Download(faces_filename(64), url="", md5=""),)},
        placed="JPEG/PNG face images, e.g. CelebA's img_align_celeba/ (unzip img_align_celeba.zip from "
               "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, Google Drive link 'Align&Cropped Images')"),
}


def default_root() -> Path:
    """$LIBRARY_DATA_ROOT if set (point it at shared storage on a cluster), else ~/.cache/library/data."""
    return Path(os.environ.get("LIBRARY_DATA_ROOT") or Path.home() / ".cache/library/data").expanduser()


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_dir(name: str, root: str | os.PathLike) -> Path:
    return Path(root) / dataset_spec(name).subdir


def missing_files(name: str, root: str | os.PathLike, size: int) -> list[Path]:
    paths = [dataset_dir(name, root) / item.filename for item in dataset_spec(name).files[size]]
    return [path for path in paths if not path.is_file()]


def prepare_command(name: str, root: str | os.PathLike, size: int | None = None) -> str:
    """The command that prepares a dataset (image or text) under `root`; `size` for an image set with several."""
    command = f"python -m library.data prepare {name} --root {shlex.quote(str(root))}"
    return command + (f" --size {size}" if size is not None and len(dataset_spec(name).sizes) > 1 else "")


def _check(spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, size: int) -> None:
    expected = (spec.channels, size, size)
    if images.dtype != np.uint8 or images.shape[1:] != expected:
        raise CorruptFile(f"images are {images.dtype} {images.shape[1:]}, expected uint8 {expected}")
    if len(labels) != len(images):
        raise CorruptFile(f"{len(images)} images but {len(labels)} labels")
    if spec.num_classes and len(labels) and not 0 <= labels.min() <= labels.max() < spec.num_classes:
        raise CorruptFile(f"labels outside 0..{spec.num_classes - 1}")


def load_images(name: str, root: str | os.PathLike | None = None, split: str = "train",
                image_size: int | None = None) -> ImageData:
    """One split of a registered image set; image_size=None keeps the native size, any other size is
    read from the nearest native file and resized (bilinear, antialiased)."""
    spec = dataset_spec(name)
    if split not in spec.splits:
        raise ValueError(f"{name} has no split {split!r}; valid splits: {', '.join(spec.splits)}")
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    root = Path(root) if root is not None else default_root()
    size = spec.native_size(image_size)
    fix = f"run: {prepare_command(name, root, size)}"
    if missing := missing_files(name, root, size):
        # What to do first: a table shows a failure's first line, and the list of paths can be long.
        raise DatasetNotReady(f"{name} is not prepared; {fix} (missing {', '.join(map(str, missing))})")
    try:
        images, labels = spec.read(dataset_dir(name, root), split, size)
        _check(spec, images, labels, size)
    except CorruptFile as e:
        raise DatasetNotReady(f"{name} ({split} split) is corrupt; {fix} ({e})") from e
    tensor = torch.from_numpy(images)
    if image_size is not None and image_size != size:
        tensor = resize(tensor, image_size)
    return ImageData(tensor, torch.from_numpy(labels), spec.num_classes)
