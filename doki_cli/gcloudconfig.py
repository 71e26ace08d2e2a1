"""gcloud's configured project and region, read as gcloud reads them, without running gcloud (it takes a second).

gcloud keeps its properties in named configurations: INI files in its config directory (CLOUDSDK_CONFIG, else
~/.config/gcloud), `configurations/config_NAME`, the active one named by CLOUDSDK_ACTIVE_CONFIG_NAME, else by the
file `active_config`, else `default`; a property's CLOUDSDK_SECTION_NAME variable wins over the file
(https://cloud.google.com/sdk/gcloud/reference/topic/configurations, https://cloud.google.com/sdk/docs/configurations,
https://cloud.google.com/sdk/docs/properties). doki reads two properties: `[core] project` and `[run] region`.
Anything unreadable counts as unset: this is the last fallback, and a broken gcloud setup must not stop a command
that names its project another way.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The properties doki reads, each with the variable gcloud lets override it.
PROJECT = ("core", "project", "CLOUDSDK_CORE_PROJECT")
REGION = ("run", "region", "CLOUDSDK_RUN_REGION")


@dataclass(frozen=True)
class Setting:
    """A value gcloud would use, and where it comes from (said to the user: `doki init` names its source)."""

    value: str
    source: str


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("CLOUDSDK_CONFIG"):
        return Path(environ["CLOUDSDK_CONFIG"])
    return Path.home() / ".config" / "gcloud"


def active_configuration(environ: Mapping[str, str] | None = None) -> str:
    """The name of gcloud's active configuration."""
    environ = os.environ if environ is None else environ
    if environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME"):
        return environ["CLOUDSDK_ACTIVE_CONFIG_NAME"]
    try:
        name = (config_dir(environ) / "active_config").read_text().strip()
    except OSError:
        name = ""
    return name or "default"


def setting(prop: tuple[str, str, str], environ: Mapping[str, str] | None = None) -> Setting | None:
    """gcloud's value of `prop` (PROJECT or REGION): its variable, else the active configuration's file."""
    environ = os.environ if environ is None else environ
    section, key, variable = prop
    if environ.get(variable):
        return Setting(environ[variable], variable)
    name = active_configuration(environ)
    path = config_dir(environ) / "configurations" / f"config_{name}"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text())
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    value = parser.get(section, key, fallback="").strip()
    return Setting(value, f"gcloud configuration {name!r} ({section}/{key})") if value else None


def project(environ: Mapping[str, str] | None = None) -> Setting | None:
    return setting(PROJECT, environ)


def region(environ: Mapping[str, str] | None = None) -> Setting | None:
    return setting(REGION, environ)
