"""The imputer's apply: a map that fills each chunk.

Every step of a column's chain yields a candidate computed from the original
values (a learned statistic, or a fill from neighbours with the seeds the scan
handed this chunk); the output is the first non-null of the original and the
candidates, so a chain fills "what is still null" in order. Without fills from
neighbours the whole partition is one polars streaming query.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import polars as pl

from ...errors import BigprepError
from ...io.dataset import Chunk, Dataset, Partition, chunk_offsets
from . import scan as scanning
from .strategies import ColumnPlan

INDICATOR_SUFFIX = "__missing"


def typed_fill(value, plan: ColumnPlan):
    """A statistic typed for its column: integers round half to even, exactly.

    >>> from fractions import Fraction
    >>> typed_fill(Fraction(5, 2), ColumnPlan("x", pl.Int64, (), "default"))
    2
    """
    if plan.dtype.is_integer() and isinstance(value, (float, Fraction)):
        return round(value)
    return value


def active_plans(state, skipped: dict) -> list[ColumnPlan]:
    """The plans with work to do in this run's data; the others go to ``skipped``.

    A column the default or ``strategy`` chose but that holds no null needs no work;
    an all-null column has no statistic: scikit-learn drops it, we leave it as it is
    and say so, unless its chain ends in a constant, which then fills it.
    """
    active = []
    for plan in state.plans:
        if plan.source != "columns" and not state.run_nulls.get(plan.column, 1):
            skipped[plan.column] = "no nulls"
        elif plan.source != "columns" and plan.constant is None and any(
                state.statistic(plan.column, k).result() is None for k in plan.stats):
            skipped[plan.column] = (f"every value is null, so it has no {plan.stats[0]}; "
                                    f"give it a constant: `columns` {plan.column}=constant:V")
        else:
            active.append(plan)
    return active


@dataclass
class ImputeTransform:
    """What every apply task needs; plain data, so it pickles to workers."""

    plans: list[ColumnPlan]
    fills: dict  # "column:kind" -> fill value, typed and rounded for the column
    group_by: str | None
    order_by: str | None
    add_indicator: bool
    schema: pl.Schema  # of the output
    chunk_rows: int
    scan_columns: tuple = ()  # in the fit's order: the seeds are indexed by it
    seeds: dict | None = None  # chunk offset -> seeds (of one partition, once split)
    reads = None  # every column

    @classmethod
    def of(cls, state, dataset: Dataset, params) -> ImputeTransform:
        plans = active_plans(state, state.skipped)
        fills = {f"{p.column}:{k}": typed_fill(state.fill_value(p.column, k, exact=True), p)
                 for p in plans for k in p.stats}  # None: no values, the constant fills
        schema = dict(pl.Schema(dataset.schema))
        if params.add_indicator:
            taken = [p.column + INDICATOR_SUFFIX for p in plans
                     if p.column + INDICATOR_SUFFIX in schema]
            if taken:  # never overwrite an input column with an indicator
                raise BigprepError(
                    f"`add_indicator`: the data already has a column {taken[0]!r}, where the "
                    f"indicator of {taken[0].removesuffix(INDICATOR_SUFFIX)!r} would go. "
                    "Rename or drop that column first, or leave `add_indicator` out.")
            schema.update((p.column + INDICATOR_SUFFIX, pl.Boolean) for p in plans)
        return cls(plans, fills, state.group_by, state.order_by, params.add_indicator,
                   pl.Schema(schema), params.chunk_rows, tuple(state.scan_columns), state.seeds)

    @property
    def nan_as_null(self) -> list[str]:
        return [p.column for p in self.plans]

    def for_partition(self, partition: Partition) -> ImputeTransform:
        """This transform with only the seeds of the partition's own chunks."""
        seeds = self.seeds or {}
        return replace(self, seeds={o: seeds[o] for o in chunk_offsets(partition,
                                                                       self.chunk_rows)
                                    if o in seeds})

    def expressions(self) -> tuple[list[pl.Expr], list[pl.Expr]]:
        """(indicator columns, filled columns) as expressions over one chunk.

        A scan step reads the candidate column ``scan.fill_candidates`` added.
        """
        scan_index = {c: i for i, c in enumerate(self.scan_columns)}
        filled = []
        for plan in self.plans:
            parts = [pl.col(plan.column)]
            for step in plan.steps:
                if step.kind == "constant":
                    parts.append(pl.lit(plan.constant, dtype=plan.dtype))
                elif step.kind not in scanning.NEEDS:  # a learned statistic
                    value = self.fills[f"{plan.column}:{step.kind}"]
                    if value is not None:
                        parts.append(pl.lit(value, dtype=plan.dtype))
                else:
                    candidate = pl.col(f"__bp_cand_{step.kind}_{scan_index[plan.column]}")
                    if plan.dtype.is_integer() and step.kind == "interpolate":
                        candidate = candidate.round(0, mode="half_to_even")
                    parts.append(candidate.cast(plan.dtype))
            filled.append(pl.coalesce(parts).alias(plan.column))
        indicators = [pl.col(p.column).is_null().alias(p.column + INDICATOR_SUFFIX)
                      for p in self.plans] if self.add_indicator else []
        return indicators, filled

    def transform(self, chunk: Chunk) -> pl.DataFrame:
        """Fill one chunk; the frame in output column order."""
        kinds = {p.column: p.scans for p in self.plans if p.scans}
        # the columns the fills read, alone: the joins and windows below then never
        # gather the other columns (text above all); the filled ones are put back
        needed = [self.group_by, self.order_by, *self.scan_columns,
                  *(p.column for p in self.plans)]
        frame = chunk.frame
        work = frame.select(list(dict.fromkeys(c for c in needed if c is not None)))
        work = scanning.prepare(work, self.group_by, self.order_by)
        work = scanning.fill_candidates(work, list(self.scan_columns),
                                        [kinds.get(c, []) for c in self.scan_columns],
                                        (self.seeds or {}).get(chunk.offset),
                                        by_order=bool(self.order_by))
        self._check_interpolated(work, chunk)
        indicators, filled = self.expressions()
        made = work.select(*indicators, *filled)
        return frame.with_columns(made).select(self.schema.names())

    def _check_interpolated(self, work: pl.DataFrame, chunk: Chunk) -> None:
        """Never an infinite or NaN fill: a gap next to +inf or -inf has no line through."""
        checked = {column: (pl.col(column).is_null() & pl.col(name).is_not_null()
                            & ~pl.col(name).is_finite())
                   for i, column in enumerate(self.scan_columns)
                   if (name := f"__bp_cand_interpolate_{i}") in work.columns
                   and work.schema[name].is_float()}
        if not checked or not any(work.select(e.any() for e in checked.values()).row(0)):
            return  # one pass over every column; the row is looked up only on a failure
        for column, wrong in checked.items():
            bad = work.select(wrong.arg_true()).to_series()
            if len(bad):
                raise BigprepError(
                    f"column {column!r}: a gap at {chunk.where(int(bad[0]))} lies next to an "
                    "infinite value (+inf or -inf), so interpolating it gives no number. "
                    "Replace infinite values with nulls first, or fill the column with "
                    f"ffill / bfill (`columns` {column}=ffill).")

    def counts(self, out: pl.DataFrame | None) -> dict:
        """Nulls left per imputed column (none when the streaming query ran)."""
        imputed = [p.column for p in self.plans]
        if out is None:
            return {"left": dict.fromkeys(imputed, 0)}
        return {"left": dict(zip(imputed, out.select(imputed).null_count().row(0)))}

    def lazy(self, partition: Partition) -> pl.LazyFrame | None:
        """Statistics and constants are a pure map: polars streams the whole file."""
        if self.scan_columns:
            return None
        floats = [p.column for p in self.plans if self.schema[p.column].is_float()]
        indicators, filled = self.expressions()
        return (pl.scan_parquet(partition.path).with_columns(pl.col(floats).fill_nan(None))
                .with_columns(indicators).with_columns(filled).select(self.schema.names()))
