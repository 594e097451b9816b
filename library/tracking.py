"""Weights & Biases runs: one per trial of a sweep, logged from rank 0 only.

Offline by default (no account needed; runs land in RUN_DIR/wandb/offline-run-* and `wandb sync` uploads
them later); online when the user is logged in (WANDB_API_KEY or `wandb login`), or as WANDB_MODE says.
W&B is imported lazily, and a W&B failure (outage, bad key, full disk) never stops training: the tracker
prints one warning and turns itself off. We never read the API key beyond checking that one exists, and never
write it anywhere.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Any


CLOSE_WAIT_S = 30
"""At exit, how long a process waits for its trial thread to close the W&B run it is closing."""
DEFAULT_PROJECT = "dl-studies"  # the W&B project of every trial's run, from a sweep or a single `jobs/NAME.py`


def wandb_logged_in() -> bool:
    """Whether there are W&B credentials here for the W&B server this machine is set up for, looked up where
    wandb.init looks: WANDB_API_KEY or WANDB_IDENTITY_TOKEN_FILE, else the netrc entry (file $NETRC or ~/.netrc) of
    the server that WANDB_BASE_URL or wandb's settings files name (`wandb login --host URL` writes it there).
    Checks that a key exists and reads it no further; never touches the network."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    import wandb
    from wandb.errors import AuthenticationError
    from wandb.sdk.lib.wbauth import read_netrc_auth

    try:
        # wandb's own default and settings files name the server, not a host name of ours that would go stale: in
        # wandb 0.31 the default is https://api.forge.coreweave.com, which also accepts the api.wandb.ai netrc entry.
        settings = wandb.Settings(silent=True)
        config_dir = Path(os.environ.get("WANDB_CONFIG_DIR") or "~/.config/wandb").expanduser()
        settings.settings_system = str(config_dir / "settings")
        settings.update_from_system_settings()
        if os.environ.get("WANDB_BASE_URL"):
            settings.base_url = os.environ["WANDB_BASE_URL"]
        return bool(read_netrc_auth(host=settings.base_url))
    except (AuthenticationError, ValueError):  # a malformed key or server URL, which wandb.init refuses too
        return False


def wandb_mode() -> str:
    """online when W&B credentials are configured (wandb_logged_in), else offline; WANDB_MODE
    (online/offline/disabled) wins."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if wandb_logged_in() else "offline"


def run_id(group: str | None, trial: str) -> str:
    """The W&B run id of a trial in a sweep (group). A trial id names a config, and one config can be in several
    sweeps: keyed on the trial alone, the second sweep would resume the first one's run and take it over. W&B
    allows letters, digits, - and _ in an id, at most 64 characters; anything else is hashed to keep ids apart."""
    raw = f"{group}-{trial}" if group else trial
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", raw):
        return raw
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', raw)[:53]}-{hashlib.sha1(raw.encode()).hexdigest()[:10]}"


class Tracker:
    """A W&B run for one trial. `settings` comes from the driver (project, group, job_type, tags, mode, and
    optionally init_timeout: seconds to wait for W&B before training goes on without it)."""

    def __init__(self, settings: dict[str, Any] | None, trial: str, config: dict[str, Any], run_dir: Path):
        self.run = None
        self._starting = None
        self._closed = threading.Event()
        if not settings or settings.get("mode") == "disabled":
            return
        # Importing wandb and starting its service take seconds: do it beside the first epoch, not before it.
        self._starting = threading.Thread(target=self._start, args=(settings, trial, config, run_dir), daemon=True)
        self._starting.start()

    def _start(self, settings: dict[str, Any], trial: str, config: dict[str, Any], run_dir: Path) -> None:
        try:
            import wandb

            self.run = wandb.init(
                project=settings["project"], group=settings.get("group"), job_type=settings.get("job_type"),
                tags=settings.get("tags"), name=trial,
                id=run_id(settings.get("group"), trial), resume="allow", config=config, dir=str(run_dir),
                mode=settings["mode"],
                settings=wandb.Settings(silent=True, console="off", init_timeout=settings.get("init_timeout", 60)))
            # Ray Tune ends a trial its scheduler stopped (ASHA) by exiting the trial's process while the training
            # thread is still closing the run: wandb's own exit hook then leaves it half closed and the shared
            # service closes it a second time (two exit records). Registered after wandb's, this hook runs
            # first and lets the thread finish closing.
            atexit.register(self._closed.wait, CLOSE_WAIT_S)
        except Exception as e:  # no W&B is no reason to lose a trial
            print(f"warning: W&B run not started ({type(e).__name__}: {e}); training goes on without it")

    def _ready(self) -> bool:
        """Waits for the W&B run to have started (or failed to); whether there is one."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        return self.run is not None

    def log(self, metrics: dict[str, float], step: int, images: dict[str, Path]) -> None:
        if not self._ready():
            return
        try:
            import wandb

            media = {k: wandb.Image(str(p)) for k, p in images.items() if p.exists()}
            self.run.log({**metrics, **media}, step=step)
        except Exception as e:
            self._give_up(e)

    def summarize(self, summary: dict[str, Any]) -> None:
        if not self._ready():
            return
        try:
            self.run.summary.update({k: v for k, v in summary.items() if v is not None})
        except Exception as e:
            self._give_up(e)

    def finish(self, exit_code: int = 0) -> None:
        if not self._ready():
            return
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as e:
            self._give_up(e)
        finally:
            self.run = None
            self._closed.set()

    def _give_up(self, e: Exception) -> None:
        print(f"warning: W&B logging stopped ({type(e).__name__}: {e}); training goes on without it")
        self.run = None
        self._closed.set()


def offline_runs(run_root: Path) -> list[Path]:
    return sorted(run_root.glob("*/wandb/offline-run-*"))


def sync_hint(run_root: Path) -> str:
    """The command that uploads a sweep's offline runs, or "" if there are none."""
    return f"wandb sync {run_root}/*/wandb/offline-run-*" if offline_runs(run_root) else ""


def start_shared_service(settings: dict[str, Any] | None) -> bool:
    """Start one W&B service (wandb-core) in this process for the trial processes it starts (they find it through
    WANDB_SERVICE). A trial's own service dies with the trial's process, and Ray Tune kills that process as soon as
    it stops a trial (ASHA): the service's unwritten records went with it and offline run files stayed empty.
    Whether a service was started (and must be stopped with stop_shared_service)."""
    if not settings or settings.get("mode") == "disabled":
        return False
    try:
        import wandb

        wandb.setup()
    except Exception as e:  # no W&B is no reason to lose a sweep
        print(f"warning: W&B service not started ({type(e).__name__}: {e}); trials start their own")
        return False
    return True


def stop_shared_service() -> None:
    """Flush and close every run the shared service still holds (those of trials killed mid-run), then stop it."""
    import wandb

    try:
        wandb.teardown()
    finally:
        os.environ.pop("WANDB_SERVICE", None)
