"""Progress for people (a tqdm bar on a terminal) and for schedulers (a log line every so often).

Only rows with a final outcome count as done: a row left unprocessed by a stop is not done, so the
bar of a run stopped at row 749 of 3,000 ends at 749/3000, not 3000/3000.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from bulkstatus.model import Outcome, Result

log = logging.getLogger("bulkstatus.progress")
BAD = frozenset({Outcome.FAILED, Outcome.INVALID})
NOT_DONE = Outcome.UNPROCESSED


def eta_text(seconds: float | None) -> str:
    """``1 h 05 min``, ``4 min 10 s``, ``35 s``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class Progress:
    def __init__(self, total: int | None, quiet: bool, initial: int = 0, every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.counts: Counter[str] = Counter()
        self.done = initial
        self._initial = initial
        self._bar: Any = None
        self._every = every
        self._clock = clock
        self._started = self._last_log = clock()
        self._quiet = quiet
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="row", dynamic_ncols=True, file=sys.stderr,
                             smoothing=0.05, mininterval=0.2)

    @property
    def failed(self) -> int:
        return sum(self.counts[o] for o in BAD)

    def pace(self) -> float:
        """Rows done a second in this session."""
        return (self.done - self._initial) / max(self._clock() - self._started, 1e-9)

    def eta(self) -> float | None:
        pace = self.pace()
        if not self.total or pace <= 0:
            return None
        return max(self.total - self.done, 0) / pace

    def __call__(self, result: Result) -> None:
        self.counts[result.outcome] += 1
        if result.outcome is NOT_DONE:
            return
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
            if result.outcome in BAD or self.done % 50 == 0:
                self._bar.set_postfix_str(f"failed or invalid {self.failed}", refresh=False)
        elif not self._quiet:
            now = self._clock()
            if now - self._last_log >= self._every:
                self._last_log = now
                self.log_line()

    def log_line(self) -> None:
        of = f"/{self.total}" if self.total else ""
        log.info("progress: %d%s rows done, %.1f rows/s, %d failed or invalid so far, ETA %s", self.done, of,
                 self.pace(), self.failed, eta_text(self.eta()))

    def logging(self) -> contextlib.AbstractContextManager[None]:
        """While the bar is shown, log lines go through tqdm.write so that they do not break it, at the
        level the terminal's handler had (DEBUG only with --verbose)."""
        if self._bar is None:
            return contextlib.nullcontext()
        return _through_tqdm(logging.getLogger("bulkstatus"))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _TqdmHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a hung-up terminal: the line is in run.log
            self.handleError(record)


@contextlib.contextmanager
def _through_tqdm(logger: logging.Logger) -> Iterator[None]:
    """tqdm's own logging_redirect_tqdm keeps the formatter but not the level of the handler it
    replaces, so DEBUG lines reached the terminal without --verbose; this keeps both, and the filters."""
    replaced = [h for h in logger.handlers if type(h) is logging.StreamHandler]  # not run.log's FileHandler
    swaps = []
    for old in replaced:
        new = _TqdmHandler()
        new.setLevel(old.level)
        new.setFormatter(old.formatter)  # type: ignore[arg-type]
        for f in old.filters:
            new.addFilter(f)
        swaps.append((old, new))
        logger.removeHandler(old)
        logger.addHandler(new)
    try:
        yield
    finally:
        for old, new in swaps:
            logger.removeHandler(new)
            logger.addHandler(old)
