"""Atomic output: a partition appears complete or not at all.

Each output file is written under a hidden temporary name in its final folder
and renamed when complete (a rename within one folder is atomic on POSIX). A
failed write removes its temporary file, so a re-run starts clean.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import BigprepError

TMP_MARK = ".bigprep-tmp-"


def check_out_dir(out: str, inputs: list[str], root: str) -> None:
    """Refuse an output folder that would overwrite or mix with the inputs."""
    out_abs = os.path.abspath(out)
    for path in inputs:
        if os.path.abspath(path).startswith(out_abs + os.sep):
            raise BigprepError(
                f"--out {out}: the folder holds input file {path}; writing there could "
                "overwrite the inputs or read outputs as inputs. Choose a new folder.")
    if out_abs == os.path.abspath(root):
        raise BigprepError(f"--out {out}: is the input folder itself. Choose a new folder.")


@contextmanager
def atomic_path(final: str) -> Iterator[str]:
    """Yield a temporary path beside ``final``; rename it to ``final`` on success."""
    folder = os.path.dirname(final) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(final)}{TMP_MARK}{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class PartitionWriter:
    """Write record batches to one Parquet file, atomically.

    >>> import tempfile, pyarrow as pa
    >>> d = tempfile.mkdtemp()
    >>> with PartitionWriter(d + "/a.parquet", pa.schema([("x", pa.int64())])) as w:
    ...     w.write(pa.table({"x": [1, 2]}))
    >>> pq.read_table(d + "/a.parquet").num_rows
    2
    """

    def __init__(self, final: str, schema: pa.Schema, compression: str = "zstd"):
        self.final, self.schema, self.compression = final, schema, compression

    def __enter__(self) -> Self:
        self._ctx = atomic_path(self.final)
        tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(tmp, self.schema, compression=self.compression)
        return self

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self.schema))

    def __exit__(self, kind, value, tb) -> bool:
        try:
            self._writer.close()
        except BaseException as exc:  # a file that did not close is not complete
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._ctx.__exit__(kind, value, tb)
        return False


def write_json_atomic(path: str, data: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, default=_json_default)
        fh.write("\n")


def _json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def write_manifest(out: str, written: list[dict], command: str) -> None:
    """Record what a run wrote, so a person or a scheduler can check it."""
    if not os.path.isdir(out):
        return
    write_json_atomic(os.path.join(out, "_bigprep_manifest.json"),
                      {"command": command, "files": written})
