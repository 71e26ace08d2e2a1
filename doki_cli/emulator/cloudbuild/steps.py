"""Build steps the emulator can run: `gcr.io/cloud-builders/docker build ...`, read the way the docker CLI reads it.

Any other step (another builder, an entrypoint, a script, `docker push`...) is refused with a StepError that says so:
the emulator runs builds on the local Docker engine's build API, not arbitrary containers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from google.cloud.devtools import cloudbuild_v1 as cb

DOCKER_BUILDER = "gcr.io/cloud-builders/docker"
# Flags that take a value, by every spelling the docker CLI accepts.
TAG_FLAGS = ("-t", "--tag")
FILE_FLAGS = ("-f", "--file")
BUILD_ARG_FLAG = "--build-arg"
# Accepted and ignored: the engine builds with host networking (Cloud Build's "cloudbuild" network is what lets steps
# reach the metadata server, which the emulator does not have); a fresh local build has no registry cache to use.
IGNORED_VALUE_FLAGS = ("--network", "--cache-from")
IGNORED_FLAGS = ("--pull", "-q", "--quiet")
SUBSTITUTION = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class StepError(Exception):
    """A step the emulator cannot run, with the reason as Cloud Build's status_detail would carry it."""


@dataclass(frozen=True)
class DockerBuild:
    """`docker build` as a step asked for it; paths are relative to the step's directory."""

    context: str
    tags: list[str]
    dockerfile: str | None
    build_args: dict[str, str]
    no_cache: bool


def is_docker_builder(name: str) -> bool:
    """True for the docker builder, with or without a tag or digest."""
    return name == DOCKER_BUILDER or name.startswith((DOCKER_BUILDER + ":", DOCKER_BUILDER + "@"))


def with_tag(image: str) -> str:
    """`image` with an explicit tag (":latest" when it has none), as docker names what it builds and pushes."""
    last = image.rsplit("/", 1)[-1]
    if ":" in last or "@" in last:
        return image
    return image + ":latest"


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace $NAME and ${NAME} with `values`; "$$" is a literal "$"; unknown names stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name = match.group(2) or match.group(3)
        return values.get(name, match.group(0))

    return SUBSTITUTION.sub(replace, text)


def parse_docker_build(index: int, step: cb.BuildStep, env: Mapping[str, str]) -> DockerBuild:
    """The docker build step `step` (number `index`) asks for; `env` resolves `--build-arg NAME` without a value."""
    label = f'step {index} ("{step.name}")'
    if not is_docker_builder(step.name):
        raise StepError(
            f"the emulator runs only docker build steps ({DOCKER_BUILDER} with args build ...); {label} is not one"
        )
    if step.entrypoint not in ("", "docker") or step.script:
        raise StepError(f"the emulator runs only docker build steps; {label} sets an entrypoint or a script")
    args = list(step.args)
    if not args or args[0] != "build":
        command = " ".join(args) or "(no args)"
        raise StepError(f"the emulator runs only docker build steps; {label} runs `docker {command}`")
    tags: list[str] = []
    dockerfile: str | None = None
    build_args: dict[str, str] = {}
    no_cache = False
    positional: list[str] = []
    rest = args[1:]
    while rest:
        arg = rest.pop(0)
        flag, has_inline, inline = arg.partition("=")
        if flag in (*TAG_FLAGS, *FILE_FLAGS, BUILD_ARG_FLAG, *IGNORED_VALUE_FLAGS):
            if has_inline:
                value = inline
            elif rest:
                value = rest.pop(0)
            else:
                raise StepError(f"{label}: flag needs an argument: {flag}")
            if flag in TAG_FLAGS:
                tags.append(with_tag(value))
            elif flag in FILE_FLAGS:
                dockerfile = value
            elif flag == BUILD_ARG_FLAG:
                name, has_value, given = value.partition("=")
                if has_value:
                    build_args[name] = given
                elif name in env:
                    build_args[name] = env[name]
        elif arg == "--no-cache":
            no_cache = True
        elif arg in IGNORED_FLAGS:
            continue
        elif arg.startswith("-") and arg != "-":
            raise StepError(f"{label}: the emulator does not support the docker build option {flag}")
        else:
            positional.append(arg)
    if len(positional) != 1:
        raise StepError(f'{label}: "docker build" requires exactly 1 argument (the build context)')
    if positional[0] == "-":
        raise StepError(f"{label}: the emulator cannot read a build context from stdin")
    if not tags:
        # The engine names what it builds by its first tag; an untagged build could not be found again.
        raise StepError(f"{label}: the emulator needs at least one -t TAG on a docker build step")
    return DockerBuild(positional[0], tags, dockerfile, build_args, no_cache)
