"""Language of a text snippet, read character by character by an RNN / LSTM / GRU / BiLSTM classifier;
accuracy per language and a confusion matrix. Run alone: `python jobs/langid.py --help`.
Default data: English, Bulgarian and Russian text shipped with gensim. `--data.name=names` (surnames in 18
languages, PyTorch's tutorial data) after `python -m library.data prepare names`, or any folder of
LANGUAGE.txt files: `--data.name=folder --data.folder=PATH`."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from library.config import TrainConfig, require, section
from library.data.text import TEXT_DATASETS, load_text, read_language_folder
from library.models.rnn import RNNConfig, SequenceClassifier
from library.data.text_preprocess import build_vocab, carve, encode, split_indices
from library.sequence import CharEmbedConfig, OptimConfig, SequenceClassification, TextEvalConfig

LANGUAGE_SETS = [n for n, s in TEXT_DATASETS.items() if s.kind == "languages"]


@dataclass(kw_only=True)
class LanguageData:
    name: str = "gensim_langs"
    """Per-language texts: a registered set, or `folder` for data.folder."""
    folder: str = ""
    """A folder of LANGUAGE.txt files (UTF-8) for name=folder."""
    root: str = ""
    """Folder holding prepared datasets; empty = $LIBRARY_DATA_ROOT or ~/.cache/library/data."""
    snippet_chars: int = 64
    """A line longer than this is cut into snippets of this many characters; shorter lines (names) stay whole."""
    per_language: int = 500
    """At most this many snippets per language, a fixed random choice (0 = all)."""
    test_fraction: float = 0.2
    """Held-out share of every language's snippets, for the test scores."""
    val_fraction: float = 0.2
    """Share of every language's remaining (training) snippets held out for validation, which chooses the best
    epoch (our choice)."""
    balance: bool = True
    """Repeat the training snippets of smaller languages up to the largest one's count, so that a language with
    little text is not simply never predicted (the test split is left as it is)."""

    def check(self, prefix: str) -> None:
        names = LANGUAGE_SETS + ["folder"]
        require(self.name in names, f"{prefix}name", self.name, " / ".join(names))
        require(self.name != "folder" or Path(self.folder).is_dir(), f"{prefix}folder", self.folder,
                "an existing folder of LANGUAGE.txt files when data.name=folder")
        require(self.snippet_chars >= 2, f"{prefix}snippet_chars", self.snippet_chars, "an integer >= 2")
        require(self.per_language >= 0, f"{prefix}per_language", self.per_language, "an integer >= 0 (0 = all)")
        require(0 < self.test_fraction < 1, f"{prefix}test_fraction", self.test_fraction, "a float in (0, 1)")
        require(0 < self.val_fraction < 1, f"{prefix}val_fraction", self.val_fraction, "a float in (0, 1)")


@dataclass(kw_only=True)
class LangIdConfig:
    data: LanguageData = section(LanguageData)
    embed: CharEmbedConfig = section(CharEmbedConfig)
    model: RNNConfig = section(RNNConfig)
    optim: OptimConfig = section(OptimConfig)
    train: TrainConfig = section(TrainConfig)
    eval: TextEvalConfig = section(TextEvalConfig)


def snippets(text: str, size: int) -> list[str]:
    """A short line (a name) whole; a long one cut into full pieces of `size` characters (the rest dropped)."""
    out = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if len(line) <= size:
            out += [line] if line else []
        else:
            out += [line[i:i + size] for i in range(0, len(line) - size + 1, size)]
    return out


def oversample(indices: list[int], labels: list[int]) -> list[int]:
    """Every class's indices cycled up to the largest class's count."""
    by_class = {}
    for i in indices:
        by_class.setdefault(labels[i], []).append(i)
    most = max(map(len, by_class.values()))
    return sorted(members[j % len(members)] for members in by_class.values() for j in range(most))


def build_dataset(cfg: LanguageData) -> dict:
    """Distinct snippets per language (a name file repeats a name many times: its copies must not land on both
    sides of a split), then stratified test, validation and training splits that share no text, not even across
    languages (a surname of two languages, kept in training only)."""
    texts = read_language_folder(Path(cfg.folder)) if cfg.name == "folder" else load_text(cfg.name, cfg.root or None)
    languages = sorted(texts)
    rows, labels = [], []
    for k, lang in enumerate(languages):
        pieces = list(dict.fromkeys(snippets(texts[lang], cfg.snippet_chars)))
        if cfg.per_language and len(pieces) > cfg.per_language:
            pieces = random.Random(k).sample(pieces, cfg.per_language)
        rows += pieces
        labels += [k] * len(pieces)
    train, test = split_indices(labels, cfg.test_fraction, seed=0)
    train, val = carve(train, labels, cfg.val_fraction, seed=1)
    seen = {rows[i] for i in train}
    val = [i for i in val if rows[i] not in seen]
    seen |= {rows[i] for i in val}
    test = [i for i in test if rows[i] not in seen]
    if cfg.balance:
        train = oversample(train, labels)
    vocab = build_vocab([list(rows[i]) for i in train])
    out = {"classes": languages, "vocab_size": len(vocab)}
    for name, idx in (("train", train), ("val", val), ("test", test)):
        out[f"{name}_ids"], out[f"{name}_lengths"] = encode([list(rows[i]) for i in idx], vocab, cfg.snippet_chars)
        out[f"{name}_labels"] = torch.tensor([labels[i] for i in idx])
    return out


class LangIdJob(SequenceClassification):
    name = "langid"
    Config = LangIdConfig

    @classmethod
    def encoded(cls, cfg):
        return build_dataset(cfg.data)

    def model(self):
        d, cfg = self.dataset, self.cfg
        return SequenceClassifier(d["vocab_size"], cfg.embed.dim, len(d["classes"]), cfg.model)


JOB = LangIdJob

if __name__ == "__main__":
    from library.cli import run_job

    run_job("langid")
