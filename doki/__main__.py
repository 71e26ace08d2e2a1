"""`python -m doki`: serve the backend on 0.0.0.0:$PORT, as a container must (the image's command)."""

import sys

import uvicorn

from doki.settings import EXIT_CONFIG, ConfigError, read_settings


def main() -> None:
    try:
        port = read_settings().port
    except ConfigError as exc:
        # Listed as doki.main lists what the app refuses: every problem, exit 78 (EX_CONFIG), no traceback.
        print(exc.render(), file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    # One process per container: Cloud Run scales by instances. Its load balancer logs every request, so the
    # per-request access log would only double the log bill.
    uvicorn.run(
        "doki.main:app",
        host="0.0.0.0",
        port=port,
        proxy_headers=True,
        forwarded_allow_ips="*",
        access_log=False,
    )


if __name__ == "__main__":
    main()
