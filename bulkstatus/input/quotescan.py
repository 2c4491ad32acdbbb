"""Can strict csv read this whole file? Answered at numpy speed for the common case, before any row is sent.

The quote characters are numbered through the file. An odd one must open a value: right after a
delimiter, a line break, the file's start, or an even one (then the pair is an escaped quote). An even
one must close a value: right before a delimiter, a line break, the file's end, or an odd one. Those are
RFC 4180 quotes, which strict csv reads; an odd count at the end is a value never closed.

Values must also stay under csv's field limit. A value without quotes lies between two delimiters or
line breaks, so it is bounded by the widest gap between such bytes, checked without listing them: every
aligned window of half the limit must hold one. A quoted value is bounded by the distance from its
first opening quote to its last closing one (pairs joined by escaped quotes count as one).

``QuoteScan.feed`` takes the file block by block, carrying what spans two blocks. It answers False
whenever it cannot vouch (a NUL byte, a quote in the middle of a plain value, which csv reads as text, a
value near the limit): the caller then parses the file with csv, which decides and says where.
"""

from __future__ import annotations

import numpy as np

_QUOTE, _LF, _CR = 34, 10, 13


class QuoteScan:
    def __init__(self, delimiter: str, limit: int) -> None:
        self._delim = ord(delimiter)
        self._limit = limit
        self._half = max(1, limit // 2)
        # The bytes that may stand next to a quote on its outer side.
        self._allowed = np.zeros(256, dtype=bool)
        self._allowed[[self._delim, _LF, _CR, _QUOTE]] = True
        self._parity = 0  # quotes seen so far, modulo 2: 1 while a quoted value is open
        self._before = _LF  # the byte before the next block (the file's start counts as a line break)
        self._close_at_end = False  # the last block ended with a closing quote; the next byte decides
        self._offset = 0  # file position of the next block's first byte
        self._last_boundary = -1  # file position of the last delimiter or line break
        self._last_close = -2  # file position of the last closing quote
        self._open = -1  # file position of the open quote, while a value is open
        self._chain = -1  # file position of the first opening quote of the current quoted value
        self.ok = True

    def feed(self, block: bytes) -> bool:
        """Take the next block; False (for good) as soon as the file cannot be vouched for."""
        if self.ok and block:
            self.ok = self._feed(np.frombuffer(block, dtype=np.uint8))
        return self.ok

    def finish(self) -> bool:
        """After the last block: True when strict csv will read the whole file."""
        return self.ok and self._parity == 0 and self._offset - self._last_boundary < self._limit

    def _feed(self, data: np.ndarray) -> bool:
        if not data.all():
            return False  # a NUL byte
        if self._close_at_end and not self._allowed[data[0]]:
            return False
        quotes = np.flatnonzero(data == _QUOTE)
        if quotes.size and not self._quotes(data, quotes):
            return False
        if quotes.size == 0:
            self._close_at_end = False
        if not self._plain_gaps((data == self._delim) | (data == _LF) | (data == _CR)):
            return False
        self._before = int(data[-1])
        self._offset += data.size
        return True

    def _quotes(self, data: np.ndarray, quotes: np.ndarray) -> bool:
        opening = ((np.arange(quotes.size) + self._parity) & 1) == 0
        opens, closes = quotes[opening], quotes[~opening]
        previous = np.where(opens > 0, data[opens - 1], self._before)
        inner = closes[closes + 1 < data.size]
        if not (self._allowed[previous].all() and self._allowed[data[inner + 1]].all()):
            return False
        self._close_at_end = bool(closes.size) and int(closes[-1]) == data.size - 1
        # Pair the opening and closing quotes (in file positions); a value open since an earlier block
        # pairs with this block's first closing quote.
        opened = opens + self._offset
        if self._parity:
            opened = np.concatenate(([self._open], opened))
        closed = closes + self._offset
        pairs = closed.size
        if pairs:
            starts_value = opened[:pairs] != np.concatenate(([self._last_close], closed[:-1])) + 1
            last_start = np.maximum.accumulate(np.where(starts_value, np.arange(pairs), -1))
            first_open = np.where(last_start >= 0, opened[np.maximum(last_start, 0)], self._chain)
            if int((closed - first_open).max()) + 1 >= self._limit:
                return False
            self._last_close = int(closed[-1])
            self._chain = int(first_open[-1])
        if opened.size > pairs:  # a value is still open at the end of the block
            self._open = int(opened[-1])
            if self._open != self._last_close + 1:
                self._chain = self._open
        self._parity = (self._parity + quotes.size) & 1
        return True

    def _plain_gaps(self, boundary: np.ndarray) -> bool:
        """Every gap between delimiters and line breaks (inside quotes or not) is under the limit."""
        if not boundary.any():
            return True  # the gap goes on into the next block, or to the end of the file
        first = int(np.argmax(boundary))
        if first + self._offset - self._last_boundary >= self._limit:
            return False
        half = self._half
        whole = boundary.size // half * half
        if whole and not bool(boundary[:whole].reshape(-1, half).any(axis=1).all()):
            return False
        self._last_boundary = self._offset + boundary.size - 1 - int(np.argmax(boundary[::-1]))
        return True
