"""Fault injection: make the next calls of a method fail, lose their answers, slow down long-running operations,
make revisions fail.

Driven through the control API (`POST /_doki/faults`) or directly by tests; every gRPC and REST call passes
`check()` first (and so does every request to a Cloud Run service URL, as the method `Invoke`). The plan also counts
calls per method, so a test can tell whether a client retried. In-process tests can also hook a call (`on_call`):
to act at the exact moment a client reaches a step, such as interrupting it while it waits on that call.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from doki_cli.emulator.errors import ApiError, invalid_argument, status_code


@dataclass
class _Failure:
    method: str
    code: grpc.StatusCode
    remaining: int
    message: str
    # Served, then answered with the error instead of the result: the change is made and the client never hears
    # of it, as when a connection drops after Google acted on a request.
    after: bool = False


@dataclass
class _Hook:
    method: str
    remaining: int  # matching calls still to come before this one fires
    callback: Callable[[str], None]


def _matches(pattern: str, full_method: str) -> bool:
    # "/google.cloud.run.v2.Services/UpdateService", "Services/UpdateService" and "UpdateService" all match.
    return (
        full_method == pattern or full_method.endswith("/" + pattern.lstrip("/")) or full_method.endswith("." + pattern)
    )


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._revision_failures: list[tuple[str, int, str]] = []
        self._hooks: list[_Hook] = []
        self.lro_delay = 0.0
        self.calls: Counter[str] = Counter()

    def fail(
        self, method: str, code: str, *, times: int = 1, message: str | None = None, answer_lost: bool = False
    ) -> None:
        """Fail the next `times` calls of `method` with status `code` (a name such as "UNAVAILABLE").

        `answer_lost`: serve each call first, then answer the error in place of the result."""
        if times < 1:
            raise invalid_argument(f"times must be at least 1, not {times}")
        status = status_code(code)
        if status is grpc.StatusCode.OK:
            raise invalid_argument("OK is not a failure; use a status such as UNAVAILABLE")
        text = message or f"injected {status.name} for {method}" + (" after serving it" if answer_lost else "")
        with self._lock:
            self._failures.append(_Failure(method, status, times, text, after=answer_lost))

    def on_call(self, method: str, callback: Callable[[str], None], *, call: int = 1) -> None:
        """Run `callback(full method)` once, on the `call`-th call of `method` counted from now, before it is served.

        It runs in the thread serving the call, outside the plan's lock: it may block (the caller then waits on that
        call, as on a slow network) or raise an ApiError (the call fails with it); the call is served once it returns.
        """
        if call < 1:
            raise invalid_argument(f"call must be at least 1, not {call}")
        with self._lock:
            self._hooks.append(_Hook(method, call, callback))

    def fail_revisions(self, service: str, *, times: int = 1, message: str | None = None) -> None:
        """Make the next `times` revisions of `service` (its short name, or "*") fail to become Ready."""
        text = message or "The user-provided container failed to start and listen on the port defined by PORT."
        with self._lock:
            self._revision_failures.append((service, times, text))

    def take_revision_failure(self, service: str) -> str | None:
        """The injected failure for a new revision of `service`, consumed, or None."""
        with self._lock:
            for index, (pattern, remaining, message) in enumerate(self._revision_failures):
                if pattern in ("*", service):
                    if remaining <= 1:
                        del self._revision_failures[index]
                    else:
                        self._revision_failures[index] = (pattern, remaining - 1, message)
                    return message
        return None

    def check(self, full_method: str) -> None:
        """Count the call, run the hooks it reaches, then raise the first pending failure planned for it."""
        with self._lock:
            self.calls[full_method] += 1
            reached = []
            for hook in [h for h in self._hooks if _matches(h.method, full_method)]:
                hook.remaining -= 1
                if hook.remaining == 0:
                    self._hooks.remove(hook)
                    reached.append(hook.callback)
        for callback in reached:
            callback(full_method)
        self._raise_planned(full_method, after=False)

    def check_answer(self, full_method: str) -> None:
        """After a call was served: raise the first pending lost-answer failure planned for it."""
        self._raise_planned(full_method, after=True)

    def _raise_planned(self, full_method: str, *, after: bool) -> None:
        with self._lock:
            for failure in self._failures:
                if failure.after is after and failure.remaining > 0 and _matches(failure.method, full_method):
                    failure.remaining -= 1
                    if failure.remaining == 0:
                        self._failures.remove(failure)
                    raise ApiError(failure.code, failure.message)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._revision_failures.clear()
            self._hooks.clear()
            self.lro_delay = 0.0
            self.calls.clear()

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "failures": [
                    {
                        "method": f.method,
                        "code": f.code.name,
                        "remaining": f.remaining,
                        "message": f.message,
                        "answer_lost": f.after,
                    }
                    for f in self._failures
                ],
                "revision_failures": [
                    {"service": s, "remaining": n, "message": m} for s, n, m in self._revision_failures
                ],
                "lro_delay": self.lro_delay,
                "calls": dict(self.calls),
            }
