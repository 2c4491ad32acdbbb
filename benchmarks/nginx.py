"""nginx on 127.0.0.1 answering every request with a fixed 200 of the documented create shape (and the
list endpoint, used by the run's pending check, with an empty page).

It is the reference server for throughput: C, one worker, no logging, so it is never the bottleneck for a
single Python client. Needs the nginx binary (``apt-get install -y nginx``), not root: the instance runs
from a temporary prefix with its own pid file and temp folders.

    python benchmarks/nginx.py --port 8089 --seconds 600   # serve by hand; stops by itself
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from common import CREATED, EMPTY_LIST, LIST_PATH, free_port, wait_for_port

CONFIG = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
        location = {list_path} {{
            default_type application/json;
            return 200 '{empty}';
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if found is None:
        raise SystemExit("nginx is not installed: run `apt-get update && apt-get install -y nginx` "
                         "(the benchmarks start and stop their own instance; no root needed after that)")
    return found


@contextmanager
def nginx(port: int | None = None) -> Iterator[str]:
    """Start nginx on 127.0.0.1:port (a free one by default); yield its base URL; stop it."""
    port = port or free_port()
    prefix = Path(tempfile.mkdtemp(prefix="bulkstatus-nginx-"))
    conf = prefix / "nginx.conf"
    conf.write_text(CONFIG.format(prefix=prefix, port=port, body=CREATED, list_path=LIST_PATH,
                                  empty=EMPTY_LIST))
    proc = subprocess.Popen([nginx_binary(), "-p", str(prefix), "-e", "stderr", "-c", str(conf),
                             "-g", "daemon off;"], stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()  # SIGTERM: fast shutdown of the master and its worker
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(prefix, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long (default 600)")
    args = parser.parse_args()
    with nginx(args.port) as url:
        print(f"nginx serving the fixed create answer on {url} for {args.seconds:.0f} s (Ctrl-C stops it)",
              flush=True)
        with suppress(KeyboardInterrupt):
            time.sleep(args.seconds)


if __name__ == "__main__":
    main()
