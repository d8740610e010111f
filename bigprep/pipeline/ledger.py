"""The ledger: which partitions a pipeline has done, keyed by their content.

Every input partition is known by its size and the hash of its Parquet footer (the
fingerprint the reader checks anyway), not by its name or time: a new file with an
older name is new, a renamed file is not, a file rewritten in place is "changed".
The ledger also names the saved state of each step (by generation, so a run killed
before the ledger is written leaves the previous states named) and records the runs.
It is written atomically and last: it is the pipeline's commit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..errors import BigprepError
from ..io.dataset import Partition
from ..io.sink import write_json_atomic

FORMAT, VERSION = "bigprep.ledger", 1
NAME = "ledger.json"
KEEP_RUNS = 200  # the run log keeps the newest runs


def content_key(partition: Partition) -> str:
    return f"{partition.size}:{partition.fingerprint}"


def belongs(rel: str, names) -> bool:
    """Whether the file at ``rel`` (in the state folder) is one of the named states':
    the state file, its sidecars, or a file in its model folder."""
    return any(rel == n or rel.startswith((n + ".", n + "/")) for n in names)


@dataclass
class Ledger:
    pipeline: str
    generation: int = 0  # the run that wrote the states named below
    spec_version: str | None = None  # of the run that wrote the states
    states: dict = field(default_factory=dict)  # step key -> state file (in the folder)
    partitions: dict = field(default_factory=dict)  # content key -> entry
    runs: list = field(default_factory=list)

    @classmethod
    def load(cls, folder: str, pipeline: str) -> Ledger:
        path = os.path.join(folder, NAME)
        if not os.path.exists(path):
            return cls(pipeline)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise ValueError(f"format {data.get('format')!r} version "
                                 f"{data.get('version')!r}")
            ledger = cls(data["pipeline"], int(data["generation"]), data["spec_version"],
                         dict(data["states"]), dict(data["partitions"]), list(data["runs"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BigprepError(
                f"{path}: not a bigprep ledger this version reads ({exc}). It is the "
                "pipeline's memory: restore it, or run with `full` to rebuild it.") from None
        if ledger.pipeline != pipeline:
            raise BigprepError(
                f"{path}: the state folder belongs to pipeline {ledger.pipeline!r}, not "
                f"{pipeline!r}. Give each pipeline its own `state` folder.")
        return ledger

    def save(self, folder: str) -> None:
        data = {"format": FORMAT, "version": VERSION, "pipeline": self.pipeline,
                "generation": self.generation, "spec_version": self.spec_version,
                "states": self.states, "partitions": self.partitions,
                "runs": self.runs[-KEEP_RUNS:]}
        write_json_atomic(os.path.join(folder, NAME), data)

    # -- what to do with each partition -----------------------------------------------
    def classify(self, partitions, spec_version: str) -> dict[str, list[Partition]]:
        """Partitions by what the ledger says: new, done, changed (the path was done
        with other content), failed, stale (done by another spec version)."""
        done_paths = self.done_paths()
        out: dict[str, list[Partition]] = {k: [] for k in
                                           ("new", "done", "changed", "failed", "stale")}
        for p in partitions:
            entry = self.partitions.get(content_key(p))
            if entry is None:  # a failed file rewritten (fixed) is new: it was never done
                out["changed" if p.rel in done_paths else "new"].append(p)
            elif entry["status"] == "failed":
                out["failed"].append(p)
            elif entry.get("spec") != spec_version:
                out["stale"].append(p)
            else:
                out["done"].append(p)
        return out

    def status(self, partition: Partition) -> str | None:
        """What the ledger says of this content: done, failed, or None (unknown)."""
        return self.partitions.get(content_key(partition), {}).get("status")

    def done_paths(self) -> set[str]:
        return {e["path"] for e in self.partitions.values() if e["status"] == "done"}

    def missing(self, partitions) -> list[str]:
        """Paths the ledger has done that are no longer among the inputs."""
        present = {content_key(p) for p in partitions}
        return sorted(e["path"] for k, e in self.partitions.items()
                      if k not in present and e["status"] == "done")

    def record(self, partitions, status: str, run: int, spec_version: str,
               errors: dict | None = None) -> None:
        """Partitions done (or failed, with ``errors`` by relative path)."""
        for p in partitions:
            # done content replaces every entry of its path; a failure never replaces a
            # done entry (its rows are in the states: the path stays "changed")
            for key in [k for k, e in self.partitions.items() if e["path"] == p.rel
                        and (status == "done" or e["status"] != "done")]:
                del self.partitions[key]
            entry = {"path": p.rel, "size": p.size, "rows": p.rows, "spec": spec_version,
                     "status": status, "run": run}
            if errors and p.rel in errors:
                entry["error"] = errors[p.rel]
            self.partitions[content_key(p)] = entry
