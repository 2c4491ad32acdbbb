"""Run the simulator on its own event loop in a daemon thread, for tests that are not async."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from types import TracebackType

from bulkstatus.sim import SimConfig, Simulator


class SimulatorThread:
    """Context manager: a running Simulator at `url`; `sim.state` and `sim.config` stay usable meanwhile.

    Reading `sim.state` from the test's thread is safe (it locks); assigning `sim.config` attributes takes
    effect with the next call the simulator handles.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.sim = Simulator(config, clock=clock, now=now)
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulator", daemon=True)

    @property
    def config(self) -> SimConfig:
        return self.sim.config

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.sim.start(), self._loop)
        try:
            self.url = future.result(timeout=10)
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(timeout=10)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
