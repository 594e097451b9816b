"""The FID path end to end, offline: faces prepared from a folder of photos, torch-fidelity's Inception-v3 read from
the metric cache, a sweep whose metric is `fid`, its table and its report.

The real Inception weights download from GitHub, which these machines cannot reach. The test writes a file of the
same format and shapes with random weights instead: every step runs as with the real file, but the numbers are not
the published FID's, so the test checks the path and the bookkeeping, not FID values.
"""
import hashlib

import matplotlib.cbook
import numpy as np
import pandas as pd
import pytest
import torch
import torch_fidelity
from PIL import Image
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from helpers import sweep_cli, write_sweep
from library.data.__main__ import main as data_main
from library.files import read_json
from library.metrics.frechet import inception_weights_path

PORTRAITS = 24  # 64 px photos: Inception sees each at 299 px, about a second per image on these CPUs


class _Unloaded(FeatureExtractorInceptionV3):
    """torch-fidelity's own network, built without loading weights: its state dict has the real keys and shapes."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return None


def write_random_weights_inception(path):
    """A weights file in torch-fidelity's format (a torch.save'd state dict of FeatureExtractorInceptionV3), with
    random weights. Kaiming-normal convolutions keep the activations near unit scale through the 94 layers (the
    default init shrinks them to ~1e-8, and every Fréchet distance to ~0)."""
    empty = path.parent / "empty.pth"
    torch.save({}, empty)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = _Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    empty.unlink()
    torch.save(net.state_dict(), path)


def place_portraits(folder):
    """PORTRAITS aligned-CelebA-shaped (178 x 218) crops of a real face photo (Grace Hopper, shipped with
    matplotlib), each shifted and some mirrored: a small faces folder as `prepare faces` expects one."""
    folder.mkdir(parents=True)
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = np.asarray(Image.open(f).convert("RGB"))  # 600 x 512
    rng = np.random.default_rng(0)
    for i in range(PORTRAITS):
        top, left = rng.integers(0, photo.shape[0] - 218), rng.integers(0, photo.shape[1] - 178)
        crop = photo[top:top + 218, left:left + 178]
        Image.fromarray(crop[:, ::-1] if i % 2 else crop).save(folder / f"{i:06d}.jpg", quality=95)


@pytest.fixture(scope="module")
def fid_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fid")
    root = folder / "data"
    place_portraits(root / "faces" / "img_align_celeba")
    assert data_main(["prepare", "faces", "--root", str(root)]) == 0
    weights = inception_weights_path(root / "metric_cache")
    weights.parent.mkdir(parents=True)
    write_random_weights_inception(weights)
    sweep_file = write_sweep(folder, {"optim.beta1": [0.5]}, name="faces_fid", base={
        "data.name": "faces", "data.root": str(root), "data.image_size": 64, "eval.extractor": "inception",
        "train.batch_size": 8, "eval.num_samples": 10, "eval.final_num_samples": 10})
    out = sweep_cli(sweep_file, cwd=folder, timeout=900)
    return folder, root, weights, out


def test_a_faces_sweep_runs_through_inception_offline_and_reports_fid(fid_sweep):
    folder, root, weights, out = fid_sweep
    assert "faces_fid: 1 trials of job 'gan', metric fid (min)" in out.stdout
    assert any((root / "metric_cache" / "fidelity").iterdir())  # prepare cached the real set's statistics
    results = folder / "results" / "faces_fid"
    assert read_json(results / "sweep.json")["metric"] == "fid"
    (trial,) = pd.read_csv(results / "trials.csv").to_dict("records")
    assert trial["status"] == "completed", trial["reason"]
    assert trial["best_fid"] == trial["fid"] and np.isfinite(trial["fid"]) and trial["fid_n_fake"] == 10
    for column in ("kid", "precision", "recall", "fid_floor", "grid_diversity"):
        assert np.isfinite(trial[column]), column
    assert "fd_domain" not in trial and "kd_domain" not in trial  # the Inception names, not the domain ones
    # one training epoch of a 64 px DCGAN is far from the photos; two halves of the photos are close
    assert trial["fid"] > 2 * trial["fid_floor"] and trial["fid_floor_n"] == 10
    page = (results / "report.html").read_text()
    assert "best fid" in page and "real-vs-real floor of fid" in page and trial["trial"] in page


def test_the_fid_carries_the_fingerprint_of_the_weights_it_was_measured_with(fid_sweep):
    folder, _, weights, _ = fid_sweep
    (trial,) = pd.read_csv(folder / "results" / "faces_fid" / "trials.csv").to_dict("records")
    fingerprint = dict(item.split("=", 1) for item in trial["fingerprint"].split("; "))
    assert fingerprint["extractor"] == "inception-v3-compat"
    assert fingerprint["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert fingerprint["input"].startswith("299x299") and fingerprint["torch_fidelity"] == torch_fidelity.__version__
    assert (fingerprint["n_real"], fingerprint["n_fake"]) == (str(PORTRAITS), "10")
    assert fingerprint["reference"].startswith("faces-train-64-")
