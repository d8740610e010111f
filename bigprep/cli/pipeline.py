"""``bigprep run``, ``validate`` and ``status``: scheduled pipelines from YAML specs."""

from __future__ import annotations

import json
import os

import click

from ..errors import BigprepError
from ..io.storage import options_from
from .common import console, execution_options, fail, storage_option

# a run's errors name what the spec calls them: the steps' keys are the API's parameter
# names, and these few differ
SPEC_KEYS = {"out": "output", "inputs": "input", "full": "--full"}


def _spec(path: str):
    from ..pipeline import load_spec

    try:
        return load_spec(path)
    except BigprepError as err:
        raise fail(err) from None


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
def validate(specs):
    """Check pipeline specs without reading any data.

    Unknown keys (with the nearest valid name), wrong types, unknown strategies, a
    column a step needs that an earlier step drops, steps out of order: each is
    reported as FILE:LINE: message, and the exit code is 2.

    \b
    Example:
      bigprep validate pipelines/*.yaml
    """
    for path in specs:
        spec = _spec(path)
        click.echo(f"{path}: ok ({spec.name}: {len(spec.steps)} step(s): "
                   f"{', '.join(s.kind for s in spec.steps)})")


@click.command()
@click.argument("spec_path", metavar="SPEC")
@click.option("--full", is_flag=True, help="Refit every step from scratch over all input "
              "partitions and rewrite the output whole (after the spec changed, or to "
              "take in partitions whose content changed).")
@click.option("--dry-run", is_flag=True, help="Say what would be read, fitted and written, "
              "and why; change nothing.")
@click.option("--keep-going", is_flag=True, help="A partition that fails (unreadable, schema "
              "drift, a bad value) is recorded as failed and the others go on; the exit "
              "code is then 3. Default: the first failure stops the run, nothing recorded.")
@click.option("--retry-failed", is_flag=True, help="Process only the partitions recorded as "
              "failed (after fixing the cause; a fixed file is new anyway).")
@click.option("--reprocess-changed", is_flag=True, help="Also rewrite the outputs of "
              "partitions whose content changed, with the saved states as they are (the "
              "states do not learn from them; --full refits exactly).")
@click.option("--log-json", is_flag=True, help="Print one JSON line for the run on stdout "
              "(partitions, rows, seconds, steps): for schedulers and log collectors.")
@execution_options(chunk_rows=False)
def run(spec_path, full, dry_run, keep_going, retry_failed, reprocess_changed, log_json,
        executor, quiet, storage):
    """Run a pipeline over the input partitions it has not done yet.

    The state folder's ledger knows every partition done, by content (size and a
    hash of its Parquet footer): new files are processed whatever their names,
    a file rewritten in place is reported as changed. Steps are fused: the fits of
    adjacent steps share a read of the new partitions, and all steps are applied in
    one read and one write per partition. Exit code 0 when done and when there was
    nothing new; 1 on a data error (nothing recorded), 2 on a spec error, 3 when
    --keep-going recorded failed partitions.

    \b
    Example:
      bigprep run pipelines/nightly_sensors.yaml
      bigprep run pipelines/nightly_sensors.yaml --dry-run
      bigprep run pipelines/nightly_sensors.yaml --keep-going
      bigprep run pipelines/nightly_sensors.yaml --retry-failed
      bigprep run pipelines/nightly_sensors.yaml --full
    """
    from ..pipeline import run_pipeline

    spec = _spec(spec_path)
    if sum([full, retry_failed, reprocess_changed]) > 1:
        raise click.UsageError("--full, --retry-failed and --reprocess-changed choose "
                               "different partitions: give one of them.")
    try:
        report = run_pipeline(spec, full=full, dry_run=dry_run, keep_going=keep_going,
                              retry_failed=retry_failed, reprocess_changed=reprocess_changed,
                              executor=executor, storage_options=storage)
    except BigprepError as err:
        if log_json:  # one line per run, failed ones too
            click.echo(json.dumps({"pipeline": spec.name, "status": "failed",
                                   "error": err.render(SPEC_KEYS)}))
        raise fail(err, SPEC_KEYS) from None
    if log_json:
        click.echo(json.dumps(report.to_json()))
    if not quiet:
        _print_report(spec, report)
    if report.failed:
        raise SystemExit(PARTLY_DONE)


PARTLY_DONE = 3  # the exit code when --keep-going recorded failed partitions


def _print_report(spec, report) -> None:
    out = console()
    if report.status == "dry run":
        out.print(f"{spec.name}: dry run, nothing changed. Would:")
        for line in report.plan:
            out.print(f"  {line}")
    elif report.status == "nothing new":
        out.print(f"{spec.name}: nothing new ({report.seconds:.1f} s).")
    else:
        out.print(f"{spec.name}: {len(report.processed)} partition(s), {report.rows:,} rows "
                  f"in {report.seconds:.1f} s -> {spec.output}")
    if report.reapplied:
        out.print(f"  {len(report.reapplied)} changed partition(s): outputs rewritten with "
                  "the saved states (which did not learn from them)")
    for error in report.failed.values():
        out.print(f"  failed, recorded: {error}", markup=False)
    if report.failed:
        out.print(f"  {len(report.failed)} partition(s) failed and are recorded; fix them "
                  "(a fixed file is new) or run with --retry-failed.")
    for why, paths in report.skipped.items():
        out.print(f"  {len(paths)} partition(s) {why}, not processed (e.g. {paths[0]}): "
                  + _SKIPPED[why], markup=False)


_SKIPPED = {"changed": "their content changed since they were done; --reprocess-changed "
                       "rewrites their outputs, --full refits with them.",
            "stale": "done by another version of the steps; --full redoes them.",
            "failed": "they failed before; --retry-failed tries them again.",
            "new": "not asked for by --retry-failed; the next run takes them."}


@click.command()
@click.argument("spec_path", metavar="SPEC")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@storage_option
def status(spec_path, as_json, storage_option):
    """Show what a pipeline has done: runs, partitions done / new / changed, states.

    \b
    Example:
      bigprep status pipelines/nightly_sensors.yaml
    """
    from ..pipeline.status import pipeline_status

    spec = _spec(spec_path)
    try:
        info = pipeline_status(spec, options_from(storage_option))
    except BigprepError as err:
        raise fail(err, SPEC_KEYS) from None
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"pipeline {info['pipeline']} ({os.path.relpath(spec.path)})")
    last = info["last_run"]
    click.echo(f"  runs: {info['runs']}" + (f", last {last['finished']}: {last['status']}, "
                                             f"{last['partitions']} partition(s)"
                                             if last else ""))
    for kind in ("done", "new", "changed", "stale", "failed", "unreadable", "missing"):
        if info["partitions"][kind] or kind in ("done", "new"):
            click.echo(f"  {kind:10} {info['partitions'][kind]}")
    for path, error in {**info["failed"], **info["unreadable"]}.items():
        click.echo(f"  {path}: {error}")
    for key, state in info["states"].items():
        click.echo(f"  state {key}: {state['file']} (saved {state['age']} ago)")
