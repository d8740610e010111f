"""Atomic output: a partition appears complete or not at all.

Each output file is written under a hidden temporary name in its final folder
and renamed when complete (a rename within one folder is atomic on POSIX). A
failed write removes its temporary file, so a re-run starts clean.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import polars as pl

from ..errors import BigprepError
from .dataset import PAGE_CHECKSUMS
from .storage import is_remote, local, upload

TMP_MARK = ".bigprep-tmp-"
STREAM_BATCH_ROWS = 65_536


def arrow_level(schema: pl.Schema) -> pl.CompatLevel:
    """Arrow string views where pyarrow's Parquet writer takes them: polars hands them
    over without a copy (the oldest level copies every string into a large_string, ~10%
    of a copy job); readers see the same strings. Its dictionaries of views it does not
    write, so categorical columns keep the oldest level."""
    text = any(isinstance(t, (pl.Categorical, pl.Enum)) or t.is_nested()
               for t in schema.values())
    return pl.CompatLevel.oldest() if text else pl.CompatLevel.newest()


COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "brotli", None)


def check_compression(value) -> None:
    if value not in COMPRESSIONS:
        raise BigprepError(f"`compression` {value!r}: use one of "
                           f"{', '.join(map(str, COMPRESSIONS))} (None: uncompressed).")


def _absolute(path, remote: bool) -> str:
    """A path as compared: a URL without its trailing slash, a local path through links."""
    return str(path).rstrip("/") if remote else os.path.realpath(local(path))


def _within(path, folder) -> bool:
    """Whether ``path`` lies below ``folder``."""
    remote = is_remote(str(path)) or is_remote(str(folder))
    return _absolute(path, remote).startswith(_absolute(folder, remote) +
                                              ("/" if remote else os.sep))


def check_out_dir(out: str, inputs: list[str], root: str, folders=()) -> None:
    """Refuse an output folder that would overwrite or mix with the inputs, or that lies
    inside one of the ``folders`` given as inputs (read with every file below them)."""
    remote = is_remote(out) or any(is_remote(p) for p in inputs)
    out_abs = _absolute(out, remote)
    if not is_remote(out) and os.path.exists(out_abs) and not os.path.isdir(out_abs):
        raise BigprepError(f"`out` {out}: is a file, not a folder. Name a folder for the "
                           "output files.")
    for path in inputs:
        if _within(path, out):
            raise BigprepError(
                f"`out` {out}: the folder holds input file {path}; writing there could "
                "overwrite the inputs or read outputs as inputs. Choose a new folder.")
    if out_abs == _absolute(root, remote):
        raise BigprepError(f"`out` {out}: is the input folder itself. Choose a new folder.")
    # inside an input folder, the next run over that folder reads the outputs as inputs
    inside = sorted(f for f in folders if _within(out, f))
    if inside:
        raise BigprepError(
            f"`out` {out}: is inside the input folder {inside[0]}; the next run over that "
            "folder would read the outputs as input partitions. Choose a folder outside it.")


def check_state_path(state: str, inputs: list[str], out: str | None = None) -> None:
    """Refuse a state path that is an input (it would be overwritten), a folder, or inside
    the output folder ``out`` (which a run replaces whole)."""
    if out is not None and _within(state, out):
        raise BigprepError(f"`state` {state}: lies inside the output folder `out` {out}, "
                           "which a run replaces whole. Save the state outside it.")
    if is_remote(state):
        same = [p for p in inputs if p.rstrip("/") in (state, state + ".npz")]
    else:
        if os.path.isdir(local(state)):
            raise BigprepError(f"`state` {state}: is a folder; give a file name such as "
                               f"{os.path.join(state, 'state.json')}.")
        real = {os.path.realpath(local(state)), os.path.realpath(local(state) + ".npz")}
        same = [p for p in inputs if os.path.realpath(local(p)) in real]
    if same:
        raise BigprepError(f"`state` {state}: is input file {same[0]}; saving the state "
                           "there would overwrite it. Choose another file name.")


@contextmanager
def atomic_path(final: str, options: dict | None = None) -> Iterator[str]:
    """Yield a temporary path beside ``final``; rename it to ``final`` on success.

    For a URL the temporary file is local and is uploaded when complete: object
    stores show an object only once its upload has finished.
    """
    if is_remote(final):
        handle, tmp = tempfile.mkstemp(suffix=TMP_MARK + os.path.basename(final))
        os.close(handle)
        try:
            yield tmp
            upload(tmp, final, options or {})
        finally:
            os.remove(tmp)
        return
    final = local(final)
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


def write_partition(final: str, frames: Iterable[pl.DataFrame], schema: pl.Schema,
                    compression: str | None = "zstd", row_group_rows: int | None = None,
                    options: dict | None = None) -> int:
    """Stream ``frames`` into one Parquet file, atomically; return its rows.

    Every page carries a CRC32 checksum (readers that verify them, bigprep among
    them, find a damaged page instead of reading wrong values). Frames are written
    as they come, so memory stays at about one chunk. An empty stream still gives
    a file with the schema.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> write_partition(d + "/a.parquet", [pl.DataFrame({"x": [1, 2]})], pl.Schema({"x": pl.Int64}))
    2
    >>> pl.read_parquet(d + "/a.parquet")["x"].to_list()
    [1, 2]
    """
    rows = 0
    with atomic_path(final, options) as tmp:
        writer = None
        level = arrow_level(schema)
        try:
            for frame in frames:
                table = frame.to_arrow(compat_level=level)
                if writer is None:
                    writer = _writer(tmp, table.schema, compression)
                if table.num_rows:
                    writer.write_table(table, row_group_size=row_group_rows)
                rows += table.num_rows
            if writer is None:
                empty = pl.DataFrame(schema=schema).to_arrow(compat_level=level)
                writer = _writer(tmp, empty.schema, compression)
            if not rows:  # one empty row group: readers see the schema
                writer.write_table(writer.schema.empty_table())
        finally:
            if writer is not None:
                writer.close()
        if not is_remote(final):
            fsync_file(tmp)  # here, in the worker, it overlaps with the other partitions
    return rows


def fsync_file(path: str) -> None:
    """Flush a written file to disk: after a power cut a published file is whole."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writer(path: str, schema, compression: str | None):
    import pyarrow.parquet as pq

    return pq.ParquetWriter(path, schema.with_metadata({PAGE_CHECKSUMS: b"crc32"}),
                            compression=compression or "none", write_page_checksum=True)


def sink_query(final: str, query: pl.LazyFrame, compression: str | None = "zstd",
               row_group_rows: int | None = None, options: dict | None = None) -> int:
    """Run a lazy query with polars' streaming engine into one file, atomically.

    The batches (and so the row groups) are at most ``STREAM_BATCH_ROWS``: polars
    computes ahead of the writer, and bigger batches held ~100 MiB more at the
    peak of an 8M-row run for no speed (bench/README.md)."""
    size = min(row_group_rows or STREAM_BATCH_ROWS, STREAM_BATCH_ROWS)
    batches = query.collect_batches(chunk_size=size)
    return write_partition(final, batches, query.collect_schema(), compression,
                           row_group_rows, options)


def json_text(data: dict) -> str:
    """``data`` as the indented JSON bigprep writes (dates and numpy scalars included)."""
    return json.dumps(data, indent=1, default=_json_default) + "\n"


def write_json_atomic(path: str, data: dict, options: dict | None = None) -> None:
    with atomic_path(path, options) as tmp, open(tmp, "w") as fh:
        fh.write(json_text(data))


def sweep_temporary(folder: str) -> None:
    """Remove temporary files below ``folder`` that a killed worker could not remove
    (on a cluster its task was retried elsewhere and wrote the file whole)."""
    for directory, _, names in os.walk(folder):
        for name in names:
            if TMP_MARK in name:
                os.remove(os.path.join(directory, name))


def _json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
