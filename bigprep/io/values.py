"""Typed values in and out of JSON, and the dtype families strategies serve."""

from __future__ import annotations

import datetime as dt
import decimal
import io

import polars as pl

from ..errors import BigprepError

NUMERIC = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
           pl.Float32, pl.Float64)


def is_numeric(dtype: pl.DataType) -> bool:
    return dtype in NUMERIC


def to_json_value(value):
    """A Python value as JSON can hold it (dates and times as ISO text).

    >>> to_json_value(dt.date(2024, 1, 2))
    '2024-01-02'
    """
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def parse_value(text, dtype: pl.DataType, what: str):
    """Type ``text`` (from the command line or JSON) to ``dtype``.

    >>> parse_value("3", pl.Int64, "x")
    3
    >>> parse_value("yes", pl.Boolean, "x")
    True
    """
    try:
        if dtype == pl.Boolean and isinstance(text, str):
            lowered = text.strip().lower()
            if lowered in ("true", "t", "yes", "y", "1"):
                return True
            if lowered in ("false", "f", "no", "n", "0"):
                return False
            raise ValueError(text)
        series = pl.Series([text])
        if isinstance(text, str) and dtype == pl.Date:
            series = series.str.to_date()
        elif isinstance(text, str) and isinstance(dtype, pl.Datetime):
            series = series.str.to_datetime(time_unit=dtype.time_unit,
                                            time_zone=dtype.time_zone)
        elif isinstance(text, str) and dtype.is_integer():
            series = series.cast(pl.Int128, strict=True)
        return series.cast(dtype, strict=True)[0]
    except (ValueError, TypeError, OverflowError, pl.exceptions.PolarsError):
        raise BigprepError(f"{what}: the value {text!r} cannot be read as {dtype}. "
                           "Give a value of the column's type.") from None


def frame_to_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    # the oldest Arrow layout: string views leave buffer bytes that vary from run to run
    frame.write_ipc(buffer, compat_level=pl.CompatLevel.oldest())
    return buffer.getvalue()


def frame_from_bytes(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(bytes(data)))
