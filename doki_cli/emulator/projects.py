"""Projects as the emulator knows them.

Google gives every project a number at creation, and names some identities after it: the Compute Engine default
account, PROJECT_NUMBER-compute@developer.gserviceaccount.com, is what Cloud Run runs a revision as when its template
names no account (https://cloud.google.com/run/docs/configuring/services/service-identity). The emulator has no
project creation, so each project's number is derived from its id: twelve digits, as Google's are, and the same on
every start.
"""

from __future__ import annotations

import hashlib


def project_number(project: str) -> int:
    """The number of project `project`: twelve digits, stable for its id."""
    digest = int.from_bytes(hashlib.sha256(project.encode()).digest()[:8], "big")
    return 10**11 + digest % (9 * 10**11)


def compute_default_account(project: str) -> str:
    """The Compute Engine default service account of `project`."""
    return f"{project_number(project)}-compute@developer.gserviceaccount.com"
