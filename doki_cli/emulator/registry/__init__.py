"""A Docker registry (the Registry HTTP API v2, the OCI distribution spec) in front of the emulated Artifact Registry.

`docker push` and `docker pull` on the local engine really talk to it over loopback, so `doki build --push` moves
real bytes; a tagged manifest push is recorded as a Docker image of the Artifact Registry repository it belongs to.
"""
