"""From raw text to model input for the sequence jobs: a preprocessing pipeline with switchable steps,
vocabularies and encoding into padded id tensors, deterministic Word2Vec embeddings, on-disk caches of encoded
datasets, and a stratified split."""
from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from library.config import require
from library.data import DatasetNotReady, default_root, prepare_command
from library.files import build_once

# nltk and gensim are imported inside the functions that use them: seconds of start-up that langid, which
# imports this module only for its vocabulary helpers, never needs.
PAD, UNK = 0, 1
SPECIALS = ["<pad>", "<unk>"]


@dataclass(kw_only=True)
class PreprocessConfig:
    strip_html: bool = True
    """Remove HTML tags (IMDB reviews hold `<br />`) and unescape entities."""
    lowercase: bool = True
    """Lowercase before tokenizing."""
    tokenizer: str = "treebank"
    """nltk tokenizer: treebank (TreebankWordTokenizer), wordpunct, or whitespace; none needs nltk data."""
    stopwords: bool = False
    """Drop nltk's English stopwords (data: `python -m library.data prepare nltk_data`)."""
    normalize: str = "none"
    """none, stem (Porter; no data needed) or lemma (WordNet; data from the nltk_data prepare step)."""

    def check(self, prefix: str) -> None:
        require(self.tokenizer in TOKENIZERS, f"{prefix}tokenizer", self.tokenizer, " / ".join(TOKENIZERS))
        require(self.normalize in ("none", "stem", "lemma"), f"{prefix}normalize", self.normalize,
                "none, stem or lemma")


# ------------------------------------------------------------------------------------------ preprocessing


def _tokenizers() -> dict[str, Callable[[str], list[str]]]:
    from nltk.tokenize import TreebankWordTokenizer, wordpunct_tokenize

    treebank = TreebankWordTokenizer().tokenize  # expects one sentence: it splits only a final period off
    return {"treebank": lambda text: [w for sentence in SENTENCE_END.split(text) for w in treebank(sentence)],
            "wordpunct": wordpunct_tokenize, "whitespace": str.split}


TOKENIZERS = ("treebank", "wordpunct", "whitespace")
TAG = re.compile(r"<[^>]+>")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # punkt's job, done without its downloaded model


def nltk_data(name: str, load: Callable, root: Path):
    """Load an nltk resource, looking in ROOT/nltk_data first; missing data names the command that places it."""
    import nltk

    folder = str(root / "nltk_data")
    if folder not in nltk.data.path:
        nltk.data.path.insert(0, folder)
    try:
        return load()
    except LookupError:
        raise DatasetNotReady(f"nltk's {name} data is not installed; run: {prepare_command('nltk_data', root)}") from None


def pipeline(cfg: PreprocessConfig, root: Path | None = None) -> Callable[[str], list[str]]:
    """text -> tokens, through the steps switched on in cfg, in the usual order."""
    root = root or default_root()
    tokenize = _tokenizers()[cfg.tokenizer]
    stop = set()
    if cfg.stopwords:
        from nltk.corpus import stopwords

        stop = set(nltk_data("stopwords", lambda: stopwords.words("english"), root))
    normalize = lambda w: w  # noqa: E731
    if cfg.normalize == "stem":
        from nltk.stem import PorterStemmer

        normalize = PorterStemmer().stem
    elif cfg.normalize == "lemma":
        from nltk.stem import WordNetLemmatizer

        lemmatizer = WordNetLemmatizer()
        nltk_data("wordnet", lambda: lemmatizer.lemmatize("tests"), root)
        normalize = lemmatizer.lemmatize

    def run(text: str) -> list[str]:
        if cfg.strip_html:
            text = html.unescape(TAG.sub(" ", text))
        if cfg.lowercase:
            text = text.lower()
        return [normalize(w) for w in tokenize(text) if w.lower() not in stop]

    return run


# ------------------------------------------------------------------------------------------ vocabulary


def build_vocab(docs: list[list[str]], min_count: int = 1, max_size: int = 0) -> list[str]:
    """<pad>, <unk>, then tokens seen at least min_count times, most frequent first (ties alphabetical)."""
    counts = Counter(w for doc in docs for w in doc)
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return SPECIALS + (words[:max_size] if max_size else words)


def encode(docs: list[list[str]], vocab: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (N x L ids, 0-padded, cut at max_len; N lengths). An empty text becomes one <unk>."""
    index = {w: i for i, w in enumerate(vocab)}
    rows = [[index.get(w, UNK) for w in doc[:max_len]] or [UNK] for doc in docs]
    ids = torch.zeros(len(rows), max(map(len, rows), default=1), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
    return ids, torch.tensor([len(r) for r in rows])


# ------------------------------------------------------------------------------------------ Word2Vec


def stable_hash(text: str) -> int:
    """Word2Vec seeds each word's initial vector with hashfxn(word + seed); Python's hash() changes with
    PYTHONHASHSEED between processes, this does not."""
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:4], "little")


def train_word2vec(docs: list[list[str]], dim: int, window: int, min_count: int, epochs: int, seed: int):
    """gensim Word2Vec (skip-gram), deterministic: one worker thread, a fixed seed, a stable hash."""
    from gensim.models import Word2Vec

    return Word2Vec(docs, vector_size=dim, window=window, min_count=min_count, epochs=epochs, sg=1, seed=seed,
                    workers=1, hashfxn=stable_hash).wv


def embedding_matrix(vocab: list[str], vectors, dim: int, seed: int) -> tuple[torch.Tensor, int]:
    """vocab x dim rows: a word's vector where `vectors` (KeyedVectors) has it, small random values otherwise,
    zeros for <pad>. Also returns how many words were covered."""
    weight = torch.randn(len(vocab), dim, generator=torch.Generator().manual_seed(seed)) * 0.1
    weight[PAD] = 0
    covered = 0
    for i, w in enumerate(vocab):
        if vectors is not None and w in vectors.key_to_index:
            weight[i] = torch.from_numpy(vectors[w].copy())
            covered += 1
    return weight, covered


# ------------------------------------------------------------------------------------------ caches


def cache_key(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(path: Path, build: Callable[[], dict]) -> dict:
    """torch.load(path), building and saving it first unless another trial already did (build_once)."""
    build_once(path, lambda tmp: torch.save(build(), tmp))
    return torch.load(path, map_location="cpu", weights_only=True)


def split_indices(labels: list[int], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded split that keeps every class's share in both parts (stratified)."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == c]
        order = [members[j] for j in torch.randperm(len(members), generator=gen).tolist()]
        cut = round(len(order) * test_fraction)
        test += order[:cut]
        train += order[cut:]
    return sorted(train), sorted(test)


def carve(indices: list[int], labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """`indices` split in two, stratified by their labels: (the rest, a seeded `fraction` of them). Carves a
    validation split out of a training split, so that it shares no example with the test split."""
    rest, carved = split_indices([labels[i] for i in indices], fraction, seed)
    return [indices[j] for j in rest], [indices[j] for j in carved]
