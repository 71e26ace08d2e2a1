"""scripts/lock.py: constraints.txt is poetry.lock as pip reads it, and a venv that strays from the lock is named."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scripts import lock
from tests.helpers import REPO, run

LOCKED = {"cryptography": "50.0.2", "pyjwt": "2.15.1"}


def write_lock(path: Path, *packages: tuple[str, str]) -> Path:
    path.write_text("".join(f'[[package]]\nname = "{name}"\nversion = "{version}"\n\n' for name, version in packages))
    return path


def fake_venv(where: Path, *installed: tuple[str, str], pip: bool = False) -> Path:
    """A real virtual environment holding distributions that are only their metadata."""
    run([sys.executable, "-m", "venv", *([] if pip else ["--without-pip"]), str(where)], check=True)
    for name, version in installed:
        install_metadata(where, name, version)
    return where


def install_metadata(venv: Path, name: str, version: str, *requires: str) -> None:
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    lines = [f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("Metadata-Version: 2.1\n" + "\n".join(lines) + "\n")


def lock_command(*args: str) -> tuple[int, str, str]:
    done = run([sys.executable, "scripts/lock.py", *args], cwd=REPO, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def test_the_committed_constraints_are_what_export_writes_from_the_committed_lock() -> None:
    lock.check_constraints()

    assert "cryptography==" + lock.read_lock()["cryptography"] in lock.CONSTRAINTS.read_text().splitlines()


def test_export_pins_every_locked_package_by_its_normalized_name_in_order(tmp_path: Path) -> None:
    path = write_lock(tmp_path / "poetry.lock", ("PyJWT", "2.15.1"), ("zope.interface", "7.2"), ("anyio", "4.16.0"))

    rendered = lock.render(lock.read_lock(path))

    assert rendered.startswith(lock.HEADER)
    assert rendered[len(lock.HEADER) :] == "anyio==4.16.0\npyjwt==2.15.1\nzope-interface==7.2\n"


def test_a_lock_holding_two_versions_of_a_package_is_refused_naming_both(tmp_path: Path) -> None:
    path = write_lock(tmp_path / "poetry.lock", ("numpy", "1.26.4"), ("NumPy", "2.1.0"))

    with pytest.raises(lock.LockError, match=r"two versions of numpy \(1\.26\.4, 2\.1\.0\)"):
        lock.read_lock(path)


def test_a_package_from_a_git_source_is_refused_as_a_constraints_file_cannot_pin_it(tmp_path: Path) -> None:
    path = tmp_path / "poetry.lock"
    path.write_text(
        '[[package]]\nname = "left-pad"\nversion = "1.0"\n\n[package.source]\ntype = "git"\n'
        'url = "https://example.com/left-pad.git"\n'
    )

    with pytest.raises(lock.LockError, match="takes left-pad from a git source, which a constraints file cannot pin"):
        lock.read_lock(path)


def test_a_constraints_file_behind_the_lock_is_refused_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    path = write_lock(tmp_path / "poetry.lock", ("anyio", "4.16.0"))
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(lock.HEADER + "anyio==4.15.0\n")

    with pytest.raises(lock.LockError) as stale:
        lock.check_constraints(path, constraints)
    constraints.unlink()
    with pytest.raises(lock.LockError) as missing:
        lock.check_constraints(path, constraints)

    fix = ": run `python3 scripts/lock.py export` and commit it"
    assert str(stale.value) == "constraints.txt is out of step with poetry.lock" + fix
    assert str(missing.value) == "constraints.txt does not exist" + fix


def test_installed_versions_other_than_the_lock_are_each_named_with_both_versions() -> None:
    installed = {"cryptography": "51.0.1", "pyjwt": "2.15.1", "left-pad": "1.0", "pip": "23.2.1", "doki": "0.1.0"}

    found = [str(difference) for difference in lock.differences(installed, LOCKED)]

    assert found == [
        "cryptography 51.0.1 is installed, poetry.lock has 50.0.2",
        "left-pad 1.0 is installed, and poetry.lock has no left-pad",
    ]


def test_a_locked_package_left_uninstalled_is_no_difference() -> None:
    assert lock.differences({"pyjwt": "2.15.1"}, LOCKED) == []


def test_check_fails_on_a_venv_holding_another_version_and_says_how_to_install_the_locked_ones(
    tmp_path: Path,
) -> None:
    venv = fake_venv(tmp_path / "venv", ("cryptography", "51.0.1"), ("PyJWT", lock.read_lock()["pyjwt"]))

    code, out, err = lock_command("check", "--venv", str(venv))

    assert (code, out) == (1, "")
    assert err == (
        f"error: {venv} does not hold what poetry.lock says:\n"
        f"  cryptography 51.0.1 is installed, poetry.lock has {lock.read_lock()['cryptography']}\n"
        f"Install the locked versions: `{venv}/bin/pip install -c constraints.txt -e '.[cli,test]'` "
        "(in a new venv if a package the lock lacks must go)\n"
    )


def test_check_passes_a_venv_of_locked_versions_and_fails_one_that_lacks_a_dependency(tmp_path: Path) -> None:
    pyjwt = lock.read_lock()["pyjwt"]
    venv = fake_venv(tmp_path / "venv", pip=True)
    install_metadata(venv, "PyJWT", pyjwt)

    passed = lock_command("check", "--venv", str(venv))
    install_metadata(venv, "doki", "0.1.0", "pyjwt", "httpx")
    failed = lock_command("check", "--venv", str(venv))

    assert passed == (0, f"poetry.lock, constraints.txt and {venv} agree\n", "")
    assert failed[:2] == (1, "")
    assert failed[2] == (
        f"error: {venv} lacks a dependency or holds a conflicting one (pip check):\n"
        "doki 0.1.0 requires httpx, which is not installed.\n"
        f"Install the locked versions: `{venv}/bin/pip install -c constraints.txt -e '.[cli,test]'`\n"
    )


def test_check_refuses_a_directory_that_is_no_venv(tmp_path: Path) -> None:
    code, _, err = lock_command("check", "--venv", str(tmp_path))

    assert code == 1
    assert err == f"error: {tmp_path} is no virtual environment (no bin/python): create it with the README's command\n"


def test_newer_lists_what_strays_from_the_lock_without_failing(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path / "venv", ("cryptography", "51.0.1"))

    code, out, _ = lock_command("newer", "--venv", str(venv))

    assert (code, out) == (0, f"cryptography 51.0.1 is installed, poetry.lock has {lock.read_lock()['cryptography']}\n")
