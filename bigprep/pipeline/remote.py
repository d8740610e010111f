"""A pipeline's state folder on object storage: worked on as a local copy, synced back
with the ledger last.

A run downloads the ledger and the states it names into a temporary folder, runs
there as on a local state folder, then uploads the states the new ledger names that
the store lacks, then the ledger (one PUT: it appears whole or not at all), then
removes the objects the ledger no longer names. A run killed before the ledger's
upload leaves the previous ledger naming the previous states, which are still there
(new objects not named yet are removed by the next run). Object stores have no
exclusive create, so two runs of one pipeline on a remote state are not locked out:
run each pipeline from one scheduler (as for the states of other commands).
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import BigprepError
from ..io.storage import filesystem
from .ledger import NAME, belongs

STEPS = "steps"


@contextmanager
def working_copy(state: str, options: dict, *, write: bool = True) -> Iterator[str]:
    """A local folder holding ``state``'s ledger and named states; synced back when the
    body ends (also on a BigprepError: the failed run's log) unless ``write`` is off."""
    fs, root = filesystem(state, options)
    with tempfile.TemporaryDirectory(prefix="bigprep-state-") as folder:
        before = _download(fs, root, folder)
        if write:  # what a killed run uploaded before its ledger: never trusted, removed
            _remove_unnamed(fs, root, json.loads(before) if before else {})
        try:
            yield folder
        except BigprepError:
            if write:
                _upload(fs, root, folder, before)
            raise
        if write:
            _upload(fs, root, folder, before)


def _named(ledger: dict) -> list[str]:
    return list(ledger.get("states", {}).values())


def _download(fs, root: str, folder: str) -> bytes | None:
    """The ledger and its states, into ``folder``; the ledger's bytes (None: no ledger)."""
    try:
        with fs.open(f"{root}/{NAME}", "rb") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BigprepError(f"{root}/{NAME}: cannot be read ({exc}).") from None
    with open(os.path.join(folder, NAME), "wb") as fh:
        fh.write(text)
    try:
        ledger = json.loads(text)
    except ValueError:
        raise BigprepError(f"{root}/{NAME}: not a bigprep ledger (not JSON). It is the "
                           "pipeline's memory: restore it, or remove it and run with "
                           "`full` to rebuild it.") from None
    names = _named(ledger)
    for rel in _listing(fs, root):
        if belongs(rel, names):
            os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
            fs.get_file(f"{root}/{rel}", os.path.join(folder, rel))
    return text


def _listing(fs, root: str) -> list[str]:
    """Every state object, relative to the state folder."""
    steps = f"{root}/{STEPS}"
    return [posixpath.relpath(p, root) for p in fs.find(steps)] if fs.exists(steps) else []


def _upload(fs, root: str, folder: str, before: bytes | None) -> None:
    path = os.path.join(folder, NAME)
    if not os.path.exists(path):
        return
    with open(path, "rb") as fh:
        text = fh.read()
    if text == before:
        return
    present = set(_listing(fs, root))  # the states named before: there already
    for base, _, files in os.walk(os.path.join(folder, STEPS)):
        for name in files:
            rel = os.path.relpath(os.path.join(base, name), folder)
            if rel not in present:
                fs.put_file(os.path.join(folder, rel), f"{root}/{rel}")
    fs.pipe_file(f"{root}/{NAME}", text)  # last: the commit
    _remove_unnamed(fs, root, json.loads(text))


def _remove_unnamed(fs, root: str, ledger: dict) -> None:
    """The state objects ``ledger`` does not name."""
    names = _named(ledger)
    for rel in _listing(fs, root):
        if not belongs(rel, names):
            fs.rm(f"{root}/{rel}")


def modified(state: str, name: str, options: dict) -> float | None:
    """When the named state was saved (seconds since the epoch; None: not there)."""
    fs, root = filesystem(state, options)
    times = [fs.modified(f"{root}/{rel}").timestamp() for rel in _listing(fs, root)
             if belongs(rel, [name])]
    return max(times, default=None)
