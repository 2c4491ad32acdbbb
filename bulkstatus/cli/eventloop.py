"""Which event loop runs a command: the standard one, or uvloop when asked for.

``BULKSTATUS_LOOP=uvloop`` runs on uvloop (``pip install 'bulkstatus[uvloop]'``). It is not the default:
with transport.py's protocol, an A/B of ``run --rate 0`` on 20,000 rows against nginx, five alternating
runs each, gave the same CPU (median 4.37 s on uvloop, 4.40 s on the standard loop) and the same
throughput (benchmarks/README.md), so it does not earn a place as a dependency.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from bulkstatus.errors import ConfigError

T = TypeVar("T")
ENV = "BULKSTATUS_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")


def loop_choice() -> str:
    choice = os.environ.get(ENV, "").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ConfigError(f"{ENV}={choice!r} is not an event loop: use uvloop, asyncio, or leave it unset")
    return choice


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``; on uvloop when ``BULKSTATUS_LOOP=uvloop``."""
    if loop_choice() == "uvloop":
        try:
            import uvloop
        except ImportError:
            main.close()
            raise ConfigError(f"{ENV}=uvloop but uvloop is not installed: pip install uvloop, or unset "
                              f"{ENV}") from None
        result: T = uvloop.run(main)
        return result
    return asyncio.run(main)
