"""Run the simulator on its own event loop in a daemon thread, for tests that are not async."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Self

import aiohttp

from bulkstatus.sim import SimConfig, Simulator


@asynccontextmanager
async def serving(config: SimConfig | None = None, **kwargs: Any
                  ) -> AsyncIterator[tuple[Simulator, aiohttp.ClientSession]]:
    """A simulator on loopback in this event loop, and a client session pointed at it."""
    sim = Simulator(config, **kwargs)
    url = await sim.start()
    try:
        async with aiohttp.ClientSession(base_url=url) as session:
            yield sim, session
    finally:
        await sim.stop()


class LoopThread:
    """A server on its own event loop in a daemon thread: subclasses give ``_start`` (returns the URL) and
    ``_stop``; ``with`` starts and stops it, and ``url`` is where it listens."""

    def __init__(self, name: str) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    async def _start(self) -> str:
        raise NotImplementedError

    async def _stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class SimulatorThread(LoopThread):
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
        super().__init__("simulator")
        self.sim = Simulator(config, clock=clock, now=now)

    async def _start(self) -> str:
        return await self.sim.start()

    async def _stop(self) -> None:
        await self.sim.stop()

    @property
    def config(self) -> SimConfig:
        return self.sim.config
