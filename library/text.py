"""Text pieces shared by the sequence jobs: a preprocessing pipeline with switchable steps, vocabularies,
deterministic Word2Vec, on-disk caches of encoded datasets, and classification over padded token sequences
(training step and evaluation aggregated over all DDP ranks, with a confusion-matrix image)."""
from __future__ import annotations

import fcntl
import hashlib
import html
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from library.config import require
from library.data import DatasetNotReady, default_root
from library.files import atomic_write
from library.train import Context, Job

PAD, UNK = 0, 1
SPECIALS = ["<pad>", "<unk>"]


# ------------------------------------------------------------------------------------------ configs


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


@dataclass(kw_only=True)
class OptimConfig:
    lr: float = 1e-3
    """Adam learning rate."""
    grad_clip: float = 5.0
    """Clip the gradient norm to this (recurrent nets explode without it); 0 = off."""

    def check(self, prefix: str) -> None:
        require(0 < self.lr <= 1, f"{prefix}lr", self.lr, "a float in (0, 1]")
        require(self.grad_clip >= 0, f"{prefix}grad_clip", self.grad_clip, "a float >= 0 (0 = off)")


@dataclass(kw_only=True)
class TextEvalConfig:
    every: int = 1
    """Evaluate on the held-out set every N epochs (and always after the last one)."""

    def check(self, prefix: str) -> None:
        require(self.every >= 1, f"{prefix}every", self.every, "an integer >= 1")


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
        raise DatasetNotReady(f"nltk's {name} data is not installed; run: python -m library.data prepare "
                              f"nltk_data --root {root}") from None


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
    """torch.load(path), building and saving it first unless someone already did. Concurrent trials queue on
    a lock; all but the first then find the file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                data = build()
                atomic_write(path, lambda tmp: torch.save(data, tmp))
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


# ------------------------------------------------------------------------------------------ classification


class SequenceClassification(Job):
    """A job that classifies padded token sequences. Subclasses supply `encoded(cfg)`: a dict with train_ids,
    train_lengths, train_labels, test_* likewise, classes (names), vocab_size, and optionally vectors; and
    `model(cfg, encoded)`. Config sections: data, model, optim (OptimConfig), train, eval (TextEvalConfig)."""

    images = {"confusion": "confusion.png"}

    def encoded(self, cfg) -> dict:
        raise NotImplementedError

    def model(self, cfg, encoded: dict) -> torch.nn.Module:
        raise NotImplementedError

    def primary_metric(self, cfg):
        return "accuracy", "max"

    def prepare(self, cfg):
        self.encoded(cfg)

    def load_data(self, cfg):
        self.data = self.encoded(cfg)
        return [self.data["train_ids"], self.data["train_lengths"], self.data["train_labels"]]

    def build(self, cfg, ctx: Context):
        model = self.model(cfg, self.data)
        params = [p for p in model.parameters() if p.requires_grad]
        return {"net": model}, {"net": torch.optim.Adam(params, cfg.optim.lr)}

    def step(self, batch, ctx: Context):
        ids, lengths, labels = batch
        net, opt = ctx.models["net"], ctx.optimizers["net"]
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            logits = net(ids[:, :int(lengths.max())], lengths)
            loss = F.cross_entropy(logits.float(), labels)
        ctx.backward(loss)
        clip(ctx, opt)
        ctx.step(opt)
        return {"loss": loss, "train_accuracy": (logits.argmax(1) == labels).float().mean()}

    def evaluate(self, ctx: Context, final: bool):
        d = self.data
        k = len(d["classes"])
        net = ctx.model("net")
        confusion = torch.zeros(k, k, dtype=torch.long, device=ctx.device)
        loss = torch.zeros(1, dtype=torch.float64, device=ctx.device)
        for idx in ctx.eval_indices(len(d["test_labels"])).split(256):
            lengths = d["test_lengths"][idx].to(ctx.device)
            labels = d["test_labels"][idx].to(ctx.device)
            with ctx.autocast():
                logits = net(d["test_ids"][idx, :int(lengths.max())].to(ctx.device), lengths).float()
            loss += F.cross_entropy(logits, labels, reduction="sum").double()
            confusion += torch.bincount(labels * k + logits.argmax(1), minlength=k * k).view(k, k)
        confusion, loss = ctx.sum_over_ranks(confusion).cpu(), ctx.sum_over_ranks(loss).item()
        n = int(confusion.sum())
        if ctx.rank == 0:
            save_confusion(confusion, d["classes"], ctx.run_dir / "confusion.png")
        per_class = confusion.diag() / confusion.sum(1).clamp(min=1)
        return {"accuracy": confusion.diag().sum().item() / n, "test_loss": loss / n, "eval_samples": n,
                **{f"accuracy_{c}": a for c, a in zip(d["classes"], per_class.tolist())}}


def clip(ctx: Context, opt: torch.optim.Optimizer) -> None:
    if ctx.cfg.optim.grad_clip:
        ctx.scaler.unscale_(opt)  # clip the true gradients, not the AMP-scaled ones
        params = [p for group in opt.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, ctx.cfg.optim.grad_clip)


def save_confusion(confusion: torch.Tensor, classes: list[str], path: Path) -> None:
    """Rows: true class, columns: predicted; each cell shows its count, shaded by the row's share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    share = (confusion / confusion.sum(1, keepdim=True).clamp(min=1)).numpy()
    fig, ax = plt.subplots(figsize=(1.5 + 0.45 * k, 1.2 + 0.45 * k))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


@dataclass(kw_only=True)
class CharEmbedConfig:
    dim: int = 32
    """Size of the learned character embedding."""

    def check(self, prefix: str) -> None:
        require(1 <= self.dim <= 4096, f"{prefix}dim", self.dim, "an integer in [1, 4096]")
