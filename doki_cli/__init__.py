"""The `doki` command: run the Doki backend locally and deploy it to Google Cloud Run.

Only typer and rich load at start-up; every heavier import (google.cloud, grpc, docker, the backend itself) lives
inside the command that needs it, so `doki --help` answers at once.
"""
