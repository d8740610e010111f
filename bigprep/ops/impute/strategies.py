"""Which column gets which strategy chain, checked against the schema.

A strategy chain is applied in order to what is still null. Statistics are
learned from the original values, and ffill/bfill/interpolate only ever reach
original neighbours, so each step can be computed from the original column and
the chain is a ``coalesce`` of the steps.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import polars as pl

from ...errors import BigprepError, UsageError
from ...io.values import is_numeric, parse_value
from ...state import STATISTICS  # every registered statistic is a strategy

SCANS = ("ffill", "bfill", "interpolate")  # fills from neighbours (scan.py)
ALIASES = {"most_frequent": "mode", "forward": "ffill", "pad": "ffill",
           "backward": "bfill", "linear": "interpolate", "average": "mean"}


def is_statistic(kind: str) -> bool:
    return kind in STATISTICS


@dataclass(frozen=True)
class Step:
    kind: str  # constant | mean | median | mode | ffill | bfill | interpolate
    text: str | None = None  # the constant as the user wrote it

    def __str__(self) -> str:
        return f"constant:{self.text}" if self.kind == "constant" else self.kind


def parse_chain(text: str, where: str) -> tuple[Step, ...]:
    """``"interpolate,ffill,median"`` -> steps; ``where`` names the parameter in errors.

    >>> [str(s) for s in parse_chain("interpolate, most_frequent", "`strategy`")]
    ['interpolate', 'mode']
    >>> parse_chain("constant:a,b", "`strategy`")[0].text
    'a,b'
    """
    steps = []
    rest = text.strip()
    while rest:
        if rest.startswith("constant:"):  # a constant may hold commas: it ends the chain
            steps.append(Step("constant", rest[len("constant:"):]))
            break
        head, _, rest = rest.partition(",")
        name = ALIASES.get(head.strip().lower(), head.strip().lower())
        if name not in (*STATISTICS, *SCANS):
            close = difflib.get_close_matches(name, [*STATISTICS, *SCANS, *ALIASES], 1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"{where} {text}: unknown strategy {head.strip()!r}.{hint} Use constant:VALUE, "
                f"{', '.join(STATISTICS)} (mode: most_frequent), ffill, bfill or interpolate, "
                "comma-chained.")
        steps.append(Step(name))
        rest = rest.strip()
    if not steps:
        raise UsageError(f"{where}: empty strategy; e.g. mean, or interpolate,ffill")
    return tuple(steps)


def serves(step: Step, dtype: pl.DataType) -> bool:
    numeric_only = step.kind == "interpolate" or (
        is_statistic(step.kind) and STATISTICS[step.kind].numeric_only)
    return is_numeric(dtype) if numeric_only else True


@dataclass(frozen=True)
class ColumnPlan:
    column: str
    dtype: pl.DataType
    steps: tuple[Step, ...]
    source: str  # "columns" (named by the user), "strategy" or "default"
    constant: object = None  # the constant, typed to the column

    @property
    def stats(self) -> list[str]:
        return [s.kind for s in self.steps if is_statistic(s.kind)]

    @property
    def scans(self) -> list[str]:
        return [s.kind for s in self.steps if s.kind in SCANS]


def plan_columns(schema: dict, null_counts: dict, *, strategy: str | None,
                 columns: dict[str, str], exclude: tuple = (),
                 include_clean: bool = False) -> tuple[list[ColumnPlan], dict]:
    """Decide the chain of every column; returns (plans, columns left alone with why).

    ``schema`` maps names to polars dtypes; ``null_counts`` is from the footers
    (None when unknown). ``columns`` wins; with ``columns`` alone only those
    columns are imputed; ``strategy`` serves every column with nulls it can;
    with neither, mean for numeric columns and mode for the others. With
    ``include_clean`` (a state that later data will use), columns without nulls
    are planned too, so later data that has nulls there finds its statistic.
    """
    plans, skipped = [], {}
    for name, text in columns.items():
        if name not in schema:
            raise BigprepError(f"`columns` {name}={text}: column {name!r} is not in the data. "
                               f"Columns: {', '.join(schema)}.")
        steps = parse_chain(text, f"`columns` {name}=")
        if schema[name].is_nested():
            raise BigprepError(f"`columns` {name}={text}: {name!r} is {schema[name]}, a list "
                               "or struct per row; bigprep imputes columns of one value a "
                               "row. Leave it out (or flatten it first).")
        for step in steps:
            if not serves(step, schema[name]):
                raise BigprepError(
                    f"`columns` {name}={text}: {step.kind} needs a numeric column, but "
                    f"{name!r} is {schema[name]}. Use mode, constant:VALUE, ffill or bfill "
                    "for it.")
        plans.append(_plan(name, schema[name], steps, "columns"))
    if columns and strategy is None:
        return plans, skipped
    default = parse_chain(strategy, "`strategy`") if strategy else None
    for name, dtype in schema.items():
        if name in columns or name in exclude:
            continue
        if dtype.is_nested():  # a statistic of lists is not a fill anyone asked for
            skipped[name] = f"{dtype}: a list or struct per row, not imputed"
            continue
        if null_counts.get(name, None) == 0 and not include_clean:
            skipped[name] = "no nulls"
            continue
        if default is None:
            steps = (Step("mean"),) if is_numeric(dtype) else (Step("mode"),)
            plans.append(_plan(name, dtype, steps, "default"))
        elif all(serves(s, dtype) for s in default):
            plans.append(_plan(name, dtype, default, "strategy"))
        else:
            skipped[name] = f"{dtype} is not numeric; {strategy} needs numbers"
    return plans, skipped


def _plan(name: str, dtype, steps: tuple[Step, ...], source: str) -> ColumnPlan:
    constant = None
    for step in steps:
        if step.kind == "constant":
            constant = parse_value(step.text, dtype, f"constant for column {name!r}")
    return ColumnPlan(name, dtype, steps, source, constant)
