"""Writing values back into doki.toml (`--save`), keeping its comments and layout."""

from __future__ import annotations

from typing import Any

from doki_cli.config import ServiceConfig


def save(config: ServiceConfig, values: dict[str, Any], *, table: str | None = None) -> str:
    """Set `values` in the table they belong to: the chosen environment's when it already overrides them there,
    else `[service]` (or its `table` sub-table, e.g. "env"). Returns the table written, for the message."""
    import tomlkit

    document = tomlkit.parse(config.path.read_text())
    service: Any = document["service"]
    target = service
    name = "service"
    if config.environment is not None:
        section: Any = document.get("environments", {}).get(config.environment, {})
        scoped = section.get(table, {}) if table else section
        if any(key in scoped for key in values):
            target, name = section, f"environments.{config.environment}"
    if table:
        if table not in target:
            target[table] = tomlkit.table()
        target = target[table]
        name = f"{name}.{table}"
    for key, value in values.items():
        target[key] = value
    config.path.write_text(tomlkit.dumps(document))
    return name
