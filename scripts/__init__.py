"""Developer tools that are no part of either product: the lock export and check, the newest-versions run."""
