"""Text pieces of the sequence studies on real-format fixtures: readers, preprocessing steps, Word2Vec and its
cache, the hand-written LSTM cell against nn.LSTM, and `prepare` for the text sets (downloads through
file:// URLs, since tests run offline)."""
import csv
import dataclasses
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from library.config import ConfigError, parse
from library.data import DatasetNotReady, Download
from library.data.__main__ import main
from library.data.text import (TEXT_DATASETS, load_text, read_aclimdb, read_imdb_csv, read_language_folder,
                               read_text_files)
from library.data.text_preprocess import (PreprocessConfig, build_vocab, cache_key, cached, encode, pipeline,
                                          split_indices, train_word2vec)
from library.models.rnn import HandLSTM, PalindromeNet

REPO = Path(__file__).resolve().parents[1]
REVIEW = 'A <b>truly</b> great film.<br /><br />I loved the "acting", and the running jokes.'


def test_each_preprocessing_step_switches_on_and_off(tmp_path):
    everything = pipeline(PreprocessConfig(normalize="stem"), tmp_path)(REVIEW)
    assert everything[:4] == ["a", "truli", "great", "film"] and "<" not in "".join(everything)
    assert "love" in everything and "run" in everything and "joke" in everything  # Porter stems
    raw = pipeline(PreprocessConfig(strip_html=False, lowercase=False, tokenizer="whitespace"), tmp_path)(REVIEW)
    assert raw[:3] == ["A", "<b>truly</b>", "great"]
    treebank = pipeline(PreprocessConfig(), tmp_path)("It isn't bad.")
    assert treebank == ["it", "is", "n't", "bad", "."]
    assert pipeline(PreprocessConfig(tokenizer="wordpunct"), tmp_path)("It isn't bad.") == ["it", "isn", "'", "t", "bad", "."]


def test_stopwords_come_from_nltk_data_placed_under_the_data_root(tmp_path):
    # nltk's stopwords corpus format: corpora/stopwords/LANGUAGE, one word per line.
    (tmp_path / "nltk_data/corpora/stopwords").mkdir(parents=True)
    (tmp_path / "nltk_data/corpora/stopwords/english").write_text("a\nthe\nand\ni\n")
    tokens = pipeline(PreprocessConfig(stopwords=True), tmp_path)(REVIEW)
    assert "a" not in tokens and "and" not in tokens and "the" not in tokens and "great" in tokens


def test_missing_nltk_data_names_the_command_that_places_it(tmp_path):
    with pytest.raises(DatasetNotReady, match=f"python -m library.data prepare nltk_data --root {tmp_path}"):
        pipeline(PreprocessConfig(normalize="lemma"), tmp_path)
    with pytest.raises(ConfigError, match="text.normalize='stemm'.*none, stem or lemma"):
        from jobs.sentiment import SentimentConfig

        parse(SentimentConfig, {"text.normalize": "stemm"})


def write_kaggle_csv(path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerow([REVIEW, "positive"])
        w.writerow(["Dull, slow,\nand far too long.", "negative"])


def write_aclimdb(folder: Path) -> None:
    for split in ("train", "test"):
        for label, text in (("pos", "Wonderful and moving."), ("neg", "A waste of time.<br />Avoid.")):
            (folder / split / label).mkdir(parents=True)
            (folder / split / label / f"0_{9 if label == 'pos' else 2}.txt").write_text(f"{split}: {text}")
    (folder / "train/unsup").mkdir()
    (folder / "train/unsup/0_0.txt").write_text("unlabelled")


def test_readers_of_the_published_formats(tmp_path):
    write_kaggle_csv(tmp_path / "IMDB Dataset.csv")
    rows = read_imdb_csv(tmp_path / "IMDB Dataset.csv")
    assert [(r.label, r.split) for r in rows] == [("pos", ""), ("neg", "")]
    assert rows[1].text == "Dull, slow,\nand far too long."  # quoted commas and newlines survive

    write_aclimdb(tmp_path / "aclImdb")
    rows = read_aclimdb(tmp_path / "aclImdb")
    assert sorted((r.split, r.label) for r in rows) == [("test", "neg"), ("test", "pos"), ("train", "neg"), ("train", "pos")]

    pang_lee = load_text("pang_lee", tmp_path, "labelled")
    assert len(pang_lee) == 200 and sorted({r.label for r in pang_lee}) == ["neg", "pos"]
    assert sum(r.label == "pos" for r in pang_lee) == 100

    (tmp_path / "langs").mkdir()
    (tmp_path / "langs/German.txt").write_text("Müller\nSchmidt\n")
    (tmp_path / "langs/Greek.txt").write_text("Papadopoulos\n")
    assert read_language_folder(tmp_path / "langs") == {"German": "Müller\nSchmidt\n", "Greek": "Papadopoulos\n"}
    book = tmp_path / "pg98.txt"
    book.write_text("licence\n*** START OF THE PROJECT GUTENBERG EBOOK 98 ***\nIt was the best of times\n"
                    "*** END OF THE PROJECT GUTENBERG EBOOK 98 ***\nlicence")
    assert read_text_files([book]) == "It was the best of times"
    langs = load_text("gensim_langs")
    assert sorted(langs) == ["bg", "en", "ru"] and "календар" in langs["bg"] and "<text" not in langs["bg"]


def test_vocabulary_encoding_and_stratified_split():
    vocab = build_vocab([["b", "a", "b"], ["c", "a", "b"]], min_count=2)
    assert vocab == ["<pad>", "<unk>", "b", "a"]
    ids, lengths = encode([["a", "zzz", "b"], []], vocab, max_len=2)
    assert ids.tolist() == [[3, 1], [1, 0]] and lengths.tolist() == [2, 1]
    train, test = split_indices([0] * 10 + [1] * 30, 0.2, seed=0)
    assert len(test) == 8 and sum(i >= 10 for i in test) == 6 and not set(train) & set(test)


def test_langid_snippets_and_oversampling_of_small_languages():
    from jobs.langid import oversample, snippets

    # A short line (a name) stays whole; a long one is cut into full pieces, the remainder dropped.
    assert snippets("Nowak\n\n  a  long line of text  ", 6) == ["Nowak", "a long", " line ", "of tex"]
    assert oversample([0, 1, 2, 5], [0, 0, 0, 1, 1, 1]) == [0, 1, 2, 5, 5, 5]


def test_word2vec_is_deterministic_across_processes_and_cached(tmp_path):
    docs = [pipeline(PreprocessConfig())(line) for line in load_text("lee").splitlines()[:150]]
    kv = train_word2vec(docs, dim=16, window=3, min_count=2, epochs=2, seed=0)
    assert "the" in kv.key_to_index and kv.vector_size == 16
    assert torch.equal(torch.from_numpy(kv["government"]),
                       torch.from_numpy(train_word2vec(docs, 16, 3, 2, 2, seed=0)["government"]))
    code = ("from library.data.text import load_text; from library.data.text_preprocess import *; "
            "docs = [pipeline(PreprocessConfig())(l) for l in load_text('lee').splitlines()[:150]]; "
            "print(train_word2vec(docs, 16, 3, 2, 2, seed=0)['government'].tolist())")
    other = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": "123"},
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    assert other.stdout.strip() == str(kv["government"].tolist()), other.stderr[-500:]

    calls = []
    build = lambda: calls.append(1) or {"vectors": torch.ones(2)}  # noqa: E731
    path = tmp_path / f"cache-{cache_key({'dim': 16})}.pt"
    assert torch.equal(cached(path, build)["vectors"], cached(path, build)["vectors"]) and calls == [1]


def test_hand_written_lstm_cell_matches_nn_lstm_with_the_same_weights():
    torch.manual_seed(0)
    reference, hand = nn.LSTM(10, 32, batch_first=True), HandLSTM(10, 32)
    hand.cell.load_state_dict({k[:-3]: v for k, v in reference.state_dict().items()})  # weight_ih_l0 -> weight_ih
    x = torch.randn(4, 7, 10, requires_grad=True)
    (out_ref, (h_ref, c_ref)), (out, (h, c)) = reference(x), hand(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c, c_ref, rtol=1e-5, atol=1e-6)
    grad_ref = torch.autograd.grad(out_ref.sum(), x)[0]
    torch.testing.assert_close(torch.autograd.grad(out.sum(), x)[0], grad_ref, rtol=1e-5, atol=1e-6)


def test_palindromes_are_palindromes_and_the_net_reads_them():
    from jobs.palindrome import palindromes

    seq, last = palindromes(7, 50, seed=0)
    full = torch.cat([seq, last[:, None]], 1)
    assert torch.equal(full, full.flip(1)) and seq.shape == (50, 6)
    assert PalindromeNet("hand_lstm", 8)(seq).shape == (50, 10)


def serve(tmp_path, monkeypatch, name: str, archive: Path) -> None:
    item = Download(TEXT_DATASETS[name].fetch[0].filename, archive.as_uri(), hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setitem(TEXT_DATASETS, name, dataclasses.replace(TEXT_DATASETS[name], fetch=(item,)))


def test_prepare_downloads_unpacks_and_reads_imdb_and_names(tmp_path, monkeypatch, capsys):
    write_aclimdb(tmp_path / "src/aclImdb")
    with tarfile.open(tmp_path / "aclImdb_v1.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src/aclImdb", arcname="aclImdb")
    serve(tmp_path, monkeypatch, "imdb", tmp_path / "aclImdb_v1.tar.gz")
    assert main(["prepare", "imdb", "--root", str(tmp_path / "data")]) == 0
    assert "imdb: 4 labelled texts" in capsys.readouterr().out

    with zipfile.ZipFile(tmp_path / "data.zip", "w") as z:  # PyTorch's tutorial layout
        z.writestr("data/names/Greek.txt", "Papadopoulos\nAntonopoulos\n")
        z.writestr("data/names/Polish.txt", "Kowalski\n")
        z.writestr("data/eng-fra.txt", "not a language file")
    serve(tmp_path, monkeypatch, "names", tmp_path / "data.zip")
    assert main(["prepare", "names", "--root", str(tmp_path / "data")]) == 0
    assert "names: 2 languages (Greek, Polish)" in capsys.readouterr().out

    monkeypatch.setitem(TEXT_DATASETS, "imdb", dataclasses.replace(
        TEXT_DATASETS["imdb"], fetch=(dataclasses.replace(TEXT_DATASETS["imdb"].fetch[0], md5="0" * 32),)))
    assert main(["prepare", "imdb", "--root", str(tmp_path / "other")]) == 1
    assert "expected 00000000" in capsys.readouterr().err and not (tmp_path / "other/imdb/aclImdb_v1.tar.gz").exists()


def test_a_missing_text_set_names_the_prepare_command(tmp_path):
    with pytest.raises(DatasetNotReady, match=f"run: python -m library.data prepare shakespeare --root {tmp_path}"):
        load_text("shakespeare", tmp_path)
    write_kaggle_csv(tmp_path / "IMDB Dataset.csv")
    (tmp_path / "imdb").mkdir()
    os.replace(tmp_path / "IMDB Dataset.csv", tmp_path / "imdb/IMDB Dataset.csv")
    assert len(load_text("imdb", tmp_path, "labelled")) == 2  # Kaggle's CSV placed by hand is read too


def test_default_langid_russian_is_only_russian():
    # gensim's crime-and-punishment.txt ends with the same paragraphs in English: those are not Russian.
    ru = load_text("gensim_langs")["ru"]
    assert len(ru) > 1000
    assert not any("a" <= c.lower() <= "z" for c in ru), ru
    assert all(any("\u0400" <= c <= "\u04ff" for c in line) for line in ru.splitlines())


def test_sentiment_cache_follows_the_imdb_form_on_disk(tmp_path):
    from jobs.sentiment import SentimentJob

    cfg = parse(SentimentJob.Config, {"data.name": "imdb", "data.root": str(tmp_path), "data.val_fraction": 0.5,
                                      "data.test_fraction": 0.5, "embed.source": "random"})
    (tmp_path / "imdb").mkdir()
    with open(tmp_path / "imdb" / "IMDB Dataset.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows([[f"{word} review number {i}", label] for i in range(4)
                     for word, label in (("great", "positive"), ("poor", "negative"))])
    from_csv = SentimentJob.encoded(cfg)
    assert [len(from_csv[f"{s}_labels"]) for s in ("train", "val", "test")] == [2, 2, 4]

    write_aclimdb(tmp_path / "imdb" / "aclImdb")  # then `prepare imdb`: the reader now reads aclImdb/
    from_acl = SentimentJob.encoded(cfg)
    # aclImdb's own split: 2 test reviews, and 2 training ones (one a class is too few to carve validation from)
    assert [len(from_acl[f"{s}_labels"]) for s in ("train", "val", "test")] == [2, 0, 2]
