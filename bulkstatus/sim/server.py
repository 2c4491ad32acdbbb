"""Start and stop the simulator on a loopback port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bulkstatus.sim.app import build_app
from bulkstatus.sim.auth import OAuthTokens
from bulkstatus.sim.config import SimConfig
from bulkstatus.sim.faults import Faults
from bulkstatus.sim.monitor import Monitor
from bulkstatus.sim.state import SimState, utc_now


class Simulator:
    """The simulated API: its settings, what it recorded, and the server serving them.

    `clock` (seconds, default time.monotonic) drives OAuth expiry and the rate-limit window; `now` gives the
    request timestamps (default: naive UTC). Tests pass fakes to check expiry or dates without sleeping.
    `monitor` counts every call served, for `bulkstatus sandbox`'s terminal.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        now: Callable[[], datetime] | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.config = config if config is not None else SimConfig()
        self.monitor = monitor
        self.state = SimState(received_max=self.config.received_max)
        self.clock = clock = clock if clock is not None else time.monotonic
        self.now = now if now is not None else utc_now
        self.faults = Faults(self.config.seed, clock)
        self.tokens = OAuthTokens(clock)
        self.url = ""
        self._runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        return build_app(self)

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Change settings at runtime, from JSON-shaped values (see `SimConfig.update`)."""
        self.config.update(changes)
        if "seed" in changes:
            self.faults.reseed(self.config.seed)
        if "received_max" in changes:
            self.state.resize_received(self.config.received_max)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port) and return the base URL, e.g. http://127.0.0.1:54321."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        # No access log: it would be the only place headers could leak, and it slows bulk runs.
        # Handlers still sleeping (latency, list latency) are cancelled after 2 s, not waited on for 60.
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


async def serve_forever(
    config: SimConfig | None,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
) -> None:
    """Run a simulator until cancelled; `on_ready` gets the base URL once it accepts connections."""
    sim = Simulator(config)
    url = await sim.start(host, port)
    try:
        on_ready(url)
        await asyncio.Event().wait()
    finally:
        await sim.stop()
