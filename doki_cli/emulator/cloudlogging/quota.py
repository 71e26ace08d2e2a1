"""Cloud Logging's read quota: entries.list calls per minute, per project.

Google allows 60 entries.list requests a minute per project, a limit that cannot be raised
(https://cloud.google.com/logging/quotas, "Number of entries.list requests: 60 per minute, per Google Cloud
project"), and answers the next one RESOURCE_EXHAUSTED with an ErrorInfo whose reason is RATE_LIMIT_EXCEEDED and whose
quota_limit is ReadRequestsPerMinutePerProject (as users report it verbatim: googleapis/java-logging#1129,
snarfed/bridgy-fed#620, DefangLabs/defang#1268). Every reader of a project shares it: `doki logs`, the console,
a polling loop. The emulator counts calls in a sliding minute of its own clock, on by default, so no test hides a
loop that would exhaust it; a test that means to read more sets the project's limit through the control API.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import grpc
from google.rpc import error_details_pb2

from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.projects import project_number

READ_REQUESTS_PER_MINUTE = 60
WINDOW_SECONDS = 60.0


class ReadQuota:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}
        self._limits: dict[str, int | None] = {}

    def set_limit(self, project: str, per_minute: int | None) -> None:
        """`per_minute` calls a minute for `project` from now on; None: no limit."""
        with self._lock:
            self._limits[project] = per_minute

    def limit(self, project: str) -> int | None:
        with self._lock:
            return self._limits.get(project, READ_REQUESTS_PER_MINUTE)

    def charge(self, project: str) -> None:
        """Count one entries.list call by `project`, or refuse it as Google does when its minute's calls are spent."""
        now = self._clock()
        with self._lock:
            limit = self._limits.get(project, READ_REQUESTS_PER_MINUTE)
            if limit is None:
                return
            calls = self._calls.setdefault(project, deque())
            while calls and calls[0] <= now - WINDOW_SECONDS:
                calls.popleft()
            if len(calls) >= limit:
                raise quota_exceeded(project, limit)
            calls.append(now)


def quota_exceeded(project: str, limit: int) -> ApiError:
    number = project_number(project)
    info = error_details_pb2.ErrorInfo(
        reason="RATE_LIMIT_EXCEEDED",
        domain="googleapis.com",
        metadata={
            "consumer": f"projects/{number}",
            "quota_limit": "ReadRequestsPerMinutePerProject",
            "quota_limit_value": str(limit),
            "quota_location": "global",
            "quota_metric": "logging.googleapis.com/read_requests",
            "quota_unit": "1/min/{project}",
            "service": "logging.googleapis.com",
        },
    )
    help_link = error_details_pb2.Help(
        links=[
            error_details_pb2.Help.Link(
                description="Request a higher quota limit.",
                url="https://cloud.google.com/docs/quotas/help/request_increase",
            )
        ]
    )
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service "
        f"'logging.googleapis.com' for consumer 'project_number:{number}'.",
        (info, help_link),
    )
