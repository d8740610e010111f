"""Partitions, schemas and chunks.

A dataset is an ordered list of Parquet partitions (natural sort of their paths)
that share one schema. Work is done in *chunks*: batches of at most ``chunk_rows``
rows read one row group at a time, so chunk boundaries depend only on the file's
row groups and ``chunk_rows`` -- the fit pass and the apply pass see the same
chunks, which is what lets order-dependent fills hand seeds from one to the other.
"""

from __future__ import annotations

import glob
import hashlib
import os
import posixpath
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import BigprepError
from .storage import filesystem, is_remote, local, open_input
from .storage import url as storage_url

DEFAULT_CHUNK_ROWS = 262_144
PAGE_CHECKSUMS = b"bigprep.page_checksums"  # footer key of files whose pages carry CRCs


def natural_key(path: str) -> list:
    """Sort key that orders ``part-2`` before ``part-10``.

    >>> sorted(["p10.parquet", "p2.parquet", "p1.parquet"], key=natural_key)
    ['p1.parquet', 'p2.parquet', 'p10.parquet']
    """
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _resolve_remote(inputs: list[str], options: dict) -> tuple[list[str], str, str]:
    """Files, root and protocol for URLs (one kind of storage per run)."""
    files: list[str] = []
    roots: list[str] = []
    protocols = set()
    for item in inputs:
        fs, inner = filesystem(item, options)
        protocols.add(storage_url(fs, "x").split("://")[0])
        if glob.has_magic(inner):
            found = [f for f in fs.glob(inner) if f.endswith(".parquet")]
        elif fs.isdir(inner):
            found = [f for f in fs.find(inner) if f.endswith(".parquet")]
            roots.append(inner.rstrip("/"))
        elif fs.isfile(inner):
            found = [inner]
        else:
            raise BigprepError(f"{item}: no such object or prefix (or no access: check the "
                               "credentials and `storage_options` such as endpoint_url).")
        if not found:
            raise BigprepError(f"{item}: matches no *.parquet object.")
        files.extend(found)
    if len(protocols) > 1:
        raise BigprepError(f"inputs on several kinds of storage ({', '.join(sorted(protocols))})"
                           ": run bigprep on each separately.")
    files = sorted(set(files), key=natural_key)
    parents = [posixpath.dirname(f) for f in files]
    root = posixpath.commonpath(parents + roots)
    protocol = protocols.pop()
    return [f"{protocol}://{f}" for f in files], f"{protocol}://{root}", protocol


def resolve_paths(inputs: Sequence[str], options: dict | None = None) -> tuple[list[str], str]:
    """Expand files, directories (every ``*.parquet`` below) and globs.

    Returns the files in natural order and the root folder that output paths
    are made relative to.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not isinstance(inputs, (list, tuple)) or not all(
            isinstance(i, (str, os.PathLike)) for i in inputs):
        raise BigprepError(f"`inputs` {inputs!r}: give a path, folder, glob or URL, or a "
                           "list of them.")
    inputs = [str(i) for i in inputs]
    if inputs and all(is_remote(i) for i in inputs):
        files, root, _ = _resolve_remote(inputs, options or {})
        return files, root
    if any(is_remote(i) for i in inputs):
        raise BigprepError("inputs mix local files and URLs: run bigprep on each separately.")
    inputs = [local(i) for i in inputs]
    files: list[str] = []
    roots: list[str] = []
    for item in map(str, inputs):
        if os.path.isdir(item):
            found = glob.glob(os.path.join(item, "**", "*.parquet"), recursive=True)
            if not found:
                raise BigprepError(f"{item}: the folder holds no *.parquet file. "
                                   "Point bigprep at the folder that holds the partitions.")
            roots.append(os.path.abspath(item))
            files.extend(found)
        elif glob.has_magic(item):
            found = [f for f in glob.glob(item, recursive=True) if os.path.isfile(f)]
            if not found:
                raise BigprepError(f"{item}: the pattern matches no file. Check the path, "
                                   "and quote the pattern so bigprep expands it.")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise BigprepError(f"{item}: no such file or folder.")
    files = sorted({os.path.abspath(f) for f in files}, key=natural_key)
    if not files:
        raise BigprepError("no input files: name Parquet files, folders or glob patterns.")
    parents = [os.path.dirname(f) for f in files]
    root = os.path.commonpath(parents + roots) if roots else os.path.commonpath(parents)
    return files, root


@dataclass(frozen=True)
class Partition:
    """One Parquet file: where it is, where its output goes, and its rows."""

    path: str
    rel: str
    offset: int  # global row position of its first row
    row_group_rows: tuple[int, ...]
    storage: tuple = ()  # storage options as (key, value) pairs, for remote paths
    size: int = 0  # bytes, and a hash of the footer: the content as listed, re-checked
    fingerprint: str = ""  # when the file is opened and before anything is published
    checksummed: bool = False  # written by bigprep: every page has a CRC to verify

    @property
    def options(self) -> dict:
        return dict(self.storage)

    @property
    def remote(self) -> bool:
        return is_remote(self.path)

    @property
    def rows(self) -> int:
        return sum(self.row_group_rows)


@dataclass
class Chunk:
    """Rows of one partition, with where they are (for messages that name a row)."""

    frame: pl.DataFrame
    partition: Partition
    offset: int  # global position of the first row

    def where(self, row: int = 0) -> str:
        return f"{self.partition.path}, row {self.offset - self.partition.offset + row}"


@dataclass(frozen=True)
class Dataset:
    partitions: tuple[Partition, ...]
    schema: pa.Schema
    root: str
    null_counts: dict  # column -> nulls known from footers, or None when unknown
    bounds: dict  # numeric column -> (min, max) from the footers' statistics, when all have them

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def dtype(self, column: str) -> pa.DataType:
        return self.schema.field(column).type

    @property
    def polars_schema(self) -> dict:
        return dict(pl.Schema(self.schema))

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.partitions]

    def require_each(self, columns: Sequence[str], param: str) -> None:
        """``require`` every one of ``columns`` (a list a parameter names), each once."""
        twice = next((c for i, c in enumerate(columns) if c in columns[:i]), None)
        if twice is not None:
            raise BigprepError(f"`{param}` {twice}: named twice; name each column once.")
        for column in columns:
            self.require(column, param)

    def require(self, column: str, param: str | None, scalar: bool = False) -> None:
        """Stop unless ``column`` exists (and, with ``scalar``, holds one value a row, not a
        list or struct); ``param`` names the parameter that asked for it (None: the column
        is needed by a saved model or state)."""
        asked = f"`{param}`: column {column!r}" if param else \
            f"column {column!r}, which the model was trained with,"
        if column not in self.schema.names:
            raise BigprepError(
                f"{asked} is not in the data (first file {self.partitions[0].path}). "
                f"Columns: {', '.join(self.columns)}.")
        if scalar and pa.types.is_nested(self.dtype(column)):
            raise BigprepError(
                f"{asked} is {self.dtype(column)} (first file {self.partitions[0].path}), a "
                "nested type; it needs one number or label a row. Flatten it first.")


def _open(path: str, options: dict | None = None, pages: bool = False,
          handle=None) -> pq.ParquetFile:
    """A Parquet file through pyarrow (from ``handle`` when one is open already);
    ``pages``: verify each page's CRC as it is read."""
    if handle is None and is_remote(path):
        handle = open_input(path, options or {})
    try:
        return pq.ParquetFile(path if handle is None else handle,
                              page_checksum_verification=pages)
    except (pa.ArrowException, OSError) as exc:
        raise BigprepError(f"{path}: not a readable Parquet file ({exc}). Re-export the file "
                           "or leave it out of the inputs; nothing was written.", path) from None


class SchemaDrift(BigprepError):
    """A partition (``partition``) whose schema differs from the first one's (``first``)."""

    def __init__(self, message: str, partition: str | None = None, first: str = ""):
        super().__init__(message, partition)
        self.first = first

    def __reduce__(self):
        return type(self), (self.raw, self.partition, self.first)


def _same_types(a: pa.Schema, b: pa.Schema) -> bool:
    """Same columns of the same logical types (string and large_string are one type)."""
    return a.names == b.names and pl.Schema(a) == pl.Schema(b)


def _describe_drift(path: str, schema: pa.Schema, first: str, expected: pa.Schema) -> str:
    found_types, expected_types = pl.Schema(schema), pl.Schema(expected)
    for field in expected:
        if field.name not in schema.names:
            return f"column {field.name!r} ({field.type}) is missing"
        found = found_types[field.name]
        if found != expected_types[field.name]:
            return f"column {field.name!r} is {found}, expected {expected_types[field.name]}"
    extra = [n for n in schema.names if n not in expected.names]
    if extra:
        return f"it has extra column(s) {', '.join(map(repr, extra))}"
    return "its columns are in another order"


def fingerprint(path: str, options: dict | None = None) -> tuple[int, str]:
    """(size, hash of the footer) of a Parquet file: a rewrite, a truncation or an
    append changes one of them."""
    try:
        with open_input(path, options or {}) as fh:
            return _fingerprint_of(fh)
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: str, exc: OSError) -> BigprepError:
    return BigprepError(f"{path}: cannot be read ({exc}). Check that it exists and is "
                        "readable; nothing was written.", path)


def _fingerprint_of(fh) -> tuple[int, str]:
    size = fh.seek(0, 2)
    if size < 12:
        return size, ""
    fh.seek(size - 8)
    tail = fh.read(8)
    length = min(int.from_bytes(tail[:4], "little"), size - 8)
    fh.seek(size - 8 - length)
    footer = fh.read(length)
    return size, hashlib.sha256(footer + tail).hexdigest()[:32]


def verify(partition: Partition) -> None:
    """Stop if a file is not what was listed: replaced, truncated or appended to while
    the run read it (its outputs and state would mix two versions)."""
    if not partition.fingerprint:
        return
    size, found = fingerprint(partition.path, partition.options)
    if (size, found) != (partition.size, partition.fingerprint):
        change = (f"{partition.size:,} bytes when listed, {size:,} now"
                  if size != partition.size else "its footer changed")
        raise BigprepError(f"{partition.path}: changed while this run read it ({change}). "
                           "Nothing was published; run again once the file is complete "
                           "and stays put.", partition.path)


def _footer(path: str, options: dict | None):
    """Schema, metadata and fingerprint of one input, through one open handle."""
    try:
        with open_input(path, options or {}) as fh:
            size, print_ = _fingerprint_of(fh)
            pf = _open(path, options, handle=fh)
            schema, meta = pf.schema_arrow.remove_metadata(), pf.metadata
    except OSError as exc:
        raise _unreadable(path, exc) from None
    repeated = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if repeated:
        raise BigprepError(f"{path}: column name {repeated[0]!r} appears more than once; "
                           "rename the duplicates when the file is written.", path)
    return schema, meta, size, print_


def relative(path: str, root: str) -> str:
    """Where ``path`` lies below ``root`` (an output's relative path)."""
    return posixpath.relpath(path, root) if is_remote(path) else os.path.relpath(path, root)


def open_dataset(inputs: Sequence[str], storage_options: dict | None = None,
                 root: str | None = None) -> Dataset:
    """Read every footer (not the data): schema, row groups, null counts.

    Stops with a clear error on a corrupt file or on schema drift, before
    anything is written. ``root``: the folder output paths are relative to (default:
    the inputs' common folder), for a subset of a larger input.
    """
    files, common = resolve_paths(inputs, storage_options)
    root = root or common
    storage = tuple(sorted((storage_options or {}).items()))
    partitions = []
    schema = None
    null_counts: dict = {}
    bounds: dict = {}
    offset = 0
    # Footers are small reads with a round trip each: read many at once (object stores).
    with ThreadPoolExecutor(max_workers=16) as pool:
        footers = list(pool.map(lambda path: _footer(path, storage_options), files))
    for path, (file_schema, meta, size, print_) in zip(files, footers):
        if schema is None:
            schema = file_schema
            null_counts = {name: 0 for name in schema.names}
            bounds = {f.name: [] for f in schema
                      if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)}
        elif not _same_types(file_schema, schema):
            reason = _describe_drift(path, file_schema, files[0], schema)
            raise SchemaDrift(
                f"schema drift: in {path} {reason} (as in the first partition {files[0]}). "
                "All partitions must share one schema: cast or rewrite that file, "
                "or run bigprep on the two groups separately.", path, files[0])
        sizes = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
        for i in range(meta.num_row_groups):
            rg = meta.row_group(i)
            for j in range(rg.num_columns):
                col = rg.column(j)
                name = col.path_in_schema
                if name not in null_counts or null_counts[name] is None:
                    continue
                stats = col.statistics
                if name in bounds and bounds[name] is not None:
                    if stats is not None and stats.has_min_max:
                        bounds[name] += [stats.min, stats.max]
                    elif rg.num_rows and (stats is None or stats.null_count != rg.num_rows):
                        bounds[name] = None  # values without statistics: bounds unknown
                if stats is None or not stats.has_null_count:
                    null_counts[name] = None
                else:
                    null_counts[name] += stats.null_count
        rel = relative(path, root)
        checksummed = (meta.metadata or {}).get(PAGE_CHECKSUMS) is not None
        partitions.append(Partition(path=path, rel=rel, offset=offset, row_group_rows=sizes,
                                    storage=storage, size=size, fingerprint=print_,
                                    checksummed=checksummed))
        offset += sum(sizes)
    for name, dtype in zip(schema.names, schema.types):
        # Statistics count nulls, not NaN: a float column may still hold missing values;
        # nested columns have statistics per leaf only.
        if pa.types.is_floating(dtype) or pa.types.is_nested(dtype):
            null_counts[name] = None
    bounds = {k: (min(v), max(v)) for k, v in bounds.items() if v}
    return Dataset(tuple(partitions), schema, root, null_counts, bounds)


def nan_columns(schema: pl.Schema, columns: Sequence[str] | None) -> list[str]:
    """The float columns whose NaN counts as missing: those of ``columns`` (all: None)."""
    return [n for n, t in schema.items() if t in (pl.Float32, pl.Float64)
            and (columns is None or n in columns)]


def normalize(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """NaN counts as missing in float columns, as in pandas and scikit-learn."""
    floats = nan_columns(frame.schema, columns)
    if not floats:
        return frame
    return frame.with_columns(pl.col(floats).fill_nan(None))


def iter_chunks(partition: Partition, columns: Sequence[str] | None,
                chunk_rows: int = DEFAULT_CHUNK_ROWS, nan_as_null: Sequence[str] | None = None,
                ) -> Iterator[tuple[int, pl.DataFrame]]:
    """Yield ``(global_offset, frame)`` for each chunk of a partition, in order.

    Chunks are slices of at most ``chunk_rows`` rows that never cross a row group
    (see ``chunk_spans``); polars reads each slice from the row group that holds
    it, so memory is bounded by a row group's compressed size plus one chunk.
    NaN becomes null in the float columns named by ``nan_as_null`` (all read
    columns when None), so a NaN counts as missing; other columns pass untouched.
    """
    verify(partition)
    if partition.remote or partition.checksummed:  # pyarrow: each row group read once
        yield from _iter_arrow_chunks(partition, columns, chunk_rows, nan_as_null)
        return
    yield from _iter_polars_chunks(partition, columns, chunk_rows, nan_as_null)


def _iter_polars_chunks(partition, columns, chunk_rows, nan_as_null):
    """One streaming query per file (NaN made null inside it), its batches cut at the
    chunk spans: half the cost of a query per span (bench/README.md). polars may read a
    little ahead of a slow consumer (up to about a file's decoded columns), so memory is
    bounded by the largest file's read columns, not by one row group."""
    spans = chunk_spans(partition, chunk_rows)
    if columns is not None and not list(columns):  # no column: frames of no rows, as polars
        for start, _ in spans:
            yield partition.offset + start, pl.DataFrame()
        return
    query = pl.scan_parquet(partition.path)
    if columns is not None:
        query = query.select(list(columns))
    try:
        floats = nan_columns(query.collect_schema(), nan_as_null)
        if floats:
            query = query.with_columns(pl.col(floats).fill_nan(None))
        # batches of the largest span (a tiny first row group must not set the size)
        lengths = [n for _, n in spans]
        batches = query.collect_batches(chunk_size=max(lengths, default=chunk_rows))
        for i, frame in enumerate(_cut(batches, lengths, partition.path)):
            yield partition.offset + spans[i][0], frame
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BigprepError(f"{partition.path}: cannot be read ({exc}). The file is damaged: "
                           "re-export it or leave it out.") from None


def _cut(batches, lengths: list[int], path: str):
    """Frames of exactly ``lengths`` rows from a stream of batches of any size, each in
    one piece (float sums then round as on any other path to the same rows), and a
    clear error if the stream holds fewer or more rows."""
    pending: list[pl.DataFrame] = []
    have = 0
    wanted = iter(lengths)
    need = next(wanted, None)
    for batch in batches:
        pending.append(batch)
        have += batch.height
        while need is not None and have >= need:
            frame = pending[0] if len(pending) == 1 else pl.concat(pending, rechunk=False)
            yield frame.slice(0, need).rechunk()
            rest = frame.slice(need)
            pending, have = ([rest] if rest.height else []), rest.height
            need = next(wanted, None)
    if need is not None or have:
        raise BigprepError(f"{path}: its row groups do not add up to the rows its footer "
                           f"counts ({sum(lengths):,}). The file is damaged: re-export it or "
                           "leave it out.")


def read_span(partition: Partition, start: int, length: int,
              columns: Sequence[str] | None) -> pl.DataFrame:
    """Rows [start, start + length) of a file (a span within one row group)."""
    cols = list(columns) if columns is not None else None
    try:
        if partition.remote or partition.checksummed:
            group, first = 0, 0
            while first + partition.row_group_rows[group] <= start:
                first += partition.row_group_rows[group]
                group += 1
            table = _open(partition.path, partition.options, partition.checksummed
                          ).read_row_group(group, columns=cols)
            return pl.from_arrow(table.slice(start - first, length))
        query = pl.scan_parquet(partition.path)
        return (query if cols is None else query.select(cols)).slice(start, length).collect()
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
        raise BigprepError(f"{partition.path}: rows {start}-{start + length - 1} cannot be "
                           f"read ({exc}). The file is damaged: re-export it or leave it "
                           "out.") from None


def _iter_arrow_chunks(partition, columns, chunk_rows, nan_as_null):
    pf = _open(partition.path, partition.options, partition.checksummed)
    offset = 0
    for rg, size in enumerate(partition.row_group_rows):
        try:
            group = pl.from_arrow(pf.read_row_group(rg, columns=columns))
        except (pa.ArrowException, OSError) as exc:
            raise BigprepError(f"{partition.path}: row group {rg} cannot be read ({exc}). "
                               "The file is damaged: re-export it or leave it out.") from None
        for start in range(0, size, chunk_rows):
            yield (partition.offset + offset + start,
                   normalize(group.slice(start, chunk_rows), nan_as_null))
        offset += size


def chunk_spans(partition: Partition, chunk_rows: int) -> list[tuple[int, int]]:
    """(start, length) of each chunk within the file, from the footer alone.

    >>> part = Partition("p.parquet", "p.parquet", 100, (5, 3))
    >>> chunk_spans(part, 2)
    [(0, 2), (2, 2), (4, 1), (5, 2), (7, 1)]
    """
    spans, offset = [], 0
    for size in partition.row_group_rows:
        spans += [(offset + s, min(chunk_rows, size - s)) for s in range(0, size, chunk_rows)]
        offset += size
    return spans


def chunk_offsets(partition: Partition, chunk_rows: int) -> list[int]:
    """Global offsets of the chunks ``iter_chunks`` yields."""
    return [partition.offset + start for start, _ in chunk_spans(partition, chunk_rows)]
