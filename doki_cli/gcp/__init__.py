"""Google Cloud through its official client libraries: the client factory and one adapter per API."""
