"""Model selection on validation data (issue 15): every job picks its best epoch on a validation split carved from
its training data, reports the test split's scores at that epoch, and never lets a validation or test example into
training or into each other."""
from __future__ import annotations

import pytest
import torch

from jobs.palindrome import PalindromeJob
from library.config import parse, to_dict
from library.files import read_json
from library.resources import Resources
from library.train import fit
from library.trial import METRICS

# Scripted scores (the palindrome job's evaluate replaced): the test score peaks at epoch 3, the validation one at 2.
VAL = [0.50, 0.80, 0.60]
TEST = [0.55, 0.60, 0.90]


def test_best_epoch_follows_validation_and_the_test_score_reported_is_that_epochs(tmp_path, monkeypatch):
    def scripted_scores(self, ctx, final):
        return {"val_accuracy": VAL[ctx.epoch], "test_accuracy": TEST[ctx.epoch]}

    monkeypatch.setattr(PalindromeJob, "evaluate", scripted_scores)  # workers=0: the trial trains in this process
    config = to_dict(parse(PalindromeJob.Config, {"train.epochs": 3, "data.train_size": 256, "model.hidden": 8}))
    status = fit("palindrome", config, tmp_path, Resources())
    assert status["status"] == "completed", status.get("reason")
    assert status["metric"] == "val_accuracy"
    assert status["best_epoch"] == 2 and status["best_val_accuracy"] == 0.80
    assert status["test_accuracy_at_best"] == 0.60  # not the test split's own best, 0.90
    history = read_json(tmp_path / METRICS)
    assert [h["val_accuracy"] for h in history] == VAL and [h["test_accuracy"] for h in history] == TEST


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
