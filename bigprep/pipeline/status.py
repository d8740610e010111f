"""What a pipeline has done: the ledger set against the inputs as they are now."""

from __future__ import annotations

import os
import time

from ..io.storage import is_remote
from .ledger import Ledger
from .remote import modified
from .run import list_inputs, state_folder
from .spec import Spec


def pipeline_status(spec: Spec, storage_options: dict | None = None) -> dict:
    options = storage_options or {}
    with state_folder(spec, options, write=False) as folder:
        ledger = Ledger.load(folder, spec.name)
        states = {key: {"file": name, "age": _age(_saved(spec, folder, name, options))}
                  for key, name in ledger.states.items()}
    dataset, unlisted = list_inputs(spec, ledger, options, keep_going=True)
    listed = list(dataset.partitions) if dataset is not None else []
    kinds = ledger.classify(listed, spec.version)
    counts = {k: len(v) for k, v in kinds.items()}
    counts["missing"] = len(ledger.missing(listed))
    known = [key for key, (p, _) in unlisted.items() if ledger.status(p) == "failed"]
    counts["failed"] += len(known)
    counts["unreadable"] = len(unlisted) - len(known)  # new, and fails to be listed
    return {"pipeline": spec.name, "spec_version": spec.version,
            "fitted_with": ledger.spec_version, "runs": len(ledger.runs),
            "last_run": ledger.runs[-1] if ledger.runs else None, "partitions": counts,
            "new": [p.rel for p in kinds["new"]], "changed": [p.rel for p in kinds["changed"]],
            "failed": {e["path"]: e.get("error", "") for e in ledger.partitions.values()
                       if e["status"] == "failed"},
            "unreadable": {p.rel: error for key, (p, error) in unlisted.items()
                           if key not in known},
            "states": states}


def _saved(spec: Spec, folder: str, name: str, options: dict) -> float | None:
    """Seconds since the state ``name`` was saved (None: it is missing)."""
    if is_remote(spec.state):
        when = modified(spec.state, name, options)
    else:
        path = os.path.join(folder, name)
        when = os.path.getmtime(path) if os.path.exists(path) else None
    return None if when is None else time.time() - when


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (file missing)"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
