"""Run-wide state the workers consult: stop requests, aborts, and the health of recent attempts."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from bulkstatus.api.calls import Watcher
from bulkstatus.logs import scrub
from bulkstatus.run.metrics import Metrics


class StopControl:
    """Why the run is stopping, if it is. Workers start no new row once ``stopping`` is set."""

    def __init__(self) -> None:
        self.interrupted = False  # SIGINT / SIGTERM
        self.abort_reason: str | None = None

    @property
    def stopping(self) -> bool:
        return self.interrupted or self.abort_reason is not None

    def interrupt(self) -> None:
        self.interrupted = True

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = scrub(reason)  # it may quote the server, which may quote us


class Health:
    """Watches recent attempts; reports when most have failed with retryable errors for too long.

    A window of the last ``window`` attempts; when at least ``threshold`` of them failed, the clock
    starts; it stops at the first window that is healthy again. ``bound`` seconds of continuous sickness
    means the service (or our access to it) is down, and the run should stop rather than grind on.
    """

    def __init__(self, bound: float, window: int = 20, threshold: float = 0.8,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bound = bound
        self._recent: deque[bool] = deque(maxlen=window)
        self._threshold = threshold
        self._clock = clock
        self._sick_since: float | None = None
        self.transient_failures = 0

    def observe(self, ok: bool) -> None:
        if not ok:
            self.transient_failures += 1
        self._recent.append(ok)
        full = len(self._recent) == self._recent.maxlen
        failing = full and self._recent.count(False) >= self._threshold * len(self._recent)
        if failing and self._sick_since is None:
            self._sick_since = self._clock()
        elif not failing:
            self._sick_since = None

    def exhausted(self) -> bool:
        return self._sick_since is not None and self._clock() - self._sick_since >= self.bound


class RunWatch(Watcher):
    """What the API calls of a run report to: the health watch, the run's metrics, and whether the run
    is stopping."""

    def __init__(self, stop: StopControl, health: Health, metrics: Metrics | None = None) -> None:
        self.stop = stop
        self.health = health
        self.metrics = metrics

    def observe(self, ok: bool) -> None:
        self.health.observe(ok)

    def attempt(self, answer: str, seconds: float | None) -> None:
        if self.metrics is not None:
            self.metrics.attempt(answer, seconds)

    def paused(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.paused(seconds)

    @property
    def stopping(self) -> bool:
        return self.stop.stopping
