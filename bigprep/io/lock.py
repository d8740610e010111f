"""Locks on what a run updates: a saved state or a model folder.

A run that updates ``PATH`` holds ``PATH.lock`` (created exclusively) with its pid,
host and start time; a second writer stops with a message naming the holder. A lock
left by a run that died on this host (its pid is gone) is taken over. Locks are
re-entrant within a process, so a command may hold one around an API call that takes
it again. Object stores have no exclusive create: states there are not locked.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import BigprepError
from .statefile import now
from .storage import is_remote, local

_HELD: dict[str, int] = {}  # lock path -> depth, for this process
UNWRITTEN_GRACE_S = 30  # a lock file still empty after this long was left by a killed run


@contextmanager
def locked(path: str | None, param: str = "state") -> Iterator[None]:
    """Hold ``PATH.lock`` while the body runs (no-op for None or a URL)."""
    if path is None or is_remote(path):
        yield
        return
    lock = os.path.abspath(local(path)) + ".lock"
    if lock in _HELD:
        _HELD[lock] += 1
    else:
        _acquire(lock, path, param)
        _HELD[lock] = 1
    try:
        yield
    finally:
        _HELD[lock] -= 1
        if not _HELD[lock]:
            del _HELD[lock]
            if os.path.exists(lock):
                os.remove(lock)


def _acquire(lock: str, path: str, param: str) -> None:
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if _stale(lock, holder):
                os.remove(lock)
                who = f"pid {holder.get('pid')} since {holder.get('started')}" if holder \
                    else "a run that died as it started"
                sys.stderr.write(f"bigprep: taking over {lock}, left by {who}: that run "
                                 "is gone.\n")
                continue
            who = (f"pid {holder.get('pid')} on {holder.get('host')} since "
                   f"{holder.get('started')}") if holder else "a run that is starting"
            raise BigprepError(
                f"`{param}` {path}: another run is updating it ({who}). Wait for it to "
                f"finish; if that run is gone for good, remove {lock}.") from None
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": now()}, fh)
        except BaseException:  # Ctrl-C or SIGTERM before it says who holds it: not held
            os.remove(lock)
            raise
        return
    raise BigprepError(f"`{param}` {path}: could not take {lock}; try again.")


def _holder(lock: str) -> dict:
    try:
        with open(lock) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _stale(lock: str, holder: dict) -> bool:
    """Left by a run that is gone: its pid no longer runs on this host, or it died
    before writing who it was."""
    if not holder:
        try:
            return time.time() - os.path.getmtime(lock) > UNWRITTEN_GRACE_S
        except OSError:
            return True  # removed meanwhile
    if holder.get("host") != socket.gethostname():
        return False  # cannot tell from here
    try:
        pid = int(holder["pid"])
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, TypeError, ValueError):
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet: gone, though its pid answers."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
