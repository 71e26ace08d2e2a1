"""Cloud Monitoring v3: uptime checks that run for real, alert policies that open incidents, email channels that
"receive" them, and the time series all of that reads and writes.

`Monitoring` is the one object the emulator wires: its configuration (state.py, the rules in validation.py), its
time series (metrics.py, with the monitoring filters of filter.py), the uptime runner (uptime.py), the alerting
(alerting.py) and the gRPC surface (grpc_api.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from doki_cli.emulator.monitoring.alerting import Alerting
from doki_cli.emulator.monitoring.metrics import TimeSeriesStore
from doki_cli.emulator.monitoring.state import MonitoringConfig
from doki_cli.emulator.monitoring.uptime import Result, UptimeRunner

# A revision's full name: projects/P/locations/L/services/S/revisions/R.
_REVISION = re.compile(
    r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/services/(?P<service>[^/]+)/revisions/(?P<revision>[^/]+)"
)
ALERTING_TICK_SECONDS = 30.0


class Monitoring:
    """See the module docstring. `start()` runs the uptime checks on their periods and evaluates the alerting on a
    tick; `stop()` ends both."""

    def __init__(
        self, *, persist: Callable[[], None], service_url: Callable[[str], str | None], clock: Callable[[], float]
    ) -> None:
        self.config = MonitoringConfig(persist=persist, clock=clock, resource_exists=self._exists)
        self._service_url = service_url
        self.metrics = TimeSeriesStore(clock)
        self.alerting = Alerting(self.config, self.metrics, clock)
        self.uptime = UptimeRunner(
            self.config, self.metrics, service_url=service_url, after_run=self._evaluate, clock=clock
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _exists(self, resource: Any) -> bool:
        """Whether the Cloud Run service a cloud_run_revision check names exists (other resources are taken as
        they are: the emulator serves nothing else a check could reach)."""
        if resource.type != "cloud_run_revision":
            return True
        labels = resource.labels
        name = f"projects/{labels['project_id']}/locations/{labels['location']}/services/{labels['service_name']}"
        return self._service_url(name) is not None

    def _evaluate(self) -> None:
        self.alerting.evaluate()

    def start(self) -> None:
        self.uptime.start()
        self._thread = threading.Thread(target=self._tick, name="monitoring-alerting", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.uptime.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _tick(self) -> None:
        while not self._stop.wait(ALERTING_TICK_SECONDS):
            self.alerting.evaluate()

    def run_now(self, project: str | None = None) -> dict[str, Any]:
        """Run the uptime checks (of `project`) now, then the alerting: what the control API answers."""
        results: list[Result] = self.uptime.run(project)
        return {"checks": [result.as_dict() for result in results], "open_incidents": self.alerting.evaluate()}

    def observe_request(self, revision: str, status: int, milliseconds: float) -> None:
        """Cloud Run's request metrics for one answer of `revision` (its full name)."""
        match = _REVISION.fullmatch(revision)
        if match is None:
            return
        resource = {
            "project_id": match["project"],
            "location": match["location"],
            "service_name": match["service"],
            "revision_name": match["revision"],
            "configuration_name": match["service"],
        }
        labels = {"response_code": str(status), "response_code_class": f"{status // 100}xx", "route": ""}
        project = match["project"]
        self.metrics.write(project, "run.googleapis.com/request_count", labels, "cloud_run_revision", resource, 1)
        self.metrics.write(
            project, "run.googleapis.com/request_latencies", labels, "cloud_run_revision", resource, milliseconds
        )

    def snapshot(self) -> dict[str, Any]:
        return self.config.snapshot()

    def restore(self, data: dict[str, Any]) -> None:
        self.config.restore(data)
        self.alerting.restore()
