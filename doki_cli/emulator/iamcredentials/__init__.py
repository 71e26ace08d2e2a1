"""IAM Service Account Credentials (iamcredentials.googleapis.com): identity tokens minted for service accounts."""
