"""`python -m library.data prepare NAME` / `list`: fetch and verify datasets before jobs need them.

Run `prepare` where there is internet (the login node); jobs on compute nodes only ever read.
Download timeout: --timeout, default $LIBRARY_DOWNLOAD_TIMEOUT or 60 s.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

from library.data import (DATASETS, DatasetNotReady, DatasetSpec, dataset_dir, dataset_spec, default_root,
                          load_images, missing_files, prepare_command)
from library.data.download import download_missing
from library.data.images import CorruptFile, image_files, read_image_folder
from library.data.text import TEXT_DATASETS, list_text, prepare_text
from library.files import atomic_write


def prepare(name: str, root: Path, image_size: int | None, timeout: float) -> None:
    if name in TEXT_DATASETS or name == "nltk_data":
        return prepare_text(name, root, timeout)
    spec = dataset_spec(name)
    size = spec.native_size(image_size)
    if spec.embedded:
        print(f"{name}: embedded, nothing to download")
    elif spec.placed:
        convert_placed(name, spec, root, size)
    else:
        files = spec.files[size]
        fetched = download_missing(files, dataset_dir(name, root), timeout, prepare_command(name, root, size))
        print(f"{name}: {len(files) - fetched} file(s) already verified, {fetched} downloaded")
    for split in spec.splits:  # prove that every split parses, not just that the bytes arrived
        data = load_images(name, root, split, size)
        print(f"{name} {split}: {len(data.labels)} images of {'x'.join(map(str, data.images.shape[1:]))}")


def save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to a temporary name
        np.save(f, array)


def convert_placed(name: str, spec: DatasetSpec, root: Path, size: int) -> None:
    """A dataset nobody can download for the user: read the images they placed, store them as one array."""
    directory = dataset_dir(name, root)
    paths = image_files(directory) if directory.is_dir() else []
    if not paths:
        raise DatasetNotReady(f"{name} is not downloaded for you: place {spec.placed} under {directory} (any "
                              f"depth), then re-run `{prepare_command(name, root)}`")
    print(f"{name}: reading {len(paths)} images under {directory}", flush=True)
    try:
        images = read_image_folder(paths, size)
    except CorruptFile as e:
        raise DatasetNotReady(f"{e}; remove or replace it and re-run prepare") from e
    out = directory / spec.files[size][0].filename
    atomic_write(out, lambda tmp: save_array(tmp, images))
    print(f"{name}: wrote {out}")


def list_datasets(root: Path) -> None:
    print(f"data root: {root}")
    list_text(root)
    for name, spec in DATASETS.items():
        state = "embedded" if spec.embedded else ", ".join(
            f"{size}px {'missing' if missing_files(name, root, size) else 'ready'}" for size in spec.sizes)
        sizes = "/".join(f"{size}" for size in spec.sizes)
        print(f"{name:14} {state:26} splits {'/'.join(spec.splits):15} "
              f"{spec.channels}x{sizes}px, {spec.num_classes} classes")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m library.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    rooted = argparse.ArgumentParser(add_help=False)
    rooted.add_argument("--root", type=Path, default=default_root(),
                        help="data root (default: $LIBRARY_DATA_ROOT or ~/.cache/library/data)")
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", parents=[rooted], help="download missing files, verify md5s, load")
    prep.add_argument("name", help=f"one of: {', '.join([*DATASETS, *TEXT_DATASETS, 'nltk_data'])}")
    prep.add_argument("--size", type=int, help="image size to prepare (picks the native file, e.g. 28 or 64)")
    prep.add_argument("--timeout", type=float, default=float(os.environ.get("LIBRARY_DOWNLOAD_TIMEOUT", 60)),
                      help="seconds per download connection (default $LIBRARY_DOWNLOAD_TIMEOUT or 60)")
    commands.add_parser("list", parents=[rooted], help="which datasets are ready under the root")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(args.name, args.root, args.size, args.timeout)
        else:
            list_datasets(args.root)
    except (DatasetNotReady, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
