"""The ``bigprep`` command line: thin click commands over the library.

Commands parse options, call the library and report; they do no arithmetic.
A ``BigprepError`` becomes one clear message on stderr and exit code 1.
"""

from __future__ import annotations

import functools
import json
import sys

import click

from .dataset import DEFAULT_CHUNK_ROWS
from .errors import BigprepError
from .executor import Executor


def _console():
    from rich.console import Console

    return Console(file=sys.stderr)


def execution_options(fn):
    """Options every data command shares."""
    @click.option("--chunk-rows", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS,
                  show_default=True, help="Rows per chunk; memory grows with it.")
    @click.option("--scheduler", envvar="BIGPREP_SCHEDULER", default=None, metavar="ADDRESS",
                  help="Run on this Dask distributed scheduler (e.g. tcp://host:8786; "
                       "also $BIGPREP_SCHEDULER). Default: threads on this machine.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
    @functools.wraps(fn)
    def wrapper(*args, chunk_rows, scheduler, quiet, **kwargs):
        executor = Executor(scheduler, progress=not quiet and sys.stderr.isatty())
        try:
            return fn(*args, chunk_rows=chunk_rows, executor=executor, quiet=quiet, **kwargs)
        except BigprepError as err:
            raise click.ClickException(str(err)) from None
        finally:
            executor.close()
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bigprep")
def main():
    """Prepare Parquet data that is too large for memory.

    \b
    Example:
      bigprep impute 'data/*.parquet' --out cleaned/
      bigprep profile data/
    """


def _parse_columns(values: tuple[str, ...]) -> dict[str, str]:
    columns: dict[str, str] = {}
    for item in values:
        name, sep, chain = item.partition("=")
        if not sep or not name.strip() or not chain.strip():
            raise click.BadParameter(f"{item!r}: use COLUMN=STRATEGY, e.g. temp=median",
                                     param_hint="--column")
        if name.strip() in columns:
            raise click.BadParameter(f"column {name.strip()!r} given twice; chain strategies "
                                     "with commas instead: temp=interpolate,ffill",
                                     param_hint="--column")
        columns[name.strip()] = chain.strip()
    return columns


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=False, metavar="DIR",
              help="Output folder; each input file is written to the same relative path.")
@click.option("--strategy", "-s", metavar="S",
              help="Default strategy for every column with nulls that S can serve: "
                   "constant:V, mean, median, mode, ffill, bfill, interpolate, or a comma chain.")
@click.option("--column", "-c", "column", multiple=True, metavar="COL=S",
              help="Strategy (chain) for one column; repeat for more columns.")
@click.option("--group-by", metavar="COL", help="ffill/bfill/interpolate within groups of COL.")
@click.option("--order-by", metavar="COL",
              help="Rows are ordered by COL (checked, not sorted); interpolate uses its values.")
@click.option("--add-indicator", is_flag=True, help="Add a boolean COL__missing per imputed column.")
@click.option("--state", "state_path", metavar="FILE",
              help="Save the fitted state here (JSON, plus FILE.npz for large arrays).")
@click.option("--update", is_flag=True,
              help="Load --state, merge the new partitions into it, apply, save it back.")
@click.option("--compression", default="zstd", show_default=True,
              type=click.Choice(["zstd", "snappy", "gzip", "lz4", "brotli", "none"]))
@execution_options
def impute(inputs, out, strategy, column, group_by, order_by, add_indicator, state_path, update,
           compression, chunk_rows, executor, quiet):
    """Fill the nulls of Parquet partitions, out of core.

    INPUTS are Parquet files, folders (every *.parquet below) or glob patterns,
    taken in natural order. Without --strategy and --column: mean for numeric
    columns and mode for the others. Chains fill what is still null, in order.

    \b
    Example:
      bigprep impute sample_data/sensors/ --out cleaned/
      bigprep impute 'data/*.parquet' --out cleaned/ --strategy median
      bigprep impute data/ --out cleaned/ --column temp=interpolate,ffill \\
          --column status=mode --column note=constant:unknown \\
          --group-by sensor_id --order-by ts --add-indicator
      bigprep impute data/*.parquet --out cleaned/ --state impute-state.json
      bigprep impute new/*.parquet --out cleaned/ --state impute-state.json --update
    """
    from .impute.job import impute as run_impute

    if out is None and not state_path:
        raise click.UsageError("give --out DIR (and/or --state FILE to save the fitted state)")
    report = run_impute(inputs, out, strategy=strategy, columns=_parse_columns(column),
                        group_by=group_by, order_by=order_by, add_indicator=add_indicator,
                        state_path=state_path, update=update, chunk_rows=chunk_rows,
                        compression=None if compression == "none" else compression,
                        executor=executor)
    if not quiet:
        print_impute_summary(report, out, state_path)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_impute_summary(report, out, state_path) -> None:
    from rich.table import Table

    state = report.state
    title = f"bigprep impute: {state.rows:,} rows, {len(report.files)} files written"
    table = Table(title=title, title_justify="left")
    for head in ("column", "strategy", "fill values", "nulls filled", "nulls left"):
        table.add_column(head)
    for plan in report.applied:
        values = []
        for kind in plan.stats:
            value = state.fill_value(plan.column, kind)
            text = _fmt(value)
            if plan.dtype.is_integer() and isinstance(value, float) and value != round(value):
                text += f" -> {round(value)}"
            values.append(f"{kind}={text}")
        if plan.constant is not None:
            values.append(f"constant={plan.constant}")
        if plan.scans:
            values.append("from neighbours")
        filled = f"{report.filled(plan.column):,}" if report.files else "-"
        left = f"{report.left(plan.column):,}" if report.files else "-"
        table.add_row(plan.column, ",".join(map(str, plan.steps)), "; ".join(values), filled,
                      left)
    console = _console()
    console.print(table)
    if report.defaulted:
        console.print("No --strategy or --column given: mean for numeric columns, mode for "
                      "the others (scikit-learn's defaults).")
    reasons: dict[str, list[str]] = {}
    for name, why in report.skipped.items():
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        console.print(f"left alone ({why}): {', '.join(names)}")
    if out:
        console.print(f"output: {out}")
    if state_path:
        console.print(f"state saved: {state_path}")


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of a table.")
@execution_options
def profile(inputs, as_json, chunk_rows, executor, quiet):
    """Show what is missing where: per column type, nulls, null share, the
    longest run of nulls, and nulls per partition.

    \b
    Example:
      bigprep profile sample_data/sensors/
      bigprep profile 'data/*.parquet' --json > profile.json
    """
    from .profile import profile as run_profile

    result = run_profile(inputs, chunk_rows=chunk_rows, executor=executor)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['rows']:,} rows in {len(result['partitions'])} partitions",
                  title_justify="left")
    for head in ("column", "type", "nulls", "share", "longest run", "nulls per partition"):
        table.add_column(head)
    for name, col in result["columns"].items():
        per = col["nulls_per_partition"]
        shown = " ".join(map(str, per[:12])) + (" ..." if len(per) > 12 else "")
        table.add_row(name, col["type"], f"{col['nulls']:,}", f"{col['null_share']:.1%}",
                      f"{col['longest_null_run']:,}", shown)
    Console().print(table)


if __name__ == "__main__":
    main()
