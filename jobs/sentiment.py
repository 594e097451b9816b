"""Sentiment of movie reviews: preprocessing, Word2Vec embeddings, an RNN / LSTM / GRU / BiLSTM classifier.
Run alone: `python jobs/sentiment.py --help`. Default data: 200 labelled review sentences shipped with gensim;
`--data.name=imdb` after `python -m library.data prepare imdb` (or Kaggle's `IMDB Dataset.csv` in ROOT/imdb/)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from library.config import TrainConfig, require, section
from library.data import default_root
from library.data.text import TEXT_DATASETS, load_text, source_fingerprint
from library.models.rnn import RNNConfig, SequenceClassifier
from library.data.text_preprocess import (PreprocessConfig, build_vocab, cache_key, cached, carve, embedding_matrix,
                                          encode, pipeline, split_indices, train_word2vec)
from library.sequence import OptimConfig, SequenceClassification, TextEvalConfig

LABELLED = [n for n, s in TEXT_DATASETS.items() if s.kind == "labelled"]


@dataclass(kw_only=True)
class SentimentData:
    name: str = "pang_lee"
    """Labelled text set: pang_lee (embedded, 200 sentences) or imdb (50,000 reviews; prepare it first)."""
    root: str = ""
    """Folder holding prepared datasets; empty = $LIBRARY_DATA_ROOT or ~/.cache/library/data."""
    test_fraction: float = 0.2
    """Held-out share for sets without an official split (pang_lee, Kaggle's CSV); aclImdb keeps its own."""
    val_fraction: float = 0.2
    """Share of the training split held out for validation, which chooses the best epoch (our choice)."""
    max_len: int = 400
    """Tokens kept per text (the rest is cut)."""
    min_count: int = 1
    """Words seen fewer times in the training split become <unk> (and get no Word2Vec vector)."""
    limit: int = 0
    """Use a fixed random subset of N texts (0 = all); for quick runs."""

    def check(self, prefix: str) -> None:
        require(self.name in LABELLED, f"{prefix}name", self.name, " / ".join(LABELLED))
        require(0 < self.test_fraction < 1, f"{prefix}test_fraction", self.test_fraction, "a float in (0, 1)")
        require(0 < self.val_fraction < 1, f"{prefix}val_fraction", self.val_fraction, "a float in (0, 1)")
        require(self.max_len >= 1, f"{prefix}max_len", self.max_len, "an integer >= 1")
        require(self.min_count >= 1, f"{prefix}min_count", self.min_count, "an integer >= 1")
        require(self.limit >= 0, f"{prefix}limit", self.limit, "an integer >= 0 (0 = all)")


@dataclass(kw_only=True)
class EmbeddingConfig:
    source: str = "word2vec"
    """word2vec (trained on the training split in the prepare step), file (vectors from `path`), or random."""
    path: str = ""
    """Word2Vec-format vectors for source=file (.bin binary, else text)."""
    dim: int = 100
    """Embedding size (must match the file's for source=file)."""
    window: int = 5
    """Word2Vec context window."""
    epochs: int = 20
    """Word2Vec passes over the training split."""
    freeze: bool = False
    """Keep the embedding fixed (True) or fine-tune it with the classifier."""

    def check(self, prefix: str) -> None:
        require(self.source in ("word2vec", "file", "random"), f"{prefix}source", self.source, "word2vec, file or random")
        require(self.source != "file" or Path(self.path).is_file(), f"{prefix}path", self.path,
                "an existing Word2Vec-format file when embed.source=file")
        require(1 <= self.dim <= 4096, f"{prefix}dim", self.dim, "an integer in [1, 4096]")
        require(self.window >= 1, f"{prefix}window", self.window, "an integer >= 1")
        require(self.epochs >= 1, f"{prefix}epochs", self.epochs, "an integer >= 1")


@dataclass(kw_only=True)
class SentimentConfig:
    data: SentimentData = section(SentimentData)
    text: PreprocessConfig = section(PreprocessConfig)
    embed: EmbeddingConfig = section(EmbeddingConfig)
    model: RNNConfig = section(RNNConfig)
    optim: OptimConfig = section(OptimConfig)
    train: TrainConfig = section(TrainConfig)
    eval: TextEvalConfig = section(TextEvalConfig)


def load_vectors(cfg: EmbeddingConfig, train_docs: list[list[str]], min_count: int):
    if cfg.source == "word2vec":
        return train_word2vec(train_docs, cfg.dim, cfg.window, min_count, cfg.epochs, seed=0)
    if cfg.source == "file":
        from gensim.models import KeyedVectors

        vectors = KeyedVectors.load_word2vec_format(cfg.path, binary=cfg.path.endswith(".bin"))
        require(vectors.vector_size == cfg.dim, "embed.dim", cfg.dim, f"{vectors.vector_size}, the size in {cfg.path}")
        return vectors
    return None


def build_dataset(cfg: SentimentConfig, root: Path) -> dict:
    """Read, split (test, then validation out of the rest), preprocess, build the vocabulary and the embedding
    from the training split, encode."""
    rows = load_text(cfg.data.name, root, kind="labelled")
    if cfg.data.limit:
        rows = random.Random(0).sample(rows, min(cfg.data.limit, len(rows)))
    classes = sorted({r.label for r in rows})
    labels = [classes.index(r.label) for r in rows]
    if all(r.split for r in rows):  # the publisher's split
        train = [i for i, r in enumerate(rows) if r.split == "train"]
        test = [i for i, r in enumerate(rows) if r.split == "test"]
    else:
        train, test = split_indices(labels, cfg.data.test_fraction, seed=0)
    train, val = carve(train, labels, cfg.data.val_fraction, seed=1)
    tokenize = pipeline(cfg.text, root)
    docs = [tokenize(r.text) for r in rows]
    train_docs = [docs[i] for i in train]
    vocab = build_vocab(train_docs, cfg.data.min_count)
    vectors = load_vectors(cfg.embed, train_docs, cfg.data.min_count)
    out = {"classes": classes, "vocab": vocab, "vocab_size": len(vocab)}
    if vectors is not None:
        out["vectors"], out["embedding_coverage"] = embedding_matrix(vocab, vectors, cfg.embed.dim, seed=0)
    for name, idx in (("train", train), ("val", val), ("test", test)):
        out[f"{name}_ids"], out[f"{name}_lengths"] = encode([docs[i] for i in idx], vocab, cfg.data.max_len)
        out[f"{name}_labels"] = torch.tensor([labels[i] for i in idx])
    return out


class SentimentJob(SequenceClassification):
    name = "sentiment"
    Config = SentimentConfig

    @classmethod
    def encoded(cls, cfg):
        root = Path(cfg.data.root or default_root())
        settings = {"data": vars(cfg.data) | {"root": ""}, "text": vars(cfg.text),
                    "embed": vars(cfg.embed) | {"freeze": None}, "format": 2,  # freezing is the model's business
                    "source": source_fingerprint(cfg.data.name, root)}  # which files, as they are now
        return cached(root / "text_cache" / f"sentiment-{cache_key(settings)}.pt", lambda: build_dataset(cfg, root))

    @classmethod
    def prepare(cls, cfg):
        d = cls.encoded(cfg)
        cls.check_splits(cfg, d)
        coverage = f", {d['embedding_coverage']} with a {cfg.embed.source} vector" if "vectors" in d else ""
        print(f"sentiment: {len(d['train_labels'])} training / {len(d['val_labels'])} validation / "
              f"{len(d['test_labels'])} test texts, "
              f"vocabulary {d['vocab_size']}{coverage}")

    def model(self):
        d, cfg = self.dataset, self.cfg
        return SequenceClassifier(d["vocab_size"], cfg.embed.dim, len(d["classes"]), cfg.model, d.get("vectors"),
                                  cfg.embed.freeze)


JOB = SentimentJob

if __name__ == "__main__":
    from library.cli import run_job

    run_job("sentiment")
