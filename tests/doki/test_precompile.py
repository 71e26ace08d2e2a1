"""`python -m doki.precompile`, as the image build runs it: it serves one request and compiles the standard library
modules that took (here into a bytecode cache of the test's own, so the machine's library is left alone)."""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

from tests.helpers import clean_env, run


def test_precompile_compiles_the_standard_library_modules_a_server_loads_and_leaves_no_keys(tmp_path: Path) -> None:
    cache = tmp_path / "pycache"
    env = clean_env(PYTHONPYCACHEPREFIX=str(cache), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    done = run([sys.executable, "-m", "doki.precompile"], cwd=tmp_path, env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    found = re.fullmatch(r"doki\.precompile: compiled (\d+) standard library modules", done.stdout.splitlines()[-1])
    assert found, done.stdout
    stdlib = Path(sysconfig.get_path("stdlib"))
    root = cache / stdlib.relative_to(stdlib.anchor)
    compiled = {str(path.relative_to(root)) for path in root.rglob("*.pyc")}
    tag = sys.implementation.cache_tag
    # What the server needs to start and answer, and what signed-in requests load on first use (ssl, for httpx).
    for module in ("asyncio/__init__", "socket", "json/__init__", "sqlite3/__init__", "hmac", "ssl", "email/utils"):
        assert f"{module}.{tag}.pyc" in compiled
    assert int(found[1]) > 100
    assert list((tmp_path / "tmp").iterdir()) == []  # the development keys it made went with their directory
    assert not (tmp_path / ".doki").exists()
