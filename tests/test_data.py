"""library.data: real formats on tiny files, the embedded MNIST digits, errors that say how to fix them,
and the prepare/list CLI (downloads exercised through file:// URLs, since tests run offline)."""
import dataclasses
import gzip
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import write_pathmnist
from library.data import DATASETS, DatasetNotReady, ImageData, default_root, load_images
from library.data.__main__ import main

REPO = Path(__file__).resolve().parents[1]
IDX_NAMES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_mnist(directory: Path, counts=(("train", 20), ("test", 7))) -> dict:
    """Tiny IDX files as LeCun distributes them; returns {split: (images N x 28 x 28, labels N)}."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, n in counts:
        images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(directory / IDX_NAMES[split][0], images)
        write_idx(directory / IDX_NAMES[split][1], labels)
        written[split] = images, labels
    return written


def test_mnist5k_is_the_real_embedded_digits():
    data = load_images("mnist5k")
    assert isinstance(data, ImageData) and data.num_classes == 10
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert torch.bincount(data.labels).tolist() == [500] * 10
    assert data.images.min() == 0 and data.images.max() == 255
    assert len(torch.unique(data.images)) > 200  # real grey levels, not a binarised or constant stand-in
    assert (data.images.float().std(dim=(1, 2, 3)) > 20).all()  # every digit has ink


def test_mnist5k_callers_cannot_corrupt_the_cached_copy():
    load_images("mnist5k").images.zero_()
    assert load_images("mnist5k").images.max() == 255


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_files_round_trip_exactly(tmp_path, name):
    written = write_mnist(tmp_path / name)
    for split, (images, labels) in written.items():
        data = load_images(name, tmp_path, split)
        assert data.images.dtype == torch.uint8 and data.labels.dtype == torch.int64
        assert torch.equal(data.images, torch.from_numpy(images)[:, None])
        assert torch.equal(data.labels, torch.from_numpy(labels).long())


def test_pathmnist_reads_each_split_channels_first(tmp_path):
    arrays = write_pathmnist(tmp_path / "medmnist", 28)
    for split in ("train", "val", "test"):
        data = load_images("pathmnist", tmp_path, split)
        assert data.num_classes == 9 and data.images.shape == (6, 3, 28, 28)
        assert torch.equal(data.images, torch.from_numpy(arrays[f"{split}_images"]).permute(0, 3, 1, 2))
        assert torch.equal(data.labels, torch.from_numpy(arrays[f"{split}_labels"]).long().flatten())


def test_pathmnist_image_size_picks_the_native_file_and_resizes_down_from_64(tmp_path):
    write_pathmnist(tmp_path / "medmnist", 28)
    arrays64 = write_pathmnist(tmp_path / "medmnist", 64)
    native = load_images("pathmnist", tmp_path, image_size=64)
    assert torch.equal(native.images, torch.from_numpy(arrays64["train_images"]).permute(0, 3, 1, 2))
    assert load_images("pathmnist", tmp_path, image_size=32).images.shape == (6, 3, 32, 32)
    assert load_images("pathmnist", tmp_path).images.shape == (6, 3, 28, 28)


@pytest.mark.parametrize("size", [32, 64])
def test_resize_keeps_the_digits_brightness(size):
    native, resized = load_images("mnist5k").images[:100], load_images("mnist5k", image_size=size).images[:100]
    assert resized.shape == (100, 1, size, size) and resized.dtype == torch.uint8
    assert abs(resized.float().mean() - native.float().mean()) < 2


def test_resize_of_a_flat_image_stays_exactly_flat(tmp_path):
    write_mnist(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / IDX_NAMES["train"][0], np.full((20, 28, 28), 200, np.uint8))
    assert (load_images("mnist", tmp_path, image_size=64).images == 200).all()
    assert (load_images("mnist", tmp_path, image_size=20).images == 200).all()


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(DatasetNotReady) as error:
        load_images("mnist", tmp_path)
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in str(error.value)
    assert f"python -m library.data prepare mnist --root {tmp_path}" in str(error.value)
    with pytest.raises(DatasetNotReady, match=f"prepare pathmnist --root {tmp_path} --size 64"):
        load_images("pathmnist", tmp_path, image_size=64)


@pytest.mark.parametrize("damage", ["bad magic", "truncated gzip", "short data", "label out of range"])
def test_corrupt_idx_is_reported_with_the_fix(tmp_path, damage):
    write_mnist(tmp_path / "mnist")
    images_file, labels_file = (tmp_path / "mnist" / name for name in IDX_NAMES["train"])
    raw = gzip.decompress(images_file.read_bytes())
    if damage == "bad magic":
        images_file.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + raw[4:]))
    elif damage == "truncated gzip":
        images_file.write_bytes(images_file.read_bytes()[:-100])
    elif damage == "short data":
        images_file.write_bytes(gzip.compress(raw[:-28]))
    else:
        write_idx(labels_file, np.full(20, 10, np.uint8))
    with pytest.raises(DatasetNotReady, match="corrupt.*python -m library.data prepare mnist --root"):
        load_images("mnist", tmp_path)


def test_npz_without_the_split_key_is_corrupt(tmp_path):
    (tmp_path / "medmnist").mkdir()
    np.savez(tmp_path / "medmnist" / "pathmnist.npz", train_images=np.zeros((2, 28, 28, 3), np.uint8))
    with pytest.raises(DatasetNotReady, match="corrupt; run: python -m library.data prepare pathmnist.*train_labels"):
        load_images("pathmnist", tmp_path)


def test_unknown_names_and_splits_list_the_valid_ones():
    with pytest.raises(ValueError, match="mnist5k, mnist, fashion_mnist, pathmnist"):
        load_images("cifar10")
    with pytest.raises(ValueError, match="valid splits: train$"):
        load_images("mnist5k", split="test")


def test_default_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBRARY_DATA_ROOT", str(tmp_path))
    write_mnist(tmp_path / "fashion_mnist")
    assert default_root() == tmp_path
    assert len(load_images("fashion_mnist", split="test").labels) == 7
    monkeypatch.delenv("LIBRARY_DATA_ROOT")
    assert default_root() == Path.home() / ".cache/library/data"


def served_mnist(tmp_path, monkeypatch, corrupt_md5=False):
    """Point the mnist registry entry at file:// copies of tiny IDX files, as if they were the mirror."""
    write_mnist(tmp_path / "mirror")
    files = tuple(dataclasses.replace(
        item, url=(tmp_path / "mirror" / item.filename).as_uri(),
        md5="0" * 32 if corrupt_md5 else hashlib.md5((tmp_path / "mirror" / item.filename).read_bytes()).hexdigest())
        for item in DATASETS["mnist"].files[28])
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], files={28: files}))


def test_prepare_downloads_verifies_and_loads_then_list_shows_ready(tmp_path, monkeypatch, capsys):
    served_mnist(tmp_path, monkeypatch)
    assert main(["prepare", "mnist", "--root", str(tmp_path / "data")]) == 0
    assert "mnist train: 20 images of 1x28x28" in capsys.readouterr().out
    assert main(["prepare", "mnist", "--root", str(tmp_path / "data")]) == 0  # second run: nothing to fetch
    assert "4 file(s) already verified, 0 downloaded" in capsys.readouterr().out
    assert main(["list", "--root", str(tmp_path / "data")]) == 0
    listing = capsys.readouterr().out
    assert "mnist          28px ready" in listing and "fashion_mnist  28px missing" in listing


def test_prepare_rejects_a_download_with_the_wrong_md5_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    served_mnist(tmp_path, monkeypatch, corrupt_md5=True)
    assert main(["prepare", "mnist", "--root", str(tmp_path / "data")]) == 1
    assert "expected 00000000" in capsys.readouterr().err
    assert list((tmp_path / "data" / "mnist").iterdir()) == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LIBRARY_DOWNLOAD_TIMEOUT": "3"}
    return subprocess.run([sys.executable, "-m", "library.data", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_prepare_embedded_mnist5k():
    result = run_cli("prepare", "mnist5k")
    assert result.returncode == 0, result.stderr
    assert "embedded, nothing to download" in result.stdout and "5000 images" in result.stdout


def test_cli_prepare_offline_says_which_files_to_place_where(tmp_path):
    result = run_cli("prepare", "mnist", "--root", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", str(tmp_path / "mnist"),
                 "https://ossci-datasets.s3.amazonaws.com/mnist/", "python -m library.data prepare mnist"):
        assert name in result.stderr


def test_faces_folder_is_center_cropped_to_64_rgb_and_unlabelled(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "faces" / "img_align_celeba"
    folder.mkdir(parents=True)
    # Aligned CelebA's shape (178 x 218): a red square between blue bands that the center crop removes.
    portrait = np.zeros((218, 178, 3), np.uint8)
    portrait[:20, :, 2] = portrait[-20:, :, 2] = 255
    portrait[20:-20, :, 0] = 255
    for i in range(3):
        Image.fromarray(portrait).save(folder / f"{i:06d}.jpg", quality=95)
    Image.fromarray(np.full((80, 80, 4), 128, np.uint8), "RGBA").save(folder / "gray.png")  # PNG, with alpha
    assert main(["prepare", "faces", "--root", str(tmp_path)]) == 0
    assert "faces train: 4 images of 3x64x64" in capsys.readouterr().out

    data = load_images("faces", tmp_path, "train", 64)
    assert data.images.shape == (4, 3, 64, 64) and data.images.dtype == torch.uint8
    assert data.num_classes == 0 and (data.labels == -1).all()
    red = data.images[0].float().mean(dim=(1, 2))
    assert red[0] > 240 and red[1] < 15 and red[2] < 15  # the blue bands were cropped away
    assert (data.images[3] - 128).abs().max() <= 1  # the PNG
    assert load_images("faces", tmp_path, "train", 32).images.shape == (4, 3, 32, 32)


def test_faces_not_placed_says_where_to_put_them(tmp_path, capsys):
    with pytest.raises(DatasetNotReady, match="python -m library.data prepare faces"):
        load_images("faces", tmp_path)
    assert main(["prepare", "faces", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "img_align_celeba" in err and str(tmp_path / "faces") in err and "not downloaded" in err
