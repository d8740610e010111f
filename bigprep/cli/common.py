"""What every command shares: execution options, the error mapping, small parsers.

The library names parameters in its messages (`` `order_by` ``); here each is
spelled as the flag a CLI user typed (``--order-by``). A ``BigprepError`` becomes
one message on stderr and exit code 1; usage errors exit 2 (click's own).
"""

from __future__ import annotations

import functools
import sys

import click

from ..engine.executor import Executor
from ..errors import BigprepError, UsageError
from ..io.dataset import DEFAULT_CHUNK_ROWS
from ..io.sink import COMPRESSIONS
from ..io.storage import options_from

# Python parameter -> flag, where the flag is not simply --name-with-dashes.
FLAGS = {"columns": "--column", "state": "--state", "ngram_range": "--ngram",
         "storage_options": "--storage-option", "use_idf": "--no-idf",
         "smooth_idf": "--no-smooth-idf", "lowercase": "--no-lowercase",
         "partial_fit": "--update", "inputs": "INPUTS"}


DEBUG = False  # --debug: show tracebacks behind messages


def flag(param: str) -> str:
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def render(err: BigprepError) -> str:
    return err.render(flag)


def spell(text: str) -> str:
    """Library text with its `param` marks spelled as flags."""
    return render(BigprepError(text))


def console():
    from rich.console import Console

    return Console(file=sys.stderr)


def fail(err: BigprepError, names=None):
    """The error as click shows it: parameters spelled as flags, or as ``names`` says
    (a pipeline's errors name the spec's keys)."""
    if DEBUG:
        import traceback

        traceback.print_exception(err)
    failure = click.ClickException(render(err) if names is None else err.render(names))
    failure.exit_code = 2 if isinstance(err, UsageError) else 1
    return failure


def execution_options(fn=None, *, chunk_rows: bool = True):
    """Options every data command shares; passes ``executor``, ``quiet``, ``storage``
    (and ``chunk_rows``, unless the command takes it from elsewhere: a pipeline spec)."""
    if fn is None:
        return functools.partial(execution_options, chunk_rows=chunk_rows)
    if chunk_rows:
        fn = _chunk_rows_option(fn)
    return _execution_options(fn)


def _chunk_rows_option(fn):
    return click.option("--chunk-rows", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS,
                        show_default=True, help="Rows per chunk; memory grows with it.")(fn)


storage_option = click.option(
    "--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
    help="Option for s3://, gs://, ... paths (e.g. endpoint_url=http://host:9000, "
         "anon=true, profile=NAME); also $BIGPREP_STORAGE_OPTIONS as JSON.")


def _execution_options(fn):
    @click.option("--scheduler", envvar="BIGPREP_SCHEDULER", default=None, metavar="ADDRESS",
                  help="Run on this Dask distributed scheduler (e.g. tcp://host:8786; "
                       "also $BIGPREP_SCHEDULER). Default: threads on this machine.")
    @click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
                  help="Start a local Dask cluster of N worker processes for this run.")
    @storage_option
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
    @functools.wraps(fn)
    def wrapper(*args, scheduler, workers, storage_option, quiet, **kwargs):
        try:
            storage = options_from(storage_option)
            executor = Executor(scheduler, workers=workers,
                                progress=not quiet and sys.stderr.isatty(),
                                log=None if quiet else console().print)
        except BigprepError as err:
            raise fail(err) from None
        try:
            return fn(*args, executor=executor, quiet=quiet, storage=storage, **kwargs)
        except BigprepError as err:
            raise fail(err) from None
        finally:
            executor.close()
    return wrapper


def output_options(fn):
    """Options of every command that writes a dataset: ``overwrite``, ``compression``."""
    @click.option("--overwrite", is_flag=True,
                  help="Replace a non-empty --out folder whole (its stale files too); "
                       "without it such a folder is refused.")
    @click.option("--compression", default="zstd", show_default=True,
                  type=click.Choice([c or "none" for c in COMPRESSIONS]),
                  help="Parquet compression of the output files.")
    @functools.wraps(fn)
    def wrapper(*args, compression, **kwargs):
        return fn(*args, compression=None if compression == "none" else compression, **kwargs)
    return wrapper


def names(text: str | None) -> list[str]:
    """``"id,title"`` -> ``["id", "title"]``."""
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
