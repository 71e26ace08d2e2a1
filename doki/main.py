"""`doki.main:app` for uvicorn: the backend built from the environment.

A configuration problem ends the process with every problem listed and exit code 78 (EX_CONFIG), instead of a
traceback: it is what an operator reads in Cloud Run's logs when a revision fails to start.
"""

import sys

from fastapi import FastAPI

from doki.app import create_app
from doki.settings import EXIT_CONFIG, ConfigError, read_settings


def build() -> FastAPI:
    try:
        # create_app fills development defaults and checks every setting itself.
        return create_app(read_settings())
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


app = build()
