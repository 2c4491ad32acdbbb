"""An adversarial stand-in for Capillary's request-workflow API, written apart from bulkstatus/sim on purpose.

It keeps a ledger of every maker request it recorded and misbehaves on demand (flags, or POST /__config at run
time): answers lost after the request was recorded (504/502 HTML, a dropped connection, a stall past the client's
timeout, a 200 without a readable requestId), 201/202 successes, list/get lagging behind creates, a sliding-window
rate limit, old decided requests of the same customers, and a UI token that expires mid-run.

    python benchmarks/adversary/server.py --port 0 --gateway-timeout-after-record 0.3

prints its URL on the first line of stdout; GET /__ledger shows the ledger and the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import random
import re
import signal
import time
import uuid
import zlib
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

CREATE_PATH = "/api_gateway/v2/request-workflow/CUSTOMER-STATUS-CHANGE"
REQUESTS_PATH = "/api_gateway/v2/request-workflow/requests"
# The maker's userId comes from the UI token: the part before the first "." names the user, so a rotated token
# ("maker.v1" -> "maker.v2") still belongs to the same maker, as a new JWT of the same Intouch user would.
USERS = {"maker": 70001, "checker": 70002}
GATEWAY_HTML = "<html><head><title>{0} {1}</title></head><body><center><h1>{0} {1}</h1></center><hr></body></html>"


@dataclass
class Config:
    seed: int = 1
    gateway_timeout_after_record: float = 0.0
    answer_status: list[int] = field(default_factory=lambda: [200])
    no_request_id: float = 0.0
    drop_after_record: float = 0.0
    stall_after_record: float = 0.0
    stall_seconds: float = 0.0
    list_lag: float = 0.0
    rate_limit: int = 0
    unauthorized_after: int = 0
    local_stamps: int | None = None  # minutes east of UTC: startTime/endTime as zone-less local time


def iso_ms(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def user_of(token: str) -> tuple[int, str]:
    name = token.split(".", 1)[0]
    return USERS.get(name, 80000 + zlib.crc32(name.encode()) % 10000), name


def error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"errors": [{"status": False, "code": code, "message": message}], "warnings": []},
                             status=status)


class Adversary:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.store: dict[str, dict[str, Any]] = {}  # requestId -> request object, with "_visible" (monotonic)
        self.ledger: list[dict[str, Any]] = []  # what this server recorded, in order
        self.preexisting: list[str] = []
        self.window: deque[float] = deque()
        self.expired_tokens: set[str] = set()
        self.oauth_tokens: set[str] = set()
        self.stats: Counter[str] = Counter()
        self.per_customer: Counter[str] = Counter()
        self.gateway_flip = 0
        self.status_turn = 0
        self.no_id_turn = 0

    # --- auth -------------------------------------------------------------------------------------------------
    def refuse(self, request: web.Request) -> web.Response | None:
        """None when the call may go on, else the answer to give."""
        token = request.headers.get("X-CAP-UI-AUTH-TOKEN", "").strip()
        if not token or token in self.expired_tokens:
            self.stats["answered_401"] += 1
            return error(401, 401, "Invalid or expired X-CAP-UI-AUTH-TOKEN")
        if not request.headers.get("X-CAP-API-AUTH-ORG-ID", "").strip():
            return error(400, 1064, "Invalid org")
        if request.headers.get("X-CAP-API-OAUTH-TOKEN", "") in self.oauth_tokens:
            return None
        basic = request.headers.get("Authorization", "")
        with contextlib.suppress(ValueError, binascii.Error, UnicodeDecodeError):
            if basic.startswith("Basic ") and re.fullmatch(
                    r"[^:]+:[0-9a-f]{32}", base64.b64decode(basic[6:], validate=True).decode()):
                return None
        self.stats["answered_401"] += 1
        return error(401, 401, "Gateway authentication failed")

    async def oauth(self, request: web.Request) -> web.Response:
        body = await request.json(loads=json.loads)
        if not isinstance(body, dict) or not body.get("key") or not body.get("secret"):
            return error(401, 401, "key and secret required")
        token = f"oauth-{uuid.uuid4()}"
        self.oauth_tokens.add(token)
        return web.json_response({"data": {"accessToken": token, "ttlSeconds": 300}, "errors": None})

    # --- the workflow -----------------------------------------------------------------------------------------
    def visible(self, item: dict[str, Any]) -> bool:
        return bool(item["_visible"] <= time.monotonic())

    @staticmethod
    def public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def shown(self, item: dict[str, Any]) -> dict[str, Any]:
        """A request as the API answers it: with --local-stamps, its times as the docs' sample writes them
        (the server's local time, to the second, no zone)."""
        out = self.public(item)
        if self.config.local_stamps is not None:
            for name in ("startTime", "endTime"):
                if out.get(name):
                    when = datetime.fromisoformat(out[name].replace("Z", "+00:00"))
                    out[name] = (when + timedelta(minutes=self.config.local_stamps)).strftime("%Y-%m-%dT%H:%M:%S")
        return out

    def new_request(self, task: dict[str, Any], user: tuple[int, str], start: datetime, state: str) -> dict[str, Any]:
        query, body = task.get("queryParams") or {}, task.get("body") or {}
        return {
            "requestId": str(uuid.uuid4()), "userId": user[0], "userName": user[1],
            "requestType": "customer-status-change", "state": state, "startTime": iso_ms(start),
            "endTime": None if state == "AdminTask" else iso_ms(start + timedelta(minutes=1)),
            "details": {"IntouchAPITask-Payload": {
                "queryParams": {k: query.get(k) for k in ("identifierName", "identifierValue")},
                "body": {k: body.get(k) for k in ("label", "reason")}}},
            "_visible": 0.0,
        }

    def load_preexisting(self, path: Path) -> None:
        """A JSON list of {identifierName, identifierValue, label, reason, state?, startTime?, user?}: an earlier
        run's requests (default: rejected, 10 minutes before this server started, by the maker)."""
        for old in json.loads(path.read_text(encoding="utf-8")):
            start = (datetime.fromisoformat(old["startTime"].replace("Z", "+00:00")) if old.get("startTime")
                     else datetime.now(UTC) - timedelta(minutes=10))
            task = {"queryParams": old, "body": old}
            item = self.new_request(task, user_of(old.get("user", "maker")), start, old.get("state", "rejected"))
            self.store[item["requestId"]] = item
            self.preexisting.append(item["requestId"])

    def pick_fault(self) -> str:
        """One seeded draw per recorded create; the probabilities are disjoint slices of [0, 1)."""
        cfg, draw, edge = self.config, self.rng.random(), 0.0
        for fault, p in (("drop", cfg.drop_after_record), ("gateway", cfg.gateway_timeout_after_record),
                         ("stall", cfg.stall_after_record), ("no-id", cfg.no_request_id)):
            edge += p
            if draw < edge:
                return fault
        return "ok"

    async def create(self, request: web.Request) -> web.StreamResponse:
        self.stats["creates_received"] += 1
        refused = self.refuse(request)
        if refused:
            return refused
        try:
            payload = json.loads(await request.read())
            task = payload["payload"]["IntouchAPITask-Payload"]
            query, body, entity = task["queryParams"], task["body"], payload["entityInfo"]
            if not all(isinstance(entity.get(k), str) and entity[k] for k in ("tillId", "storeId", "zoneId",
                                                                               "conceptId")):
                raise ValueError("entityInfo")
            if not all(isinstance(query.get(k), str) and query[k] for k in ("identifierName", "identifierValue")):
                raise ValueError("queryParams")
            if not all(isinstance(body.get(k), str) and body[k] for k in ("label", "reason")):
                raise ValueError("body")
        except (ValueError, KeyError, TypeError, AttributeError):
            self.stats["answered_400"] += 1
            return error(400, 400, "Invalid input")
        cfg, now = self.config, time.monotonic()
        if cfg.rate_limit:
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            if len(self.window) >= cfg.rate_limit:
                self.stats["answered_429"] += 1
                return web.json_response({"errors": [{"code": 429, "message": "Too many requests"}]}, status=429,
                                         headers={"Retry-After": "1"})
            self.window.append(now)
        token = request.headers["X-CAP-UI-AUTH-TOKEN"].strip()
        item = self.new_request(task, user_of(token), datetime.now(UTC), "AdminTask")
        item["_visible"] = now + cfg.list_lag
        self.store[item["requestId"]] = item
        key = f"{query['identifierName']}:{query['identifierValue']}"
        self.per_customer[key] += 1
        self.stats["recorded"] += 1
        entry = {"requestId": item["requestId"], "identifierName": query["identifierName"],
                 "identifierValue": query["identifierValue"], "label": body["label"], "userId": item["userId"],
                 "startTime": item["startTime"], "recordedAt": time.time(), "answer": "200"}
        self.ledger.append(entry)
        if cfg.unauthorized_after and self.stats["recorded"] == cfg.unauthorized_after:
            self.expired_tokens.add(token)  # every later call with this token: 401, until the client has a new one
        name = entry["answer"] = self.pick_fault()
        self.stats[f"fault_{name}"] += 1
        if name == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=200)  # never reaches the client
        if name == "gateway":
            self.gateway_flip ^= 1
            status, text = (504, "Gateway Time-out") if self.gateway_flip else (502, "Bad Gateway")
            return web.Response(status=status, text=GATEWAY_HTML.format(status, text), content_type="text/html")
        if name == "stall":
            await asyncio.sleep(cfg.stall_seconds)
        if name == "no-id":
            self.no_id_turn += 1
            if self.no_id_turn % 3 == 1:
                return web.json_response({"data": {}})
            if self.no_id_turn % 3 == 2:
                return web.Response(text="OK", content_type="text/plain")
            return web.json_response({"data": {"state": "AdminTask", "requestId": None}})
        status = cfg.answer_status[self.status_turn % len(cfg.answer_status)]
        self.status_turn += 1
        return web.json_response({"data": self.shown(item)}, status=status)

    async def decide(self, request: web.Request) -> web.Response:
        refused = self.refuse(request)
        if refused:
            return refused
        try:
            body = json.loads(await request.read())
            item = self.store.get(str(body["requestId"]))
            decision = body["payload"]["AdminTask-Payload"]["actionDecision"]
        except (ValueError, KeyError, TypeError):
            return error(400, 400, "Invalid input")
        if item is None or not self.visible(item):
            return error(404, 404, "Request not found")
        if decision not in ("approved", "rejected") or item["state"] != "AdminTask":
            return error(400, 400, f"Cannot {decision} a request in state {item['state']}")
        if user_of(request.headers["X-CAP-UI-AUTH-TOKEN"].strip())[0] == item["userId"]:
            return error(403, 4000, "The maker cannot decide their own request")
        item["state"], item["endTime"] = decision, iso_ms(datetime.now(UTC))
        return web.json_response({"data": self.shown(item)})

    async def get_one(self, request: web.Request) -> web.Response:
        refused = self.refuse(request)
        if refused:
            return refused
        item = self.store.get(request.match_info["request_id"])
        if item is None or not self.visible(item):
            return error(404, 404, "Request not found")
        return web.json_response({"data": self.shown(item)})

    async def list_requests(self, request: web.Request) -> web.Response:
        refused = self.refuse(request)
        if refused:
            return refused
        q = request.query
        kind = q.get("requestType", "").replace("_", "-").lower()
        if kind and kind != "customer-status-change":
            items: list[dict[str, Any]] = []
        else:
            items = [i for i in self.store.values() if self.visible(i)]
        if q.get("states"):
            wanted = {s.strip() for s in q["states"].split(",")}
            items = [i for i in items if i["state"] in wanted]
        if q.get("userId"):
            items = [i for i in items if str(i["userId"]) == q["userId"]]
        if q.get("startDate"):
            items = [i for i in items if i["startTime"][:10] >= q["startDate"]]
        if q.get("endDate"):
            items = [i for i in items if i["startTime"][:10] <= q["endDate"]]
        sort_key = "endTime" if q.get("sortBy") == "endTime" else "startTime"
        items.sort(key=lambda i: i[sort_key] or "", reverse=q.get("sortOrder", "asc") == "desc")
        try:
            limit, page = max(1, int(q.get("limit", "10"))), max(0, int(q.get("PageNo", "0")))
        except ValueError:
            return error(400, 400, "Invalid limit or PageNo")
        chunk = items[page * limit:(page + 1) * limit]
        return web.json_response({"data": [self.shown(i) for i in chunk], "pagination": {
            "totalElements": len(items), "totalPages": -(-len(items) // limit), "numberOfElements": len(chunk),
            "number": page}})

    # --- the adversary's own endpoints ------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "stats": dict(self.stats), "requests": self.ledger,
                "perCustomer": dict(self.per_customer), "preexisting": [self.public(self.store[i])
                                                                       for i in self.preexisting],
                "expiredTokens": len(self.expired_tokens)}

    async def get_ledger(self, request: web.Request) -> web.Response:
        return web.json_response(self.report())

    async def set_config(self, request: web.Request) -> web.Response:
        changes = await request.json(loads=json.loads)
        for key, value in changes.items():
            if not hasattr(self.config, key):
                return error(400, 400, f"unknown setting {key}")
            setattr(self.config, key, value)
        if "seed" in changes:
            self.rng.seed(self.config.seed)
        return web.json_response(asdict(self.config))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(CREATE_PATH, self.create)
        app.router.add_put(CREATE_PATH, self.decide)
        app.router.add_get(REQUESTS_PATH, self.list_requests)
        app.router.add_get(REQUESTS_PATH + "/{request_id}", self.get_one)
        app.router.add_post("/v3/oauth/token/generate", self.oauth)
        app.router.add_get("/__ledger", self.get_ledger)
        app.router.add_post("/__config", self.set_config)
        return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="0 = a free port")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--gateway-timeout-after-record", type=float, default=0.0, metavar="P")
    p.add_argument("--answer-status", default="200", help="success status(es), in turn: 200, 201, 202 or 201,202")
    p.add_argument("--no-request-id", type=float, default=0.0, metavar="P")
    p.add_argument("--drop-after-record", type=float, default=0.0, metavar="P")
    p.add_argument("--stall-after-record", type=float, nargs=2, default=[0.0, 0.0], metavar=("P", "SECONDS"))
    p.add_argument("--list-lag", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--rate-limit", type=int, default=0, metavar="N", help="creates per sliding second, 0 = none")
    p.add_argument("--preexisting", type=Path, metavar="FILE")
    p.add_argument("--unauthorized-after", type=int, default=0, metavar="N")
    p.add_argument("--local-stamps", type=int, metavar="MINUTES",
                   help="write startTime/endTime as zone-less local time this many minutes east of UTC (330: India)")
    p.add_argument("--ledger-out", type=Path, metavar="FILE", help="write the ledger here on shutdown")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    config = Config(seed=args.seed, gateway_timeout_after_record=args.gateway_timeout_after_record,
                    answer_status=[int(s) for s in args.answer_status.split(",")], no_request_id=args.no_request_id,
                    drop_after_record=args.drop_after_record, stall_after_record=args.stall_after_record[0],
                    stall_seconds=args.stall_after_record[1], list_lag=args.list_lag, rate_limit=args.rate_limit,
                    unauthorized_after=args.unauthorized_after, local_stamps=args.local_stamps)
    adversary = Adversary(config)
    if args.preexisting:
        adversary.load_preexisting(args.preexisting)
    runner = web.AppRunner(adversary.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, shutdown_timeout=1.0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if args.ledger_out:
        args.ledger_out.write_text(json.dumps(adversary.report(), indent=1), encoding="utf-8")
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
