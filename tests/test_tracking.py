"""W&B runs of trials: one run per sweep and trial, which a re-run of that trial resumes; whether W&B is logged in."""
from pathlib import Path

import pytest

from library.tracking import Tracker, wandb_logged_in, wandb_mode


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


# ------------------------------------------------------------------------------------------ W&B login


@pytest.fixture
def home(monkeypatch, tmp_path):
    """No W&B credentials or settings but what a test writes into tmp_path, which is HOME and the working dir."""
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / ".config" / "wandb"))
    monkeypatch.chdir(tmp_path)  # wandb also reads ./wandb/settings
    return tmp_path


def netrc_entry(path: Path, machine: str, key: str = "k" * 40) -> None:
    """What `wandb login` writes."""
    path.write_text(f"machine {machine}\n  login user\n  password {key}\n")
    path.chmod(0o600)


def server_setting(home: Path, url: str) -> None:
    """What `wandb login --host URL` writes besides the netrc entry."""
    (home / ".config" / "wandb").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "wandb" / "settings").write_text(f"[default]\nbase_url = {url}\n")


def test_no_credentials_anywhere_is_offline(home):
    assert not wandb_logged_in()
    assert wandb_mode() == "offline"


def test_a_key_in_the_environment_is_online_and_wandb_mode_wins(home, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_logged_in() and wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_an_identity_token_file_is_a_login(home, monkeypatch):
    monkeypatch.setenv("WANDB_IDENTITY_TOKEN_FILE", str(home / "token.jwt"))
    assert wandb_logged_in()


def test_wandb_login_for_the_default_server(home):
    netrc_entry(home / ".netrc", "api.wandb.ai")
    assert wandb_logged_in() and wandb_mode() == "online"


def test_the_netrc_file_named_by_NETRC(home, monkeypatch):
    netrc_entry(home / "elsewhere", "api.wandb.ai")
    assert not wandb_logged_in()
    monkeypatch.setenv("NETRC", str(home / "elsewhere"))
    assert wandb_logged_in()


def test_a_key_counts_for_its_own_server_only(home, monkeypatch):
    # `wandb login --host https://wandb.example.com` writes both the netrc entry and the settings file.
    netrc_entry(home / ".netrc", "wandb.example.com")
    assert not wandb_logged_in()  # the default server has no key
    server_setting(home, "https://wandb.example.com")
    assert wandb_logged_in()
    monkeypatch.setenv("WANDB_BASE_URL", "https://other.example.com")  # the environment names the server first
    assert not wandb_logged_in()
    netrc_entry(home / ".netrc", "api.wandb.ai")  # a key for W&B's cloud is none for another server
    assert not wandb_logged_in() and wandb_mode() == "offline"


def test_a_malformed_netrc_or_key_is_no_login(home):
    (home / ".netrc").write_text("machine\n")
    (home / ".netrc").chmod(0o600)
    assert not wandb_logged_in()
    netrc_entry(home / ".netrc", "api.wandb.ai", key="short")
    assert not wandb_logged_in()
