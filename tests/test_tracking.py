"""W&B runs of trials: one run per sweep and trial, which a re-run of that trial resumes."""
from library.tracking import Tracker


def offline_run_id(run_dir):
    """The run id in the name of the one offline run folder W&B wrote: offline-run-DATE_TIME-ID."""
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    return folder.name.split("-", 3)[3]


def track(group, trial, run_dir):
    settings = {"project": "dl-studies", "group": group, "job_type": "gan", "mode": "offline"}
    tracker = Tracker(settings, trial, {"optim.lr": 1e-3}, run_dir)
    tracker.finish()
    return offline_run_id(run_dir)


def test_one_config_in_two_sweeps_gets_a_run_in_each_and_a_rerun_resumes_its_own(tmp_path):
    # gan_betas and gan_lr both hold the default config, so both have a trial named gan-d0aa64f3.
    in_a = track("sweep_a", "gan-d0aa64f3", tmp_path / "a")
    in_b = track("sweep_b", "gan-d0aa64f3", tmp_path / "b")
    again = track("sweep_a", "gan-d0aa64f3", tmp_path / "a_again")
    assert in_a != in_b
    assert again == in_a
