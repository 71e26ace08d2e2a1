"""IAM Admin v1 (iam.googleapis.com): the service accounts each project has."""
