"""Saved states: JSON a person can read, plus ``FILE.npz`` for large arrays.

One writer and one reader serve every kind of state (impute, TF-IDF), on local
disk or object storage; both files are written atomically, the sidecar first.
"""

from __future__ import annotations

import io
import json
import os
import posixpath

import numpy as np

from .errors import BigprepError
from .sink import atomic_path, write_json_atomic
from .storage import is_remote, open_input


def save_state(path: str, data: dict, sidecar: dict[str, bytes],
               options: dict | None = None) -> None:
    side = path + ".npz"
    data = {**data, "sidecar": posixpath.basename(side) if sidecar else None}
    if sidecar:
        with atomic_path(side, options) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.frombuffer(v, dtype=np.uint8) for k, v in sidecar.items()})
    write_json_atomic(path, data, options)


def load_state(path: str, expected_format: str, what: str, fix: str,
               options: dict | None = None) -> tuple[dict, dict[str, bytes]]:
    """(the JSON, the sidecar's arrays as bytes); clear errors for the wrong file."""
    try:
        with open_input(path, options or {}, "r") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise BigprepError(f"--state {path}: cannot read the saved state ({exc}). {fix}") \
            from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else None
        raise BigprepError(f"--state {path}: not a bigprep {what} state of this version "
                           f"(format {found!r}, expected {expected_format!r}). {fix}")
    sidecar = {}
    if data.get("sidecar"):
        join, dirname = (posixpath.join, posixpath.dirname) if is_remote(path) else (
            os.path.join, os.path.dirname)
        side = join(dirname(path), data["sidecar"])
        try:
            with open_input(side, options or {}) as fh, np.load(io.BytesIO(fh.read())) as npz:
                sidecar = {k: npz[k].tobytes() for k in npz.files}
        except (OSError, ValueError) as exc:
            raise BigprepError(f"--state {path}: its sidecar {side} is missing or unreadable "
                               f"({exc}); keep the two files together.") from None
    return data, sidecar
