"""The docs stay true: the README's two opening commands are what CI runs, every backend setting and doki.toml key is
in docs/configuration.md, every command and option in docs/cli.md, the README stays short, and every relative link
(and its anchor) resolves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperArgument, TyperGroup

from doki.settings import Settings
from doki_cli import config
from doki_cli.main import app
from tests.helpers import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]


def _opening_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README.read_text(), flags=re.S)[:2]


def test_the_readme_opens_with_a_dev_command_and_a_test_command() -> None:
    dev, test = _opening_commands()
    assert "\n" not in dev and dev.endswith("doki dev")
    assert "\n" not in test and test.endswith("pytest")


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    _, test = _opening_commands()
    assert test in (REPO / ".ci" / "run").read_text().splitlines()


def test_the_readme_stays_short() -> None:
    assert len(README.read_text().splitlines()) <= 200


# Markdown structure: headings, sections, code, links.


def _without_fences(text: str) -> str:
    """The text with fenced code blocks blanked, offsets kept (so a `#` comment inside one is not a heading)."""
    return re.sub(r"^```.*?^```", lambda m: re.sub(r"[^\n]", " ", m.group()), text, flags=re.S | re.M)


def _headings(text: str) -> list[tuple[int, str, int]]:
    """(level, title, offset) of each heading outside fenced code."""
    return [
        (len(m.group(1)), m.group(2).strip(), m.start())
        for m in re.finditer(r"^(#{1,6}) +(.+)$", _without_fences(text), flags=re.M)
    ]


def slug(title: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, punctuation but - and _ dropped, spaces as -."""
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a page, with GitHub's -1, -2, … for repeated ones."""
    seen: dict[str, int] = {}
    found = set()
    for _, title, _ in _headings(text):
        base = slug(title)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def section(text: str, title: str) -> str:
    """The text under the heading `title` (exact) with its subsections, up to the next heading of its level or above."""
    heads = _headings(text)
    for index, (level, heading, start) in enumerate(heads):
        if heading == title:
            end = next((s for lvl, _, s in heads[index + 1 :] if lvl <= level), len(text))
            return text[start:end]
    raise AssertionError(f"no heading {title!r}")


def code(text: str) -> str:
    """Everything written as code: inline spans (which may wrap a line) and fenced blocks, one per line."""
    fenced = re.findall(r"^```.*?^```", text, flags=re.S | re.M)
    spans = re.findall(r"`([^`]+)`", _without_fences(text))
    return "\n".join(fenced + spans)


def links(text: str) -> Iterator[str]:
    """The targets of the page's Markdown links, outside code."""
    prose = re.sub(r"`[^`]*`", "", _without_fences(text))
    yield from re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose)


def test_slugs_follow_githubs_rules() -> None:
    assert slug("doki.toml") == "dokitoml"
    assert slug("`[service.env]` and `[service.secrets]`") == "serviceenv-and-servicesecrets"
    assert slug("Adopting a live service with `--from-service`") == "adopting-a-live-service-with---from-service"
    assert slug("5. Smoke test") == "5-smoke-test"
    assert slug("The command, `doki_cli/`") == "the-command-doki_cli"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1", "a-2"}


# Configuration: every setting the backend reads, every key doki.toml may hold.

CONFIGURATION = (DOCS / "configuration.md").read_text()


def _env_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names += list(alias.choices) if alias is not None else [name.upper()]  # type: ignore[union-attr]
    return names


@pytest.mark.parametrize("env_name", _env_names())
def test_every_backend_setting_is_in_the_configuration_page(env_name: str) -> None:
    assert f"`{env_name}`" in CONFIGURATION, f"{env_name} is not documented in docs/configuration.md"


DOKI_TOML_KEYS = [
    *(("`[service]`", key) for key in sorted(config.KNOWN_KEYS)),
    # The keys of the Cloud Run settings' tables: probes, [service.vpc], [[service.volumes]].
    *(("`[service]`", key) for key in sorted({*config.PROBE_KEYS, *config.VPC_KEYS, *config.VOLUME_KEYS})),
    *(("`[release]`", key) for key in config.RELEASE_KEYS),
    *(("`[release]`", key) for key in config.CHECK_KEYS),
    *(("`[build]`", key) for key in config.BUILD_KEYS),
]


@pytest.mark.parametrize(("table", "key"), DOKI_TOML_KEYS)
def test_every_doki_toml_key_is_in_its_tables_section_of_the_configuration_page(table: str, key: str) -> None:
    where = section(CONFIGURATION, table)
    # A key holding a table is written as one: `[service.env]`.
    assert f"`{key}`" in where or f"`[{table.strip('`[]')}.{key}]`" in where, f"{key} is not documented under {table}"


@pytest.mark.parametrize("table", config.TABLES)
def test_every_doki_toml_table_has_a_section(table: str) -> None:
    titles = {title for _, title, _ in _headings(CONFIGURATION)}
    assert f"`[{table}]`" in titles or f"`[{table}.NAME]`" in titles, table


# The command: every command and subcommand, and every option of each, walked from the command tree itself.

CLI = (DOCS / "cli.md").read_text()


def _commands() -> Iterator[tuple[str, list[str]]]:
    """Each command's path (`doki cors add`) and its --long options, --help excepted."""

    def walk(command: object, path: str) -> Iterator[tuple[str, list[str]]]:
        params = getattr(command, "params", [])
        options = [
            name
            for param in params
            if not isinstance(param, TyperArgument)
            for name in [*param.opts, *param.secondary_opts]
            if name.startswith("--") and name != "--help"
        ]
        yield path, options
        if isinstance(command, TyperGroup):
            for name, sub in sorted(command.commands.items()):
                yield from walk(sub, f"{path} {name}")

    yield from walk(typer.main.get_command(app), "doki")


COMMANDS = dict(_commands())


def test_the_walk_finds_the_commands_subcommands_and_options() -> None:
    # Not an inventory (that is cli.md's job): proof the walk reaches groups, their subcommands and paired flags.
    assert {"doki", "doki deploy", "doki cors add", "doki emulator start", "doki secrets push"} <= set(COMMANDS)
    assert "--json" in COMMANDS["doki"] and "--dry-run" in COMMANDS["doki deploy"]
    assert {"--reload", "--no-reload"} <= set(COMMANDS["doki dev"])


def _where_documented(path: str) -> str:
    """The part of cli.md about `path`: the section of the heading naming the longest prefix of it (with its
    subsections), and the introductions of the sections above it. The global options have a section of their own."""
    if path == "doki":
        return section(CLI, "Global options")
    heads = _headings(CLI)
    named = [(title, re.fullmatch(r"`(doki[\w -]*)`", title)) for _, title, _ in heads]
    prefixes = [(m.group(1), title) for title, m in named if m and (path + " ").startswith(m.group(1) + " ")]
    assert prefixes, f"docs/cli.md has no section for {path}"
    text = ""
    for command, title in sorted(prefixes, key=lambda p: len(p[0])):
        body = section(CLI, title)
        longest = command == max((c for c, _ in prefixes), key=len)
        text += body if longest else body.split("\n#", 1)[0]
    return text


@pytest.mark.parametrize("path", COMMANDS)
def test_every_command_is_in_the_cli_page(path: str) -> None:
    assert re.search(rf"`{re.escape(path)}(?![\w-])", CLI), f"{path} is not documented in docs/cli.md"


@pytest.mark.parametrize(
    ("path", "option"), [(path, option) for path, options in COMMANDS.items() for option in options]
)
def test_every_option_is_in_its_commands_section_of_the_cli_page(path: str, option: str) -> None:
    documented = code(_where_documented(path))
    assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", documented), (
        f"{path} {option} is not documented (as code) in its section of docs/cli.md"
    )


# Links: every relative link points at a file that exists, and at a heading that exists when it names one.


def _relative_links() -> list[tuple[Path, str]]:
    return [
        (page, target)
        for page in PAGES
        for target in links(page.read_text())
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # https:, mailto:
    ]


def test_the_pages_have_relative_links_to_check() -> None:
    assert len(_relative_links()) > 20


@pytest.mark.parametrize(("page", "target"), _relative_links(), ids=[f"{p.name}->{t}" for p, t in _relative_links()])
def test_every_relative_link_resolves(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.relative_to(REPO)} links to {target}: no such file"
    if anchor:
        assert file.suffix == ".md", f"{page.relative_to(REPO)} links to {target}: an anchor into a non-Markdown file"
        assert anchor in anchors(file.read_text()), f"{page.relative_to(REPO)} links to {target}: no such heading"


@pytest.mark.parametrize("page", PAGES[1:], ids=[p.name for p in PAGES[1:]])
def test_every_docs_page_opens_with_a_title_and_an_introduction_and_has_sections(page: Path) -> None:
    text = page.read_text()
    heads = _headings(text)
    assert heads[0][0] == 1 and heads[0][2] == 0, "the page starts with a # title"
    assert len(heads) > 1 and text[: heads[1][2]].count("\n") > 2, "a short introduction comes before the first section"
    assert sum(1 for level, _, _ in heads if level == 2) >= 2, "the page has sections"


# References from the code, its templates and tools into the docs: each names a page (and heading) that exists.

REFERRING = [
    *sorted((REPO / "doki_cli").rglob("*.py")),
    *sorted((REPO / "doki_cli" / "templates").glob("*.tmpl")),
    *sorted((REPO / "doki").rglob("*.py")),
    *sorted((REPO / "scripts").glob("*")),
    *sorted((REPO / "bench").glob("*")),
    *sorted((REPO / ".ci").glob("*")),
    REPO / "constraints.txt",
    REPO / "Dockerfile",
]


def _references() -> list[tuple[Path, str]]:
    found = []
    for file in REFERRING:
        if file.is_file():
            text = file.read_text(errors="replace")
            found += [(file, ref) for ref in re.findall(r"(?:docs/[\w-]+\.md|README\.md)(?:#[\w-]+)?", text)]
    return found


def test_the_code_refers_to_the_docs() -> None:
    assert any(ref.startswith("docs/configuration.md") for _, ref in _references())


@pytest.mark.parametrize(("file", "ref"), _references(), ids=[f"{f.name}->{r}" for f, r in _references()])
def test_every_reference_from_the_code_into_the_docs_resolves(file: Path, ref: str) -> None:
    path, _, anchor = ref.partition("#")
    target = REPO / path
    assert target.exists(), f"{file.relative_to(REPO)} refers to {ref}: no such page"
    if anchor:
        assert anchor in anchors(target.read_text()), f"{file.relative_to(REPO)} refers to {ref}: no such heading"
