"""The sequence jobs trained through the real harness (Ray Train local mode, and 2 DDP workers once) on the
embedded real data: they learn, and distributed evaluation counts every held-out sample exactly once."""
import torch

from library.config import parse, to_dict
from library.files import read_json
from library.checkpoint import load_checkpoint
from library.job import Context, load_job
from library.resources import Resources
from library.train import evaluate, fit
from library.trial import METRICS


def train(job: str, tmp_path, workers: int = 0, **overrides):
    config = to_dict(parse(load_job(job).Config, overrides))
    status = fit(job, config, tmp_path, Resources(workers=workers))
    assert status["status"] == "completed", status.get("reason")
    return status, read_json(tmp_path / METRICS)


def test_hand_written_lstm_solves_palindromes_of_length_5(tmp_path):
    status, history = train("palindrome", tmp_path, **{"model.cell": "hand_lstm", "data.length": 5,
                                                       "data.train_size": 5000, "train.epochs": 2})
    assert status["best_val_accuracy"] >= 0.99 and status["test_accuracy_at_best"] >= 0.99, history
    assert history[-1]["test_samples"] == 2000 and history[-1]["val_samples"] == 1000


def test_sentiment_fits_its_training_sentences_and_scores_every_held_out_one(tmp_path):
    # 160 training sentences are too few to generalise (a bag-of-words logistic regression is at chance
    # on this split too): held-out accuracy above chance needs IMDB, which cannot be downloaded here.
    status, history = train("sentiment", tmp_path, **{"train.epochs": 8, "train.batch_size": 16})
    assert history[-1]["loss"] < 0.5 * history[0]["loss"] and history[-1]["train_accuracy"] > 0.9, history
    final = history[-1]
    # The test accuracy counts every one of the 40 test sentences (20 of each class) once: a whole number of them,
    # and the mean of the two classes' accuracies (those in float32), which is also the macro accuracy.
    assert final["test_samples"] == 40 and abs(final["test_accuracy"] * 40 - round(final["test_accuracy"] * 40)) < 1e-9
    assert abs(final["test_accuracy"] - (final["test_accuracy_neg"] + final["test_accuracy_pos"]) / 2) < 1e-6, final
    assert abs(final["test_macro_accuracy"] - final["test_accuracy"]) < 1e-6
    assert final["val_samples"] == 32  # 20% of the 160 training sentences choose the best epoch
    assert (tmp_path / "confusion.png").stat().st_size > 1000


def test_char_rnn_test_loss_falls_and_it_writes_samples(tmp_path):
    status, history = train("charrnn", tmp_path, **{"data.limit_chars": 60_000, "model.hidden": 64, "train.epochs": 3,
                                                    "train.batch_size": 16, "optim.lr": 0.01, "eval.sample_chars": 300})
    losses = [h["test_loss"] for h in history]
    assert losses[-1] < losses[0] and losses[-1] < 2.6, losses  # uniform over ~80 characters: 4.4 nats
    sample = (tmp_path / "sample.txt").read_text()
    assert len(sample) == 301 and (tmp_path / "samples/epoch_0003.txt").read_text() == sample


def test_ddp_evaluation_equals_single_process_evaluation_and_langid_beats_chance(tmp_path):
    # An odd number of test snippets: a padded sampler would count one of them twice over 2 ranks.
    overrides = {"data.per_language": 150, "data.test_fraction": 0.2, "model.hidden": 32, "train.epochs": 2,
                 "train.batch_size": 16, "optim.lr": 0.005, "data.balance": False}
    status, history = train("langid", tmp_path / "ddp", workers=2, **overrides)
    final = history[-1]
    job = load_job("langid")
    cfg = parse(job.Config, overrides)
    n_test = len(job.encoded(cfg)["test_labels"])
    assert final["test_samples"] == n_test and n_test % 2 == 1
    assert final["test_accuracy"] > 0.8 and min(final["test_accuracy_bg"], final["test_accuracy_en"]) > 0.7, final
    per_class = [final[f"test_accuracy_{c}"] for c in ("bg", "en", "ru")]
    assert abs(final["test_macro_accuracy"] - sum(per_class) / 3) < 1e-6, final

    ctx = Context(cfg=cfg, run_dir=tmp_path / "single", rank=0, world_size=1, device=torch.device("cpu"),
                  amp_dtype=None, scaler=torch.amp.GradScaler("cpu", enabled=False))
    trial = job(cfg)  # this trial's job; build needs no load_data before it
    ctx.models, ctx.optimizers = trial.build(ctx)
    ctx.models["net"].load_state_dict(load_checkpoint(tmp_path / "ddp")["models"]["net"])
    single = evaluate(trial, ctx, final=True)
    assert single["test_samples"] == final["test_samples"] and single["test_accuracy"] == final["test_accuracy"]
    assert single["val_accuracy"] == final["val_accuracy"] and abs(single["test_loss"] - final["test_loss"]) < 1e-6



def test_sentiment_beats_chance_on_held_out_reviews_of_a_synthetic_kaggle_csv(tmp_path):
    # Real IMDB cannot be downloaded here. This fixture is Kaggle's file format (header review,sentiment, HTML
    # line breaks) with made-up reviews whose sentiment shows in a few words among neutral filler: a signal the
    # whole pipeline (CSV reader, HTML strip, tokenizer, Word2Vec, LSTM) has to find and carry to unseen reviews.
    import csv
    import random

    rng = random.Random(0)
    good, bad = ["wonderful", "moving", "brilliant", "superb", "delightful"], ["dull", "awful", "boring", "tedious", "bad"]
    filler = "the film story actor scene plot director music camera ending script cast".split()
    (tmp_path / "data" / "imdb").mkdir(parents=True)
    with open(tmp_path / "data" / "imdb" / "IMDB Dataset.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for i in range(600):
            label = i % 2
            words = rng.choices(filler, k=12) + rng.choices(good if label else bad, k=2)
            rng.shuffle(words)
            writer.writerow([" ".join(words[:7]) + " <br /><br />" + " ".join(words[7:]) + ".",
                             "positive" if label else "negative"])
    status, history = train("sentiment", tmp_path / "run", **{
        "data.name": "imdb", "data.root": str(tmp_path / "data"), "train.epochs": 8, "train.batch_size": 32})
    assert history[-1]["test_samples"] == 120 and history[-1]["val_samples"] == 96, history
    assert status["test_accuracy_at_best"] > 0.8, history
