"""`doki emulator start/status/env/stop` as a user runs them: a real background process on free ports."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from doki_cli.emulator.process import LOG_FILE
from doki_cli.main import app
from tests.helpers import CliRunner, Process, clean_env, run

runner = CliRunner()
DOKI = str(Path(sys.executable).with_name("doki"))


def doki(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([DOKI, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60)


@pytest.fixture
def ports(reserve_port: Callable[[], int]) -> tuple[int, int, int]:
    return reserve_port(), reserve_port(), reserve_port()


def port_options(ports: tuple[int, int, int]) -> list[str]:
    return ["--port", str(ports[0]), "--rest-port", str(ports[1]), "--registry-port", str(ports[2])]


@pytest.fixture
def started(tmp_path: Path, ports: tuple[int, int, int]) -> Iterator[Path]:
    result = doki("emulator", "start", "--no-docker", *port_options(ports), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    yield tmp_path
    doki("emulator", "stop", cwd=tmp_path)


def test_start_runs_the_emulator_in_the_background_and_status_reports_it(
    started: Path, ports: tuple[int, int, int]
) -> None:
    status = json.loads(doki("--json", "emulator", "status", cwd=started).stdout)
    state_dir = str(started / ".doki" / "emulator")
    assert status["grpc"] == f"127.0.0.1:{ports[0]}"
    assert status["rest"] == f"http://127.0.0.1:{ports[1]}"
    assert status["registry"] == f"127.0.0.1:{ports[2]}"
    assert status["state_dir"] == state_dir
    assert status["engine"] is False
    assert httpx.get(f"http://127.0.0.1:{ports[1]}/_doki/status").json()["state_dir"] == state_dir
    human = doki("emulator", "status", cwd=started).stdout
    assert human == (
        f"Emulator running (pid {status['pid']})\n  gRPC      127.0.0.1:{ports[0]}\n"
        f"  REST      http://127.0.0.1:{ports[1]}\n  registry  127.0.0.1:{ports[2]}\n  state     {state_dir}\n"
        "  no Docker engine: revisions cannot become Ready\n"
    )


def test_env_prints_exports_for_doki_the_clients_and_gcloud(started: Path, ports: tuple[int, int, int]) -> None:
    assert doki("emulator", "env", cwd=started).stdout == (
        f"export DOKI_EMULATOR=127.0.0.1:{ports[0]}\n"
        f"export STORAGE_EMULATOR_HOST=http://127.0.0.1:{ports[1]}\n"
        f"export DOKI_EMULATOR_REGISTRY=127.0.0.1:{ports[2]}\n"
        f"export CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER=http://127.0.0.1:{ports[1]}/\n"
        f"export CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN=http://run.doki-emulator:{ports[1]}/\n"
        f"export CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING=http://127.0.0.1:{ports[1]}/\n"
        f"export CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE=http://127.0.0.1:{ports[1]}/\n"
        f"export CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING=http://127.0.0.1:{ports[1]}/\n"
        "export CLOUDSDK_PROXY_TYPE=http\n"
        "export CLOUDSDK_PROXY_ADDRESS=127.0.0.1\n"
        f"export CLOUDSDK_PROXY_PORT={ports[1]}\n"
        "export CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true\n"
    )


@pytest.mark.gcloud
def test_after_eval_of_env_plain_gcloud_reads_cloud_run_and_logging_from_the_emulator(
    started: Path, gcloud_binary: str
) -> None:
    # As the README says to: a shell that evals `doki emulator env`, then gcloud with nothing else set but its own
    # directory and project. The emulator holds a service made with the Python client.
    from google.cloud import run_v2

    from doki_cli.gcp.clients import ClientFactory

    status = json.loads(doki("--json", "emulator", "status", cwd=started).stdout)
    ClientFactory(status["grpc"]).run_services().create_service(
        parent="projects/doki-shell/locations/us-central1",
        service_id="api",
        service=run_v2.Service(
            template=run_v2.RevisionTemplate(containers=[run_v2.Container(image="us-docker.pkg.dev/p/a/api:1")])
        ),
    )
    ClientFactory(status["grpc"]).logging().write_log_entries(
        log_name="projects/doki-shell/logs/shell-test",
        resource={"type": "global"},
        entries=[{"text_payload": "written-by-the-python-client"}],
    )
    script = (
        f'eval "$({DOKI} emulator env)"\n'
        "gcloud run services describe api --region us-central1 --format='value(metadata.name,status.url)'\n"
        "gcloud logging read 'logName=\"projects/doki-shell/logs/shell-test\"' --format='value(textPayload)'\n"
    )
    env = clean_env(CLOUDSDK_CONFIG=str(started / "gcloud"), CLOUDSDK_CORE_PROJECT="doki-shell")
    env["PATH"] = f"{Path(gcloud_binary).parent}:{env['PATH']}"
    done = run(["bash", "-ec", script], cwd=started, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    name, url, logged = done.stdout.split()
    assert name == "api"
    assert url.startswith("http://127.0.0.1:")
    assert logged == "written-by-the-python-client"


def test_env_unset_prints_what_leaves_emulator_mode_even_with_none_running(tmp_path: Path) -> None:
    result = doki("emulator", "env", "--unset", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == (
        "unset DOKI_EMULATOR STORAGE_EMULATOR_HOST DOKI_EMULATOR_REGISTRY "
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN "
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE "
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING CLOUDSDK_PROXY_TYPE "
        "CLOUDSDK_PROXY_ADDRESS CLOUDSDK_PROXY_PORT CLOUDSDK_AUTH_DISABLE_CREDENTIALS\n"
    )


def test_env_exports_exactly_what_env_unset_unsets(started: Path) -> None:
    exported = [
        line.split("=", 1)[0].removeprefix("export ")
        for line in doki("emulator", "env", cwd=started).stdout.splitlines()
    ]
    assert doki("emulator", "env", "--unset", cwd=started).stdout == f"unset {' '.join(exported)}\n"


def test_starting_twice_reuses_the_running_emulator(started: Path) -> None:
    first = json.loads(doki("--json", "emulator", "status", cwd=started).stdout)
    again = doki("--json", "emulator", "start", "--no-docker", cwd=started)
    assert again.returncode == 0
    assert json.loads(again.stdout)["pid"] == first["pid"]


def test_stop_ends_the_process_and_status_then_says_none_runs(started: Path, ports: tuple[int, int, int]) -> None:
    pid = json.loads(doki("--json", "emulator", "status", cwd=started).stdout)["pid"]
    stopped = doki("emulator", "stop", cwd=started)
    state_dir = started / ".doki" / "emulator"
    assert stopped.stdout == f"Stopped the emulator (pid {pid}); state kept in {state_dir}\n"
    assert not (state_dir / "emulator.json").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{ports[1]}/_doki/status")
    status = doki("emulator", "status", cwd=started)
    assert status.returncode == 1
    assert status.stderr == (
        f"Error [emulator_not_running]: no emulator is running for {state_dir}\n"
        "  Hint: start one with `doki emulator start` (or pass the --state-dir it was started with)\n"
    )
    assert doki("emulator", "stop", cwd=started).stdout == f"No emulator is running for {state_dir}\n"


def test_a_port_in_use_fails_the_start_with_the_log_and_leaves_no_record(
    tmp_path: Path, reserve_port: Callable[[], int]
) -> None:
    log = tmp_path / ".doki" / "emulator" / LOG_FILE
    log.parent.mkdir(parents=True)
    log.write_text("an earlier run's line\n")  # the log is kept across starts: only this start's part is shown
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = doki(
            "emulator",
            "start",
            "--no-docker",
            *("--port", str(reserve_port()), "--rest-port", str(port), "--registry-port", str(reserve_port())),
            cwd=tmp_path,
        )
    assert result.returncode == 1
    assert result.stderr.startswith("Error [emulator_start_failed]: the emulator exited with code 1 while starting")
    assert "cannot listen on 127.0.0.1:" in result.stderr
    assert "an earlier run's line" not in result.stderr
    assert "Hint: fix what the log says (often a port in use: pass --port/--rest-port/--registry-port)" in result.stderr
    assert not (tmp_path / ".doki" / "emulator" / "emulator.json").exists()


def test_foreground_runs_until_sigterm_then_exits_cleanly(tmp_path: Path, ports: tuple[int, int, int]) -> None:
    args = [DOKI, "emulator", "start", "--foreground", "--no-docker", *port_options(ports)]
    with Process(args, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"Emulator running (pid {proc.pid})\n"
        assert httpx.get(f"http://127.0.0.1:{ports[1]}/_doki/status").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not (tmp_path / ".doki" / "emulator" / "emulator.json").exists()
    assert (tmp_path / ".doki" / "emulator" / "secretmanager.json").exists()


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["--port", "70000"], "--port 70000 is not a port", "use a port from 1 to 65535 for --port"),
        (
            ["--port", "9000", "--rest-port", "9000"],
            "--port and --rest-port are both 9000",
            "give them different ports",
        ),
    ],
)
def test_bad_ports_are_refused_before_anything_starts(args: list[str], message: str, hint: str) -> None:
    result = runner.invoke(app, ["emulator", "start", *args])
    assert result.exit_code == 1
    assert result.stderr == f"Error [bad_option]: {message}\n  Hint: {hint}\n"
    assert not Path(".doki").exists()


@pytest.mark.parametrize("command", ["start", "status", "stop"])
def test_a_record_that_is_no_emulator_s_is_reported_as_doki_s_error(command: str) -> None:
    record = Path(".doki/emulator/emulator.json")
    record.parent.mkdir(parents=True)
    record.write_text("not an emulator's record")
    result = runner.invoke(app, ["emulator", command])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error [emulator_state_corrupt]: {record.resolve()} is not an emulator record\n"
        f"  Hint: stop any emulator using {record.parent.resolve()} and delete {record.resolve()}\n"
    )


def test_a_restarted_emulator_keeps_what_clients_wrote(started: Path, ports: tuple[int, int, int]) -> None:
    from doki_cli.gcp.clients import ClientFactory

    factory = ClientFactory(f"127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
    sm = factory.secret_manager()
    secret = sm.create_secret(parent="projects/p", secret_id="kept", secret={"replication": {"automatic": {}}})
    sm.add_secret_version(parent=secret.name, payload={"data": b"value-1"})
    assert doki("emulator", "stop", cwd=started).returncode == 0
    restart = ["emulator", "start", "--no-docker", *port_options(ports)]
    assert doki(*restart, cwd=started).returncode == 0
    answer = factory.secret_manager().access_secret_version(name="projects/p/secrets/kept/versions/latest")
    assert answer.payload.data == b"value-1"


def test_start_prints_the_env_line_to_paste_with_the_state_dir_it_was_started_with(
    tmp_path: Path, ports: tuple[int, int, int]
) -> None:
    state_dir = tmp_path / "my state"
    started = doki(
        "emulator", "start", "--no-docker", "--state-dir", str(state_dir), *port_options(ports), cwd=tmp_path
    )
    try:
        assert started.returncode == 0, started.stderr
        line = f"Point this shell at it: eval \"$(doki emulator env --state-dir '{state_dir}')\"; log: "
        assert line in started.stderr
        pasted = run(
            ["bash", "-c", f"eval \"$({DOKI} emulator env --state-dir '{state_dir}')\" && echo $DOKI_EMULATOR"],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert pasted.stdout == f"127.0.0.1:{ports[0]}\n"
    finally:
        doki("emulator", "stop", "--state-dir", str(state_dir), cwd=tmp_path)
    default = doki("emulator", "start", "--no-docker", *port_options(ports), cwd=tmp_path)
    try:
        assert 'Point this shell at it: eval "$(doki emulator env)"; log: ' in default.stderr
    finally:
        doki("emulator", "stop", cwd=tmp_path)
