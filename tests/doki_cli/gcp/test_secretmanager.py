"""The Secret Manager adapter against the emulator: a secret is named by its id in the adapter's project, or by its
full name in another project's (as a Cloud Run service may reference one), for reading as for the rest."""

from __future__ import annotations

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google


def test_a_secret_is_read_by_its_id_here_and_by_its_full_name_in_another_project(emulator: Emulator) -> None:
    ours = Google(ClientFactory(emulator.grpc_address), "proj-ours").secrets
    theirs = Google(ClientFactory(emulator.grpc_address), "proj-theirs").secrets
    assert ours.create("key") and theirs.create("shared")
    ours.add_version("key", b"mine")
    theirs.add_version("shared", b"theirs-1")
    theirs.add_version("shared", b"theirs-2")

    assert ours.access("key") == b"mine"
    assert ours.access("projects/proj-theirs/secrets/shared", "1") == b"theirs-1"
    assert ours.exists("projects/proj-theirs/secrets/shared")
