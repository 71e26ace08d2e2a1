"""google.devtools.cloudbuild.v1: builds from an uploaded source tarball, run on the local Docker engine."""
