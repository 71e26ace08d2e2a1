"""`doki rollback` at a terminal: the earlier Ready revisions, newest first, and the one picked by its number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import Result

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import plan_text
from tests.helpers.project import PATH, setup_project
from tests.helpers.terminal import TerminalRunner

terminal = TerminalRunner()
QUESTION = "Serve which revision? [1]: "
# typer's own words, after which it asks again
NOT_AN_INTEGER = "Error: Input should be a valid integer, unable to parse string as an integer\n"


def doki(*args: str, input: str | None = None) -> Result:
    return terminal.invoke(app, list(args), input=input)


def listed(factory: ClientFactory, *names: str) -> str:
    """The menu rollback prints: number, revision, creation time and image, as the emulator holds them."""
    revisions = {r.name.rsplit("/", 1)[-1]: r for r in factory.run_revisions().list_revisions(parent=PATH)}
    lines = []
    for index, name in enumerate(names, start=1):
        revision = revisions[name]
        created = revision.create_time.isoformat(timespec="seconds")
        lines.append(f"  {index}. {name}  {created}  {revision.containers[0].image}\n")
    return "".join(lines)


def moved(factory: ClientFactory, name: str, before: str) -> str:
    """What rollback prints once traffic moved: the revision, the image it runs and when it was deployed."""
    revision = factory.run_revisions().get_revision(name=f"{PATH}/revisions/{name}")
    return (
        f"All traffic now goes to {name} (image {revision.containers[0].image}, deployed "
        f"{revision.create_time.isoformat(timespec='seconds')}); before: 100% {before}.\n"
    )


def pin(emulator: Emulator, before: str, revision: str) -> str:
    """The plan of a rollback: the traffic spec as it was, to one revision."""
    return plan_text(PATH, f"the emulator at {emulator.grpc_address}", f"  ~ traffic: {before} -> 100% {revision}")


def traffic(factory: ClientFactory) -> tuple[str, list[tuple[str, int]]]:
    service = factory.run_services().get_service(name=PATH)
    return service.etag, [(t.revision.rsplit("/", 1)[-1], t.percent) for t in service.traffic]


def deployed_then_scaled(
    tmp_path: Path, emulator: Emulator, image: str, monkeypatch: pytest.MonkeyPatch
) -> ClientFactory:
    """The service deployed (two revisions: the second sets GOOGLE_REDIRECT_URI), then scaled (a third)."""
    setup_project(tmp_path, emulator, monkeypatch)
    assert doki("secrets", "push").exit_code == 0
    assert doki("deploy", "--image", image, "--yes").exit_code == 0
    assert doki("scale", "--max-instances", "3", "--yes").exit_code == 0
    return ClientFactory(emulator.grpc_address)


def test_picking_a_revision_by_number_serves_it_and_a_number_off_the_list_changes_nothing(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = deployed_then_scaled(tmp_path, engine_emulator, backend_image, monkeypatch)
    serving, *older = _newest_first(factory)  # the deploy's revisions (it sets GOOGLE_REDIRECT_URI), then scale's
    assert len(older) >= 2
    assert json.loads(doki("--json", "status").stdout)["latest_ready"] == serving
    menu = listed(factory, *older)
    off_the_list = str(len(older) + 1)

    before = traffic(factory)
    for answer in (off_the_list, "0", "-1"):
        wrong = doki("rollback", input=f"{answer}\n")
        assert wrong.exit_code == 1
        assert wrong.stdout == menu + QUESTION + f"{answer}\n"
        assert wrong.stderr == (
            f"Error [bad_choice]: {answer} is not in the list; nothing was changed\n"
            "  Hint: run again and pick a listed number\n"
        )
        assert traffic(factory) == before

    not_a_number = doki("rollback", input="two\n")
    assert not_a_number.exit_code == 1
    assert not_a_number.stdout == menu + QUESTION + "two\n" + NOT_AN_INTEGER + QUESTION
    assert not_a_number.stderr == (
        "Error [aborted]: no answer to the question; nothing was changed\n  Hint: answer it, or pass --yes\n"
    )  # asked again, and stdin ended
    assert traffic(factory) == before

    by_default = doki("rollback", input="\n")
    assert by_default.exit_code == 0, by_default.output
    # The pick is the confirmation: the plan follows it, and then the change, with no other question.
    chosen = pin(engine_emulator, "100% latest", older[0])
    assert by_default.stdout == menu + QUESTION + "\n" + chosen + moved(factory, older[0], serving)
    assert by_default.stderr.endswith("The next `doki deploy` returns traffic to the latest revision.\n")
    assert traffic(factory)[1] == [(older[0], 100)]

    # Now older[0] serves: only the revisions before it are offered, numbered from 1 again.
    menu = listed(factory, *older[1:])
    assert doki("rollback", input=f"{len(older)}\n").stdout == menu + QUESTION + f"{len(older)}\n"
    assert traffic(factory)[1] == [(older[0], 100)]
    last = str(len(older) - 1)
    picked = doki("rollback", input=f"{last}\n")
    assert picked.exit_code == 0, picked.output
    chosen = pin(engine_emulator, f"100% {older[0]}", older[-1])
    assert picked.stdout == menu + QUESTION + f"{last}\n" + chosen + moved(factory, older[-1], older[0])
    assert traffic(factory)[1] == [(older[-1], 100)]


def _newest_first(factory: ClientFactory) -> list[str]:
    revisions = sorted(factory.run_revisions().list_revisions(parent=PATH), key=lambda r: r.create_time, reverse=True)
    return [r.name.rsplit("/", 1)[-1] for r in revisions]


def test_a_rollback_after_a_failed_deploy_moves_the_traffic_and_says_so_though_the_newest_revision_failed(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = deployed_then_scaled(tmp_path, engine_emulator, backend_image, monkeypatch)
    serving, previous, *_ = _newest_first(factory)
    engine_emulator.faults.fail_revisions("doki-backend", message="Container called exit(3).")
    failed = doki("scale", "--max-instances", "4", "--yes")
    assert failed.exit_code == 1
    newest = _newest_first(factory)[0]

    rolled = doki("rollback", "--yes")

    assert rolled.exit_code == 0, rolled.output
    assert rolled.stdout == pin(engine_emulator, "100% latest", previous) + moved(factory, previous, serving)
    assert rolled.stderr.endswith(
        f"The newest revision, {newest}, is not Ready (Revision '{newest}' is not ready and cannot serve traffic. "
        "Container called exit(3).): what serves is unaffected.\n"
        "The next `doki deploy` returns traffic to the latest revision.\n"
    )
    assert traffic(factory)[1] == [(previous, 100)]
