"""Download and verify the files of a dataset (`python -m library.data prepare`, on a machine with internet).

A file counts as present once it is in its folder with the publisher's md5 (or at all, for a file without one);
a download lands under a temporary name and is renamed only once verified, so an interrupted or wrong download
never looks prepared. A failed download says which files to fetch elsewhere and where to place them.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from library.data import DatasetNotReady, Download


def md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def present(item: Download, folder: Path) -> bool:
    path = folder / item.filename
    return path.is_file() and (not item.md5 or md5(path) == item.md5)


def fetch(item: Download, dest: Path, timeout: float) -> None:
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(item.url, timeout=timeout) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f)
        if item.md5 and (got := md5(part)) != item.md5:
            raise DatasetNotReady(f"{item.url} downloaded with md5 {got}, expected {item.md5}")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def download_missing(items: tuple[Download, ...], folder: Path, timeout: float, rerun: str) -> int:
    """Fetch every item not present in `folder`; how many were fetched. `rerun` is the prepare command that
    verifies files placed by hand."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = [item for item in items if not present(item, folder)]
    for i, item in enumerate(todo):
        print(f"downloading {item.url}", flush=True)
        try:
            fetch(item, folder / item.filename, timeout)
        except OSError as e:  # URLError, timeouts, refused connections, a full disk
            names = ", ".join(left.filename for left in todo[i:])
            raise DatasetNotReady(
                f"could not download {item.url} ({getattr(e, 'reason', e)}). If this machine is offline, fetch "
                f"{names} elsewhere, place them in {folder}, and re-run `{rerun}` to verify them") from e
    return len(todo)
