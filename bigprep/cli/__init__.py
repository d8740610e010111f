"""The ``bigprep`` command line: thin click commands over the Python API.

Commands parse options, call ``bigprep.Imputer`` / ``TfidfVectorizer`` / ``SGDModel``
and report; they do no arithmetic and are the only place that knows flags.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import click

from ..errors import BigprepError
from . import common
from .impute import impute, profile
from .models import evaluate, predict, train
from .pipeline import run as run_command
from .pipeline import status, validate
from .tfidf import tfidf


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bigprep")
@click.option("--debug", is_flag=True, envvar="BIGPREP_DEBUG",
              help="Show the Python traceback behind an error message (also "
                   "$BIGPREP_DEBUG=1).")
def main(debug):
    """Prepare Parquet data that is too large for memory.

    Exit codes: 0 done, 1 a problem with the data, files or a saved state (one
    message says which and how to fix it), 2 a usage error, 130 interrupted
    (Ctrl-C, SIGTERM or SIGHUP: nothing half-written is left; run again).

    \b
    Example:
      bigprep impute 'data/*.parquet' --out cleaned/
      bigprep profile data/
      bigprep tfidf fit 'docs/*.parquet' --text-column body --state tfidf.json
      bigprep run pipelines/nightly_sensors.yaml
    """
    common.DEBUG = debug


for command in (impute, profile, tfidf, train, predict, evaluate, validate, run_command,
                status):
    main.add_command(command)

class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop and clean up exactly as on Ctrl-C."""


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def run(args: list[str] | None = None) -> None:
    """The console entry point: exit codes 0 / 1 (data) / 2 (usage) / 130 (interrupted),
    one message per error, a traceback only with --debug. It ends the process itself
    (``os._exit``): to run a command inside another program, call ``main`` (a click
    group) instead, as the tests do."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    code = 0
    try:
        main.main(args=args, standalone_mode=False)
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.ClickException as err:
        err.show()
        code = err.exit_code
    except (click.Abort, KeyboardInterrupt) as stop:
        _stopped(stop)  # leaves the process at once: worker threads may still be busy
    except BigprepError as err:
        click.echo(f"Error: {common.render(err)}", err=True)
        code = 1
    except Exception as exc:  # noqa: BLE001 - the last resort: a message, not a traceback
        if common.DEBUG:
            traceback.print_exc()
        click.echo(f"Error: {type(exc).__name__}: {exc}. This is a bug in bigprep, not in "
                   "your data: run again with --debug and report the traceback.", err=True)
        code = 1
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # done: a late signal changes nothing now
    # Everything is published, closed and flushed: leave without the interpreter's
    # teardown (freeing every module and the engines' pools is 0.15-0.2 s per run).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _stopped(stop: BaseException) -> None:
    from ..io.commit import remove_active_staging

    remove_active_staging()
    cause = stop.__cause__ or stop
    what = f"{cause.args[0]}" if isinstance(cause, Interrupted) and cause.args else "Ctrl-C"
    click.echo(f"\nInterrupted ({what}): no half-written output or state was published "
               "(each is published whole or not at all). Run the command again.", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


if __name__ == "__main__":
    run()
