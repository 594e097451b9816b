"""Text datasets for the sequence studies, read in the formats their publishers distribute.

Three kinds: `labelled` (texts with a class name each, and a split where the source has one), `corpus` (one
running text) and `languages` (language -> text, from a folder with one file per language). Embedded sets
ship inside installed packages; the others are fetched by `python -m library.data prepare NAME` on a machine
with internet and only ever read afterwards (a missing one raises DatasetNotReady naming that command).
"""
from __future__ import annotations

import bz2
import csv
import hashlib
import html
import os
import re
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from library.data import DatasetNotReady, Download, default_root, prepare_command
from library.data.download import download_missing


@dataclass(frozen=True)
class Labelled:
    text: str
    label: str
    split: str  # "train", "test", or "" where the source has no split


@dataclass(frozen=True)
class TextSource:
    kind: str  # labelled | corpus | languages
    read: Callable[[Path], object]  # the dataset's folder -> list[Labelled] | str | dict[str, str]
    subdir: str = ""
    fetch: tuple[Download, ...] = ()  # () = embedded in an installed package
    unpack: Callable[[Path, Path], None] | None = None  # (downloaded file, folder) -> the readable layout

    @property
    def embedded(self) -> bool:
        return not self.fetch


def gensim_file(name: str) -> Path:
    from gensim.test.utils import datapath

    return Path(datapath(name))


# ------------------------------------------------------------------------------------------ readers


def read_pang_lee(path: Path) -> list[Labelled]:
    """fastText format as gensim ships it: `__label__pos text` per line, in Windows-1252."""
    rows = []
    for line in path.read_text(encoding="cp1252", errors="replace").splitlines():  # written on Windows
        label, _, text = line.partition(" ")
        if label.startswith("__label__") and text.strip():
            rows.append(Labelled(text.strip(), label[len("__label__"):], ""))
    return rows


def read_imdb_csv(path: Path) -> list[Labelled]:
    """Kaggle's `IMDB Dataset.csv`: header `review,sentiment`, sentiment `positive` or `negative`."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"review", "sentiment"} <= set(reader.fieldnames):
            raise DatasetNotReady(f"{path} has columns {reader.fieldnames}, expected review,sentiment")
        return [Labelled(row["review"], row["sentiment"][:3], "") for row in reader]


def read_aclimdb(folder: Path) -> list[Labelled]:
    """Stanford's aclImdb layout: {train,test}/{pos,neg}/ID_RATING.txt (unsup/ is unlabelled and skipped)."""
    rows = []
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            files = sorted((folder / split / label).glob("*.txt"), key=lambda p: p.name)
            rows += [Labelled(p.read_text(encoding="utf-8"), label, split) for p in files]
    return rows


def read_imdb(folder: Path) -> list[Labelled]:
    """Whichever of the two published forms is in the folder: aclImdb/ (preferred: it has the official
    train/test split) or Kaggle's CSV."""
    if (folder / "aclImdb").is_dir():
        return read_aclimdb(folder / "aclImdb")
    if (folder / KAGGLE_CSV).is_file():
        return read_imdb_csv(folder / KAGGLE_CSV)
    raise FileNotFoundError(f"neither {folder / 'aclImdb'}/ nor {folder / KAGGLE_CSV}")


def read_text_files(paths: list[Path]) -> str:
    return "\n".join(strip_gutenberg(Path(p).read_text(encoding="utf-8")) for p in paths)


def strip_gutenberg(text: str) -> str:
    """A Project Gutenberg book without its licence header and footer (a plain text file is returned as is)."""
    start, end = re.search(r"\*\*\* ?START OF.*?\*\*\*", text), re.search(r"\*\*\* ?END OF", text)
    return text[start.end() if start else 0: end.start() if end else len(text)].strip()


def read_language_folder(folder: Path) -> dict[str, str]:
    """One UTF-8 file per language, named after it (`English.txt`, `de.txt`)."""
    files = sorted(folder.glob("*.txt"))
    if len(files) < 2:
        raise FileNotFoundError(f"{folder} needs one LANGUAGE.txt file per language (found {len(files)})")
    return {p.stem: p.read_text(encoding="utf-8") for p in files}


def read_wiki_dump(path: Path) -> str:
    """The article texts of a (bz2) MediaWiki XML export, markup removed."""
    from gensim.corpora.wikicorpus import filter_wiki

    raw = bz2.decompress(path.read_bytes())
    xml = raw.decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8")
    pages = re.findall(r"<text[^>]*>(.*?)</text>", xml, re.S)
    return "\n".join(filter_wiki(html.unescape(p)) for p in pages)


def cyrillic_lines(text: str) -> str:
    """The lines whose letters are all Cyrillic (lines without letters dropped too)."""
    def cyrillic(line: str) -> bool:
        letters = re.findall(r"[^\W\d_]", line)
        return bool(letters) and all("\u0400" <= c <= "\u04ff" for c in letters)

    return "\n".join(line for line in text.splitlines() if cyrillic(line))


def gensim_languages(_: Path) -> dict[str, str]:
    """Real text in three languages that ships with gensim's tests: English news (lee_background), a
    Bulgarian Wikipedia export and the opening of Crime and Punishment in Russian. That file ends with the same
    paragraphs in English: only its Cyrillic lines are Russian (about 1,400 characters, so ru is small)."""
    return {"bg": read_wiki_dump(gensim_file("bgwiki-latest-pages-articles-shortened.xml.bz2")),
            "en": gensim_file("lee_background.cor").read_text(encoding="utf-8"),
            "ru": cyrillic_lines(gensim_file("crime-and-punishment.txt").read_text(encoding="utf-8"))}


# ------------------------------------------------------------------------------------------ unpackers


def untar(archive: Path, folder: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")


def unzip_names(archive: Path, folder: Path) -> None:
    """PyTorch's tutorial data.zip holds data/names/LANGUAGE.txt: keep just those files."""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            if re.fullmatch(r"data/names/[^/]+\.txt", info.filename):
                (folder / Path(info.filename).name).write_bytes(z.read(info))


KAGGLE_CSV = "IMDB Dataset.csv"

TEXT_DATASETS: dict[str, TextSource] = {
    "pang_lee": TextSource("labelled", lambda _: read_pang_lee(gensim_file("pang_lee_polarity.cor"))),
    "imdb": TextSource("labelled", read_imdb, "imdb", unpack=untar, fetch=(Download(
        "aclImdb_v1.tar.gz", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        "7c2ac02c03563afcf9b574c7e56c153a"),)),
    "lee": TextSource("corpus", lambda _: gensim_file("lee_background.cor").read_text(encoding="utf-8")),
    "shakespeare": TextSource("corpus", lambda d: read_text_files([d / "input.txt"]), "shakespeare", fetch=(Download(
        "input.txt", "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        ""),)),
    "dickens": TextSource("corpus", lambda d: read_text_files([d / "pg98.txt"]), "dickens", fetch=(Download(
        "pg98.txt", "https://www.gutenberg.org/cache/epub/98/pg98.txt", ""),)),  # A Tale of Two Cities
    "gensim_langs": TextSource("languages", gensim_languages),
    "names": TextSource("languages", read_language_folder, "names", unpack=unzip_names, fetch=(Download(
        "data.zip", "https://download.pytorch.org/tutorial/data.zip", ""),)),  # 18 languages' surnames
}
NLTK_PACKAGES = ("stopwords", "wordnet", "omw-1.4")


def load_text(name: str, root: str | os.PathLike | None = None, kind: str | None = None):
    """A registered text set as its reader returns it; never downloads."""
    if name not in TEXT_DATASETS:
        raise ValueError(f"unknown text dataset {name!r}; valid names: {', '.join(TEXT_DATASETS)}")
    source = TEXT_DATASETS[name]
    if kind is not None and source.kind != kind:
        valid = [n for n, s in TEXT_DATASETS.items() if s.kind == kind]
        raise ValueError(f"{name} is a {source.kind} dataset, expected one of: {', '.join(valid)}")
    root = Path(root) if root else default_root()
    try:
        return source.read(root / source.subdir)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetNotReady(f"{name} is not prepared or is broken under {root / source.subdir} ({e}); "
                              f"run: {prepare_command(name, root)}") from e


def source_fingerprint(name: str, root: str | os.PathLike | None = None) -> str:
    """A digest of every file under a downloaded text set's folder (path, size, modification time): it changes
    when the files change, e.g. when `prepare imdb` adds aclImdb/ beside a Kaggle CSV (the reader then switches to
    it), so a cache keyed on it is rebuilt. "embedded" for a set shipped inside an installed package."""
    source = TEXT_DATASETS[name]
    if source.embedded:
        return "embedded"
    folder = (Path(root) if root else default_root()) / source.subdir
    entries = []
    for parent, _, files in os.walk(folder):
        for f in files:
            st = os.stat(os.path.join(parent, f))
            entries.append(f"{os.path.relpath(os.path.join(parent, f), folder)}\t{st.st_size}\t{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(sorted(entries)).encode()).hexdigest()


def prepare_text(name: str, root: Path, timeout: float) -> None:
    """Download and unpack what is missing, then prove the set reads."""
    if name == "nltk_data":
        return prepare_nltk(root)
    source = TEXT_DATASETS[name]
    folder = root / source.subdir
    if source.fetch:
        download_missing(source.fetch, folder, timeout, prepare_command(name, root))
    for item in source.fetch:
        unpacked = folder / f".unpacked-{item.filename}"
        if source.unpack and not unpacked.exists():
            source.unpack(folder / item.filename, folder)
            unpacked.touch()  # a re-run does not unpack 80 MB again
    data = load_text(name, root)
    size = {"labelled": lambda: f"{len(data)} labelled texts", "corpus": lambda: f"{len(data):,} characters",
            "languages": lambda: f"{len(data)} languages ({', '.join(data)})"}[source.kind]()
    print(f"{name}: {'embedded, ' if source.embedded else ''}{size}")


def prepare_nltk(root: Path) -> None:
    """Stopword lists and WordNet for the preprocessing steps that need data, into ROOT/nltk_data."""
    import nltk

    target = root / "nltk_data"
    for package in NLTK_PACKAGES:
        try:
            nltk.download(package, download_dir=str(target), quiet=True, raise_on_error=True)
        except (OSError, ValueError) as e:
            raise DatasetNotReady(f"nltk could not download {package} ({e}). If this machine is offline, run "
                                  f"`python -m nltk.downloader -d nltk_data {' '.join(NLTK_PACKAGES)}` elsewhere "
                                  f"and copy that nltk_data folder to {target}") from e
    print(f"nltk_data: {', '.join(NLTK_PACKAGES)} in {target}")


def list_text(root: Path, out=sys.stdout) -> None:
    for name, source in TEXT_DATASETS.items():
        folder = root / source.subdir
        state = "embedded" if source.embedded else ("present" if folder.is_dir() and any(folder.iterdir()) else "missing")
        print(f"{name:14} {state:26} {source.kind} text", file=out)
