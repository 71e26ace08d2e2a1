"""`python -m doki`: serve the backend on 0.0.0.0:$PORT, as a container must (the image's command)."""

import uvicorn

from doki.settings import ConfigError, Settings


def main() -> None:
    try:
        port = Settings().port
    except (ConfigError, ValueError) as exc:
        raise SystemExit(f"Doki cannot start: {exc}") from None
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
