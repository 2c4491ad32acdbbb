"""Progress for people (a tqdm bar on a terminal) and for schedulers (a log line every so often)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import Counter
from typing import Any

from bulkstatus.model import Outcome, Result

log = logging.getLogger("bulkstatus.progress")
BAD = frozenset({Outcome.FAILED, Outcome.INVALID})


class Progress:
    def __init__(self, total: int | None, quiet: bool, initial: int = 0, every: float = 10.0) -> None:
        self.total = total
        self.counts: Counter[str] = Counter()
        self.done = initial
        self._bar: Any = None
        self._every = every
        self._last_log = time.monotonic()
        self._started = time.monotonic()
        self._quiet = quiet
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="row", dynamic_ncols=True, file=sys.stderr,
                             smoothing=0.05, mininterval=0.2)

    def __call__(self, result: Result) -> None:
        self.counts[result.outcome] += 1
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
            if result.outcome in BAD or self.done % 50 == 0:
                failed = sum(self.counts[o] for o in BAD)
                self._bar.set_postfix_str(f"failed or invalid {failed}", refresh=False)
        elif not self._quiet:
            now = time.monotonic()
            if now - self._last_log >= self._every:
                self._last_log = now
                rate = self.done / max(now - self._started, 1e-9)
                of = f"/{self.total}" if self.total else ""
                failed = sum(self.counts[o] for o in BAD)
                log.info("progress: %d%s rows, %.1f rows/s, %d failed or invalid so far", self.done, of, rate,
                         failed)

    def logging(self) -> contextlib.AbstractContextManager[None]:
        """While the bar is shown, log lines go through tqdm.write so that they do not break it."""
        if self._bar is None:
            return contextlib.nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm

        return logging_redirect_tqdm([logging.getLogger("bulkstatus")])  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
