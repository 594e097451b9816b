"""Character-level language model (rnn / lstm / gru) on any text; per-epoch train, validation and test loss (the
best epoch by validation loss, the test loss reported at it), and a 1000-character sample at a temperature saved per trial. Run alone: `python jobs/charrnn.py --help`.
Default data: gensim's lee_background.cor (360 KB of English news); `--data.name=shakespeare` or `dickens`
after `python -m library.data prepare NAME`, or `--data.name=files --data.files="['a.txt','b.txt']"`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F

from library import seeds
from library.config import TrainConfig, require, section
from library.data.text import TEXT_DATASETS, load_text, read_text_files
from library.files import write_text
from library.job import Context, Job
from library.models.rnn import CharLM, RNNConfig, sample_chars
from library.sequence import CharEmbedConfig, OptimConfig

CORPORA = [n for n, s in TEXT_DATASETS.items() if s.kind == "corpus"]


@dataclass(kw_only=True)
class CorpusData:
    name: str = "lee"
    """Text to model: one of the registered corpora, or `files` for data.files."""
    files: list[str] = field(default_factory=list)
    """UTF-8 text files for name=files (Gutenberg headers are stripped)."""
    root: str = ""
    """Folder holding prepared datasets; empty = $LIBRARY_DATA_ROOT or ~/.cache/library/data."""
    seq_len: int = 100
    """Characters per training window (truncated backpropagation through time)."""
    test_fraction: float = 0.1
    """The last share of the text, held out for the test loss."""
    val_fraction: float = 0.1
    """The share of the text just before the test part, held out for the validation loss that chooses the best
    epoch (our choice)."""
    limit_chars: int = 0
    """Use only the first N characters (0 = all); for quick runs."""

    def check(self, prefix: str) -> None:
        require(self.name in CORPORA + ["files"], f"{prefix}name", self.name, " / ".join(CORPORA + ["files"]))
        require(self.name != "files" or (self.files and all(Path(f).is_file() for f in self.files)),
                f"{prefix}files", self.files, "existing text files when data.name=files")
        require(2 <= self.seq_len <= 10_000, f"{prefix}seq_len", self.seq_len, "an integer in [2, 10000]")
        require(0 < self.test_fraction < 1, f"{prefix}test_fraction", self.test_fraction, "a float in (0, 1)")
        require(0 < self.val_fraction < 1 - self.test_fraction, f"{prefix}val_fraction", self.val_fraction,
                f"a float in (0, {1 - self.test_fraction:g}): data.test_fraction={self.test_fraction:g} is taken")
        require(self.limit_chars >= 0, f"{prefix}limit_chars", self.limit_chars, "an integer >= 0 (0 = all)")


@dataclass(kw_only=True)
class SampleEvalConfig:
    every: int = 1
    """Test loss and a sample every N epochs (and always after the last one)."""
    sample_chars: int = 1000
    """Length of the generated sample."""
    temperature: float = 0.8
    """Sampling temperature: lower is safer and more repetitive, higher more varied."""

    def check(self, prefix: str) -> None:
        require(self.every >= 1, f"{prefix}every", self.every, "an integer >= 1")
        require(self.sample_chars >= 1, f"{prefix}sample_chars", self.sample_chars, "an integer >= 1")
        require(self.temperature > 0, f"{prefix}temperature", self.temperature, "a float > 0")


@dataclass(kw_only=True)
class CharRNNConfig:
    data: CorpusData = section(CorpusData)
    embed: CharEmbedConfig = section(CharEmbedConfig)
    model: RNNConfig = section(RNNConfig)
    optim: OptimConfig = section(OptimConfig)
    train: TrainConfig = section(TrainConfig)
    eval: SampleEvalConfig = section(SampleEvalConfig)

    def check(self, prefix: str) -> None:  # a language model must not read the characters it predicts
        require(self.model.cell != "bilstm", f"{prefix}model.cell", self.model.cell, "rnn, lstm or gru")


def read_corpus(cfg: CorpusData) -> str:
    text = read_text_files(cfg.files) if cfg.name == "files" else load_text(cfg.name, cfg.root or None, "corpus")
    return text[:cfg.limit_chars] if cfg.limit_chars else text


def windows(ids: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Consecutive N x (seq_len + 1) windows: inputs are [:, :-1], next-character targets [:, 1:]."""
    n = (len(ids) - 1) // seq_len
    return torch.stack([ids[i * seq_len: i * seq_len + seq_len + 1] for i in range(n)])


@dataclass(frozen=True)
class Corpus:
    chars: list[str]
    """The alphabet, id -> character: the whole text's, so a character first seen in the test part is no <unk>."""
    train: torch.Tensor
    """Windows of the first part of the text (see `windows`)."""
    val: torch.Tensor
    """Windows of the validation part, between the training and the test part."""
    test: torch.Tensor
    """Windows of the held-out last part."""


def split_corpus(cfg: CorpusData) -> Corpus:
    text = read_corpus(cfg)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text])
    val_at, test_at = int(len(ids) * (1 - cfg.test_fraction - cfg.val_fraction)), int(len(ids) * (1 - cfg.test_fraction))
    # Each part is windowed on its own: no window reaches across into the next part.
    return Corpus(chars, windows(ids[:val_at], cfg.seq_len), windows(ids[val_at:test_at], cfg.seq_len),
                  windows(ids[test_at:], cfg.seq_len))


class CharRNNJob(Job):
    name = "charrnn"
    Config = CharRNNConfig

    @classmethod
    def primary_metric(cls, cfg):
        return "val_loss", "min"

    @classmethod
    def test_metrics(cls, cfg):
        return "test_loss", "test_bits_per_char"

    @classmethod
    def prepare(cls, cfg):
        smallest = min(cfg.data.test_fraction, cfg.data.val_fraction)
        require(len(read_corpus(cfg.data)) > 4 * cfg.data.seq_len / smallest, "data.seq_len", cfg.data.seq_len,
                "a window that fits several times into the validation and the test part of the text")

    @cached_property
    def corpus(self) -> Corpus:
        """This trial's text, read once for load_data, build and evaluate."""
        return split_corpus(self.cfg.data)

    def load_data(self):
        return [self.corpus.train]

    def build(self, ctx: Context):
        lm = CharLM(len(self.corpus.chars), self.cfg.embed.dim, self.cfg.model)
        return {"lm": lm}, {"lm": torch.optim.Adam(lm.parameters(), self.cfg.optim.lr)}

    def step(self, batch, ctx: Context):
        w = batch[0]
        lm, opt = ctx.models["lm"], ctx.optimizers["lm"]
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            logits, _ = lm(w[:, :-1])
            loss = F.cross_entropy(logits.float().flatten(0, 1), w[:, 1:].flatten())
        ctx.backward(loss)
        ctx.clip_grad_norm(opt, ctx.cfg.optim.grad_clip)
        ctx.step(opt)
        return {"loss": loss}

    def evaluate(self, ctx: Context, final: bool):
        lm = ctx.model("lm")
        out = {}
        for split, held_out in (("val", self.corpus.val), ("test", self.corpus.test)):
            total = torch.zeros(2, dtype=torch.float64, device=ctx.device)  # summed loss, characters
            for idx in ctx.eval_indices(len(held_out)).split(128):
                w = held_out[idx].to(ctx.device)
                with ctx.autocast():
                    logits, _ = lm(w[:, :-1])
                total[0] += F.cross_entropy(logits.float().flatten(0, 1), w[:, 1:].flatten(), reduction="sum").double()
                total[1] += w[:, 1:].numel()
            loss, count = ctx.sum_over_ranks(total).tolist()
            out |= {f"{split}_loss": loss / count, f"{split}_bits_per_char": loss / count / math.log(2)}
        if ctx.rank == 0:
            self.write_sample(ctx)
        return out

    def write_sample(self, ctx: Context) -> None:
        cfg = ctx.cfg.eval
        gen = torch.Generator().manual_seed(ctx.cfg.train.seed + seeds.TEXT_SAMPLE)  # the same draws every epoch
        chars = self.corpus.chars
        first = int(self.corpus.test[0, 0])
        ids = sample_chars(ctx.model("lm"), first, cfg.sample_chars, cfg.temperature, gen)
        text = chars[first] + "".join(chars[i] for i in ids)
        for name in (f"samples/epoch_{ctx.epoch + 1:04d}.txt", "sample.txt"):
            write_text(ctx.run_dir / name, text)


JOB = CharRNNJob

if __name__ == "__main__":
    from library.cli import run_job

    run_job("charrnn")
