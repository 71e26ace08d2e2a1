"""The leak check (tests/leakcheck.py) fails a test that prints or logs a secret, naming it without showing it: run
here on tests that leak on purpose, in a pytest of their own."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import REPO, SECRETS, Secrets, clean_env

CONFTEST = """
from tests.leakcheck import LeakCheck


def pytest_configure(config):
    config.addinivalue_line("markers", "prints_secrets: prints a secret on purpose")
    config.pluginmanager.register(LeakCheck(), "doki-leak-check")
"""

LEAKY_TESTS = """
import logging
import urllib.parse

import pytest
import typer

from tests.helpers import CliRunner, secret

KEY = secret("the demo key", "demo-key/0123456789+abcdef=")
cli = typer.Typer()


@cli.command()
def show() -> None:
    typer.echo(f"the key is {KEY}")


def test_printing_it() -> None:
    print(f"key={KEY}")


def test_logging_it() -> None:
    logging.getLogger("demo").warning("connecting with %s", KEY)


def test_a_cli_run_showing_it() -> None:
    assert CliRunner().invoke(cli, []).exit_code == 0


def test_printing_it_url_encoded() -> None:
    print("https://example.com/?k=" + urllib.parse.quote(KEY, safe=""))


def test_printing_a_setting_put_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET_KEY", "session-from-the-environment-0123")
    print("session-from-the-environment-0123")


def test_printing_a_setting_of_the_dot_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ENCRYPTION_KEY=first-key-0123456789,second-key-0123456789\\n")
    print("second-key-0123456789")


def test_a_failing_test_that_also_leaks() -> None:
    print(KEY)
    assert 1 == 2


@pytest.mark.prints_secrets
def test_printing_it_on_purpose() -> None:
    print(KEY)


def test_printing_nothing_secret() -> None:
    print("the key stays in its vault")


def test_printing_only_a_short_value() -> None:
    secret("a value too short to tell", "abc")
    print("abc")
"""


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The leaky tests' run: its summary lines, one per test."""
    where = tmp_path_factory.mktemp("leaky")
    (where / "conftest.py").write_text(CONFTEST)
    (where / "test_leaky.py").write_text(LEAKY_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={where / 'tmp'}", "-rfEp", "-q"],
        cwd=where,
        env=clean_env(PYTHONPATH=str(REPO), COLUMNS="1000"),  # summary lines whole
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


def outcome(run: str, test: str) -> str:
    """`PASSED`, or `FAILED - <reason>`, from the run's summary line for `test`."""
    match = re.search(rf"^(PASSED|FAILED) test_leaky\.py::{test}\b(.*)$", run, re.MULTILINE)
    assert match, run
    return (match.group(1) + match.group(2)).strip()


HINT = " (a test that prints it on purpose: @pytest.mark.prints_secrets)"


@pytest.mark.parametrize(
    ("test", "reason"),
    [
        ("test_printing_it", "the demo key in captured stdout call"),
        ("test_logging_it", "the demo key in captured log call"),
        ("test_a_cli_run_showing_it", "the demo key in the output of a cli run"),
        ("test_printing_it_url_encoded", "the demo key in captured stdout call"),
        (
            "test_printing_a_setting_put_in_the_environment",
            "SESSION_SECRET_KEY from the test's settings in captured stdout call",
        ),
        ("test_printing_a_setting_of_the_dot_env", "ENCRYPTION_KEY from the test's settings in captured stdout call"),
    ],
)
def test_a_test_that_leaks_a_secret_fails_naming_it_and_where(leaky_run: str, test: str, reason: str) -> None:
    assert outcome(leaky_run, test) == f"FAILED - secret leak: {reason}{HINT}"


def test_the_secret_itself_appears_nowhere_in_the_report(leaky_run: str) -> None:
    assert "0123456789+abcdef" not in leaky_run
    assert "0123456789%2Babcdef" not in leaky_run
    assert "second-key-0123456789" not in leaky_run
    # The failed test's captured output is shown with the label where the secret was.
    assert "key=[the demo key]" in leaky_run


def test_a_test_failing_for_its_own_reason_keeps_it_and_is_told_of_the_leak_too(leaky_run: str) -> None:
    assert outcome(leaky_run, "test_a_failing_test_that_also_leaks") == "FAILED - assert 1 == 2"
    assert f"secret leak: the demo key in captured stdout call{HINT}" in leaky_run


@pytest.mark.parametrize(
    "test", ["test_printing_it_on_purpose", "test_printing_nothing_secret", "test_printing_only_a_short_value"]
)
def test_a_test_that_leaks_nothing_or_says_it_prints_secrets_passes(leaky_run: str, test: str) -> None:
    assert outcome(leaky_run, test) == "PASSED"


def test_secrets_are_found_raw_or_url_encoded_and_told_by_label() -> None:
    secrets = Secrets()
    secrets.register("a key", "k3y/with+chars=")
    secrets.register("a token", "token-0123456789")
    assert secrets.found_in("nothing here") == []
    assert secrets.found_in("k3y/with+chars= and token-0123456789") == ["a key", "a token"]
    assert secrets.found_in("?key=k3y%2Fwith%2Bchars%3D") == ["a key"]
    assert secrets.mask("Bearer token-0123456789") == "Bearer [a token]"


def test_every_cli_test_runs_through_the_runner_the_leak_check_reads() -> None:
    # typer's own CliRunner would keep a command's output from the check.
    direct = [
        str(path.relative_to(REPO))
        for path in (REPO / "tests").rglob("*.py")
        if re.search(r"^from typer\.testing import .*\bCliRunner\b", path.read_text(), re.MULTILINE)
    ]
    assert direct == [], "use tests.helpers.CliRunner"


def test_the_suites_fakes_register_what_they_mint() -> None:
    from tests.fakes.supabase_auth import FakeSupabaseAuth

    with FakeSupabaseAuth() as auth:
        token = auth.mint({"email": "ada@example.com"})
    assert SECRETS.found_in(f"Authorization: Bearer {token}") == ["a token FakeSupabaseAuth minted"]
