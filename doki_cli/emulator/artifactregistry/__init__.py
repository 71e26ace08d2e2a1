"""google.devtools.artifactregistry.v1: Docker repositories, where Cloud Build "pushes" images."""
