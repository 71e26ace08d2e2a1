"""Where doki.toml is found (the current directory or a parent), and gcloud's configured project and region as the
last fallback, read as gcloud reads them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from doki_cli import gcloudconfig
from doki_cli.config import DEFAULT_CONFIG, find_config, load_config
from doki_cli.errors import DokiError
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.gcloud import Gcloud

runner = CliRunner()
TOML = '[service]\nname = "api"\nproject = "proj-123"\n'


def gcloud_configuration(root: Path, name: str = "default", *, active: bool = True, **sections: dict[str, str]) -> None:
    """A gcloud configuration file under the config directory `root`, as `gcloud config set` writes one."""
    (root / "configurations").mkdir(parents=True, exist_ok=True)
    text = "".join(
        f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) for section, values in sections.items()
    )
    (root / "configurations" / f"config_{name}").write_text(text)
    if active:
        (root / "active_config").write_text(name)


@pytest.fixture
def gcloud_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "gcloud"
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(root))
    return root


def test_doki_toml_is_found_in_a_parent_directory_and_its_directory_stays_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "doki.toml").write_text(TOML)
    deep = tmp_path / "app" / "routes"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    config = load_config(None)
    assert config.path == tmp_path / "doki.toml"
    assert config.root == tmp_path  # the Dockerfile and .env are read beside doki.toml, not in app/routes


def test_one_in_the_current_directory_is_named_as_before(tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text(TOML)
    assert find_config() == DEFAULT_CONFIG
    assert load_config(None).root == tmp_path


def test_the_nearest_doki_toml_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "doki.toml").write_text(TOML)
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "doki.toml").write_text(TOML.replace('"api"', '"inner"'))
    (tmp_path / "inner" / "src").mkdir()
    monkeypatch.chdir(tmp_path / "inner" / "src")
    assert load_config(None).name == "inner"


def test_the_config_option_wins_over_the_search(tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text(TOML)
    (tmp_path / "other.toml").write_text(TOML.replace('"api"', '"other"'))
    assert load_config(Path("other.toml")).name == "other"


def test_without_a_doki_toml_the_error_names_where_it_looked_and_the_fix(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error [config_not_found]: no doki.toml in {tmp_path} or any directory above it\n"
        "  Hint: make one with `doki init` in your project's root, or pass --config PATH (DOKI_CONFIG)\n"
    )


def test_a_config_option_naming_no_file_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--json", "status", "--config", "missing.toml"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "error": {
            "code": "config_not_found",
            "message": f"no doki.toml at {tmp_path / 'missing.toml'}",
            "hint": "pass --config PATH (DOKI_CONFIG) naming a doki.toml, or make one with `doki init`",
        }
    }


def test_gcloud_fills_in_the_project_doki_toml_leaves_out_but_never_its_region(
    tmp_path: Path, gcloud_dir: Path
) -> None:
    # The same doki.toml read in CI, with no gcloud configuration, means us-central1: so it does on a laptop too.
    gcloud_configuration(gcloud_dir, core={"project": "from-gcloud"}, run={"region": "europe-west1"})
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\n')
    config = load_config(None)
    assert (config.project, config.region) == ("from-gcloud", "us-central1")


def test_a_bad_value_from_gcloud_is_blamed_on_gcloud(tmp_path: Path, gcloud_dir: Path) -> None:
    gcloud_configuration(gcloud_dir, core={"project": "Not A Project"})
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\n')
    with pytest.raises(DokiError) as raised:
        load_config(None)
    assert raised.value.message == (
        "doki.toml [service] has 1 problem:\n"
        "  - project = 'Not A Project' is not valid: a Google Cloud project id such as my-project-123 (or pass "
        "--project) (from gcloud configuration 'default' (core/project), as doki.toml names none)"
    )


def test_options_and_doki_toml_win_over_gcloud(tmp_path: Path, gcloud_dir: Path) -> None:
    gcloud_configuration(gcloud_dir, core={"project": "from-gcloud"}, run={"region": "europe-west1"})
    (tmp_path / "doki.toml").write_text(TOML + 'region = "asia-east1"\n')
    assert (load_config(None).project, load_config(None).region) == ("proj-123", "asia-east1")
    config = load_config(None, project="from-option", region="us-east1")
    assert (config.project, config.region) == ("from-option", "us-east1")


def test_gcloud_reads_the_active_configuration_and_its_variables_win_over_the_file(
    gcloud_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcloud_configuration(gcloud_dir, core={"project": "default-project"})
    gcloud_configuration(gcloud_dir, "work", core={"project": "work-project"}, run={"region": "europe-west4"})
    assert gcloudconfig.project() == gcloudconfig.Setting("work-project", "gcloud configuration 'work' (core/project)")
    monkeypatch.setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "default")
    assert gcloudconfig.project() == gcloudconfig.Setting(
        "default-project", "gcloud configuration 'default' (core/project)"
    )
    assert gcloudconfig.region() is None
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "variable-project")
    monkeypatch.setenv("CLOUDSDK_RUN_REGION", "us-west1")
    assert gcloudconfig.project() == gcloudconfig.Setting("variable-project", "CLOUDSDK_CORE_PROJECT")
    assert gcloudconfig.region() == gcloudconfig.Setting("us-west1", "CLOUDSDK_RUN_REGION")


def test_no_gcloud_configuration_or_a_broken_one_is_no_value(gcloud_dir: Path) -> None:
    assert gcloudconfig.project() is None
    (gcloud_dir / "configurations").mkdir(parents=True)
    (gcloud_dir / "configurations" / "config_default").write_text("not an ini file\n")
    assert gcloudconfig.project() is None


@pytest.mark.gcloud
def test_doki_reads_what_gcloud_config_set_wrote(gcloud_binary: str, tmp_path: Path, gcloud_dir: Path) -> None:
    environment = {**os.environ, "CLOUDSDK_CONFIG": str(gcloud_dir), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    gcloud = Gcloud(gcloud_binary, environment)
    gcloud("config", "configurations", "create", "doki-test", "--no-activate")
    gcloud("config", "configurations", "activate", "doki-test")
    gcloud("config", "set", "project", "gcloud-set-project")
    gcloud("config", "set", "run/region", "europe-west9")
    assert gcloud("config", "get", "project").decode().strip() == "gcloud-set-project"
    assert gcloudconfig.project() == gcloudconfig.Setting(
        "gcloud-set-project", "gcloud configuration 'doki-test' (core/project)"
    )
    assert gcloudconfig.region() == gcloudconfig.Setting(
        "europe-west9", "gcloud configuration 'doki-test' (run/region)"
    )


def test_a_bad_region_from_gcloud_for_service_is_blamed_on_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSDK_RUN_REGION", "Mars")
    result = runner.invoke(app, ["status", "--service", "api", "--project", "proj-123"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [bad_option]: 'Mars' (from CLOUDSDK_RUN_REGION) is not a Cloud Run region\n"
        "  Hint: pass --region with a valid one (`gcloud config list` shows what gcloud has)\n"
    )
