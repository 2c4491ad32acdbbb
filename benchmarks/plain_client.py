"""The yardstick: a plain aiohttp script, csv in, N workers, csv out, nothing else.

What a competent engineer writes in an afternoon: stdlib csv and json, the default event loop, one
session, a queue, the same headers and body bulkstatus sends. No pacing, retries, journal or checks.

    python benchmarks/plain_client.py INPUT.csv OUTPUT.csv --url http://127.0.0.1:8089 --workers 8
"""

import argparse
import asyncio
import csv
import json
import time

import aiohttp

PATH = "/api_gateway/v2/request-workflow/CUSTOMER-STATUS-CHANGE"
HEADERS = {"X-CAP-API-AUTH-ORG-ID": "100737", "X-CAP-UI-AUTH-TOKEN": "maker-token",
           "Authorization": "Basic dGlsbDpzZWNyZXQ=", "Content-Type": "application/json",
           "Accept": "application/json"}


def body(row):
    task = {"hostname": "https://intouch.example", "path": "/v2/customers/lookup/status", "method": "PUT",
            "pathParams": {},
            "queryParams": {"source": "INSTORE", "accountId": "", "use_async": "false",
                            "identifierName": row["identifierName"],
                            "identifierValue": row["identifierValue"]},
            "body": {"reason": row["reason"], "label": row["label"]},
            "headers": {"Authorization": "Basic aW50b3VjaDpzZWNyZXQ=", "content-type": "application/json"}}
    return {"entityInfo": {"tillId": "1", "storeId": "2", "zoneId": "3", "conceptId": "4"},
            "payload": {"IntouchAPITask-Payload": task}}


async def worker(session, url, queue, writer):
    while (item := await queue.get()) is not None:
        number, row = item
        try:
            async with session.post(url, data=json.dumps(body(row)), headers=HEADERS) as resp:
                answer = await resp.json(content_type=None)
                status, request_id = resp.status, (answer.get("data") or {}).get("requestId", "")
        except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
            status, request_id = "", type(exc).__name__
        writer.writerow([number, row["identifierValue"], status, request_id])


async def main(args):
    queue = asyncio.Queue(maxsize=args.workers * 4)
    connector = aiohttp.TCPConnector(limit=args.workers)
    with open(args.input, newline="") as src, open(args.output, "w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["row", "identifierValue", "httpStatus", "requestId"])
        async with aiohttp.ClientSession(connector=connector) as session:
            workers = [asyncio.create_task(worker(session, args.url + PATH, queue, writer))
                       for _ in range(args.workers)]
            for number, row in enumerate(csv.DictReader(src), start=1):
                await queue.put((number, row))
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
    return number


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--url", default="http://127.0.0.1:8089")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = asyncio.run(main(args))
    seconds = time.perf_counter() - started
    print(f"{rows} rows in {seconds:.2f} s: {rows / seconds:.0f} rows/s")
