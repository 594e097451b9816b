"""A sweep end to end through Ray Tune: the table, skipping finished work, and resuming after kill -9."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import TINY, assert_same_run, sweep_cli, wandb_records, write_sweep
from library.files import read_json


def run(sweep_file: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    return sweep_cli(sweep_file, *args, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    sweep_file = write_sweep(folder, {"train.max_loss": [0.05, 1000.0]}, base={"train.epochs": 2})
    first = run(sweep_file, folder)
    return folder, sweep_file, first


def test_sweep_writes_one_row_per_trial_and_goes_on_past_a_diverged_trial(swept):
    folder, _, first = swept
    table = pd.read_csv(folder / "results/tiny/trials.csv")
    assert len(table) == 2
    by_status = dict(zip(table["train.max_loss"], table.status))
    assert by_status == {0.05: "diverged", 1000.0: "completed"}
    done = table[table.status == "completed"].iloc[0]
    assert done.epochs == 2 and done.best_fd_domain > 0 and done.fd_domain_n_fake == TINY["eval.final_num_samples"]
    assert "exceeds train.max_loss" in table[table.status == "diverged"].iloc[0].reason
    assert pd.read_parquet(folder / "results/tiny/trials.parquet").trial.tolist() == table.trial.tolist()
    assert (folder / f"results/tiny/samples/{done.trial}.png").stat().st_size > 500
    page = (folder / "results/tiny/report.html").read_text()
    assert done.trial in page and "exceeds train.max_loss" in page
    curves = pd.read_csv(folder / "results/tiny/curves.csv")
    assert set(curves[curves.metric == "fd_domain"].epoch) == {1, 2}
    assert "completed  best fd_domain" in first.stdout  # the progress view, not Ray's log flood
    assert "Reporting training result" not in first.stdout + first.stderr


def test_rerunning_a_finished_sweep_runs_nothing_and_duplicates_no_row(swept):
    folder, sweep_file, _ = swept
    before = pd.read_csv(folder / "results/tiny/trials.csv")
    again = run(sweep_file, folder)
    assert "2 finished before, 0 running elsewhere, 0 to run" in again.stdout
    pd.testing.assert_frame_equal(pd.read_csv(folder / "results/tiny/trials.csv"), before)


def test_kill_9_mid_trial_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path):
    grid = {"optim.beta1": [0.5]}
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight_dir.mkdir(), killed_dir.mkdir()
    # 640 digits and 300 samples per score: epochs long enough to kill the driver in the middle of the trial
    sweep_file = write_sweep(tmp_path, grid, base={"train.epochs": 4, "data.limit": 640, "eval.num_samples": 300})
    run(sweep_file, straight_dir)

    proc = subprocess.Popen([sys.executable, str(sweep_file), "--backend=local"], cwd=killed_dir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    # The status is written right after the epoch's checkpoint: wait for it, not for the checkpoint file, or the kill
    # can fall between the two and leave no status to look at.
    while not any(read_json(p).get("epoch", 0) >= 1 for p in killed_dir.glob("runs/tiny/*/status.json")) \
            and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (status_file,) = killed_dir.glob("runs/tiny/*/status.json")
    time.sleep(3)  # Ray's trial processes die with the driver: nothing goes on training
    interrupted = read_json(status_file)
    assert interrupted["status"] == "running" and interrupted["epoch"] < 4

    resumed = run(sweep_file, killed_dir)
    assert "0 finished before, 0 running elsewhere, 1 to run" in resumed.stdout
    status = read_json(status_file)
    assert status["status"] == "completed" and status["resumed_from_epoch"] >= 1
    (straight,) = straight_dir.glob("runs/tiny/*/status.json")
    assert_same_run(status_file.parent, straight.parent)


def test_every_trial_has_an_offline_wandb_run_with_its_metrics_and_images(swept):
    import json

    folder, _, first = swept
    assert "wandb sync" in first.stdout
    for trial in pd.read_csv(folder / "results/tiny/trials.csv").to_dict("records"):
        (run_file,) = (folder / "runs/tiny" / trial["trial"] / "wandb").glob("offline-run-*/run-*.wandb")
        records = wandb_records(run_file)
        (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        assert (run.run_id, run.run_group, run.job_type, run.project) == ("tiny-" + trial["trial"], "tiny", "gan",
                                                                          "dl-studies")
        config = {i.key: json.loads(i.value_json) for i in run.config.update}
        assert config["train.max_loss"] == trial["train.max_loss"] and config["data.limit"] == TINY["data.limit"]
        history = [{i.key or ".".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
                   for r in records if r.WhichOneof("record_type") == "history"]
        assert [h["epoch"] for h in history] == list(range(1, trial["epochs"] + 1))
        if trial["status"] == "completed":
            assert history[-1]["fd_domain"] == pytest.approx(trial["fd_domain"])
            assert history[-1]["samples._type"] == "image-file"
            assert (run_file.parent / "files" / history[-1]["samples.path"]).stat().st_size > 500


def test_compare_combines_sweeps_into_one_table(swept, tmp_path):
    from library.results import compare

    folder, _, _ = swept
    results = folder / "results"
    other = results / "other"
    other.mkdir(exist_ok=True)
    pd.read_csv(results / "tiny/trials.csv").head(1).to_csv(other / "trials.csv", index=False)
    table = compare(["tiny", "other"], results)
    assert table.columns[0] == "sweep" and table.sweep.tolist() == ["tiny", "tiny", "other"]
    out = subprocess.run([sys.executable, "-m", "library.results", "compare", "tiny", "missing", "--results-dir",
                          str(results)], capture_output=True, text=True)
    assert out.returncode == 2 and "run python sweeps/missing.py first" in out.stderr


def test_the_metric_follows_the_config_so_every_gan_sweep_can_report_fid():
    from library.config import ConfigError
    from library.sweep import Sweep, resolve

    gan = dict(name="m", job="gan", base=dict(TINY), grid={"optim.beta1": [0.3, 0.5]})
    domain, trials = resolve(Sweep(**gan))
    assert (domain.metric, domain.mode) == ("fd_domain", "min")
    fid, fid_trials = resolve(Sweep(**{**gan, "base": {**TINY, "eval.extractor": "inception"}}))
    assert (fid.metric, fid.mode) == ("fid", "min") and len(fid_trials) == len(trials) == 2
    # unlabelled faces need Inception, and now have a sweep metric for it
    faces, _ = resolve(Sweep(**{**gan, "base": {**TINY, "data.name": "faces", "eval.extractor": "inception"}}))
    assert faces.metric == "fid"
    with pytest.raises(ConfigError, match="metric='fd_domain' is not allowed: 'fid'"):
        resolve(Sweep(**{**gan, "metric": "fd_domain", "base": {**TINY, "eval.extractor": "inception"}}))
    with pytest.raises(ConfigError, match="trials report fd_domain and fid"):
        resolve(Sweep(**{**gan, "grid": {"eval.extractor": ["domain", "inception"]}}))


def test_a_sweep_file_without_a_metric_line_reports_fid_with_the_inception_override(tmp_path):
    out = subprocess.run([sys.executable, str(Path("sweeps/gan_betas.py").resolve()), "--backend=local", "--dry-run",
                          "--eval.extractor=inception"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("gan_betas: 6 trials of job 'gan', metric fid (min)")
