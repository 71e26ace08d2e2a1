"""google.longrunning.Operations: the operations every other service's long-running calls return."""
