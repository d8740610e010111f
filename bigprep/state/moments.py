"""The moments family: count, sum and (optionally) the sum of squared deviations.

One class serves the imputer's mean, the feature scaling of models and the
target spread of regression metrics. Integer sums stay exact Python integers, so
an integer mean can be had as a fraction; the second moment merges exactly by
Chan et al.'s formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import polars as pl

from .protocol import StateBase, register, statistic


@register("moments", example=lambda: Moments(second=True))
@dataclass
class Moments(StateBase):
    """count, sum and, with ``second=True``, M2 (squared deviations from the mean).

    >>> m = Moments(second=True).update(pl.Series([1.0, None, 2.0]))
    >>> m = m.merge(Moments(second=True).update(pl.Series([3.0])))
    >>> (m.count, m.result(), round(m.std, 6))
    (3, 2.0, 0.816497)
    """

    count: int = 0
    total: float | int = 0
    m2: float = 0.0
    second: bool = False

    def empty(self) -> Moments:
        return Moments(second=self.second)

    def update(self, series: pl.Series) -> Moments:
        values = series.drop_nulls()
        n = len(values)
        if not n:
            return self
        if values.dtype.is_float():
            total = float(values.cast(pl.Float64).sum())
        else:
            total = int(values.cast(pl.Int128).sum()) if values.dtype.is_integer() else \
                float(values.cast(pl.Float64).sum())
        m2 = float(values.cast(pl.Float64).var(ddof=0)) * n if self.second else 0.0
        merged = self.merge(Moments(n, total, m2, self.second))
        self.count, self.total, self.m2 = merged.count, merged.total, merged.m2
        return self

    def merge(self, other: Moments) -> Moments:
        n = self.count + other.count
        m2 = 0.0
        if self.second and n:
            delta = other.mean - self.mean
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return Moments(n, self.total + other.total, m2, self.second)

    @property
    def mean(self) -> float:
        if not self.count:
            return 0.0
        return float(Fraction(self.total, self.count)) if isinstance(self.total, int) else (
            self.total / self.count)

    @property
    def std(self) -> float:
        return (self.m2 / self.count) ** 0.5 if self.count else 0.0

    def result(self) -> float | None:
        """The mean (None with no values)."""
        return self.mean if self.count else None

    def exact(self):
        """The mean as a fraction for integer columns (no rounding on the way)."""
        if isinstance(self.total, int) and self.count:
            return Fraction(self.total, self.count)
        return self.result()

    def to_payload(self, sidecar: dict, key: str) -> dict:
        out = {"count": self.count, "sum": self.total, "value": self.result()}
        if self.second:
            out.update(m2=self.m2, std=self.std)
        return out

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> Moments:
        return cls(data["count"], data["sum"], data.get("m2", 0.0), "m2" in data)


# the imputer's mean: no M2 to compute
statistic("mean", numeric_only=True)(register("mean", example=Moments)(Moments))
