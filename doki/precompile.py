"""`python -m doki.precompile`: compile the standard library modules the backend loads, at image build time.

The official python image deletes the standard library's bytecode, and a container never writes any: without this,
every cold start would compile a hundred and more of its modules again (half the time to the first answer). Compiling
the whole library would cost 13 MB of image; this compiles what a server loads, found by running one: it starts as
`python -m doki` starts it, answers a request, and loads what the first signed-in requests load.
"""

import os
import py_compile
import socket
import sys
import sysconfig
import tempfile
import threading
import time

# What a signed-in request, a connector or the first encryption loads on first use rather than at start-up.
LOADED_ON_FIRST_USE = ("doki.auth.verifier", "cryptography.fernet", "httpx", "jwt")
START_DEADLINE_SECONDS = 60.0


def serve_one_request() -> None:
    """Start the backend on a free loopback port, answer `GET /`, stop it."""
    import uvicorn

    config = uvicorn.Config("doki.main:app", host="127.0.0.1", port=0, proxy_headers=True, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("doki.precompile: the backend did not start; its output is above")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = connection.recv(65536)
    server.should_exit = True
    thread.join()
    if b" 200 " not in answer.split(b"\r\n", 1)[0]:
        raise SystemExit(f"doki.precompile: GET / answered {answer[:200]!r}")


def main() -> None:
    with tempfile.TemporaryDirectory() as state:
        # Development settings with keys made for this run and thrown away: none may stay in the image.
        os.environ["DOKI_STATE_DIR"] = state
        serve_one_request()
        for module in LOADED_ON_FIRST_USE:
            __import__(module)
    stdlib = sysconfig.get_path("stdlib") + os.sep
    sources = sorted(
        {
            path
            for module in list(sys.modules.values())
            if (path := getattr(module, "__file__", None) or "").startswith(stdlib) and path.endswith(".py")
        }
    )
    for source in sources:
        # Unchecked: the image never changes these files, so no start spends time checking them.
        py_compile.compile(source, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    print(f"doki.precompile: compiled {len(sources)} standard library modules")


if __name__ == "__main__":
    main()
