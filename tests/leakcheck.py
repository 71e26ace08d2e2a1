"""The leak check: no secret the tests use may appear in what the suite prints or logs.

At the end of each phase of each test (setup, call, teardown) it reads what that phase left: pytest's captured
stdout, stderr and log records (the raw records, before any redacting formatter: a secret in a log message is a
leak even where production's formatter would mask it, as any other handler prints it whole), and what
`tests.helpers.OUTPUTS` collected meanwhile:
- every CliRunner result (`tests.helpers.CliRunner`, `tests.helpers.terminal.TerminalRunner`);
- the output of the processes the test started (`doki dev`, `doki logs -f`, `doki deploy`, uvicorn, ...) through
  `tests.helpers.run`, `Process` or `running`: their whole stdout and stderr, read by the test or not, once they
  have exited;
- the logs (stdout and stderr) of the containers it ran through `tests.helpers.container`, `container_output` or
  `remove_container`, taken before they are removed, and the log of each image `tests.helpers.build_image` built;
- what fixtures add: the emulator's stored logs (the output of the containers it ran as Cloud Run revisions);
- what the test read with `capsys`/`capfd` (and their binary forms): `readouterr()` takes the text out of what pytest
  keeps for the report, so each read is handed to the check as it happens.
It needs pytest's capture on: a session run with `-s` (`--capture=no`) would print the tests' output straight to the
terminal where no check reads it, and `--capture=tee-sys` would show a leaked secret before the check could mask it,
so either fails the session at once, saying so; `capsys.disabled()` fails the test that uses it, for the same reason.
A secret found there fails that test, naming the secret by its label and where it was seen (a command line, a
container), never printing the value (the report's captured output shows the label in its place).

Secrets are what `tests.helpers.SECRETS` holds (fixtures and fakes register what they make), plus, read at the end
of each phase, the backend's secret settings in the environment and in a `.env` of the test's working directory,
and the development keys doki generated for the test (any `.doki/dev-keys.json` in its tmp_path).
A test that prints a secret on purpose (`doki keys generate`) says so with `@pytest.mark.prints_secrets`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from _pytest.capture import CaptureFixture, CaptureResult
from pydantic import AliasChoices, SecretStr

from doki.settings import Settings
from tests.helpers import OUTPUTS, SECRETS, record

# SecretStr in Settings, yet public by design: every OAuth URL carries the client id, browsers hold the anon key.
PUBLIC_SETTINGS = frozenset({"google_client_id", "supabase_anon_key"})
# The environment names (and legacy aliases) of the backend's secret settings.
SECRET_SETTINGS = frozenset(
    str(choice).upper()
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ())) and name not in PUBLIC_SETTINGS
    for choice in (field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else [name])
)
CAPTURED = ("Captured stdout", "Captured stderr", "Captured log")
# The records of starlette's TestClient (httpx2 is its client): the test playing the browser, which follows the
# redirect back from Google with the authorization code in its URL. The backend's own log of such a request is the
# one that counts, and it is in the captured stdout, as its handler wrote it.
TEST_CLIENT_RECORD = re.compile(r"^\S+ +httpx2:.*\n?", re.MULTILINE)


def _configured_secrets() -> None:
    """Register the secret settings a test put in the environment or in a `.env` where the backend would read it."""
    values = [(name, os.environ.get(name, "")) for name in SECRET_SETTINGS]
    env_file = Path.cwd() / ".env"
    if env_file.is_file():
        for line in env_file.read_text(errors="replace").splitlines():
            name, equals, value = line.partition("=")
            if equals and name.strip().removeprefix("export ").strip() in SECRET_SETTINGS:
                values.append((name.strip(), value.strip().strip("'\"")))
    for name, value in values:
        for part in value.split(","):  # ENCRYPTION_KEY holds several keys
            SECRETS.register(f"{name} from the test's settings", part.strip())


def _development_keys(item: pytest.Item) -> None:
    """Register the development keys doki generated in the test's tmp_path (its own `doki dev`, a project's)."""
    tmp_path = (getattr(item, "funcargs", None) or {}).get("tmp_path")
    if not isinstance(tmp_path, Path) or not tmp_path.is_dir():
        return
    for keys in tmp_path.glob("**/.doki/dev-keys.json"):
        try:
            data = json.loads(keys.read_text())
        except (OSError, ValueError):  # being written, or broken on purpose: nothing doki runs with
            continue
        if isinstance(data, dict):
            for name, value in data.items():
                SECRETS.register(f"the development {name} doki generated", str(value))


def _masked(value: Any) -> Any:
    """`value`, part of a failure's report (text, or pytest's structure of it), with every secret as its label."""
    if isinstance(value, str):
        return SECRETS.mask(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(part) for part in value)
    if type(value).__module__.startswith("_pytest") and hasattr(value, "__dict__"):
        for name, part in vars(value).items():
            setattr(value, name, _masked(part))
    return value


NEEDS_CAPTURE = (
    "the leak check (tests/leakcheck.py) reads what each test prints through pytest's capture, and --capture={} "
    "keeps it from that: run without -s / --capture=no / --capture=tee-sys (a test's output shows in its report when "
    "it fails, or with -rP when it passes)"
)


def _read_and_seen(capture: CaptureFixture[Any]) -> CaptureResult[Any]:
    """CaptureFixture.readouterr, the text it takes out of pytest's keeping handed to the check first."""
    result: CaptureResult[Any] = _READOUTERR(capture)
    name = capture.request.fixturename
    for stream, text in (("stdout", result.out), ("stderr", result.err)):
        record(f"the {stream} the test read with {name}", text)
    return result


def _disabled(capture: CaptureFixture[Any]) -> Any:
    pytest.fail(
        f"{capture.request.fixturename}.disabled() prints where the leak check (tests/leakcheck.py) cannot read: "
        "print through the capture instead",
        pytrace=False,
    )


_READOUTERR = CaptureFixture.readouterr


class LeakCheck:
    """The pytest plugin (registered by tests/conftest.py)."""

    def __init__(self) -> None:
        self._patches = pytest.MonkeyPatch()

    def pytest_configure(self, config: pytest.Config) -> None:
        # Without the capture plugin (-p no:capture) there is no capture at all: as --capture=no.
        method = config.getoption("capture", default="no")
        if method in ("no", "tee-sys"):
            raise pytest.UsageError(NEEDS_CAPTURE.format(method))
        self._patches.setattr(CaptureFixture, "readouterr", _read_and_seen)
        self._patches.setattr(CaptureFixture, "disabled", _disabled)

    def pytest_unconfigure(self) -> None:
        self._patches.undo()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        _configured_secrets()
        _development_keys(item)
        seen = [
            (where.lower(), TEST_CLIENT_RECORD.sub("", text) if where.startswith("Captured log") else text)
            for where, text in report.sections
            if where.startswith(CAPTURED) and where.endswith(call.when)
        ]
        seen += OUTPUTS
        OUTPUTS.clear()
        if report.failed and SECRETS.found_in(str(report.longrepr)):
            # A failure's own report may quote what a process printed (an assert message, a result's repr): shown as
            # the label, as captured output is.
            report.longrepr = _masked(report.longrepr)
        if item.get_closest_marker("prints_secrets") is not None or report.skipped:
            return report
        # Where is masked too: a command line may hold the secret its process then printed.
        leaks = sorted(
            {f"{label} in {SECRETS.mask(where)}" for where, text in seen for label in SECRETS.found_in(text)}
        )
        if leaks:
            message = (
                "secret leak: " + "; ".join(leaks) + " (a test that prints it on purpose: @pytest.mark.prints_secrets)"
            )
            # pytest shows a failed test's captured output: the report shows where the secret was, not the secret.
            report.sections = [(where, SECRETS.mask(text)) for where, text in report.sections]
            if report.passed:
                report.outcome = "failed"
                report.longrepr = message
            else:
                report.sections.append(("secret leak", message))
        return report
