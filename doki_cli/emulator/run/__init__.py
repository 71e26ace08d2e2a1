"""Cloud Run: v2 Services and Revisions (validation, revisions and traffic, real containers serving them), and v1's
Knative objects over the same state."""

# The host `doki emulator env` tells gcloud Cloud Run is at (CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN). gcloud puts the
# region in front for regional calls (us-central1-run.doki-emulator) and sends lists to it as is (the global endpoint).
RUN_HOST = "run.doki-emulator"
