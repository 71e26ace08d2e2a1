"""How the emulator reads a docker build step and unpacks a source tarball, without any server."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from google.cloud.devtools import cloudbuild_v1 as cb

from doki_cli.emulator.cloudbuild.source import UnsafeSource, extract
from doki_cli.emulator.cloudbuild.steps import DockerBuild, StepError, parse_docker_build, substitute, with_tag
from tests.doki_cli.emulator.cloudbuild.conftest import tarball

DOCKER = "gcr.io/cloud-builders/docker"


def _parse(*args: str, name: str = DOCKER, env: dict[str, str] | None = None) -> DockerBuild:
    return parse_docker_build(0, cb.BuildStep(name=name, args=list(args)), env or {})


def test_the_step_gcloud_builds_submit_sends_is_a_plain_docker_build() -> None:
    spec = _parse("build", "--network", "cloudbuild", "--no-cache", "-t", "r/p/a/web:v1", ".")
    assert spec == DockerBuild(context=".", tags=["r/p/a/web:v1"], dockerfile=None, build_args={}, no_cache=True)


def test_flags_are_read_in_every_spelling_the_docker_cli_accepts() -> None:
    spec = _parse(
        "build", "--tag=web:v1", "--tag", "web:v2", "--file=ops/Dockerfile", "--build-arg=A=1=2", "--pull", "ctx"
    )
    assert spec == DockerBuild("ctx", ["web:v1", "web:v2"], "ops/Dockerfile", {"A": "1=2"}, False)


def test_a_build_arg_without_a_value_takes_it_from_the_step_environment() -> None:
    assert _parse("build", "--build-arg", "A", "--build-arg", "B", "-t", "web", ".", env={"A": "x"}).build_args == {
        "A": "x"
    }


def test_a_tag_without_a_version_is_tagged_latest() -> None:
    assert _parse("build", "-t", "localhost:5000/web", ".").tags == ["localhost:5000/web:latest"]


@pytest.mark.parametrize(
    ("image", "tagged"),
    [
        ("web", "web:latest"),
        ("web:v1", "web:v1"),
        ("host:5000/team/web", "host:5000/team/web:latest"),
        ("w@sha256:a", "w@sha256:a"),
    ],
)
def test_with_tag_names_an_image_the_way_docker_does(image: str, tagged: str) -> None:
    assert with_tag(image) == tagged


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "-t", "web"], '"docker build" requires exactly 1 argument (the build context)'),
        (["build", "-t", "web", "a", "b"], '"docker build" requires exactly 1 argument (the build context)'),
        (["build", "."], "the emulator needs at least one -t TAG on a docker build step"),
        (
            ["build", "--platform", "linux/arm64", "-t", "web", "."],
            "does not support the docker build option --platform",
        ),
        (["build", "-t"], "flag needs an argument: -t"),
        (["build", "-t", "web", "-"], "the emulator cannot read a build context from stdin"),
        (["push", "web"], "runs `docker push web`"),
        ([], "runs `docker (no args)`"),
    ],
)
def test_a_step_the_emulator_cannot_run_is_refused_saying_why(args: list[str], message: str) -> None:
    with pytest.raises(StepError) as raised:
        _parse(*args)
    assert str(raised.value).startswith('step 0 ("gcr.io/cloud-builders/docker")') or str(raised.value).startswith(
        "the emulator runs only docker build steps"
    )
    assert message in str(raised.value)


def test_another_builder_is_refused() -> None:
    with pytest.raises(StepError, match=r'step 0 \("gcr.io/cloud-builders/gcloud"\) is not one'):
        _parse("run", "deploy", name="gcr.io/cloud-builders/gcloud")


def test_the_docker_builder_may_be_pinned_by_tag_but_not_given_an_entrypoint() -> None:
    assert _parse("build", "-t", "web", ".", name=f"{DOCKER}:24.0.9").tags == ["web:latest"]
    step = cb.BuildStep(name=DOCKER, entrypoint="bash", args=["-c", "docker build -t web ."])
    with pytest.raises(StepError, match="sets an entrypoint or a script"):
        parse_docker_build(0, step, {})


def test_substitutions_replace_both_forms_and_leave_unknown_names_and_escapes() -> None:
    values = {"PROJECT_ID": "p", "_TAG": "v1"}
    assert substitute("r/$PROJECT_ID/web:${_TAG}-$UNKNOWN-$$HOME", values) == "r/p/web:v1-$UNKNOWN-$HOME"


def test_a_source_tarball_is_unpacked_into_the_workspace(tmp_path: Path) -> None:
    assert extract(tarball({"Dockerfile": "FROM base\n", "app/main.py": "print()\n"}), tmp_path) == 2
    assert (tmp_path / "app" / "main.py").read_text() == "print()\n"


def test_links_inside_the_workspace_are_kept(tmp_path: Path) -> None:
    link = tarfile.TarInfo("app/current")
    link.type, link.linkname = tarfile.SYMTYPE, "../Dockerfile"
    extract(tarball({"Dockerfile": "FROM base\n"}, extra=[link]), tmp_path)
    assert (tmp_path / "app" / "current").read_text() == "FROM base\n"


def _unsafe(member: tarfile.TarInfo, tmp_path: Path) -> str:
    with pytest.raises(UnsafeSource) as raised:
        extract(tarball({"Dockerfile": "FROM base\n"}, extra=[member]), tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing at all was unpacked
    return str(raised.value)


def test_a_hard_link_out_of_the_workspace_refuses_the_whole_source(tmp_path: Path) -> None:
    link = tarfile.TarInfo("shadow")
    link.type, link.linkname = tarfile.LNKTYPE, "../etc/shadow"
    assert (
        _unsafe(link, tmp_path) == 'the source archive member "shadow" links to "../etc/shadow", outside the workspace'
    )


def test_an_absolute_symlink_refuses_the_whole_source(tmp_path: Path) -> None:
    link = tarfile.TarInfo("passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    assert _unsafe(link, tmp_path) == 'the source archive member "passwd" links to "/etc/passwd", outside the workspace'


def test_a_device_file_refuses_the_whole_source(tmp_path: Path) -> None:
    device = tarfile.TarInfo("null")
    device.type = tarfile.CHRTYPE
    assert _unsafe(device, tmp_path) == 'the source archive member "null" is a device or pipe, not a file'


def test_a_source_that_is_not_a_tarball_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSource, match="the source is not a tar archive that can be unpacked"):
        extract(b"PK\x03\x04 a zip file", tmp_path)


def test_a_plain_uncompressed_tarball_is_accepted_too(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 0
        archive.addfile(info, io.BytesIO())
    assert extract(buffer.getvalue(), tmp_path) == 1
