"""Model selection on validation data (issue 15): every job picks its best epoch on a validation split carved from
its training data, reports the test split's scores at that epoch, and never lets a validation or test example into
training or into each other."""
from __future__ import annotations

import html
import random
import re
from pathlib import Path

import pytest
import torch

from jobs.charrnn import CharRNNJob, read_corpus, split_corpus
from jobs.langid import LangIdJob
from jobs.palindrome import PalindromeJob
from jobs.sentiment import SentimentJob
from library.config import parse, to_dict
from library.files import read_json
from library.report import build_report
from library.results import collect
from library.sweep import Sweep
from library.trial import METRICS, Trial
from library.resources import Resources
from library.train import fit

# Scripted scores (the palindrome job's evaluate replaced): the test score peaks at epoch 3, the validation one at 2.
VAL = [0.50, 0.80, 0.60]
TEST = [0.55, 0.60, 0.90]


def test_best_epoch_follows_validation_and_the_test_score_reported_is_that_epochs(tmp_path, monkeypatch):
    def scripted_scores(self, ctx, final):
        return {"val_accuracy": VAL[ctx.epoch], "test_accuracy": TEST[ctx.epoch]}

    monkeypatch.setattr(PalindromeJob, "evaluate", scripted_scores)  # workers=0: the trial trains in this process
    config = to_dict(parse(PalindromeJob.Config, {"train.epochs": 3, "data.train_size": 256, "model.hidden": 8}))
    run_dir = tmp_path / "runs" / "palindrome-0001"
    status = fit("palindrome", config, run_dir, Resources())
    assert status["status"] == "completed", status.get("reason")
    assert status["metric"] == "val_accuracy"
    assert status["best_epoch"] == 2 and status["best_val_accuracy"] == 0.80
    assert status["test_accuracy_at_best"] == 0.60  # not the test split's own best, 0.90
    history = read_json(run_dir / METRICS)
    assert [h["val_accuracy"] for h in history] == VAL and [h["test_accuracy"] for h in history] == TEST

    # The sweep's table and report rank by validation and quote the test score at the best-validation epoch.
    sweep = Sweep(name="demo", job="palindrome", metric="val_accuracy", mode="max", grid={"optim.lr": [1e-3]},
                  project="p")
    out = tmp_path / "results" / "demo"
    table = collect(sweep, [Trial("palindrome-0001", {"optim.lr": 1e-3}, config)], tmp_path / "runs", out)
    assert table[["best_val_accuracy", "best_epoch", "test_accuracy_at_best"]].values.tolist() == [[0.8, 2, 0.6]]
    page = html.unescape(re.sub(r"<[^>]+>", "", build_report(out).read_text()))
    assert "best val_accuracy 0.8 at epoch 2; test_accuracy there 0.6" in page
    assert "test_accuracy at best epoch" in page and "0.9" not in page.split("Trials, best")[0]


def rows(*tensors: torch.Tensor) -> set[tuple]:
    return {tuple(r) for r in torch.cat([t.reshape(len(t), -1) for t in tensors], 1).tolist()}


@pytest.mark.parametrize("length", [5, 20])
def test_palindrome_train_validation_and_test_share_no_palindrome(length):
    job = PalindromeJob(parse(PalindromeJob.Config, {"data.length": length}))
    train = rows(*job.load_data())
    val, test = rows(*job.held_out["val"]), rows(*job.held_out["test"])
    assert len(job.held_out["val"][1]) == 1000 and len(job.held_out["test"][1]) == 2000
    assert len(val) > 50 and len(test) > 100  # many distinct ones (at T=5 there are 1,000 palindromes in all)
    assert not train & val and not train & test and not val & test


# ------------------------------------------------------------------------------- splits share no example
def texts(d: dict, split: str) -> list[tuple]:
    return [tuple(ids[:n].tolist()) for ids, n in zip(d[f"{split}_ids"], d[f"{split}_lengths"])]


def write_names(folder: Path) -> None:
    """A names folder as PyTorch's tutorial ships it: Arabic.txt repeats 108 names to 2,000 lines; one name is both
    Arabic and English."""
    rng = random.Random(0)
    name = lambda: "".join(rng.choices("abdehiklmnorsu", k=rng.randint(4, 8))).title()  # noqa: E731
    folder.mkdir()
    arabic = [name() for _ in range(107)] + ["Nader"]
    (folder / "Arabic.txt").write_text("\n".join(arabic[i % 108] for i in range(2000)) + "\n")
    (folder / "English.txt").write_text("\n".join([name() for _ in range(300)] + ["Nader"]) + "\n")


def test_langid_test_and_validation_names_are_never_trained_on(tmp_path):
    write_names(tmp_path / "names")
    cfg = parse(LangIdJob.Config, {"data.name": "folder", "data.folder": str(tmp_path / "names")})
    d = LangIdJob.encoded(cfg)
    train, val, test = set(texts(d, "train")), texts(d, "val"), texts(d, "test")
    assert not train & set(val) and not train & set(test) and not set(val) & set(test)
    for split, rows in (("val", val), ("test", test)):  # no name twice in a language of a split either
        pairs = list(zip(rows, d[f"{split}_labels"].tolist()))
        assert len(pairs) == len(set(pairs))
    arabic = d["classes"].index("Arabic")
    assert 15 <= int((d["test_labels"] == arabic).sum()) <= 22  # 20% of the 108 distinct names, not of 2,000 lines


def test_sentiment_validation_is_carved_from_training_and_shares_no_text_with_test(tmp_path):
    cfg = parse(SentimentJob.Config, {"data.root": str(tmp_path)})
    d = SentimentJob.encoded(cfg)
    assert [len(d[f"{s}_labels"]) for s in ("train", "val", "test")] == [128, 32, 40]
    train, val, test = set(texts(d, "train")), set(texts(d, "val")), set(texts(d, "test"))
    assert not train & val and not train & test and not val & test
    assert int(d["val_labels"].sum()) == 16  # stratified: half of each class


def test_charrnn_validation_text_lies_between_training_and_test_text():
    cfg = parse(CharRNNJob.Config, {"data.limit_chars": 20_000, "data.seq_len": 50}).data
    corpus, text = split_corpus(cfg), read_corpus(cfg)

    def decoded(w: torch.Tensor) -> str:  # consecutive windows overlap by one character
        return "".join(corpus.chars[i] for i in w[:, :-1].flatten().tolist() + w[-1:, -1].tolist())

    train, val, test = decoded(corpus.train), decoded(corpus.val), decoded(corpus.test)
    assert text.startswith(train) and len(train) > 15_900  # 80% / 10% / 10% of the text, each part windowed alone
    assert text[16_000:].startswith(val) and len(val) > 1_900
    assert text[18_000:].startswith(test) and len(test) > 1_900
