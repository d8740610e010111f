"""A catalogue of bad inputs and faults, across every command.

Each case runs one command in-process and checks what a user is promised: the exit
code (1 for a problem with the data, a file or a saved state, 2 for a usage error),
one short message that names the culprit (file, column or option) and no traceback,
inputs byte-identical afterwards, no stray files (``.bigprep-tmp-``,
``.bigprep-stage-``, locks, half output folders), and an earlier output or state that
the command was writing into unchanged. Values that are valid data must simply work.

A case that does not behave so today is kept as it should be and marked
``xfail(strict=True)`` with what happens instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from bigprep.cli import main

COMMANDS = ["impute", "profile", "tfidf-fit", "tfidf-update", "tfidf-transform",
            "tfidf-keywords", "train", "predict", "evaluate"]
WRITERS = {"impute": "out_impute", "impute-apply": "out_impute", "tfidf-transform": "out_vectors",
           "tfidf-keywords": "out_keywords", "predict": "out_pred"}
STRAY_MARKS = (".bigprep-tmp-", ".bigprep-stage-", ".bigprep-old-")
ROWS = 40
WORDS = ["red", "wine", "white", "apple", "green", "tea", "bread", "cheese"]


# --------------------------------------------------------------------------- data

def base_columns(n: int = ROWS, start: int = 0) -> dict:
    rows = range(start, start + n)
    return {
        "id": pa.array(list(rows), pa.int64()),
        "x": pa.array([None if i % 5 == 0 else float(i % 17) for i in rows], pa.float64()),
        "c": pa.array([None if i % 7 == 0 else "ab"[i % 2] for i in rows], pa.string()),
        "body": pa.array([" ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 5))
                          for i in rows], pa.string()),
        "y": pa.array([i % 2 for i in rows], pa.int64()),
    }


def table(n: int = ROWS, start: int = 0, **replace) -> pa.Table:
    """The base table with columns replaced (an array) or dropped (None)."""
    cols = base_columns(n, start)
    for name, array in replace.items():
        if array is None:
            cols.pop(name)
        else:
            cols[name] = array
    return pa.table(cols)


def write_inputs(folder: Path, tables) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, tab in enumerate(tables):
        path = folder / f"part-{k}.parquet"
        pq.write_table(tab, path, compression="zstd")
        paths.append(path)
    return paths


def halves(**replace) -> list[pa.Table]:
    """Two partitions of 20 rows, with columns replaced in both."""
    full = table(**replace)
    return [full.slice(0, ROWS // 2), full.slice(ROWS // 2)]


# ---------------------------------------------------------------------- commands

def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def argv(command: str, tmp: Path, inputs, *, target: str = "y", text: str = "body",
         extra=(), state: Path | None = None, model: Path | None = None) -> list:
    """The command over ``inputs``, writing into the earlier outputs under ``tmp``."""
    model = model or tmp / "clf_model"
    return {
        "impute": ["impute", *inputs, "--out", tmp / "out_impute", "--overwrite"],
        "impute-apply": ["impute", *inputs, "--out", tmp / "out_impute", "--overwrite",
                         "--state", state or tmp / "imp_state.json", "--apply"],
        "profile": ["profile", *inputs],
        "tfidf-fit": ["tfidf", "fit", *inputs, "--text-column", text, "--state",
                      state or tmp / "fit_state.json"],
        "tfidf-update": ["tfidf", "update", *inputs, "--state", state or tmp / "tf_state.json"],
        "tfidf-transform": ["tfidf", "transform", *inputs, "--state",
                            state or tmp / "tf_state.json", "--out", tmp / "out_vectors",
                            "--overwrite", "--keywords", "2"],
        "tfidf-keywords": ["tfidf", "keywords", *inputs, "--state",
                           state or tmp / "tf_state.json", "--out", tmp / "out_keywords",
                           "--overwrite", "--keywords", "2"],
        "train": ["train", *inputs, "--target", target, "--features", "x", "--epochs", "1",
                  "--validation", "0", "--out", tmp / "new_model"],
        "predict": ["predict", model, *inputs, "--out", tmp / "out_pred", "--overwrite",
                    "--keep", "id"],
        "evaluate": ["evaluate", model, *inputs],
    }[command] + list(extra) + ["-q"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Earlier outputs and states every case starts from (built once)."""
    root = tmp_path_factory.mktemp("assets")
    data = write_inputs(root / "seen", halves())
    steps = [
        ["impute", *data, "--out", root / "out_impute"],
        ["impute", *data, "--state", root / "imp_state.json"],
        ["tfidf", "fit", *data, "--text-column", "body", "--state", root / "tf_state.json"],
        ["tfidf", "fit", *data, "--text-column", "body", "--state", root / "fit_state.json"],
        ["tfidf", "transform", *data, "--state", root / "tf_state.json", "--out",
         root / "out_vectors", "--keywords", "2"],
        ["tfidf", "keywords", *data, "--state", root / "tf_state.json", "--out",
         root / "out_keywords"],
        ["train", *data, "--target", "y", "--features", "x", "--epochs", "1",
         "--validation", "0", "--out", root / "clf_model"],
        ["predict", root / "clf_model", *data, "--out", root / "out_pred", "--keep", "id"],
    ]
    for step in steps:
        result = invoke(*step, "-q")
        assert result.exit_code == 0, (step, result.output, result.exception)
    shutil.copytree(root / "clf_model", root / "new_model")
    shutil.rmtree(root / "seen")
    return root


@pytest.fixture
def tmp(tmp_path, assets):
    shutil.copytree(assets, tmp_path, dirs_exist_ok=True)
    return tmp_path


# ------------------------------------------------------------------------ checks

def snapshot(root: Path) -> dict:
    """Every file and folder under ``root``: its content hash, or that it is a folder."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            seen[os.path.relpath(os.path.join(folder, name), root)] = "<dir>"
        for name in files:
            path = os.path.join(folder, name)
            try:
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except FileNotFoundError:  # a writer still at work renamed it
                digest = "<vanished>"
            seen[os.path.relpath(path, root)] = digest
    return seen


def strays(root: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            if any(m in name for m in STRAY_MARKS) or name.endswith(".lock"):
                found.append(os.path.relpath(os.path.join(folder, name), root))
    return found


def inputs_of(tmp: Path) -> dict:
    return {k: v for k, v in snapshot(tmp).items() if k.split(os.sep)[0] == "in"}


def describe(result) -> str:
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        return f"uncaught {type(exc).__name__}: {exc}"
    return f"exit {result.exit_code}: {result.stderr.strip()[-600:]}"


def mentions(text: str, word: str) -> bool:
    """``word`` in ``text``; a bare column name must stand alone (quoted or not)."""
    if not re.fullmatch(r"\w+", word):
        return word in text
    return re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w-])", text) is not None


def assert_no_crash(result):
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), describe(result)
    assert "Traceback" not in result.output, describe(result)


def assert_refused(result, code: int, words, before: dict, tmp: Path, race: bool = False):
    """Exit ``code`` with one short message naming ``words``; nothing under ``tmp``
    changed (inputs, earlier outputs and states), nothing left behind.

    ``race``: kept for the callers; a failing partition now waits for the others under
    way before the clean-up, so no staging folder may be left (tested for certain by
    ``test_a_partition_failing_while_another_is_written_leaves_no_staging_folder``).
    """
    assert_no_crash(result)
    assert result.exit_code == code, describe(result)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error:"), describe(result)
    assert len(lines) <= (1 if code == 1 else 4), describe(result)
    assert len(lines[-1]) <= 1000, describe(result)
    for word in words:
        assert mentions(result.stderr, word), (word, describe(result))
    assert inputs_of(tmp) == {k: v for k, v in before.items() if k.split(os.sep)[0] == "in"}
    left = strays(tmp)
    assert not left, left
    after = snapshot(tmp)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))


def assert_done(result, command: str, tmp: Path, before: dict, inputs):
    """Exit 0, inputs untouched, nothing left behind, the output whole."""
    assert_no_crash(result)
    assert result.exit_code == 0, describe(result)
    assert inputs_of(tmp) == {k: v for k, v in before.items() if k.split(os.sep)[0] == "in"}
    assert not strays(tmp), strays(tmp)
    if command in WRITERS:
        out = tmp / WRITERS[command]
        manifest = json.loads((out / "_bigprep_manifest.json").read_text())
        assert len(manifest["files"]) == len(inputs)
        for path in inputs:
            written = out / Path(path).name
            assert pq.ParquetFile(written).metadata.num_rows == \
                pq.ParquetFile(path).metadata.num_rows
    if command in ("tfidf-fit", "tfidf-update"):
        state = tmp / ("fit_state.json" if command == "tfidf-fit" else "tf_state.json")
        assert json.loads(state.read_text())["format"] == "bigprep.state"
    if command == "train":
        assert json.loads((tmp / "new_model" / "model.json").read_text())["updates"] >= 1
    if command == "predict":
        written = pa.concat_tables([pq.read_table(tmp / "out_pred" / Path(p).name)
                                    for p in inputs])
        assert written["prediction"].null_count == 0


def xfail(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


def case(*values, marks=(), id=None):
    return pytest.param(*values, marks=marks, id=id)


# ------------------------------------------------------------------------- files

def flip(data: bytes, at: int, width: int = 16) -> bytes:
    return data[:at] + bytes(b ^ 0xFF for b in data[at:at + width]) + data[at + width:]


def not_parquet(path: Path):
    path.write_text("id,x,y\n1,2.0,0\nthis is a CSV file, not Parquet\n")


def zero_bytes(path: Path):
    path.write_bytes(b"")


def truncated_footer(path: Path):
    data = path.read_bytes()
    footer = int.from_bytes(data[-8:-4], "little")
    path.write_bytes(data[:len(data) - 8 - footer // 2])  # cut inside the footer


def truncated_data(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def damaged_pages(path: Path, at: float = 0.5):
    """Flip 8 bytes inside every column chunk (the footer stays intact)."""
    meta = pq.ParquetFile(path).metadata
    data = path.read_bytes()
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(g).column(c)
            start = col.dictionary_page_offset or col.data_page_offset
            data = flip(data, start + int(col.total_compressed_size * at) - 8, 8)
    path.write_bytes(data)


def damaged_checksummed_pages(path: Path):
    """A bigprep output (its pages carry CRC32 checksums) with bytes flipped at the end
    of every column chunk, in the page values: only the checksum can tell."""
    shutil.copy(path.parent.parent / "out_impute" / path.name, path)
    damaged_pages(path, at=1.0)


def reads_anything(tmp: Path) -> bool:
    """Whether chmod 000 fails to stop this process (root, as os.geteuid() == 0 says,
    unless it runs without CAP_DAC_OVERRIDE)."""
    probe = tmp / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        probe.read_text()
        return True
    except PermissionError:
        return False
    finally:
        probe.chmod(0o644)
        probe.unlink()


def unreadable(path: Path):
    """Made unreadable (chmod 000) once the inputs are hashed: see the test."""


FILE_FAULTS = {"not-parquet": not_parquet, "zero-bytes": zero_bytes,
               "truncated-footer": truncated_footer, "truncated-data": truncated_data,
               "damaged-page": damaged_pages, "damaged-checksummed-page":
               damaged_checksummed_pages, "unreadable": unreadable}
FILE_COMMANDS = [*COMMANDS, "impute-apply"]
# The message must blame the input, not an output.
BLAME = ("cannot be read", "not a readable", "no such file", "damaged", "permission")
FILE_XFAILS: dict = {}  # every case passes


def file_cases():
    for fault in [*FILE_FAULTS, "missing-path"]:
        for command in FILE_COMMANDS:
            reason = FILE_XFAILS.get((fault, command))
            yield case(fault, command, marks=[xfail(reason)] if reason else [],
                       id=f"{fault}-{command}")


@pytest.mark.parametrize("fault, command", list(file_cases()))
def test_a_bad_file_is_named_and_nothing_is_written(tmp, fault, command):
    if fault == "unreadable" and reads_anything(tmp):
        pytest.skip("this user reads any file (root)")
    paths = write_inputs(tmp / "in", halves())
    if fault == "missing-path":
        inputs, culprit = [paths[0], tmp / "in" / "gone.parquet"], "gone.parquet"
    else:
        if fault == "damaged-checksummed-page":
            shutil.copy(tmp / "out_impute" / "part-0.parquet", paths[0])
        FILE_FAULTS[fault](paths[1])
        inputs, culprit = [tmp / "in"], "part-1.parquet"
    before = snapshot(tmp)
    if fault == "unreadable":
        paths[1].chmod(0)
    try:
        result = invoke(*argv(command, tmp, inputs))
    finally:
        paths[1].chmod(0o644)
    message = result.stderr.lower()
    assert any(word in message for word in BLAME), describe(result)
    assert_refused(result, 1, [culprit], before, tmp,
                   race=command in WRITERS and fault.startswith("damaged"))


@pytest.mark.parametrize("command", [
    case(c)
    for c in ["impute-apply", "tfidf-transform", "tfidf-keywords", "predict"]])
def test_a_partition_failing_while_another_is_written_leaves_no_staging_folder(
        tmp, command, monkeypatch):
    """The race behind the damaged-page cases, made certain: part-0's write is slow
    (a busy disk), part-1 is damaged and fails at once."""
    from bigprep.io import sink

    original = sink.atomic_path

    @contextlib.contextmanager
    def slow(final, options=None):
        if os.path.basename(str(final)).startswith("part-0"):
            time.sleep(0.3)
        with original(final, options) as path:
            yield path

    monkeypatch.setattr(sink, "atomic_path", slow)
    paths = write_inputs(tmp / "in", halves())
    damaged_pages(paths[1])
    before = snapshot(tmp)
    result = invoke(*argv(command, tmp, [tmp / "in"]))
    time.sleep(0.6)  # let the slow write finish
    assert_refused(result, 1, ["part-1.parquet"], before, tmp)


# ------------------------------------------------------------------------ schema

def drift():
    first, second = halves()
    return [first, second.set_column(1, "x", pa.array([str(v) for v in
                                                        second["x"].to_pylist()]))]


def duplicate():
    first, second = halves()
    return [first, second.append_column("x", pa.array(range(second.num_rows), pa.int64()))]


@pytest.mark.parametrize("command", FILE_COMMANDS)
@pytest.mark.parametrize("kind", ["drift", "duplicate"])
def test_partitions_that_do_not_share_one_schema_are_named(tmp, command, kind):
    write_inputs(tmp / "in", drift() if kind == "drift" else duplicate())
    before = snapshot(tmp)
    result = invoke(*argv(command, tmp, [tmp / "in"]))
    assert_refused(result, 1, ["part-1.parquet", "x"], before, tmp)


NESTED_LIST = pa.array([[i, i + 1] if i % 3 else None for i in range(ROWS)],
                       pa.list_(pa.int64()))
NESTED_TEXT = pa.array([["red", "wine"] if i % 3 else None for i in range(ROWS)],
                       pa.list_(pa.string()))
NESTED_STRUCT = pa.array([{"a": i, "b": "x"} for i in range(ROWS)],
                         pa.struct([("a", pa.int64()), ("b", pa.string())]))
NESTED_FLOATS = pa.array([[float(i)] for i in range(ROWS)], pa.list_(pa.float64()))

# command -> (columns replaced, argv keywords, exit code, words in the message)
NESTED = {
    "impute": ({"nest": NESTED_LIST}, {"extra": ["-c", "nest=mean"]}, 1, ["nest"]),
    "profile": ({"nest": NESTED_LIST, "st": NESTED_STRUCT}, {}, 0, []),
    "tfidf-fit": ({"nest": NESTED_TEXT}, {"text": "nest"}, 1, ["nest"]),
    "tfidf-update": ({"body": NESTED_TEXT}, {}, 1, ["body"]),
    "tfidf-transform": ({"body": NESTED_TEXT}, {}, 1, ["body"]),
    "tfidf-keywords": ({"body": NESTED_TEXT}, {}, 1, ["body"]),
    "train": ({"st": NESTED_STRUCT}, {"target": "st"}, 1, ["st"]),
    "predict": ({"x": NESTED_FLOATS}, {}, 1, ["x"]),
    "evaluate": ({"x": NESTED_FLOATS}, {}, 1, ["x"]),
}

# command -> (columns replaced or dropped, argv keywords, words in the message)
MISSING = {
    "impute": ({}, {"extra": ["-c", "nope=mean"]}, ["nope"]),
    "tfidf-fit": ({}, {"text": "nope"}, ["nope", "--text-column"]),
    "tfidf-update": ({"body": None}, {}, ["body"]),
    "tfidf-transform": ({}, {"extra": ["--keep", "nope"]}, ["nope", "--keep"]),
    "tfidf-keywords": ({}, {"extra": ["--keep", "nope"]}, ["nope", "--keep"]),
    "train": ({}, {"target": "nope"}, ["nope", "--target"]),
    "predict": ({"x": None}, {}, ["x"]),
    "evaluate": ({"y": None}, {}, ["y"]),
}


NESTED_XFAILS: dict = {}  # every case passes


@pytest.mark.parametrize("command", [
    case(c, marks=[xfail(NESTED_XFAILS[c])] if c in NESTED_XFAILS else []) for c in COMMANDS])
def test_a_nested_column_where_a_scalar_is_needed(tmp, command):
    replace, options, code, words = NESTED[command]
    inputs = write_inputs(tmp / "in", halves(**replace))
    before = snapshot(tmp)
    result = invoke(*argv(command, tmp, [tmp / "in"], **options))
    if code == 0:
        assert_done(result, command, tmp, before, inputs)
    else:
        assert_refused(result, code, words, before, tmp)


@pytest.mark.parametrize("command", sorted(MISSING))
def test_a_missing_column_is_named(tmp, command):
    replace, options, words = MISSING[command]
    write_inputs(tmp / "in", halves(**replace))
    before = snapshot(tmp)
    result = invoke(*argv(command, tmp, [tmp / "in"], **options))
    assert_refused(result, 1, words, before, tmp)


# ------------------------------------------------------------------------ values

INF = float("inf")
NAN = float("nan")
BIG = 2**63


def values_inf():
    return halves(x=pa.array([INF if i % 6 == 1 else -INF if i % 6 == 2 else float(i)
                              for i in range(ROWS)], pa.float64()))


def values_nan_and_null():
    return halves(x=pa.array([NAN if i % 4 == 1 else None if i % 4 == 2 else float(i)
                              for i in range(ROWS)], pa.float64()))


def values_all_null():
    return halves(x=pa.nulls(ROWS, pa.float64()))


def values_empty_partition():
    return [table(ROWS // 2), table(0)]


def values_single_row():
    return [table(1, start=1)]


def values_huge_string():
    huge = " ".join(WORDS[i % len(WORDS)] + str(i % 1000) for i in range(120_000))
    assert len(huge) >= 1_000_000
    body = base_columns()["body"].to_pylist()
    body[3] = huge
    return halves(body=pa.array(body, pa.string()))


def values_uint64():
    return halves(x=pa.array([None if i % 5 == 0 else BIG + i for i in range(ROWS)],
                             pa.uint64()))


def values_old_dates():
    days = [None if i % 4 == 0 else dt.date(1900, 1, 1) + dt.timedelta(days=300 * i)
            for i in range(ROWS)]
    stamps = [None if i % 3 == 0 else dt.datetime(1969, 12, 31, 23, 59) - dt.timedelta(hours=i)
              for i in range(ROWS)]
    return halves(d=pa.array(days, pa.date32()), ts=pa.array(stamps, pa.timestamp("us")))


def values_decimals():
    return halves(x=pa.array([None if i % 5 == 0 else decimal.Decimal(f"{i}.25")
                              for i in range(ROWS)], pa.decimal128(10, 2)))


def values_dictionary():
    cols = base_columns()
    return halves(body=cols["body"].dictionary_encode(), c=cols["c"].dictionary_encode())


VALUES = {"inf": values_inf, "nan-and-null": values_nan_and_null, "all-null": values_all_null,
          "empty-partition": values_empty_partition, "single-row": values_single_row,
          "huge-string": values_huge_string, "uint64-over-2**63": values_uint64,
          "dates-before-1970": values_old_dates, "decimals": values_decimals,
          "dictionary-strings": values_dictionary}

# What each command must do with valid-but-awkward values: "ok" (exit 0, output whole),
# ("refuse", words) (exit 1 naming the column), or ("either", words) when the README
# leaves it open (a clean refusal naming the column is as good as a result).
EXPECT = {
    ("inf", "impute"): ("refuse", ["x"]),
    ("inf", "train"): ("refuse", ["x"]),
    ("inf", "predict"): ("either", ["x"]),
    ("inf", "evaluate"): ("either", ["x"]),
    ("all-null", "train"): ("either", ["x"]),
    ("single-row", "train"): ("refuse", ["y"]),
    ("single-row", "evaluate"): ("either", ["y"]),
    ("decimals", "train"): ("either", ["x"]),
    ("decimals", "predict"): ("either", ["x"]),
    ("decimals", "evaluate"): ("either", ["x"]),
}
VALUE_XFAILS: dict = {}


def value_cases():
    for value in VALUES:
        for command in COMMANDS:
            reason = VALUE_XFAILS.get((value, command))
            yield case(value, command, marks=[xfail(reason)] if reason else [],
                       id=f"{value}-{command}")


@pytest.mark.parametrize("value, command", list(value_cases()))
def test_awkward_values_work_or_are_refused_by_name(tmp, value, command):
    inputs = write_inputs(tmp / "in", VALUES[value]())
    before = snapshot(tmp)
    result = invoke(*argv(command, tmp, [tmp / "in"]))
    expect = EXPECT.get((value, command), "ok")
    if expect == "ok" or (expect[0] == "either" and result.exit_code == 0):
        assert_done(result, command, tmp, before, inputs)
    else:
        assert_refused(result, 1, expect[1], before, tmp)
    if command == "impute" and result.exit_code == 0:
        written = [pq.read_table(tmp / "out_impute" / p.name) for p in inputs]
        written = pa.concat_tables(written)
        read = pa.concat_tables([pq.read_table(p) for p in inputs])
        assert pl.Schema(written.schema) == pl.Schema(read.schema)  # string ~ large_string
        if value in ("nan-and-null", "uint64-over-2**63", "decimals", "dates-before-1970"):
            for name in ("x", "d", "ts"):
                if name in written.column_names:
                    assert written[name].null_count == 0, name
        if value == "nan-and-null":
            assert not any(math.isnan(v) for v in written["x"].to_pylist())  # NaN filled too
        if value == "uint64-over-2**63":
            assert written["x"][0].as_py() == BIG + 20  # the exact mean, beyond float64
    if command == "profile" and value == "nan-and-null":
        profile = json.loads(invoke("profile", tmp / "in", "--json").stdout)
        assert profile["columns"]["x"]["nulls"] == 20  # 10 NaN + 10 null


# ---------------------------------------------------------------- states, models

def foreign(path: Path):
    path.write_text(json.dumps({"name": "not ours", "rows": 3, "payload": [1, 2]}))


def truncated_json(path: Path):
    text = path.read_text()
    path.write_text(text[:len(text) // 2])


def tampered_sidecar(path: Path):
    side = path.parent / json.loads(path.read_text())["sidecar"]
    data = side.read_bytes()
    side.write_bytes(flip(data, len(data) // 2, 4))


def tampered_model(folder: Path):
    model = folder / json.loads((folder / "model.json").read_text())["payload"]["model_file"]
    data = model.read_bytes()
    model.write_bytes(flip(data, len(data) // 2, 4))


# a command that reads a state or model -> its argv, given that state or model
STATE_COMMANDS = {
    "impute-update": lambda tmp, state: ["impute", tmp / "in", "--out", tmp / "out_impute",
                                         "--state", state, "--update", "-q"],
    "impute-apply": lambda tmp, state: ["impute", tmp / "in", "--out", tmp / "out_impute",
                                        "--overwrite", "--state", state, "--apply", "-q"],
    "tfidf-update": lambda tmp, state: argv("tfidf-update", tmp, [tmp / "in"], state=state),
    "tfidf-transform": lambda tmp, state: argv("tfidf-transform", tmp, [tmp / "in"],
                                               state=state),
    "tfidf-keywords": lambda tmp, state: argv("tfidf-keywords", tmp, [tmp / "in"],
                                              state=state),
    "predict": lambda tmp, model: argv("predict", tmp, [tmp / "in"], model=model),
    "evaluate": lambda tmp, model: argv("evaluate", tmp, [tmp / "in"], model=model),
    "train-init-model": lambda tmp, model: argv("train", tmp, [tmp / "in"],
                                                extra=["--init-model", model]),
}
OWN_STATE = {"impute-update": "imp_state.json", "impute-apply": "imp_state.json",
             "tfidf-update": "tf_state.json", "tfidf-transform": "tf_state.json",
             "tfidf-keywords": "tf_state.json"}
OTHER_STATE = {"imp_state.json": "tf_state.json", "tf_state.json": "imp_state.json"}


def prepare_state(tmp: Path, fault: str, command: str):
    """Break the state or model ``command`` reads; returns (its path, words)."""
    if command in OWN_STATE:
        own = tmp / OWN_STATE[command]
        if fault == "foreign-json":
            foreign(tmp / "foreign.json")
            return tmp / "foreign.json", ["foreign.json"]
        if fault == "other-operation":
            other = OTHER_STATE[own.name]
            return tmp / other, [other, "tfidf" if other.startswith("tf") else "impute"]
        if fault == "truncated-json":
            truncated_json(own)
        elif fault == "tampered-sidecar":
            tampered_sidecar(own)
        elif fault == "malformed-model-json":
            own.write_text("{'format': bigprep.state,")
        return own, [own.name]
    folder = tmp / "clf_model"
    if fault == "foreign-json":
        foreign(folder / "model.json")
    elif fault == "other-operation":
        shutil.copy(tmp / "tf_state.json", folder / "model.json")
        return folder, ["clf_model", "tfidf"]
    elif fault == "truncated-json":
        truncated_json(folder / "model.json")
    elif fault == "tampered-sidecar":
        tampered_model(folder)
    elif fault == "malformed-model-json":
        (folder / "model.json").write_text("{'format': bigprep.state,")
    return folder, ["clf_model"]


STATE_FAULTS = ["foreign-json", "other-operation", "truncated-json", "tampered-sidecar",
                "malformed-model-json"]
STATE_XFAILS: dict = {}


def state_cases():
    for fault in STATE_FAULTS:
        for command in STATE_COMMANDS:
            reason = STATE_XFAILS.get((fault, command))
            yield case(fault, command, marks=[xfail(reason)] if reason else [],
                       id=f"{fault}-{command}")


@pytest.mark.parametrize("fault, command", list(state_cases()))
def test_a_bad_state_or_model_is_named_and_left_as_it_was(tmp, fault, command):
    write_inputs(tmp / "in", halves())
    state, words = prepare_state(tmp, fault, command)
    before = snapshot(tmp)
    result = invoke(*STATE_COMMANDS[command](tmp, state))
    assert_refused(result, 1, words, before, tmp)


# ----------------------------------------------------------------------- options

def options_cases():
    """(name, argv(tmp), exit code, words)."""
    inp = lambda tmp: [tmp / "in"]
    out_file = lambda tmp: tmp / "in" / "taken.txt"
    inside = lambda tmp: tmp / "in" / "clean"
    yield "impute-unknown-strategy", lambda tmp: argv(
        "impute", tmp, inp(tmp), extra=["-s", "medain"]), 2, ["medain", "median"]
    yield "impute-unknown-column-strategy", lambda tmp: argv(
        "impute", tmp, inp(tmp), extra=["-c", "x=intrepolate"]), 2, [
        "intrepolate", "'interpolate'", "x"]
    yield "train-unknown-model", lambda tmp: argv(
        "train", tmp, inp(tmp), extra=["--model", "logistc"]), 2, ["logistc", "--model"]
    yield "tfidf-fit-bad-min-df", lambda tmp: argv(
        "tfidf-fit", tmp, inp(tmp), extra=["--min-df", "lots"]), 2, ["lots", "--min-df"]
    yield "tfidf-fit-bad-ngram", lambda tmp: argv(
        "tfidf-fit", tmp, inp(tmp), extra=["--ngram", "3,1"]), 2, ["--ngram"]
    yield "impute-bad-storage-option", lambda tmp: argv(
        "impute", tmp, inp(tmp), extra=["--storage-option", "anon"]), 2, ["--storage-option"]
    for command in ["impute", "tfidf-transform", "tfidf-keywords", "predict"]:
        flag = ["--out"]
        yield f"{command}-out-is-a-file", (lambda tmp, c=command: _with_out(
            argv(c, tmp, inp(tmp)), out_file(tmp))), 1, flag + ["taken.txt"]
        yield f"{command}-out-inside-input-folder", (lambda tmp, c=command: _with_out(
            argv(c, tmp, inp(tmp)), inside(tmp))), 1, flag + ["inside the input folder"]
    yield "train-out-is-a-file", lambda tmp: _with_out(
        argv("train", tmp, inp(tmp)), out_file(tmp)), 1, ["--out", "taken.txt"]
    yield "tfidf-fit-state-is-a-folder", lambda tmp: argv(
        "tfidf-fit", tmp, inp(tmp), state=tmp / "out_vectors"), 1, ["--state", "out_vectors"]
    yield "tfidf-update-state-is-an-input", lambda tmp: argv(
        "tfidf-update", tmp, [tmp / "in" / "part-1.parquet"],
        state=tmp / "in" / "part-1.parquet"), 1, ["--state", "part-1.parquet"]


def _with_out(args: list, out: Path) -> list:
    args = list(args)
    at = args.index("--out")
    args[at + 1] = out
    return args


OPTION_XFAILS: dict = {}  # every case passes


@pytest.mark.parametrize("name, make, code, words", [
    case(name, make, code, words, id=name,
         marks=[xfail(OPTION_XFAILS[name])] if name in OPTION_XFAILS else [])
    for name, make, code, words in options_cases()])
def test_a_bad_option_is_named(tmp, name, make, code, words):
    write_inputs(tmp / "in", halves())
    (tmp / "in" / "taken.txt").write_text("someone's notes")
    before = snapshot(tmp)
    result = invoke(*make(tmp))
    assert_refused(result, code, words, before, tmp)
