"""The leak check (tests/leakcheck.py) fails a test that prints or logs a secret, naming it without showing it: run
here on tests that leak on purpose, in a pytest of their own."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BASE_IMAGE, REPO, SECRETS, Secrets, clean_env, run

CONFTEST = """
from tests.leakcheck import LeakCheck


def pytest_configure(config):
    config.addinivalue_line("markers", "prints_secrets: prints a secret on purpose")
    config.pluginmanager.register(LeakCheck(), "doki-leak-check")
"""

LEAKY_TESTS = """
import logging
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import typer

from tests.helpers import CliRunner, Process, clean_env, run, running, secret

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


def test_a_failing_assert_quoting_it() -> None:
    assert KEY == "another value", f"got {KEY}"


def test_reading_it_back_with_capsys(capsys: pytest.CaptureFixture[str]) -> None:
    print(KEY)
    assert capsys.readouterr().out == KEY + "\\n"


def test_reading_it_back_with_capfd(capfd: pytest.CaptureFixture[str]) -> None:
    run([sys.executable, "-c", "import os, sys; sys.stderr.write(os.environ['DEMO'])"], env=clean_env(DEMO=KEY))
    assert capfd.readouterr().err == KEY


def test_printing_with_capture_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("out of the check's sight")


@pytest.mark.prints_secrets
def test_reading_it_back_on_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    print(KEY)
    assert capsys.readouterr().out == KEY + "\\n"


@pytest.mark.prints_secrets
def test_printing_it_on_purpose() -> None:
    print(KEY)


def test_printing_nothing_secret() -> None:
    print("the key stays in its vault")


def test_printing_only_a_short_value() -> None:
    secret("a value too short to tell", "abc")
    print("abc")


def test_printing_a_development_key_doki_generated(tmp_path) -> None:
    (tmp_path / "project" / ".doki").mkdir(parents=True)
    keys = '{"session_secret_key": "dev-session-0123456789", "encryption_key": "dev-encryption-0123456789"}'
    (tmp_path / "project" / ".doki" / "dev-keys.json").write_text(keys)
    print("dev-session-0123456789")


PRINT_IT = 'import os; print(os.environ["DEMO"])'


def test_a_process_printing_it_unread() -> None:
    with running([sys.executable, "-c", "import sys; print(sys.argv[1])", KEY], Path.cwd(), clean_env()) as proc:
        assert proc.wait() == 0


def test_a_process_printing_it_on_stderr_after_a_line_the_test_read() -> None:
    command = [sys.executable, "-c", 'import os, sys; print("ready", flush=True); sys.stderr.write(os.environ["DEMO"])']
    proc = Process(command, env=clean_env(DEMO=KEY), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\\n"
    assert proc.wait() == 0
    proc.stdout.close()
    proc.stderr.close()


def printing(value: str) -> str:
    done = run([sys.executable, "-c", PRINT_IT], env=clean_env(DEMO=value), capture_output=True, text=True, check=True)
    return done.stdout


def test_a_process_run_printing_it() -> None:
    assert printing(KEY)


def test_a_process_printing_nothing_secret() -> None:
    assert printing("nothing") == "nothing\\n"
"""

LEAKY_CONTAINER_TEST = """
import os

import docker

from tests.helpers import BASE_IMAGE, container, secret

KEY = secret("the demo key", "demo-key/0123456789+abcdef=")


def test_a_container_printing_it() -> None:
    command = ["python3", "-c", "import os, sys; sys.stderr.write(os.environ['DEMO'])"]
    name = f"doki-leakcheck-{os.getpid()}"
    with container(docker.from_env(), BASE_IMAGE, command, environment={"DEMO": KEY}, name=name) as one:
        assert one.wait(timeout=60)["StatusCode"] == 0
"""


def pytest_of_its_own(where: Path, tests: str) -> str:
    """`tests` run in a pytest of their own (with the leak check) in `where`: its report, a summary line a test."""
    (where / "conftest.py").write_text(CONFTEST)
    (where / "test_leaky.py").write_text(tests)
    result = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={where / 'tmp'}", "-rfEp", "-q"],
        cwd=where,
        # Summary lines whole; the base image as this session has it.
        env=clean_env(PYTHONPATH=str(REPO), COLUMNS="1000", DOKI_TEST_BASE_IMAGE=BASE_IMAGE),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return str(result.stdout)


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The leaky tests' run: its summary lines, one per test."""
    return pytest_of_its_own(tmp_path_factory.mktemp("leaky"), LEAKY_TESTS)


def outcome(report: str, test: str) -> str:
    """`PASSED`, or `FAILED - <reason>`, from the run's summary line for `test`."""
    match = re.search(rf"^(PASSED|FAILED) test_leaky\.py::{test}\b(.*)$", report, re.MULTILINE)
    assert match, report
    return (match.group(1) + match.group(2)).strip()


HINT = " (a test that prints it on purpose: @pytest.mark.prints_secrets)"
# The leaky processes' scripts, as the leak check names them.
PRINT_IT = 'import os; print(os.environ["DEMO"])'
STDERR_AFTER_A_LINE = 'import os, sys; print("ready", flush=True); sys.stderr.write(os.environ["DEMO"])'


def python(script: str) -> str:
    """How the leak check names a `python -c script` process (the interpreter by its name only)."""
    return shlex.join([Path(sys.executable).name, "-c", script])


@pytest.mark.parametrize(
    ("test", "reason"),
    [
        ("test_printing_it", "the demo key in captured stdout call"),
        ("test_logging_it", "the demo key in captured log call"),
        ("test_a_cli_run_showing_it", "the demo key in the output of a CLI run"),
        ("test_printing_it_url_encoded", "the demo key in captured stdout call"),
        (
            "test_printing_a_setting_put_in_the_environment",
            "SESSION_SECRET_KEY from the test's settings in captured stdout call",
        ),
        ("test_printing_a_setting_of_the_dot_env", "ENCRYPTION_KEY from the test's settings in captured stdout call"),
        (
            "test_printing_a_development_key_doki_generated",
            "the development session_secret_key doki generated in captured stdout call",
        ),
        # A secret on the command line is masked in where too.
        (
            "test_a_process_printing_it_unread",
            f"the demo key in the output of `{python('import sys; print(sys.argv[1])')} [the demo key]`",
        ),
        (
            "test_a_process_printing_it_on_stderr_after_a_line_the_test_read",
            f"the demo key in the stderr of `{python(STDERR_AFTER_A_LINE)}`",
        ),
        ("test_a_process_run_printing_it", f"the demo key in the stdout of `{python(PRINT_IT)}`"),
        # What the test read back is gone from pytest's capture: the check saw it as it was read.
        ("test_reading_it_back_with_capsys", "the demo key in the stdout the test read with capsys"),
        ("test_reading_it_back_with_capfd", "the demo key in the stderr the test read with capfd"),
    ],
)
def test_a_test_that_leaks_a_secret_fails_naming_it_and_where(leaky_run: str, test: str, reason: str) -> None:
    assert outcome(leaky_run, test) == f"FAILED - secret leak: {reason}{HINT}"


@pytest.mark.docker
def test_a_secret_in_a_containers_logs_fails_the_test_naming_the_container(
    docker_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    report = pytest_of_its_own(tmp_path_factory.mktemp("leaky-container"), LEAKY_CONTAINER_TEST)
    where = rf"the logs of container (doki-leakcheck-\d+) \({re.escape(BASE_IMAGE)}\)"
    reason = outcome(report, "test_a_container_printing_it")
    found = re.fullmatch(rf"FAILED - secret leak: the demo key in {where}{re.escape(HINT)}", reason)
    assert found, reason
    assert "0123456789+abcdef" not in report
    # By its exact name: other sessions on the same engine run containers of this kind too.
    assert not docker_client.containers.list(all=True, filters={"name": f"^{found[1]}$"}), "left behind"


def test_the_secret_itself_appears_nowhere_in_the_report(leaky_run: str) -> None:
    assert "0123456789+abcdef" not in leaky_run
    assert "0123456789%2Babcdef" not in leaky_run
    assert "second-key-0123456789" not in leaky_run
    assert "dev-session-0123456789" not in leaky_run
    # The failed test's captured output is shown with the label where the secret was.
    assert "key=[the demo key]" in leaky_run


def test_a_failure_quoting_a_secret_shows_its_label_in_place(leaky_run: str) -> None:
    assert outcome(leaky_run, "test_a_failing_assert_quoting_it") == "FAILED - AssertionError: got [the demo key]"


def test_a_test_failing_for_its_own_reason_keeps_it_and_is_told_of_the_leak_too(leaky_run: str) -> None:
    assert outcome(leaky_run, "test_a_failing_test_that_also_leaks") == "FAILED - assert 1 == 2"
    assert f"secret leak: the demo key in captured stdout call{HINT}" in leaky_run


@pytest.mark.parametrize(
    "test",
    [
        "test_printing_it_on_purpose",
        "test_reading_it_back_on_purpose",
        "test_printing_nothing_secret",
        "test_printing_only_a_short_value",
        "test_a_process_printing_nothing_secret",
    ],
)
def test_a_test_that_leaks_nothing_or_says_it_prints_secrets_passes(leaky_run: str, test: str) -> None:
    assert outcome(leaky_run, test) == "PASSED"


def test_printing_past_the_capture_fails_the_test_saying_the_check_cannot_see_it(leaky_run: str) -> None:
    assert outcome(leaky_run, "test_printing_with_capture_disabled") == (
        "FAILED - Failed: capsys.disabled() prints where the leak check (tests/leakcheck.py) cannot read: "
        "print through the capture instead"
    )
    assert "out of the check's sight" not in leaky_run


@pytest.mark.parametrize("capture", [["-s"], ["--capture=no"], ["--capture=tee-sys"], ["-p", "no:capture"]])
def test_a_session_without_capture_refuses_to_run_rather_than_check_nothing(tmp_path: Path, capture: list[str]) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS)
    result = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'tmp'}", *capture],
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "the leak check (tests/leakcheck.py) reads what each test prints through pytest's capture" in result.stderr
    assert "0123456789+abcdef" not in result.stdout + result.stderr  # no test ran, so nothing printed the key


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


def test_every_process_and_container_a_test_starts_goes_through_the_helpers_the_leak_check_reads() -> None:
    # subprocess or the Docker client used directly would keep what a process printed, or a container logged, from
    # the check.
    starts = re.compile(r"\bsubprocess\.(run|Popen|call|check_call|check_output)\(|\bcontainers\.run\(|\bpexpect\b")
    direct = sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "tests").rglob("*.py")
        if path != REPO / "tests" / "helpers" / "__init__.py" and starts.search(path.read_text())
    )
    assert direct == [], "start processes with tests.helpers.run, Process or running; containers with container"


def test_the_suites_fakes_register_what_they_mint() -> None:
    from tests.fakes.supabase_auth import FakeSupabaseAuth

    with FakeSupabaseAuth() as auth:
        token = auth.mint({"email": "ada@example.com"})
    assert SECRETS.found_in(f"Authorization: Bearer {token}") == ["a token FakeSupabaseAuth minted"]
