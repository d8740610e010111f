"""Generate a synthetic, partitioned sensor dataset as Parquet files.

Usage::

    python sample_data/generate.py OUT_DIR --rows N --files K [--seed S] [--groups G]
                                   [--row-group-rows R]

The stream of rows is in time order across ``part-00000.parquet``,
``part-00001.parquet``, ... and several sensors report interleaved. Columns:

    ts             timestamp[us], non-decreasing over the whole stream (ties happen)
    sensor_id      string "s0000" .. G groups, uneven report rates
    site           string, a few values, never null
    temp           float64, daily cycle per sensor
    humidity       float64, follows temp; entirely null in one whole file
    pressure       float64, slow weather waves; gateway outages null it for runs of rows
    wind           float64, >= 0
    voltage        float64, follows battery
    battery        int64 percent, drains and gets recharged
    status         string ok / warn / fault
    reading_count  int32
    flag           bool
    note           string, mostly null
    calib          float64 per-sensor calibration factor, never null

Gaps are realistic: random single nulls in every column but site/sensor_id/ts/calib,
per-sensor outages (a run of one sensor's rows with its readings null) and gateway
outages (a run of consecutive rows of the stream with ``pressure`` null). ``temp``
and ``voltage`` are null on the very first and very last row.

Rows are produced in fixed blocks of ``BLOCK_ROWS`` global rows, each from its own
seeded random stream, so the data depend on ``--seed``, ``--rows`` and ``--groups``
only (``--files`` decides where files end, and which file has no humidity;
``--row-group-rows`` only how files are cut into row groups). Files are written one
row group at a time, so memory stays small whatever the size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BLOCK_ROWS = 65_536
START = np.datetime64("2024-01-01T00:00:00", "us")
SITES = ["north", "south", "east", "west", "harbor"]
STATUSES = ["ok", "warn", "fault"]
NOTES = ["recalibrated", "sensor cleaned", "manual check", "battery swapped", "moved 2 m"]
OUTAGE_COLUMNS = ["temp", "humidity", "pressure", "wind", "voltage", "battery"]

SCHEMA = pa.schema([
    ("ts", pa.timestamp("us")),
    ("sensor_id", pa.string()),
    ("site", pa.string()),
    ("temp", pa.float64()),
    ("humidity", pa.float64()),
    ("pressure", pa.float64()),
    ("wind", pa.float64()),
    ("voltage", pa.float64()),
    ("battery", pa.int64()),
    ("status", pa.string()),
    ("reading_count", pa.int32()),
    ("flag", pa.bool_()),
    ("note", pa.string()),
    ("calib", pa.float64()),
])


class Plan:
    """Everything decided once for the whole stream: sensors and outages."""

    def __init__(self, rows: int, groups: int, seed: int):
        rng = np.random.default_rng([seed, 0])
        self.rows = rows
        self.seed = seed
        self.sensor_names = pa.array([f"s{i:04d}" for i in range(groups)])
        self.sensor_site = pa.array([SITES[i % len(SITES)] for i in range(groups)])
        # Some sensors report more often than others.
        self.weights = rng.dirichlet(np.full(groups, 5.0))
        self.base_temp = rng.normal(14.0, 4.0, groups)
        self.phase = rng.uniform(0, 2 * np.pi, groups)
        self.drain_days = rng.uniform(20.0, 60.0, groups)  # days from 100% to 0%
        self.calib = np.round(1.0 + rng.normal(0.0, 0.01, groups), 4)
        self.mean_gap_us = 60e6 / groups  # every sensor reports about once a minute

        # Per-sensor outages: (sensor, first row, end row), in global row positions.
        n = max(3, rows // 20_000)
        starts = rng.integers(0, rows, n)
        self.outages = np.stack([rng.integers(0, groups, n), starts,
                                 starts + rng.integers(200, 5_000, n)], axis=1)
        # Gateway outages: pressure is null for every row in [first, end).
        n = max(2, rows // 100_000)
        starts = rng.integers(0, rows, n)
        self.gateway = np.stack([starts, starts + rng.integers(50, 1_000, n)], axis=1)
        self.no_humidity = (0, 0)  # set by the writer: the rows of one whole file

    def block(self, index: int, first_ts: int) -> pa.Table:
        """Rows [index * BLOCK_ROWS, ...) of the stream; ``first_ts`` is the previous ts."""
        start = index * BLOCK_ROWS
        n = min(BLOCK_ROWS, self.rows - start)
        row = np.arange(start, start + n)
        rng = np.random.default_rng([self.seed, 1, index])

        gaps = np.round(rng.exponential(self.mean_gap_us, n) / 1000) * 1000  # whole ms
        gaps[rng.random(n) < 0.05] = 0  # several sensors report in the same instant
        ts = first_ts + np.cumsum(gaps).astype(np.int64)
        days = (ts - START.astype(np.int64)) / 86_400e6

        sensor = rng.choice(len(self.weights), n, p=self.weights)
        hour_angle = 2 * np.pi * (days % 1.0 - 9 / 24)
        temp = (self.base_temp[sensor] + 6.0 * np.sin(hour_angle)
                + 4.0 * np.sin(2 * np.pi * days / 365) + rng.normal(0, 0.5, n))
        humidity = np.clip(72 - 1.5 * (temp - self.base_temp[sensor])
                           + rng.normal(0, 3, n), 5, 100)
        pressure = (1013 + 8 * np.sin(2 * np.pi * days / 5 + self.phase[sensor])
                    - 3 * (sensor % len(SITES)) + rng.normal(0, 0.8, n))
        wind = rng.weibull(2.0, n) * 4.0
        battery = np.floor(100 * (1 - (days / self.drain_days[sensor]
                                       + self.phase[sensor]) % 1.0)).astype(np.int64)
        voltage = 3.3 + 0.9 * battery / 100 + rng.normal(0, 0.02, n)
        u = rng.random(n)
        status = np.where(u < 0.002, 2, np.where((battery < 10) | (u < 0.03), 1, 0))
        reading_count = rng.poisson(60, n).astype(np.int32)
        flag = rng.random(n) < 0.05
        note = rng.integers(0, len(NOTES), n)

        columns = {
            "temp": np.round(temp, 2), "humidity": np.round(humidity, 1),
            "pressure": np.round(pressure, 1), "wind": np.round(wind, 2),
            "voltage": np.round(voltage, 3), "battery": battery, "status": status,
            "reading_count": reading_count, "flag": flag,
        }
        null_share = {"temp": 0.01, "humidity": 0.02, "pressure": 0.01, "wind": 0.03,
                      "voltage": 0.005, "battery": 0.01, "status": 0.01,
                      "reading_count": 0.01, "flag": 0.02}
        nulls = {name: rng.random(n) < share for name, share in null_share.items()}
        for who, lo, hi in self.outages:
            hit = (row >= lo) & (row < hi) & (sensor == who)
            for name in OUTAGE_COLUMNS:
                nulls[name] |= hit
        for lo, hi in self.gateway:
            nulls["pressure"] |= (row >= lo) & (row < hi)
        lo, hi = self.no_humidity
        nulls["humidity"] |= (row >= lo) & (row < hi)
        for name in ("temp", "voltage"):
            nulls[name] |= (row == 0) | (row == self.rows - 1)

        def masked(name, type_):
            return pa.array(columns[name], type=type_, mask=nulls[name])

        status_codes = pa.array(status, type=pa.int32(), mask=nulls["status"])
        note_codes = pa.array(note, type=pa.int32(), mask=rng.random(n) >= 0.01)
        sensor_codes = pa.array(sensor, type=pa.int32())
        table = pa.table({
            "ts": pa.array(ts, type=pa.timestamp("us")),
            "sensor_id": pc.take(self.sensor_names, sensor_codes),
            "site": pc.take(self.sensor_site, sensor_codes),
            "temp": masked("temp", pa.float64()),
            "humidity": masked("humidity", pa.float64()),
            "pressure": masked("pressure", pa.float64()),
            "wind": masked("wind", pa.float64()),
            "voltage": masked("voltage", pa.float64()),
            "battery": masked("battery", pa.int64()),
            "status": pc.take(pa.array(STATUSES), status_codes),
            "reading_count": masked("reading_count", pa.int32()),
            "flag": masked("flag", pa.bool_()),
            "note": pc.take(pa.array(NOTES), note_codes),
            "calib": pa.array(self.calib[sensor]),
        })
        return table.cast(SCHEMA)


class RowStream:
    """Hands out the stream's rows in tables of any requested length, block by block."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.next_block = 0
        self.last_ts = int(START.astype(np.int64))
        self.buffer = SCHEMA.empty_table()

    def take(self, n: int) -> pa.Table:
        while self.buffer.num_rows < n:
            block = self.plan.block(self.next_block, self.last_ts)
            self.next_block += 1
            self.last_ts = block["ts"][-1].value
            self.buffer = pa.concat_tables([self.buffer, block]).combine_chunks()
        out, self.buffer = self.buffer.slice(0, n), self.buffer.slice(n)
        return out


def file_sizes(rows: int, files: int) -> list[int]:
    """Split rows evenly: the first ``rows % files`` files get one row more."""
    return [rows // files + (i < rows % files) for i in range(files)]


def generate(out_dir: Path, rows: int, files: int, seed: int = 0, groups: int = 50,
             row_group_rows: int = 131_072, quiet: bool = False) -> list[Path]:
    if rows < 1 or files < 1 or groups < 1 or row_group_rows < 1:
        raise ValueError("--rows, --files, --groups and --row-group-rows must be >= 1")
    if files > rows:
        raise ValueError(f"--files {files} is more than --rows {rows}: a file would be empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = Plan(rows, groups, seed)
    sizes = file_sizes(rows, files)
    if files >= 2:  # one whole file with no humidity at all (an all-null partition)
        lo = sum(sizes[: files // 2])
        plan.no_humidity = (lo, lo + sizes[files // 2])
    stream = RowStream(plan)
    paths = []
    for i, size in enumerate(sizes):
        path = out_dir / f"part-{i:05d}.parquet"
        with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
            left = size
            while left:
                n = min(row_group_rows, left)
                writer.write_table(stream.take(n), row_group_size=n)
                left -= n
        paths.append(path)
        if not quiet:
            print(f"{path} {size:,} rows", file=sys.stderr)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--rows", type=int, required=True, help="rows in all")
    parser.add_argument("--files", type=int, required=True, help="number of Parquet files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--groups", type=int, default=50, help="number of sensors")
    parser.add_argument("--row-group-rows", type=int, default=131_072,
                        help="rows per Parquet row group")
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        generate(args.out_dir, args.rows, args.files, args.seed, args.groups,
                 args.row_group_rows, args.quiet)
    except ValueError as err:
        parser.error(str(err))
    if not args.quiet:
        print(f"{args.rows:,} rows in {args.files} files written to {args.out_dir} "
              f"in {time.perf_counter() - began:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
