"""Cluster settings are checked on the login node: the site profile, and the sbatch text we generate."""
import tomllib
from pathlib import Path

import pytest

from helpers import ROOT
from library.config import ConfigError
from library.launch.ray_slurm import sbatch_script
from library.launch.slurm import SiteProfile, load_site, minutes
from library.resources import Resources

GOLDEN = Path(__file__).parent / "golden"


def test_ray_cluster_job_script_matches_the_reviewed_golden_file():
    site = SiteProfile(slurm_partition="gpu", slurm_account="dl-lab", timeout_min=240, mem_gb=64, ray_gpus_per_node=4,
                       slurm_setup=["module load cuda/12.4", "source ~/venvs/dl/bin/activate"])
    script = sbatch_script("gan_betas", Path("/scratch/runs/gan_betas"), site,
                           Resources(workers=2, gpus_per_worker=1, cpus_per_worker=4), 2, 6, "/venvs/dl/bin/python")
    assert script == (GOLDEN / "ray_slurm.sbatch").read_text()


def test_the_example_site_profile_loads_with_every_value_it_documents():
    path = ROOT / "slurm/site.example.toml"
    written = tomllib.loads(path.read_text())
    assert len(written) >= 8  # partition, account, time, memory, setup lines, ...: the example shows them all
    site = load_site(path)
    assert {key: getattr(site, key) for key in written} == written


@pytest.mark.parametrize("text, key", [
    ("slurm_partiton = 'gpu'\n", "site.slurm_partiton"),
    ("timeout_min = 'soon'\n", "site.timeout_min"),
    ("timeout_min = 0\n", "site.timeout_min"),
    ("slurm_setup = 'module load cuda'\n", "site.slurm_setup"),
    ("slurm_partition = [\n", "--site"),
])
def test_a_malformed_site_profile_names_the_bad_key(tmp_path, text, key):
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_site(path)
    assert e.value.key == key


def test_slurm_time_limits_read_as_minutes():
    assert [minutes(x) for x in ("5", "1:00:00", "2-00:00:00", "00:05:30", "infinite")] == [5, 60, 2880, 6, None]
