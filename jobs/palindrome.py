"""Palindromes of length T: read the first T-1 digits, predict the last (it equals the first). Compares a
hand-written LSTM cell with nn.LSTM and a vanilla RNN as T grows. Run alone: `python jobs/palindrome.py --help`.
The data is generated (seeded), so nothing needs preparing. Each distinct palindrome belongs to one split (train,
validation or test, by a hash of its digits), so no test or validation palindrome is ever trained on; the best
epoch is chosen on validation accuracy and the test accuracy is reported at that epoch."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F

from library import seeds
from library.config import TrainConfig, require, section
from library.job import Context, Job
from library.models.rnn import PALINDROME_CELLS, PalindromeNet
from library.sequence import OptimConfig, TextEvalConfig


@dataclass(kw_only=True)
class PalindromeData:
    length: int = 5
    """T: digits per palindrome (the model reads T-1 of them)."""
    train_size: int = 10_000
    """Training palindromes (drawn once, seeded)."""
    val_size: int = 1_000
    """Validation palindromes, which choose the best epoch (drawn with another seed)."""
    test_size: int = 2_000
    """Test palindromes (drawn with another seed)."""

    def check(self, prefix: str) -> None:
        # From T=5 on there are 1,000+ distinct palindromes: enough for three disjoint splits of every one's share.
        require(5 <= self.length <= 1000, f"{prefix}length", self.length,
                "an integer in [5, 1000] (shorter ones are too few to split into disjoint train/val/test sets)")
        require(self.train_size >= 1, f"{prefix}train_size", self.train_size, "an integer >= 1")
        require(self.val_size >= 1, f"{prefix}val_size", self.val_size, "an integer >= 1")
        require(self.test_size >= 1, f"{prefix}test_size", self.test_size, "an integer >= 1")


@dataclass(kw_only=True)
class PalindromeModel:
    cell: str = "hand_lstm"
    """hand_lstm (the cell written from the equations), lstm (nn.LSTM) or rnn (vanilla tanh RNN)."""
    hidden: int = 128
    """Hidden units."""

    def check(self, prefix: str) -> None:
        require(self.cell in PALINDROME_CELLS, f"{prefix}cell", self.cell, " / ".join(PALINDROME_CELLS))
        require(1 <= self.hidden <= 4096, f"{prefix}hidden", self.hidden, "an integer in [1, 4096]")


@dataclass(kw_only=True)
class PalindromeConfig:
    data: PalindromeData = section(PalindromeData)
    model: PalindromeModel = section(PalindromeModel)
    optim: OptimConfig = section(OptimConfig)
    train: TrainConfig = section(TrainConfig)
    eval: TextEvalConfig = section(TextEvalConfig)


SPLITS = {"test": range(0, 20), "val": range(20, 30), "train": range(30, 100)}
"""Which palindromes each split draws from: those whose digits hash (mod 100) into its range. Our choice: 20% of all
distinct palindromes are test-only, 10% validation-only, 70% train-only."""


def split_of(digits: torch.Tensor) -> list[str]:
    """The split each row of distinct digits belongs to: fixed for a palindrome, whatever seed drew it."""
    buckets = [int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "big") % 100
               for row in digits.to(torch.uint8).numpy()]
    return [next(name for name, r in SPLITS.items() if b in r) for b in buckets]


def palindromes(length: int, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(n x (T-1) digits, n last digits) of n random palindromes of T digits, all of `split`'s (SPLITS)."""
    gen = torch.Generator().manual_seed(seed)
    halves = []
    while sum(map(len, halves)) < n:  # draw, keep those of this split; about 1/share of the draws are kept
        half = torch.randint(0, 10, (max(2 * n, 100), (length + 1) // 2), generator=gen)
        halves.append(half[torch.tensor([s == split for s in split_of(half)])])
    half = torch.cat(halves)[:n]
    full = torch.cat([half, half[:, : length // 2].flip(1)], 1)  # n x T, reads the same both ways
    return full[:, :-1], full[:, -1]


class PalindromeJob(Job):
    name = "palindrome"
    Config = PalindromeConfig

    @classmethod
    def primary_metric(cls, cfg):
        return "val_accuracy", "max"

    @classmethod
    def test_metrics(cls, cfg):
        return ("test_accuracy",)

    @cached_property
    def held_out(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        d, seed = self.cfg.data, self.cfg.train.seed
        return {"val": palindromes(d.length, d.val_size, seeds.PALINDROME_VAL + seed, "val"),
                "test": palindromes(d.length, d.test_size, seeds.PALINDROME_TEST + seed, "test")}

    def load_data(self):
        return list(palindromes(self.cfg.data.length, self.cfg.data.train_size, seed=self.cfg.train.seed))

    def build(self, ctx: Context):
        net = PalindromeNet(self.cfg.model.cell, self.cfg.model.hidden)
        return {"net": net}, {"net": torch.optim.Adam(net.parameters(), self.cfg.optim.lr)}

    def step(self, batch, ctx: Context):
        seq, last = batch
        net, opt = ctx.models["net"], ctx.optimizers["net"]
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            logits = net(seq)
            loss = F.cross_entropy(logits.float(), last)
        ctx.backward(loss)
        ctx.clip_grad_norm(opt, ctx.cfg.optim.grad_clip)
        ctx.step(opt)
        return {"loss": loss, "train_accuracy": (logits.argmax(1) == last).float().mean()}

    def evaluate(self, ctx: Context, final: bool):
        out = {}
        for split, (seq, last) in self.held_out.items():
            counts = torch.zeros(2, dtype=torch.long, device=ctx.device)  # correct, seen
            for idx in ctx.eval_indices(len(last)).split(1000):
                with ctx.autocast():
                    pred = ctx.model("net")(seq[idx].to(ctx.device)).argmax(1)
                counts += torch.stack([(pred == last[idx].to(ctx.device)).sum(),
                                       torch.tensor(len(idx), device=ctx.device)])
            correct, seen = ctx.sum_over_ranks(counts).tolist()
            out |= {f"{split}_accuracy": correct / seen, f"{split}_samples": seen}
        return out


JOB = PalindromeJob

if __name__ == "__main__":
    from library.cli import run_job

    run_job("palindrome")
