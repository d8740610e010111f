"""The apply pass: a parallel map that fills each chunk and writes each partition.

Every step of a column's chain yields a candidate computed from the original
values (a learned statistic, or a fill from neighbours with the seeds the scan
handed this chunk); the output is the first non-null of the original and the
candidates, so a chain fills "what is still null" in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ..dataset import Partition, iter_chunks
from ..errors import BigprepError
from ..sink import sink_query, write_partition
from . import scan as scanning
from .strategies import ColumnPlan

INDICATOR_SUFFIX = "__missing"


@dataclass
class ApplySpec:
    """What every apply task needs; plain data, so it pickles to workers."""

    plans: list[ColumnPlan]
    fills: dict  # (column, kind) -> fill value, typed and rounded for the column
    group_by: str | None
    order_by: str | None
    add_indicator: bool
    schema: pl.Schema  # output schema
    chunk_rows: int
    compression: str = "zstd"
    scan_columns: tuple = ()  # in the fit's order: the seeds are indexed by it


def output_schema(schema: pl.Schema, plans: list[ColumnPlan], add_indicator: bool) -> pl.Schema:
    out = dict(schema)
    if add_indicator:
        out.update((plan.column + INDICATOR_SUFFIX, pl.Boolean) for plan in plans)
    return pl.Schema(out)


def fill_expressions(spec: ApplySpec) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """(indicator columns, filled columns) as expressions over one chunk.

    A scan step reads the candidate column ``scan.fill_candidates`` added.
    """
    scan_index = {c: i for i, c in enumerate(spec.scan_columns)}
    filled = []
    for plan in spec.plans:
        parts = [pl.col(plan.column)]
        for step in plan.steps:
            if step.kind == "constant":
                parts.append(pl.lit(plan.constant, dtype=plan.dtype))
            elif step.kind in ("mean", "median", "mode"):
                parts.append(pl.lit(spec.fills[(plan.column, step.kind)], dtype=plan.dtype))
            else:
                candidate = pl.col(f"__bp_cand_{step.kind}_{scan_index[plan.column]}")
                if plan.dtype.is_integer() and step.kind == "interpolate":
                    candidate = candidate.round(0, mode="half_to_even")
                parts.append(candidate.cast(plan.dtype))
        filled.append(pl.coalesce(parts).alias(plan.column))
    indicators = [pl.col(p.column).is_null().alias(p.column + INDICATOR_SUFFIX)
                  for p in spec.plans] if spec.add_indicator else []
    return indicators, filled


def transform_chunk(frame: pl.DataFrame, spec: ApplySpec,
                    seeds: pl.DataFrame | None) -> tuple[pl.DataFrame, dict]:
    """Fill one chunk; returns the frame in output column order and the nulls left."""
    kinds = {p.column: p.scans for p in spec.plans if p.scans}
    work = scanning.prepare(frame, spec.group_by, spec.order_by)
    work = scanning.fill_candidates(work, list(spec.scan_columns),
                                    [kinds.get(c, []) for c in spec.scan_columns], seeds,
                                    by_order=bool(spec.order_by))
    indicators, filled = fill_expressions(spec)
    out = work.with_columns(indicators).with_columns(filled).select(spec.schema.names())
    left = dict(zip([p.column for p in spec.plans],
                    out.select([p.column for p in spec.plans]).null_count().row(0)))
    return out, left


def apply_partition(job: tuple[Partition, ApplySpec, dict, str]) -> dict:
    """Fill one partition and write it atomically to ``final``."""
    try:
        return _apply_partition(*job)
    except BigprepError:
        raise
    except Exception as exc:  # noqa: BLE001 - storage and engine errors of every kind
        raise BigprepError(f"{job[0].path} -> {job[3]}: cannot be imputed "
                           f"({type(exc).__name__}: {exc}). No partial output was left; fix "
                           "the cause and run again.") from None


def _apply_partition(partition: Partition, spec: ApplySpec, seeds: dict, final: str) -> dict:
    """Fill one partition and write it atomically to ``final``.

    Statistics and constants are a pure map: polars' streaming engine reads,
    fills and writes the file (nothing is left null). Fills from neighbours go
    chunk by chunk, each chunk with the seeds the scan handed it.
    """
    imputed = [p.column for p in spec.plans]
    floats = [c for c in imputed if spec.schema[c].is_float()]
    if not spec.scan_columns and not partition.remote:
        indicators, filled = fill_expressions(spec)
        query = (pl.scan_parquet(partition.path).with_columns(pl.col(floats).fill_nan(None))
                 .with_columns(indicators).with_columns(filled).select(spec.schema.names()))
        sink_query(final, query, spec.compression, spec.chunk_rows, partition.options)
        return {"file": partition.rel, "rows": partition.rows, "left": dict.fromkeys(imputed, 0)}

    left = dict.fromkeys(imputed, 0)
    rows = 0

    def filled_chunks():
        nonlocal rows
        for offset, frame in iter_chunks(partition, None, spec.chunk_rows, nan_as_null=imputed):
            out, chunk_left = transform_chunk(frame, spec, seeds.get(offset))
            for c, n in chunk_left.items():
                left[c] += n
            rows += out.height
            yield out

    write_partition(final, filled_chunks(), spec.schema, spec.compression, spec.chunk_rows,
                    partition.options)
    return {"file": partition.rel, "rows": rows, "left": left}
