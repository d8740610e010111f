"""``bigprep impute`` and ``bigprep profile``."""

from __future__ import annotations

import json

import click

from ..errors import BigprepError
from ..io.lock import locked
from ..io.storage import exists
from .common import console, execution_options, fmt, output_options, spell


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


@click.command()
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
              help="Save the fitted state here (JSON, plus FILE.<hash>.npz for large arrays).")
@click.option("--update", is_flag=True,
              help="Learn more: load --state, merge the new partitions into it, apply, save it.")
@click.option("--apply", "apply_only", is_flag=True,
              help="Apply --state without learning: fill with the saved statistics (fills "
                   "from neighbours carry in the saved last values); the state is unchanged.")
@output_options
@execution_options
def impute(inputs, out, strategy, column, group_by, order_by, add_indicator, state_path, update,
           apply_only, overwrite, compression, chunk_rows, executor, quiet, storage):
    """Fill the nulls of Parquet partitions, out of core.

    INPUTS are Parquet files, folders (every *.parquet below) or glob patterns,
    taken in natural order. Without --strategy and --column: mean for numeric
    columns and mode for the others. Chains fill what is still null, in order.
    A state is learned (--state), learned more (--update) or applied without
    learning (--apply).

    \b
    Example:
      bigprep impute sample_data/sensors/ --out cleaned/
      bigprep impute 'data/*.parquet' --out cleaned/ --strategy median
      bigprep impute data/ --out cleaned/ --column temp=interpolate,ffill \\
          --column status=mode --column note=constant:unknown \\
          --group-by sensor_id --order-by ts --add-indicator
      bigprep impute data/*.parquet --out cleaned/ --state impute-state.json
      bigprep impute new/*.parquet --out cleaned/ --state impute-state.json --update
      bigprep impute scoring/ --out filled/ --state impute-state.json --apply
    """
    from ..api.imputer import Imputer

    if out is None and not state_path:
        raise click.UsageError("give --out DIR (and/or --state FILE to save the fitted state)")
    if update and overwrite:
        raise click.UsageError("--update adds the new partitions' outputs to --out and "
                               "--overwrite replaces it whole: give one of them.")
    if update and apply_only:
        raise click.UsageError("--update learns from the new partitions and --apply does not: "
                               "give one of them.")
    columns = _parse_columns(column)
    if update or apply_only:
        word = "--update" if update else "--apply"
        if not state_path or not exists(state_path, storage):
            raise BigprepError(f"{word} needs a saved state: {state_path or '--state FILE'} "
                               f"does not exist. Run once without {word} to create it.")
        if strategy or columns:
            raise BigprepError(f"{word} takes the strategies from the saved state; leave "
                               "--strategy and --column out (or fit a new state).")
        if apply_only and not out:
            raise click.UsageError("--apply writes filled files: give --out DIR.")
        with locked(None if apply_only else state_path):  # read, merge, save: one holder
            imp = Imputer.load(state_path, executor=executor, storage_options=storage)
            given = {k: v for k, v in (("group_by", group_by), ("order_by", order_by)) if v}
            imp.set_params(**given, add_indicator=add_indicator, chunk_rows=chunk_rows,
                           compression=compression)  # grouping and order: the saved ones
            if apply_only:
                report = imp.transform(inputs, out=out, overwrite=overwrite)
            else:
                report = imp.partial_fit_transform(inputs, out=out, save=state_path)
    else:
        imp = Imputer(strategy=strategy, columns=columns or None, group_by=group_by,
                      order_by=order_by, add_indicator=add_indicator,
                      keep_clean=bool(state_path), chunk_rows=chunk_rows,
                      compression=compression, executor=executor, storage_options=storage)
        report = imp.fit_transform(inputs, out=out, save=state_path, overwrite=overwrite)
    if not quiet:
        print_summary(report, out, state_path if not apply_only else None,
                      defaulted=not (strategy or columns or update or apply_only))


def print_summary(report, out, state_path, defaulted: bool) -> None:
    from rich.table import Table

    state = report.state
    written = sum(f["rows"] for f in report.files)
    title = (f"bigprep impute: {written:,} rows, {len(report.files)} files written; "
             f"statistics from {state.rows:,} rows")
    table = Table(title=title, title_justify="left")
    for head in ("column", "strategy", "fill values", "nulls filled", "nulls left"):
        table.add_column(head)
    for plan in report.applied:
        values = []
        for kind in plan.stats:
            value = state.fill_value(plan.column, kind)
            written = report.fills[f"{plan.column}:{kind}"]
            if value is None:
                values.append(f"{kind}=none (no values)")
                continue
            text = fmt(value)
            if value != written:  # an integer column: the fill as rounded and written
                text += f" -> {written}"
            values.append(f"{kind}={text}")
        if plan.constant is not None:
            values.append(f"constant={plan.constant}")
        if plan.scans:
            values.append("from neighbours")
        filled = report.filled(plan.column)
        shown = f"{filled:,}" if report.files and filled is not None else "-"
        left = f"{report.left(plan.column):,}" if report.files else "-"
        table.add_row(plan.column, ",".join(map(str, plan.steps)), "; ".join(values), shown,
                      left)
    out_console = console()
    out_console.print(table)
    if defaulted:
        out_console.print("No --strategy or --column given: mean for numeric columns, mode "
                          "for the others (scikit-learn's defaults).")
    reasons: dict[str, list[str]] = {}
    for name, why in report.skipped.items():
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        out_console.print(f"left alone ({spell(why)}): {', '.join(names)}")
    if out:
        out_console.print(f"output: {out}")
    if state_path:
        out_console.print(f"state saved: {state_path}")


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of a table.")
@execution_options
def profile(inputs, as_json, chunk_rows, executor, quiet, storage):
    """Show what is missing where: per column type, nulls, null share, the
    longest run of nulls, and nulls per partition.

    \b
    Example:
      bigprep profile sample_data/sensors/
      bigprep profile 'data/*.parquet' --json > profile.json
    """
    from ..api.profile import profile as run_profile

    result = run_profile(inputs, chunk_rows=chunk_rows, executor=executor,
                         storage_options=storage)
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
