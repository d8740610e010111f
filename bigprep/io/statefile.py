"""Saved states: one envelope for every command, JSON a person can read plus a sidecar.

The envelope says what the file is (format, version), which operation fitted it,
with which parameters, from which partitions, and when; the payload is the
operation's own. Large arrays go to ``FILE.<hash>.npz`` beside it. One writer and one
reader serve every kind of state, on local disk or object storage, and the reader
gives one clear error for a wrong kind of file, another version, or a damaged one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..errors import BigprepError
from ..version import __version__
from .sink import TMP_MARK, atomic_path, write_json_atomic
from .storage import is_remote, open_input

FORMAT = "bigprep.state"
VERSION = 2  # 1 was the per-command formats of bigprep 0.1 (bigprep.impute/1, ...)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Envelope:
    operation: str  # impute | tfidf | ...
    parameters: dict
    payload: dict
    sidecar: dict = field(default_factory=dict)  # name -> bytes
    partitions_seen: list = field(default_factory=list)  # [path, rows] of each partition
    created: str = field(default_factory=now)
    updates: int = 0

    def to_json(self, stamped: bool = True) -> dict:
        """``stamped=False``: no wall-clock times (a pipeline's states, whose run times
        the ledger keeps), so the same fit saves the same bytes."""
        return {"format": FORMAT, "version": VERSION, "operation": self.operation,
                "bigprep_version": __version__, "created": self.created if stamped else None,
                "saved": now() if stamped else None,
                "updates": self.updates, "parameters": self.parameters,
                "partitions_seen": self.partitions_seen, "payload": self.payload}


def save_envelope(path: str, envelope: Envelope, options: dict | None = None,
                  stamped: bool = True) -> None:
    """Write ``path`` and, when there are arrays, ``PATH.<hash>.npz``, each atomically.

    The sidecar is named by its content hash and written first; the JSON, written last,
    names it and records the hash. A run killed in between leaves the previous JSON,
    which still names its own (untouched) sidecar: the state on disk is always one
    consistent pair. Sidecars no state names any more are removed afterwards.
    """
    data = {**envelope.to_json(stamped), "sidecar": None, "sidecar_sha256": None}
    if envelope.sidecar:
        blob = _npz_bytes(envelope.sidecar)
        digest = hashlib.sha256(blob).hexdigest()
        side = f"{path}.{digest[:16]}.npz"
        with atomic_path(side, options) as tmp, open(tmp, "wb") as fh:
            fh.write(blob)
        data.update(sidecar=posixpath.basename(side), sidecar_sha256=digest)
    write_json_atomic(path, data, options)
    _remove_unnamed_sidecars(path, data["sidecar"])


def _npz_bytes(arrays: dict) -> bytes:
    """``np.savez`` of byte arrays, reproducibly (see ``timeless_zip``)."""
    members = []
    for key, value in arrays.items():
        array = io.BytesIO()
        np.lib.format.write_array(array, np.frombuffer(value, dtype=np.uint8))
        members.append((f"{key}.npy", array.getvalue()))
    return timeless_zip(members)


def timeless_zip(members) -> bytes:
    """A zip (stored) of ``(name, bytes)`` members without time stamps: the same content
    gives the same bytes, so the same content-hash name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def _remove_unnamed_sidecars(path: str, keep: str | None) -> None:
    if is_remote(path):
        return  # object stores: left for a lifecycle rule; they are never read
    folder, name = os.path.split(os.path.abspath(path))
    ours = re.compile(re.escape(name) + r"(\.[0-9a-f]{16})?\.npz")  # this state's, any age
    # and the temporary files of a killed save of this state (its lock is held)
    temporary = re.compile(r"\." + re.escape(name) + r"(\.[0-9a-f]{16}\.npz)?"
                           + re.escape(TMP_MARK) + r"[0-9a-f]+")
    for other in os.listdir(folder):
        if other != keep and (ours.fullmatch(other) or temporary.fullmatch(other)):
            os.remove(os.path.join(folder, other))


def load_envelope(path: str, operation: str, title: str, options: dict | None = None,
                  param: str | None = "state") -> Envelope:
    """Read a saved state of ``operation`` (``title`` names it in messages, ``param``
    the parameter that gave the path); one clear error for any other file."""
    fix = "Train it again." if operation == "train" else f"Fit a new {title} state."
    where = f"`{param}` {path}" if param else path
    try:
        with open_input(path, options or {}, "r") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BigprepError(f"{where}: cannot be read as a saved state ({exc}). {fix}") \
            from None
    found = data.get("format") if isinstance(data, dict) else type(data).__name__
    if found != FORMAT or data.get("version") != VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        raise BigprepError(f"{where}: not a bigprep {title} state of this version, but "
                           f"another format or version (format {found!r} version "
                           f"{version!r}; this bigprep reads {FORMAT!r} version {VERSION}). "
                           f"{fix}")
    if data.get("operation") != operation:
        raise BigprepError(f"{where}: not a bigprep {title} state (it is a "
                           f"{data.get('operation')!r} state). Give the state this command "
                           "saved.")
    try:
        seen = [[str(p), int(n)] for p, n in data["partitions_seen"]]
        envelope = Envelope(operation, dict(data["parameters"]), dict(data["payload"]), {},
                            seen, str(data["created"] or ""), int(data["updates"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BigprepError(f"{where}: the saved state is incomplete or was edited "
                           f"({type(exc).__name__}: {exc}). {fix}") from None
    if data.get("sidecar"):
        join, dirname = (posixpath.join, posixpath.dirname) if is_remote(path) else (
            os.path.join, os.path.dirname)
        side = join(dirname(path), data["sidecar"])
        try:
            with open_input(side, options or {}) as fh:
                blob = fh.read()
        except OSError as exc:
            raise BigprepError(f"{where}: its sidecar {side} is missing ({exc}); keep the "
                               "files of a state together.") from None
        if hashlib.sha256(blob).hexdigest() != data.get("sidecar_sha256"):
            raise BigprepError(f"{where}: its sidecar {side} is not the one it was saved "
                               "with (the checksum differs): it was changed or mixed with "
                               f"another state's. Restore the pair, or {fix[0].lower()}"
                               f"{fix[1:]}")
        try:
            with np.load(io.BytesIO(blob)) as npz:
                envelope.sidecar = {k: npz[k].tobytes() for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise BigprepError(f"{where}: its sidecar {side} is unreadable ({exc}). "
                               f"{fix}") from None
    return envelope


def decoded(path: str, decode, *args):
    """``decode(*args)``, with a damaged or edited payload reported as such."""
    try:
        return decode(*args)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BigprepError(f"`state` {path}: the saved state is damaged or was edited "
                           f"({type(exc).__name__}: {exc}). Fit a new state.") from None
