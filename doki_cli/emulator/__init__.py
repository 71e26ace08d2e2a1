"""`doki emulator`: a local Google control plane that the official client libraries and gcloud talk to unchanged.

One gRPC port serves Secret Manager, Cloud Run v2, long-running operations, Cloud Build, Artifact Registry and
Cloud Logging; one HTTP port serves the REST surfaces gcloud and google-cloud-storage use, plus doki's control API
(status, fault injection). `server.Emulator` wires the services together; each service is a package with its state
kept apart from its request handlers.

The emulator imports nothing else of doki (pyproject.toml's import rules check it): the container engine comes in
through `engine.ContainerEngine`, and `process.EmulatorError` is what `doki emulator` reports as doki's own error.
"""
