"""Uptime checks, run for real: each check's request is sent from each of its checker locations, judged by its
accepted status codes and content matcher, and recorded as Google records it (`check_passed` and
`request_latency` per checker location, labelled with the check's id).

A `cloud_run_revision` check reaches the service's URL: on Google `https://SERVICE-HASH.REGION.run.app` on port 443,
here the loopback URL the emulator serves the service on (its scheme and port replace the check's), with the check's
path. Every checker location sends its own request, so a check from six locations makes six requests, as on Google
(https://cloud.google.com/monitoring/uptime-checks: "uptime checks are run from multiple locations"). The checks run
when their period has passed since their last run (`run_due`, on a background tick) and whenever the control API asks
(`run`), so a test need not wait a minute.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from google.cloud.monitoring_v3 import types

from doki_cli.emulator.monitoring.metrics import TimeSeriesStore
from doki_cli.emulator.monitoring.state import MonitoringConfig
from doki_cli.emulator.monitoring.validation import locations_of

log = logging.getLogger("doki.emulator")

Matcher = types.UptimeCheckConfig.ContentMatcher.ContentMatcherOption
JsonMatcher = types.UptimeCheckConfig.ContentMatcher.JsonPathMatcher.JsonPathMatcherOption
StatusClass = types.UptimeCheckConfig.HttpCheck.ResponseStatusCode.StatusClass
# ContentMatcher: "Only the first 4 MB of an HTTP or HTTPS check's response … are examined".
MAX_EXAMINED_BYTES = 4 * 1024 * 1024
TICK_SECONDS = 5.0
# Probes at once, across checks and locations.
MAX_PROBES = 32


@dataclass(frozen=True)
class Result:
    """One checker location's verdict on one check."""

    check: str  # the check's full name
    location: str  # checker_location, e.g. "usa-oregon"
    passed: bool
    latency_ms: float
    status: int | None  # None: no HTTP answer
    why: str  # what failed, or "" when passed

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "checker_location": self.location,
            "passed": self.passed,
            "latency_ms": round(self.latency_ms, 3),
            "http_status": self.status,
            "why": self.why,
        }


class UptimeRunner:
    """Runs the uptime checks of every project; see the module docstring."""

    def __init__(
        self,
        config: MonitoringConfig,
        metrics: TimeSeriesStore,
        *,
        service_url: Callable[[str], str | None],
        after_run: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        """`service_url(projects/P/locations/L/services/S)`: where the emulator serves that Cloud Run service (None:
        no such service); `after_run()`: what follows each run (the alerting's evaluation)."""
        self._config = config
        self._metrics = metrics
        self._service_url = service_url
        self._after_run = after_run
        self._clock = clock
        self._last_run: dict[str, float] = {}
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._tick, name="monitoring-uptime", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.run_due()
            except Exception:  # a bad check must not stop the others' future runs
                log.exception("uptime checks failed to run")

    def run_due(self) -> list[Result]:
        """Run the checks whose period has passed since they last ran (Google runs each once per period)."""
        now = self._clock()
        with self._run_lock:
            due = [
                check
                for check in self._config.all_of("uptimeCheckConfigs")
                if now - self._last_run.get(check.name, float("-inf")) >= check.period.total_seconds()
            ]
            for check in due:
                self._last_run[check.name] = now
        return self._run(due) if due else []

    def run(self, project: str | None = None) -> list[Result]:
        """Run every check (of `project`) now, whatever its period."""
        checks = self._config.all_of("uptimeCheckConfigs")
        if project is not None:
            checks = [check for check in checks if check.name.split("/")[1] == project]
        return self._run(checks)

    def _run(self, checks: list[types.UptimeCheckConfig]) -> list[Result]:
        """Every location of every check probes at once, as Google's checkers do on their own: a service that hangs
        costs one timeout, not one per location and check."""
        with self._run_lock:
            for check in checks:
                self._last_run[check.name] = self._clock()
        probes = [(check, location) for check in checks for location in locations_of(check)]
        with ThreadPoolExecutor(max_workers=max(1, min(len(probes), MAX_PROBES)), thread_name_prefix="uptime") as pool:
            results = list(pool.map(lambda probe: self._probe(*probe), probes))
        for (check, _), result in zip(probes, results, strict=True):
            self._record(check, result)
        self._after_run()
        return results

    def _record(self, check: types.UptimeCheckConfig, result: Result) -> None:
        project = check.name.split("/")[1]
        resource = check.monitored_resource
        labels = {"check_id": check.name.rsplit("/", 1)[-1], "checker_location": result.location}
        passed = "monitoring.googleapis.com/uptime_check/check_passed"
        self._metrics.write(project, passed, labels, resource.type, dict(resource.labels), result.passed)
        if result.status is not None:
            latency = "monitoring.googleapis.com/uptime_check/request_latency"
            self._metrics.write(project, latency, labels, resource.type, dict(resource.labels), result.latency_ms)

    def _target(self, check: types.UptimeCheckConfig) -> str | None:
        resource = check.monitored_resource
        http_check = check.http_check
        path = http_check.path or "/"
        path = path if path.startswith("/") else "/" + path  # HttpCheck.path: "a "/" will be prepended"
        if resource.type == "cloud_run_revision":
            labels = resource.labels
            name = f"projects/{labels['project_id']}/locations/{labels['location']}/services/{labels['service_name']}"
            base = self._service_url(name)
            return None if base is None else base.rstrip("/") + path
        scheme = "https" if http_check.use_ssl else "http"
        port = http_check.port or (443 if http_check.use_ssl else 80)
        return f"{scheme}://{resource.labels['host']}:{port}{path}"

    def _probe(self, check: types.UptimeCheckConfig, location: str) -> Result:
        target = self._target(check)
        if target is None:
            return Result(check.name, location, False, 0.0, None, "no such Cloud Run service")
        http_check = check.http_check
        method = "POST" if http_check.request_method == types.UptimeCheckConfig.HttpCheck.RequestMethod.POST else "GET"
        url = urllib.parse.urlsplit(target)
        connection_type = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        connection = connection_type(url.hostname or "", url.port, timeout=check.timeout.total_seconds())
        headers = {"User-Agent": "GoogleStackdriverMonitoring-UptimeChecks(https://cloud.google.com/monitoring)"}
        headers.update(dict(http_check.headers))
        started = time.monotonic()
        try:
            connection.request(
                method, url.path + (f"?{url.query}" if url.query else ""), http_check.body or None, headers
            )
            response = connection.getresponse()
            body = response.read(MAX_EXAMINED_BYTES)
        except TimeoutError:
            return Result(check.name, location, False, (time.monotonic() - started) * 1000, None, "timed out")
        except OSError as exc:
            return Result(check.name, location, False, (time.monotonic() - started) * 1000, None, f"no answer: {exc}")
        finally:
            connection.close()
        latency = (time.monotonic() - started) * 1000
        if not _accepted(http_check, response.status):
            return Result(check.name, location, False, latency, response.status, f"status {response.status}")
        if check.content_matchers and not _content_matches(check.content_matchers[0], body):
            return Result(check.name, location, False, latency, response.status, "content did not match")
        return Result(check.name, location, True, latency, response.status, "")


def _accepted(http_check: types.UptimeCheckConfig.HttpCheck, status: int) -> bool:
    """HttpCheck.accepted_response_status_codes: "If no status codes are specified, then all 2xx codes are
    accepted"."""
    accepted = list(http_check.accepted_response_status_codes)
    if not accepted:
        return 200 <= status < 300
    for code in accepted:
        if "status_value" in code and code.status_value == status:
            return True
        if "status_class" in code and code.status_class in (StatusClass.STATUS_CLASS_ANY, status // 100 * 100):
            return True
    return False


def _content_matches(matcher: types.UptimeCheckConfig.ContentMatcher, body: bytes) -> bool:
    text = body.decode("utf-8", "replace")
    option = matcher.matcher or Matcher.CONTAINS_STRING  # UNSPECIFIED: "Treated as CONTAINS_STRING"
    content = matcher.content
    if option == Matcher.CONTAINS_STRING:
        return content in text
    if option == Matcher.NOT_CONTAINS_STRING:
        return content not in text
    if option in (Matcher.MATCHES_REGEX, Matcher.NOT_MATCHES_REGEX):
        found = re.search(content, text) is not None
        return found if option == Matcher.MATCHES_REGEX else not found
    json_path = matcher.json_path_matcher
    found = _json_path_matches(text, json_path.json_path, json_path.json_matcher, content)
    return found if option == Matcher.MATCHES_JSON_PATH else not found


_STEP = re.compile(r"\.(?P<key>[A-Za-z0-9_\-]+)|\[(?P<index>\d+)\]|\['(?P<quoted>[^']*)'\]")


def _json_path_matches(text: str, path: str, how: int, content: str) -> bool:
    """The JSONPath subset of dotted keys and indexes ($.a.b[0], $['a']): the value there, as a JSON string's
    text or as other JSON's text, compared exactly or by regular expression."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        return False
    rest = path[1:] if path.startswith("$") else path
    position = 0
    while position < len(rest):
        step = _STEP.match(rest, position)
        if step is None:
            return False
        position = step.end()
        key = step["key"] if step["key"] is not None else step["quoted"]
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                return False
            value = value[key]
        else:
            index = int(step["index"])
            if not isinstance(value, list) or index >= len(value):
                return False
            value = value[index]
    shown = value if isinstance(value, str) else json.dumps(value)
    if how == JsonMatcher.REGEX_MATCH:
        return re.fullmatch(content, shown) is not None
    return shown == content
