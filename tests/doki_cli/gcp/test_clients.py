"""The client factory: one switch between the emulator and Google, with clear errors for half-set variables."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory


def test_a_bad_emulator_address_is_refused_with_the_fix() -> None:
    with pytest.raises(DokiError) as caught:
        ClientFactory.from_env({"DOKI_EMULATOR": "http://127.0.0.1"})
    assert (caught.value.code, caught.value.message, caught.value.hint) == (
        "bad_emulator_address",
        "DOKI_EMULATOR='http://127.0.0.1' is not host:port",
        'set it from `eval "$(doki emulator env)"`, e.g. DOKI_EMULATOR=127.0.0.1:8470',
    )


def test_storage_without_its_emulator_variable_names_the_missing_one() -> None:
    with pytest.raises(DokiError) as caught:
        ClientFactory.from_env({"DOKI_EMULATOR": "127.0.0.1:8470"}).storage("p")
    assert caught.value.code == "no_storage_emulator"
    assert caught.value.hint == 'set both with `eval "$(doki emulator env)"`'


def test_every_grpc_client_shares_one_channel_to_the_emulator(emulator: Emulator) -> None:
    factory = ClientFactory.from_env(
        {"DOKI_EMULATOR": emulator.grpc_address, "STORAGE_EMULATOR_HOST": emulator.rest_url}
    )
    channel = factory.channel()
    for make in (factory.secret_manager, factory.run_services, factory.cloud_build, factory.logging):
        assert make().transport.grpc_channel is channel
    base_url = factory.storage("p")._connection.API_BASE_URL
    assert base_url == emulator.rest_url


def test_an_emulator_that_does_not_answer_is_said_at_once_with_how_to_start_it_or_leave_it(
    reserve_port: Callable[[], int],
) -> None:
    address = f"127.0.0.1:{reserve_port()}"  # nothing listens there
    with pytest.raises(DokiError) as failed:
        ClientFactory(address).secret_manager()
    assert (failed.value.code, failed.value.message) == (
        "emulator_unreachable",
        f"nothing answers at {address} (DOKI_EMULATOR): Connection refused",
    )
    assert failed.value.hint.startswith('start the emulator (doki emulator start, then eval "$(doki emulator env)")')
    assert failed.value.hint.endswith('or leave emulator mode: eval "$(doki emulator env --unset)"')
