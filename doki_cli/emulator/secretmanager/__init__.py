"""google.cloud.secretmanager.v1 over gRPC and REST (what gcloud and the REST transport send), one shared state."""
