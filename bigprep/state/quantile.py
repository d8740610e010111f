"""Exact order statistics: the median in bounded memory, over as many passes as it needs.

Values map to order-preserving unsigned 64-bit keys. The first pass keeps exact
counts of the top 16 bits of the key (65,536 buckets), and, while they are few,
the values themselves. If the values were too many, later narrow passes either
histogram the key range that holds the middle ranks into 65,536 finer buckets or,
once that range holds at most ``COLLECT_CAP`` values, collect them. A window of
values around the median is kept so that updates can stay exact. Memory per
column: the histogram (512 KiB) plus at most ``COLLECT_CAP`` values.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import polars as pl

from ..errors import BigprepError
from .protocol import StateBase, register, statistic

BINS = 1 << 16
FULL = (0, (1 << 64) - 1)
FIRST_CAP = 1 << 16  # values kept in the first pass (small data needs one pass)
COLLECT_CAP = 2_000_000  # values a later pass may collect
WINDOW = 50_000  # ranks kept on each side of the median for exact updates
_SIGN = np.uint64(1 << 63)
_NUMPY = {"f": np.float64, "u": np.uint64, "i": np.int64}  # by numpy kind


def order_keys(values: np.ndarray) -> np.ndarray:
    """Map numbers to uint64 keys with the same order.

    >>> k = order_keys(np.array([-2.5, -0.0, 1.0, 3e300]))
    >>> bool(np.all(np.diff(k.astype(np.float64)) > 0))
    True
    """
    if values.dtype.kind == "f":
        bits = values.astype(np.float64, copy=False).view(np.uint64)
        # negative: flip every bit; positive: flip the sign bit (in place: one array)
        keys = (bits.view(np.int64) >> np.int64(63)).view(np.uint64)
        keys |= _SIGN
        keys ^= bits
        return keys
    if values.dtype.kind == "u":
        return values.astype(np.uint64)
    return values.astype(np.int64).view(np.uint64) ^ _SIGN


def _bucket_width(lo: int, hi: int) -> int:
    """A power of two, so a bucket is a shift away from its key."""
    return 1 << max(0, ((hi - lo) // BINS).bit_length())


def _histogram(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Bucket counts of values whose keys lie in [lo, hi]."""
    if (lo, hi) == FULL and sys.byteorder == "little":
        # the first pass needs only the top 16 bits of each key: a strided view of
        # the highest 2 bytes of every 8 reads a quarter of the memory
        top = np.ascontiguousarray(values, dtype=np.int64 if values.dtype.kind == "i" else
                                   values.dtype if values.dtype.kind == "u" else np.float64)
        top = top.view(np.uint16)[3::4]
        if values.dtype.kind == "f":
            bins = top ^ ((top.view(np.int16) >> np.int16(15)).view(np.uint16) | np.uint16(1 << 15))
        elif values.dtype.kind == "i":
            bins = top ^ np.uint16(1 << 15)
        else:
            bins = top
    else:
        bins = order_keys(values)  # a new array: shifted in place
        bins -= np.uint64(lo)
        bins >>= np.uint64(_bucket_width(lo, hi).bit_length() - 1)
        bins = bins.view(np.int64)  # below 2**16 now: the same numbers, and no cast
    return np.bincount(bins, minlength=BINS).astype(np.int64, copy=False)


def _value_bounds(lo: int, hi: int, kind: str) -> tuple:
    """The smallest and largest value whose key lies in [lo, hi] (no -0.0 is stored)."""
    lo_value, hi_value = _from_key(lo, kind), _from_key(hi, kind)
    if kind == "f" and hi_value == 0.0 and math.copysign(1.0, hi_value) < 0:
        hi_value = -5e-324  # up to -0.0 means below zero
    return lo_value, hi_value


def _concat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return a if b is None else b
    return np.concatenate([a, b])


@statistic("median", numeric_only=True)
@register("median")
@dataclass
class MedianState(StateBase):
    """Exact median in bounded memory; see the comment above.

    ``lo``/``hi`` is the key range this pass looks at (inclusive); ``below`` and
    ``above`` count values outside it; ``hist`` counts keys in it by bucket;
    ``values`` holds the values inside it while there are at most ``cap``
    (``None`` and ``overflow`` once there were more).

    >>> MedianState().update(pl.Series([1, 1, 2, 2])).result()
    1.5
    """

    PAYLOAD_EXACT = False  # the payload keeps a window of values around the median
    lo: int = FULL[0]
    hi: int = FULL[1]
    with_hist: bool = True
    cap: int = FIRST_CAP
    below: int = 0
    above: int = 0
    hist: np.ndarray | None = None
    values: np.ndarray | None = field(default=None)
    overflow: bool = False
    saved: float | None = None  # the median of a saved window, as saved
    kind: str = "f"  # numpy kind of the values: f, i or u (to decode a key)
    vmin: float | None = None  # the smallest and largest value seen inside [lo, hi]
    vmax: float | None = None

    @classmethod
    def for_column(cls, dtype, bounds: tuple | None = None) -> MedianState:
        """A first pass over the files' [min, max] instead of every number, when known:
        its buckets are fine enough that one more pass usually finishes."""
        if bounds is None:
            return cls()
        kind = "f" if dtype.is_float() else "u" if dtype.is_unsigned_integer() else "i"
        return cls.within(*bounds, kind)

    @classmethod
    def within(cls, low, high, kind: str) -> MedianState:
        ends = np.array([low, high], dtype=_NUMPY[kind]) + (0.0 if kind == "f" else 0)
        keys = order_keys(ends)
        return cls(lo=int(keys[0]), hi=int(keys[1]), kind=kind)

    def empty(self) -> MedianState:
        """An empty state that looks at the same range in the same way."""
        return MedianState(lo=self.lo, hi=self.hi, with_hist=self.with_hist, cap=self.cap,
                           kind=self.kind)

    @property
    def inside(self) -> int:
        if self.hist is not None:
            return int(self.hist.sum())
        return 0 if self.values is None else len(self.values)

    @property
    def count(self) -> int:
        return self.below + self.inside + self.above

    def update(self, series: pl.Series) -> MedianState:
        values = (series.drop_nulls() if series.null_count() else series).to_numpy()
        if not len(values):
            return self
        self.kind = values.dtype.kind
        if self.kind == "f":  # -0.0 becomes 0.0 (one key per value), in one new array
            values = np.add(values, 0.0, dtype=np.float64)
        low, high = values.min().item(), values.max().item()
        lo, hi = _value_bounds(self.lo, self.hi, self.kind)
        if (self.lo, self.hi) == FULL or lo <= low and high <= hi:  # all inside: no masks
            inside = values
        else:
            below, above = values < lo, values > hi
            self.below += int(np.count_nonzero(below))
            self.above += int(np.count_nonzero(above))
            outside = np.logical_or(below, above, out=below)
            inside = values[np.logical_not(outside, out=outside)]
            if len(inside):
                low, high = inside.min().item(), inside.max().item()
        if self.with_hist and len(inside):
            self.vmin = low if self.vmin is None else min(self.vmin, low)
            self.vmax = high if self.vmax is None else max(self.vmax, high)
            counts = _histogram(inside, self.lo, self.hi)
            self.hist = counts if self.hist is None else self.hist + counts
        if not self.overflow and self.cap:
            self.values = _concat(self.values, inside)
            self._check_cap()
        return self

    def _check_cap(self) -> None:
        if self.values is not None and len(self.values) > self.cap:
            if not self.with_hist:
                raise BigprepError(
                    f"more than {self.cap:,} values lie near the saved median, too many to "
                    "update it exactly: fit again on all partitions instead of updating.")
            self.values, self.overflow = None, True

    def merge(self, other: MedianState) -> MedianState:
        if not other.count or not self.count:  # the identity, whatever the pass
            return replace(self if not other.count else other)
        out = self.empty()
        out.kind = other.kind if other.count else self.kind
        out.below, out.above = self.below + other.below, self.above + other.above
        if self.hist is None or other.hist is None:
            out.hist = self.hist if other.hist is None else other.hist
        else:
            out.hist = self.hist + other.hist
        out.overflow = self.overflow or other.overflow
        ends = [v for v in (self.vmin, other.vmin) if v is not None]
        out.vmin = min(ends) if ends else None
        ends = [v for v in (self.vmax, other.vmax) if v is not None]
        out.vmax = max(ends) if ends else None
        if not out.overflow:
            out.values = _concat(self.values, other.values)
            out._check_cap()
        return out

    # -- after a pass ------------------------------------------------------------
    def ranks(self) -> tuple[int, int]:
        n = self.count
        return (n - 1) // 2, n // 2

    @property
    def done(self) -> bool:
        """The values around the median are all here: no more passes."""
        return self.values is not None

    def finish(self) -> MedianState:
        """Settle without another pass when one repeated value fills every wanted rank."""
        follow = self._follow()
        return follow if follow is not None and follow.done else self

    def next_pass(self) -> MedianState | None:
        follow = self._follow()
        return follow if follow is not None and not follow.done else None

    def _follow(self) -> MedianState | None:
        """None when done; else the state for the next, narrower pass (which may
        already be ``done`` when one repeated value fills every wanted rank)."""
        n = self.count
        if n == 0 or self.values is not None:
            return None
        m_lo, m_hi = self.ranks()
        r_lo, r_hi = max(m_lo - WINDOW, self.below), min(m_hi + WINDOW, n - self.above - 1)
        cum = np.cumsum(self.hist) + self.below
        b_lo = int(np.searchsorted(cum, r_lo, side="right"))
        b_hi = int(np.searchsorted(cum, r_hi, side="right"))
        width = _bucket_width(self.lo, self.hi)
        lo = self.lo + b_lo * width
        hi = min(self.hi, self.lo + (b_hi + 1) * width - 1)
        before = int(cum[b_lo - 1]) if b_lo else self.below
        between = int(cum[b_hi]) - before
        if self.vmin is not None:  # no need to look where no value is
            ends = np.array([self.vmin, self.vmax], dtype=_NUMPY[self.kind])
            kmin, kmax = (int(k) for k in order_keys(ends))
            lo, hi = max(lo, kmin), min(hi, kmax)
        if between <= COLLECT_CAP:
            return MedianState(lo=lo, hi=hi, with_hist=False, cap=between, kind=self.kind)
        if lo == hi:  # one repeated value holds every rank we want: no pass needed
            value = _from_key(lo, self.kind)
            kept = r_hi - r_lo + 1
            return MedianState(lo=lo, hi=hi, with_hist=False, below=r_lo, above=n - r_lo - kept,
                               values=np.full(kept, value), cap=kept, kind=self.kind)
        return MedianState(lo=lo, hi=hi, with_hist=True, cap=0, kind=self.kind)

    @property
    def covered(self) -> bool:
        """The middle ranks are among the kept values."""
        m_lo, m_hi = self.ranks()
        return self.values is not None and self.below <= m_lo and m_hi < self.below + self.inside

    @property
    def complete(self) -> bool:
        """The median is known: from the kept values, or as it was saved."""
        return self.covered or self.saved is not None

    def result(self) -> float | None:
        """The median (mean of the two middle values); None with no values.

        Call it once ``next_pass()`` is None; a saved window that new values pushed the
        median out of is not ``complete`` and raises."""
        if self.count == 0:
            return None
        if not self.covered and self.saved is not None:
            return self.saved
        a, b = self.middle()
        return (a + b) / 2 if a != b else float(a)

    def middle(self) -> tuple:
        """The two middle values (the same one twice for an odd count)."""
        m_lo, m_hi = self.ranks()
        if self.values is None or not (self.below <= m_lo and m_hi < self.below + self.inside):
            raise BigprepError("the median lies outside the values kept for it: fit again on "
                               "all partitions instead of updating.")
        part = np.partition(self.values, [m_lo - self.below, m_hi - self.below])
        return part[m_lo - self.below].item(), part[m_hi - self.below].item()

    def exact(self):
        """The median as a fraction for integer columns (no rounding on the way)."""
        if not self.covered:
            return self.result()
        a, b = self.middle()
        return Fraction(a + b, 2) if isinstance(a, int) else self.result()

    # -- the saved window ----------------------------------------------------------
    def compact(self) -> MedianState:
        """Once fitted: only the window of values an exact update needs."""
        return self.trimmed() if self.count and self.values is not None else self

    def trimmed(self) -> MedianState:
        """Keep only the values within WINDOW ranks of the median (for updates)."""
        m_lo, m_hi = self.ranks()
        ordered = np.sort(self.values)
        start = max(0, m_lo - WINDOW - self.below)
        stop = min(len(ordered), m_hi + WINDOW + 1 - self.below)
        keep = ordered[start:stop]
        out = MedianState(with_hist=False, below=self.below + start,
                          above=self.above + len(ordered) - stop, values=keep,
                          cap=COLLECT_CAP + len(keep), kind=self.kind)
        out.saved = self.result()
        return out

    def continuation(self) -> MedianState:
        """The empty state that collects new values inside the saved window."""
        if not self.count:
            return MedianState()
        if self.values is None or not len(self.values):
            raise BigprepError("the saved state keeps no values around its median: fit again "
                               "on all partitions instead of updating.")
        lo, hi = (int(k) for k in order_keys(np.array([self.values.min(),
                                                       self.values.max()])))
        # where the window dropped nothing, every new value on that side counts too
        return MedianState(lo=FULL[0] if not self.below else lo,
                           hi=FULL[1] if not self.above else hi, with_hist=False,
                           cap=COLLECT_CAP, kind=self.kind)

    def canonical(self):
        vals = None if self.values is None else sorted(self.values.tolist())
        hist = None if self.hist is None else self.hist.tolist()
        return (self.below, self.above, hist, vals)

    def to_payload(self, sidecar: dict, key: str) -> dict:
        if self.count == 0:
            return {"count": 0, "value": None, "window": {"below": 0, "above": 0, "values": 0}}
        state = self.trimmed() if self.values is not None else self
        if state.values is not None:
            sidecar[key] = state.values.tobytes()
            sidecar[key + ":dtype"] = str(state.values.dtype).encode()
        return {"count": self.count, "value": self.result(), "kind": self.kind,
                "window": {"below": state.below, "above": state.above,
                           "values": 0 if state.values is None else state.inside}}

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> MedianState:
        if data["value"] is None:  # nothing seen yet
            return cls()
        window = data["window"]
        values = None
        if key in sidecar:
            values = np.frombuffer(sidecar[key], dtype=sidecar[key + ":dtype"].decode()).copy()
        out = cls(with_hist=False, below=window["below"], above=window["above"], values=values,
                  cap=COLLECT_CAP + (0 if values is None else len(values)),
                  kind=data.get("kind", "f"))
        out.saved = data["value"]
        return out


def _from_key(key: int, kind: str):
    """The number behind an order key (the inverse of ``order_keys``)."""
    k = np.array([key], dtype=np.uint64)
    if kind == "f":
        bits = np.where(k & _SIGN, k ^ _SIGN, ~k)
        return bits.view(np.float64)[0].item()
    if kind == "u":
        return int(k[0])
    return (k ^ _SIGN).view(np.int64)[0].item()
