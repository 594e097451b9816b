"""The W&B report of a sweep: its structure, built and serialized offline, and publish's fail-fast without a key."""
import json
import socket

import pytest

pytest.importorskip("wandb_workspaces")

from library.report.__main__ import main  # noqa: E402
from library.wandb_report import publish, publish_results, report_spec  # noqa: E402

PARAMS = ["optim.beta1", "model.noise_dim"]
ARGS = dict(sweep="gan_betas", project="dl-studies", metric="fd_domain", mode="min", params=PARAMS, job="gan")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def spec():
    """The report as W&B would receive it (the library's own serialization); entity None needs no lookup."""
    report = report_spec(entity=None, **ARGS)
    return report, report._to_model().model_dump(by_alias=True, exclude_none=True)


def panels_of(dump, view_type):
    grid = next(b for b in dump["spec"]["blocks"] if b["type"] == "panel-grid")
    return [p for p in grid["metadata"]["panelBankSectionConfig"]["panels"] if p["viewType"] == view_type]


def test_title_and_description(spec):
    report, dump = spec
    assert dump["displayName"] == "gan_betas: fd_domain over optim.beta1, model.noise_dim"
    text = "".join(c["text"] for b in dump["spec"]["blocks"] if b["type"] == "paragraph" for c in b["children"])
    assert "lower is better" in text and "python sweeps/gan_betas.py" in text


def test_runset_selects_the_sweep_group(spec):
    _, dump = spec
    grid = next(b for b in dump["spec"]["blocks"] if b["type"] == "panel-grid")
    (runset,) = grid["metadata"]["runSets"]
    assert runset["filters"]["filters"] == [
        {"key": {"section": "run", "name": "group"}, "op": "=", "value": "gan_betas", "disabled": False}]
    online = report_spec(entity="lab", **ARGS).blocks[-1].runsets[0]  # not serialized: that looks the project up
    assert (online.entity, online.project) == ("lab", "dl-studies")


def test_replicates_are_grouped_by_configuration_and_a_single_run_per_configuration_is_not(spec):
    _, dump = spec
    grid = next(b for b in dump["spec"]["blocks"] if b["type"] == "panel-grid")
    assert grid["metadata"]["runSets"][0].get("grouping", []) == []
    report = report_spec(entity=None, repeats=3, **ARGS)
    dump = report._to_model().model_dump(by_alias=True, exclude_none=True)
    grid = next(b for b in dump["spec"]["blocks"] if b["type"] == "panel-grid")
    # the run config's top-level key config_id (library.train), which W&B stores as {"config_id": {"value": ...}}
    assert grid["metadata"]["runSets"][0]["grouping"] == [{"section": "config", "name": "config_id.value"}]
    text = "".join(c.get("text", "") for b in dump["spec"]["blocks"] if b["type"] == "paragraph"
                   for c in b["children"])
    assert "3 replicates (seeds) per configuration" in text and "Welch's t-test" in text


def test_parallel_coordinates_has_every_param_and_the_metric(spec):
    _, dump = spec
    (pc,) = panels_of(dump, "Parallel Coordinates Plot")
    # flat dotted config keys: W&B stores {"optim.beta1": {"value": ...}}
    assert [c["accessor"] for c in pc["config"]["columns"]] == [
        "config:optim.beta1.value", "config:model.noise_dim.value", "summary:best_fd_domain"]


def test_one_scatter_per_param_with_the_metric_on_y(spec):
    _, dump = spec
    scatters = panels_of(dump, "Scatter Plot")
    assert [(s["config"]["xAxis"], s["config"]["yAxis"]) for s in scatters] == [
        ("config:optim.beta1.value", "summary:best_fd_domain"),
        ("config:model.noise_dim.value", "summary:best_fd_domain")]


def test_line_plots_per_epoch(spec):
    _, dump = spec
    lines = panels_of(dump, "Run History Line Plot")
    assert [(p["config"]["xAxis"], p["config"]["metrics"]) for p in lines] == [
        ("epoch", ["fd_domain"]), ("epoch", ["loss_d", "loss_g"])]


def test_media_browser_shows_samples(spec):
    _, dump = spec
    (media,) = panels_of(dump, "Media Browser")
    assert media["config"]["mediaKeys"] == ["samples"]


def test_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        report_spec(entity=None, **{**ARGS, "mode": "lowest"})


@pytest.fixture
def logged_out(monkeypatch, tmp_path):
    """No W&B key in the environment, in a netrc file or in wandb's settings."""
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "no-wandb-config"))
    monkeypatch.chdir(tmp_path)


def test_publish_without_a_key_fails_fast(logged_out):
    with pytest.raises(RuntimeError, match="wandb login") as err:
        publish(entity=None, **ARGS)
    assert "python -m library.report gan_betas --wandb" in str(err.value)


def sweep_results(root):
    """The results folder of a sweep that has its record (sweep.json) and no trial yet."""
    folder = root / "results" / "gan_betas"
    folder.mkdir(parents=True)
    folder.joinpath("sweep.json").write_text(json.dumps({**{k: v for k, v in ARGS.items() if k != "sweep"},
                                                         "name": "gan_betas", "base": {}}))
    return folder


def test_publish_results_reads_the_sweep_record(logged_out, tmp_path):
    folder = sweep_results(tmp_path)
    with pytest.raises(RuntimeError, match="python -m library.report gan_betas --wandb"):
        publish_results(folder)
    with pytest.raises(RuntimeError, match="sweep.json does not exist"):
        publish_results(tmp_path)


def test_cli_wandb_builds_the_page_then_says_to_log_in(logged_out, tmp_path, capsys):
    folder = sweep_results(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["gan_betas", "--results-dir", str(folder.parent), "--wandb"])
    out = capsys.readouterr()
    assert exit.value.code == 2 and "wandb login" in out.err and "Traceback" not in out.err
    assert out.out.strip() == str(folder / "report.html")
    assert "No trial reported fd_domain." in (folder / "report.html").read_text()


def test_a_presets_report_says_how_to_run_that_preset():
    report = report_spec(entity=None, **{**ARGS, "sweep": "gan_betas-seed", "metric": "fid"}, preset="seed")
    dump = report._to_model().model_dump(by_alias=True, exclude_none=True)
    text = "".join(c["text"] for b in dump["spec"]["blocks"] if b["type"] == "paragraph" for c in b["children"])
    assert "python sweeps/gan_betas.py --preset=seed" in text and "gan_betas-seed.py" not in text
