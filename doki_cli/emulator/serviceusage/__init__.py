"""google.api.serviceusage.v1: which APIs each project has enabled, and the gate that refuses calls to the others."""
