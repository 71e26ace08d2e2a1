"""The deployment guide (deployment-guide.md beside this file, a verbatim copy of the guide doki replaces) as a
script: its bash blocks, command by command, run in one shell against the emulator.

A command runs as the guide writes it, but for the placeholder values it asks the reader to replace (VALUES) and the
deviations this machine forces (DEVIATIONS: no registry or Google host is reachable here), each given with its
reason. The shell keeps the guide's exports and `SERVICE_URL=$(...)` between commands, as a reader's would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import run

GUIDE = Path(__file__).with_name("deployment-guide.md")
_HEADING_OR_BLOCK = re.compile(r"^(#{2,3} [^\n]*)$|^```bash\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Command:
    section: str  # the heading it is under, e.g. "### 4. Deploy to Cloud Run"
    text: str  # one command, its backslash continuations joined as bash joins them


def commands(guide: Path = GUIDE) -> list[Command]:
    """Every command of the guide's bash blocks, in order. Comment lines go; a `\\` before a newline joins lines as
    bash does (so a comment after a `\\` ends the command there, as it does in bash)."""
    found = []
    section = ""
    for match in _HEADING_OR_BLOCK.finditer(guide.read_text()):
        if match[1]:
            section = match[1]
            continue
        joined = re.sub(r"\\\n\s*", " ", match[2])
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                found.append(Command(section, line))
    return found


def in_section(section: str) -> list[Command]:
    return [command for command in commands() if command.section == section]


@dataclass(frozen=True)
class Step:
    command: str
    returncode: int
    stdout: str
    stderr: str


class Shell:
    """One bash session: `shell(command)` runs a command in it and returns its Step. The variables the guide's
    commands set (`export NAME=…`, `NAME=$(…)`) carry over to the later commands, as in a reader's terminal."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self._state = cwd / ".guide-shell-state"
        self._state.write_text("")
        self._variables: list[str] = []
        self.steps: list[Step] = []

    def __call__(self, command: str) -> Step:
        assigned = _ASSIGNMENT.match(command)
        if assigned and assigned[1] not in self._variables:
            self._variables.append(assigned[1])
        keep = f"declare -p {' '.join(self._variables)} > {self._state} 2>/dev/null\n" if self._variables else ""
        # `set -o pipefail`, so `echo -n … | gcloud secrets create …` fails when gcloud does.
        script = f"set -o pipefail\nsource {self._state}\n{command}\nstatus=$?\n{keep}exit $status\n"
        done = run(["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=600)
        step = Step(command, done.returncode, done.stdout, done.stderr)
        self.steps.append(step)
        return step

    def ok(self, command: str) -> Step:
        step = self(command)
        assert step.returncode == 0, f"{command}\nfailed ({step.returncode}):\n{step.stderr}"
        return step


_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Z_][A-Z0-9_]*)=")
