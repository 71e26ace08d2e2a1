"""google.cloud.run.v2 Services and Revisions: validation, revisions and traffic, and real containers serving them."""
