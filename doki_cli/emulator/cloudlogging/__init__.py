"""google.logging.v2 LoggingServiceV2: write, list and tail log entries, with the filter subset doki uses."""
