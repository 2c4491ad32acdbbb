"""Which event loop runs a command: uvloop when it is installed, the standard one otherwise.

uvloop (libuv underneath) cuts the per-request cost of the loop and its socket transports: with
transport.py's protocol, about 40 us of CPU per request against about 70-100 us on the standard loop. ``BULKSTATUS_LOOP=asyncio`` is the
escape hatch: the standard loop, for a platform or a debugger that does not get on with uvloop.
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
    """``asyncio.run(main)``, on uvloop unless ``BULKSTATUS_LOOP=asyncio`` or uvloop is missing."""
    choice = loop_choice()
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                main.close()
                raise ConfigError(f"{ENV}=uvloop but uvloop is not installed: pip install uvloop, or unset "
                                  f"{ENV}") from None
        else:
            result: T = uvloop.run(main)
            return result
    return asyncio.run(main)
