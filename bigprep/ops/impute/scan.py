"""Forward fill, backward fill and interpolation as scans over chunks.

In the fit pass every chunk reports, per group, its row count, its first and last
order value, and per column its first and last valid value with their x (row
position within the group, or the ``order_by`` value). An exclusive prefix
scan over those summaries ("last valid wins") gives each chunk the value to
carry in from before it; the suffix scan gives the value from after it. Apply is
then a parallel map again. A chunk with no valid value is a summary with nulls,
which the scan simply passes over. Without ``group_by`` everything is one group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from ...errors import BigprepError
from ...io.values import frame_from_bytes, frame_to_bytes
from ...state.protocol import StateBase, register

PREFIX = "__bp_"  # of every working column; input columns may not start with it
GROUP, X, ROW, CHUNK, N, BEFORE = "__bp_g", "__bp_x", "__bp_row", "__bp_chunk", "__bp_n", \
    "__bp_before"
O_FIRST, O_LAST = "__bp_o_first", "__bp_o_last"


def _name(kind: str, i: int) -> str:
    return f"{PREFIX}{kind}_{i}"


def order_values(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """``order_by`` values as floats (timestamps and dates by their integer value)."""
    if dtype.is_temporal():
        expr = expr.to_physical()
    return expr.cast(pl.Float64)


def _nan_as_null(frame: pl.DataFrame, column: str) -> pl.Expr:
    expr = pl.col(column)
    return expr.fill_nan(None) if frame.schema[column].is_float() else expr


def prepare(frame: pl.DataFrame, group: str | None, order: str | None) -> pl.DataFrame:
    """Add the group key and the chunk-local x to a chunk."""
    # a NaN key or order value counts as null, in the fit pass and here alike; the
    # columns themselves are written back untouched
    key = _nan_as_null(frame, group) if group else pl.lit(0, dtype=pl.Int8)
    frame = frame.with_columns(key.alias(GROUP), pl.int_range(pl.len()).alias(ROW))
    if order:
        x = order_values(_nan_as_null(frame, order), frame.schema[order])
    else:
        x = pl.int_range(pl.len()).over(GROUP).cast(pl.Float64)
    return frame.with_columns(x.alias(X))


@register("fill_summaries",
          example=lambda: FillSummaries(["x"], [["ffill", "bfill", "interpolate"]], "g"))
@dataclass
class FillSummaries(StateBase):
    """The fill pass's reduction: per chunk (by its global offset) the ``summarize``
    row of each group; merge is concatenation in stream order. The result is the
    tail a later run carries in (the last valid values per group), which does not
    depend on how the rows were chunked."""

    CHUNK = "chunk"
    columns: list = field(default_factory=list)
    kinds: list = field(default_factory=list)  # the scan strategies of each column
    group_by: str | None = None
    order_by: str | None = None
    summaries: list = field(default_factory=list)  # [(offset, frame)] in stream order

    def empty(self) -> FillSummaries:
        return FillSummaries(self.columns, self.kinds, self.group_by, self.order_by)

    def update(self, chunk) -> FillSummaries:
        prepared = prepare(chunk.frame, self.group_by, self.order_by)
        summary = summarize(prepared, self.columns, self.kinds, by_order=bool(self.order_by))
        if self.order_by:
            if summary[BAD_ORDER].any():
                check_order(prepared, self.order_by, chunk.where)
            summary = summary.drop(BAD_ORDER)
        self.summaries.append((chunk.offset, summary))
        return self

    def merge(self, other: FillSummaries) -> FillSummaries:
        out = self.empty()
        out.summaries = self.summaries + other.summaries
        return out

    def scan(self, prior: pl.DataFrame | None = None) -> tuple[dict, pl.DataFrame | None]:
        """(seeds by chunk offset, tail); raises OrderError naming the chunk's offset."""
        if not self.summaries:
            return {}, prior
        offsets = [o for o, _ in self.summaries]
        try:
            seeded, tail = scan([s for _, s in self.summaries], self.columns,
                                by_order=bool(self.order_by), prior=prior)
        except OrderError as err:
            raise OrderError(offsets[err.chunk], err.row) from None
        seeds = {offsets[chunk]: frame for (chunk,), frame in
                 seeded.partition_by(CHUNK, as_dict=True).items()}
        return seeds, tail

    def result(self) -> pl.DataFrame | None:
        return self.scan()[1]

    def canonical(self):
        tail = self.result()
        return None if tail is None else tail.rows()

    def to_payload(self, sidecar: dict, key: str) -> dict:
        for i, (_, frame) in enumerate(self.summaries):
            sidecar[f"{key}/{i}"] = frame_to_bytes(frame)
        return {"columns": self.columns, "kinds": self.kinds, "group_by": self.group_by,
                "order_by": self.order_by, "offsets": [o for o, _ in self.summaries]}

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> FillSummaries:
        summaries = [(o, frame_from_bytes(sidecar[f"{key}/{i}"]))
                     for i, o in enumerate(data["offsets"])]
        return cls(data["columns"], data["kinds"], data["group_by"], data["order_by"],
                   summaries)


def check_order(frame: pl.DataFrame, order: str, where) -> None:
    """Stop on a null or a decrease of the order column within a group.

    The slow path: ``summarize`` flags a chunk cheaply; this names the row."""
    nulls = frame.filter(pl.col(X).is_null())
    if nulls.height:
        raise BigprepError(f"{where(nulls[ROW][0])}: `order_by` column {order!r} is null. "
                           "Every row needs an order value: fill or drop those rows first.")
    bad = frame.filter((pl.col(X) < pl.col(X).shift(1)).over(GROUP).fill_null(False))
    if bad.height:
        raise BigprepError(
            f"{where(bad[ROW][0])}: `order_by` column {order!r} decreases within its group "
            f"(value {bad[order][0]}). bigprep does not sort: sort the data by "
            f"{order!r} first, or leave `order_by` out.")


NEEDS = {"ffill": ("last",), "bfill": ("first",),
         "interpolate": ("first", "first_x", "last", "last_x")}
BAD_ORDER = "__bp_bad_order"


def summarize(frame: pl.DataFrame, columns: list[str], kinds: list[list[str]],
              by_order: bool) -> pl.DataFrame:
    """One row per group present in the (prepared) chunk: what the scan needs.

    With ``by_order``, ``__bp_bad_order`` flags a group whose order value is null
    or decreases inside the chunk (``check_order`` then finds the row).
    """
    aggs = [pl.len().alias(N), pl.col(ROW).first(), pl.col(X).first().alias(O_FIRST),
            pl.col(X).last().alias(O_LAST)]
    if by_order:
        aggs.append(((pl.col(X).diff() < 0).any() | pl.col(X).is_null().any())
                    .alias(BAD_ORDER))
    for i, (c, wanted) in enumerate(zip(columns, kinds)):
        valid = pl.col(c).is_not_null()
        needed = {n for k in wanted for n in NEEDS[k]}
        source = {"first": (pl.col(c), "first"), "first_x": (pl.col(X), "first"),
                  "last": (pl.col(c), "last"), "last_x": (pl.col(X), "last")}
        for name in sorted(needed):
            expr, end = source[name]
            expr = expr.filter(valid)
            aggs.append((expr.first() if end == "first" else expr.last()).alias(_name(name, i)))
    return frame.group_by(GROUP, maintain_order=True).agg(aggs)


def scan(summaries: list[pl.DataFrame], columns: list[str], *, by_order: bool,
         prior: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Seeds for every (chunk, group) and the tail to carry into a later run.

    ``summaries`` are in stream order; ``prior`` is the tail of an earlier run.
    Returns (seeds with a ``__bp_chunk`` column, tail). Raises on an order
    decrease across chunks, naming the chunk by index (the caller names the file).
    """
    frames = [s.with_columns(pl.lit(i, dtype=pl.Int64).alias(CHUNK))
              for i, s in enumerate(summaries)]
    if prior is not None and prior.height:
        frames.insert(0, prior.with_columns(pl.lit(-1, dtype=pl.Int64).alias(CHUNK)))
    allrows = pl.concat(frames, how="diagonal_relaxed")
    over = pl.col(GROUP)
    allrows = allrows.with_columns(pl.col(N).cum_sum().shift(1, fill_value=0).over(over)
                                   .alias(BEFORE))
    if by_order:
        prev = pl.col(O_LAST).shift(1).over(over)
        bad = allrows.filter((pl.col(O_FIRST) < prev).fill_null(False))
        if bad.height:
            raise OrderError(int(bad[CHUNK][0]), int(bad[ROW][0]))
    else:  # positions were chunk-local: make them positions within the whole group
        shift = [(pl.col(_name(k, i)) + pl.col(BEFORE)).alias(_name(k, i))
                 for i in range(len(columns)) for k in ("first_x", "last_x")
                 if _name(k, i) in allrows.columns]
        shift += [(pl.col(c) + pl.col(BEFORE)).alias(c) for c in (O_FIRST, O_LAST)]
        allrows = allrows.with_columns(shift)
    seeds = [pl.col(CHUNK), pl.col(GROUP), pl.col(BEFORE)]
    tail = [pl.col(N).sum(), pl.col(O_LAST).last()]
    present = set(allrows.columns)
    for i in range(len(columns)):
        for kind, seed, fill, step in (("last", "ff_val", "forward", 1),
                                       ("last_x", "ff_x", "forward", 1),
                                       ("first", "bf_val", "backward", -1),
                                       ("first_x", "bf_x", "backward", -1)):
            if _name(kind, i) not in present:
                continue
            column = pl.col(_name(kind, i))
            filled = column.forward_fill() if fill == "forward" else column.backward_fill()
            seeds.append(filled.shift(step).over(over).alias(_name(seed, i)))
            if fill == "forward":  # what a later run carries in
                tail.append(column.drop_nulls().last())
    seeded = allrows.select(seeds).filter(pl.col(CHUNK) >= 0)
    tail_frame = allrows.group_by(GROUP, maintain_order=True).agg(tail)
    return seeded, tail_frame


class OrderError(Exception):
    """An order value decreases across chunks: at ``chunk`` (an index, or the chunk's
    global offset once FillSummaries has named it), row ``row`` of that chunk."""

    def __init__(self, chunk: int, row: int):
        super().__init__(chunk, row)
        self.chunk, self.row = chunk, row


def fill_candidates(frame: pl.DataFrame, columns: list[str], kinds: list[list[str]],
                    seeds: pl.DataFrame | None, by_order: bool) -> pl.DataFrame:
    """Add, per column, the ffill / bfill / interpolate candidate columns.

    ``frame`` is a prepared chunk; ``seeds`` holds this chunk's rows of ``scan``.
    Candidates are named ``__bp_cand_{kind}_{i}``.
    """
    if seeds is None:
        seeds = pl.DataFrame(schema={GROUP: frame.schema[GROUP], BEFORE: pl.Int64})
    seeds = seeds.drop(CHUNK, strict=False).cast({GROUP: frame.schema[GROUP]})
    frame = frame.join(seeds, on=GROUP, how="left", nulls_equal=True, maintain_order="left")
    over = pl.col(GROUP)
    if not by_order:  # chunk-local positions become positions within the whole group
        frame = frame.with_columns(pl.col(X) + pl.col(BEFORE).fill_null(0))
    x = pl.col(X)
    # Stage 1: nearest valid value (and its x) before and after each row; stage 2
    # builds the candidates from those columns, so no window is computed twice.
    nearest, candidates = [], []
    for i, (c, wanted) in enumerate(zip(columns, kinds)):
        if not wanted:
            continue
        col, valid = pl.col(c), pl.col(c).is_not_null()
        interpolate = "interpolate" in wanted
        if "ffill" in wanted or interpolate:
            nearest.append(pl.coalesce(col.forward_fill().over(over), _seed(frame, "ff_val", i))
                           .alias(_name("prev", i)))
            candidates.append(pl.col(_name("prev", i)).alias(_name("cand_ffill", i)))
        if "bfill" in wanted or interpolate:
            nearest.append(pl.coalesce(col.backward_fill().over(over), _seed(frame, "bf_val", i))
                           .alias(_name("next", i)))
            candidates.append(pl.col(_name("next", i)).alias(_name("cand_bfill", i)))
        if interpolate:
            at = pl.when(valid).then(x)
            nearest += [pl.coalesce(at.forward_fill().over(over), _seed(frame, "ff_x", i))
                        .alias(_name("prev_x", i)),
                        pl.coalesce(at.backward_fill().over(over), _seed(frame, "bf_x", i))
                        .alias(_name("next_x", i))]
            px, nx = pl.col(_name("prev_x", i)), pl.col(_name("next_x", i))
            py = pl.col(_name("prev", i)).cast(pl.Float64)
            ny = pl.col(_name("next", i)).cast(pl.Float64)
            # np.interp's formula, so values equal pandas' interpolate bit for bit
            line = ((ny - py) / (nx - px)) * (x - px) + py
            candidates.append(pl.when(nx > px).then(line).otherwise(pl.when(nx == px).then(py))
                              .alias(_name("cand_interpolate", i)))
    return frame.with_columns(nearest).with_columns(candidates)


def _seed(frame: pl.DataFrame, kind: str, i: int) -> pl.Expr:
    name = _name(kind, i)
    return pl.col(name) if name in frame.columns else pl.lit(None)
