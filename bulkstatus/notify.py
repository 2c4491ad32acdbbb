"""A word when a command ends: a JSON summary POSTed to each ``--notify`` URL.

The message is summary.json with the run folder, the command, its status and exit code, and a ``text``
paragraph for people (what a Slack or Teams incoming webhook shows). Every string in it passes through
the secret filter. A webhook URL may itself hold a token (Slack's path does), so a URL is only ever
shown as ``scheme://host``, and its path and query are added to the secrets the log filter masks.

Delivery is bounded: at most ``attempts`` POSTs per URL, all within ``total`` seconds, waiting
``backoff`` seconds and then twice that between them (never past the deadline). A connection error, a
timeout, a 429 or a 5xx is tried again; any other answer is final. A notification that fails is one
warning line; it never changes the exit status (the CLI ignores what ``deliver`` returns but the log).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bulkstatus import __version__, logs
from bulkstatus.errors import ConfigError

log = logging.getLogger(__name__)


def redact_url(url: str) -> str:
    """``scheme://host[:port]``: what may be shown of a URL (no user, password, path or query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a URL that cannot be parsed)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme or '?'}://{host}{port}"


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that must never be shown: its path and query, and a password in it (masking
    them masks the URL too, and leaves what ``redact_url`` shows)."""
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return [s for s in (tail, parts.password or "") if len(s) >= 4]


def parse_urls(value: Any, where: str = "--notify") -> tuple[str, ...]:
    """URLs from a repeated flag or a TOML array (a list), or from one string (the environment variable,
    a TOML string) separated by white space, which a URL cannot hold unescaped (commas it can)."""
    items: Iterable[Any] = value.split() if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{where} must be a URL or a list of URLs")
    urls: list[str] = []
    for item in items:
        url = str(item).strip()
        if not url:
            continue
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            ok = False
        if not ok and "://" not in url:
            raise ConfigError(f"{where}: a value does not start with https:// or http:// (not shown: it may hold "
                              "a token): give the webhook's whole URL")
        if not ok:
            raise ConfigError(f"{where}: {redact_url(url)} is not an http:// or https:// URL with a host: "
                              "give the webhook's whole URL")
        logs.add_secrets(url_secrets(url))
        if url not in urls:
            urls.append(url)
    return tuple(urls)


@dataclass(frozen=True, slots=True)
class Policy:
    attempts: int = 3
    backoff: float = 1.0  # seconds before the second attempt; doubled before the third
    total: float = 10.0  # seconds for every attempt of one URL together


@dataclass(frozen=True, slots=True)
class Delivery:
    where: str  # scheme://host
    ok: bool
    attempts: int
    detail: str  # "HTTP 200", "HTTP 500", "no answer within 10 s", ...


def _count_text(counts: Mapping[str, Any]) -> str:
    parts = [f"{name} {n:,}" for name, n in counts.items() if isinstance(n, int) and n]
    return ", ".join(parts) or "no rows"


def summary_text(message: Mapping[str, Any]) -> str:
    """One paragraph for people, from the message's own fields."""
    command = message.get("command", "run")
    folder = message.get("folder", "?")
    host = message.get("host", "")
    where = f" on {host}" if host else ""
    exit_code = message.get("exitCode")
    if command == "track":
        tracking: Mapping[str, Any] = message.get("tracking") or {}
        counts: Mapping[str, Any] = tracking.get("counts") or {}
        text = (f"bulkstatus track{where}: exit {exit_code}; {tracking.get('requests', 0):,} requests: "
                f"{_count_text(counts)}. Run folder: {folder}.")
        return text if not tracking.get("timedOut") else text + " Still not final when --wait-timeout ran out."
    input_path = message.get("input", {}).get("path", "") if isinstance(message.get("input"), dict) else ""
    name = input_path.rsplit("/", 1)[-1] or "?"
    if not isinstance(message.get("counts"), dict):
        return (f"bulkstatus {command}{where}: {message.get('status', '?')}, exit {exit_code}; stopped at once, "
                f"so its files say how far it got. Continue with: bulkstatus resume {folder}")
    counts = message["counts"]
    rows = message.get("rows", 0)
    text = (f"bulkstatus {command} of {name}{where}: {message.get('status', '?')}, exit {exit_code}. "
            f"{rows:,} rows: {_count_text(counts)}.")
    if message.get("requestsStarted"):
        text += (f" {message['requestsStarted']:,} requests in {message.get('durationSeconds', 0):.1f} s "
                 f"(over every session).")
    if message.get("dryRun"):
        text += " Dry run: nothing was sent."
    if message.get("abortReason"):
        text += f" Stopped: {message['abortReason']}."
    text += f" Run folder: {folder}."
    if counts.get("unprocessed") and not message.get("dryRun"):
        text += f" Continue with: bulkstatus resume {folder}"
    return text


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return logs.scrub(value)
    if isinstance(value, dict):
        return {str(k): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


def build_message(summary: Mapping[str, Any], command: str, folder: str, status: str,
                  exit_code: int) -> dict[str, Any]:
    """What is POSTed: summary.json's fields, then ours (they win), then the text; secrets masked."""
    message: dict[str, Any] = dict(summary)
    message.update(command=command, folder=folder, status=status, exitCode=exit_code, host=socket.gethostname())
    message["text"] = summary_text(message)
    scrubbed: dict[str, Any] = _scrubbed(message)
    return scrubbed


async def _post(session: Any, url: str, body: bytes, policy: Policy) -> Delivery:
    import aiohttp

    where = redact_url(url)
    deadline = time.monotonic() + policy.total
    detail = "not tried"
    made = 0
    for attempt in range(1, policy.attempts + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        made = attempt
        try:
            async with session.post(url, data=body, timeout=aiohttp.ClientTimeout(total=left),
                                    headers={"Content-Type": "application/json",
                                             "User-Agent": f"bulkstatus/{__version__}"}) as answer:
                await answer.read()
                status = answer.status
        except TimeoutError:
            detail = f"no answer within {policy.total:g} s"
            continue  # the budget is spent
        except aiohttp.ClientError as exc:  # its text may hold the URL: only its kind is shown
            detail = f"no answer ({type(exc).__name__})"
        else:
            detail = f"HTTP {status}"
            if 200 <= status < 300:
                return Delivery(where, True, attempt, detail)
            if status != 429 and status < 500:
                return Delivery(where, False, made, detail)
        if attempt < policy.attempts:
            wait = min(policy.backoff * 2 ** (attempt - 1), max(deadline - time.monotonic(), 0))
            if wait > 0:
                await asyncio.sleep(wait)
    return Delivery(where, False, made, detail)


async def deliver(urls: Sequence[str], message: Mapping[str, Any], policy: Policy) -> list[Delivery]:
    """POST ``message`` to every URL at once; each is bounded by ``policy.total`` seconds."""
    import aiohttp

    from bulkstatus.jsonio import dumps

    body = dumps(message)
    # trust_env: a webhook outside the company network is reached through the standard proxy variables.
    async with aiohttp.ClientSession(trust_env=True) as session:
        return list(await asyncio.gather(*(_post(session, url, body, policy) for url in urls)))


def notify(urls: Sequence[str], message: Mapping[str, Any], policy: Policy) -> list[Delivery]:
    """Deliver and log one line per URL: INFO when delivered, WARNING when not. Never raises."""
    try:
        deliveries = asyncio.run(deliver(urls, message, policy))
    except Exception as exc:  # a notification must never turn a run's end into a crash
        log.warning("notify: not delivered (%s)", type(exc).__name__)
        return []
    for d in deliveries:
        if d.ok:
            log.info("notify: delivered to %s (%s)", d.where, d.detail)
        else:
            log.warning("notify: not delivered to %s after %d attempt(s) (%s); the run's exit status is "
                        "unchanged", d.where, d.attempts, d.detail)
    return deliveries
