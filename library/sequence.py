"""What the sequence jobs share: their optimizer, evaluation and character-embedding config sections, and
`SequenceClassification`, a job that classifies padded token sequences (training step, evaluation aggregated
over all DDP ranks, and a confusion-matrix image)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import torch
import torch.nn.functional as F

from library.config import require
from library.files import atomic_write
from library.job import Context, Job


# ------------------------------------------------------------------------------------------ configs


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


@dataclass(kw_only=True)
class CharEmbedConfig:
    dim: int = 32
    """Size of the learned character embedding."""

    def check(self, prefix: str) -> None:
        require(1 <= self.dim <= 4096, f"{prefix}dim", self.dim, "an integer in [1, 4096]")


# ------------------------------------------------------------------------------------------ classification


class SequenceClassification(Job):
    """A job that classifies padded token sequences. Subclasses supply `encoded(cfg)`: a dict with train_ids,
    train_lengths, train_labels, val_* and test_* likewise (val carved from the training data, disjoint from
    test), classes (names), vocab_size, and optionally vectors; and `model()`, the classifier for this trial's
    config and dataset. Config sections: data, model, optim (OptimConfig), train, eval (TextEvalConfig).
    The best epoch is chosen on validation accuracy; test accuracy (micro: share of texts right) and macro
    accuracy (the mean of the per-class accuracies, which a model that ignores a small class cannot game) are
    reported at that epoch."""

    images = MappingProxyType({"confusion": "confusion.png"})

    @classmethod
    def encoded(cls, cfg) -> dict:
        raise NotImplementedError

    def model(self) -> torch.nn.Module:
        raise NotImplementedError

    @classmethod
    def primary_metric(cls, cfg):
        return "val_accuracy", "max"

    @classmethod
    def test_metrics(cls, cfg):
        return "test_accuracy", "test_macro_accuracy"

    @classmethod
    def prepare(cls, cfg):
        cls.check_splits(cfg, cls.encoded(cfg))

    @staticmethod
    def check_splits(cfg, dataset: dict) -> None:
        """On the login node: a training split smaller than one batch would train nothing (the partial batch is
        dropped), e.g. a small data.limit once the test and validation splits are carved out of it; an empty
        validation or test split would score nothing."""
        n = len(dataset["train_labels"])
        require(n >= cfg.train.batch_size, "train.batch_size", cfg.train.batch_size,
                f"at most the {n} training examples of this config (no batch would be full and nothing would train)")
        for split in ("val", "test"):
            require(len(dataset[f"{split}_labels"]) > 0, f"data.{split}_fraction", getattr(cfg.data, f"{split}_fraction"),
                    f"a larger share: this config's {split} split is empty")

    @cached_property
    def dataset(self) -> dict:
        """This trial's encoded dataset (`encoded`), made on first use by whichever method needs it first."""
        return self.encoded(self.cfg)

    def load_data(self):
        d = self.dataset
        return [d["train_ids"], d["train_lengths"], d["train_labels"]]

    def build(self, ctx: Context):
        model = self.model()
        params = [p for p in model.parameters() if p.requires_grad]
        return {"net": model}, {"net": torch.optim.Adam(params, self.cfg.optim.lr)}

    def step(self, batch, ctx: Context):
        ids, lengths, labels = batch
        net, opt = ctx.models["net"], ctx.optimizers["net"]
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            logits = net(ids[:, :int(lengths.max())], lengths)
            loss = F.cross_entropy(logits.float(), labels)
        ctx.backward(loss)
        ctx.clip_grad_norm(opt, ctx.cfg.optim.grad_clip)
        ctx.step(opt)
        return {"loss": loss, "train_accuracy": (logits.argmax(1) == labels).float().mean()}

    def evaluate(self, ctx: Context, final: bool):
        classes = self.dataset["classes"]
        out = {}
        for split in ("val", "test"):
            confusion, loss = self.confusion(ctx, split)
            n = int(confusion.sum())
            per_class = confusion.diag() / confusion.sum(1).clamp(min=1)
            present = confusion.sum(1) > 0  # a class with no example in the split has no accuracy to average
            out |= {f"{split}_accuracy": confusion.diag().sum().item() / n,
                    f"{split}_macro_accuracy": per_class[present].mean().item(),
                    f"{split}_loss": loss / n, f"{split}_samples": n}
            if split == "test":
                out |= {f"test_accuracy_{c}": a for c, a in zip(classes, per_class.tolist())}
                if ctx.rank == 0:
                    save_confusion(confusion, classes, ctx.run_dir / "confusion.png")
        return out

    def confusion(self, ctx: Context, split: str) -> tuple[torch.Tensor, float]:
        """The split's confusion matrix (rows true, columns predicted) and summed loss, over all ranks."""
        d = self.dataset
        k = len(d["classes"])
        net = ctx.model("net")
        confusion = torch.zeros(k, k, dtype=torch.long, device=ctx.device)
        loss = torch.zeros(1, dtype=torch.float64, device=ctx.device)
        for idx in ctx.eval_indices(len(d[f"{split}_labels"])).split(256):
            lengths = d[f"{split}_lengths"][idx].to(ctx.device)
            labels = d[f"{split}_labels"][idx].to(ctx.device)
            with ctx.autocast():
                logits = net(d[f"{split}_ids"][idx, :int(lengths.max())].to(ctx.device), lengths).float()
            loss += F.cross_entropy(logits, labels, reduction="sum").double()
            confusion += torch.bincount(labels * k + logits.argmax(1), minlength=k * k).view(k, k)
        return ctx.sum_over_ranks(confusion).cpu(), ctx.sum_over_ranks(loss).item()


def save_confusion(confusion: torch.Tensor, classes: list[str], path: Path) -> None:
    """Rows: true class, columns: predicted; each cell shows its count, shaded by the row's share."""
    import matplotlib  # imported here, not at start-up: about a second, and only rank 0's evaluation draws

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
