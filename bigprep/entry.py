"""The console entry point, kept tiny: a stop signal during start-up (while the
libraries load) ends the process at once with code 130, without a traceback."""

from __future__ import annotations

import os
import signal
import sys


def _early_stop(signum, frame):
    sys.stderr.write("\nInterrupted while starting: nothing was read or written.\n")
    sys.stderr.flush()
    os._exit(130)


def run() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _early_stop)
    from .cli import run as run_cli

    run_cli()
