"""Test helpers: write a frame as many partitions, read bigprep's output back."""

from __future__ import annotations

import os

import numpy as np
import polars as pl


def write_partitions(frame: pl.DataFrame, folder, sizes, row_group_size: int | None = None):
    """Split ``frame`` into files of ``sizes`` rows (0 makes an empty file)."""
    os.makedirs(folder, exist_ok=True)
    assert sum(sizes) == frame.height
    paths, start = [], 0
    for k, size in enumerate(sizes):
        path = os.path.join(folder, f"part-{k}.parquet")
        frame.slice(start, size).write_parquet(path, row_group_size=row_group_size or None)
        paths.append(path)
        start += size
    return paths


def read_output(folder, names) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(os.path.join(folder, os.path.basename(n)))
                      for n in names])


def with_holes(rng, values, share=0.3):
    """A series with ``share`` of its values set to null."""
    series = pl.Series(values)
    return series.scatter(np.flatnonzero(rng.random(len(series)) < share), None)


def impute(inputs, out, *, state_path=None, update=False, **params):
    """The imputer as the tests call it: fit (or, with ``update``, merge into the saved
    state), write ``out``, save ``state_path``; returns the run's report."""
    from bigprep import Imputer

    if update:
        imp = Imputer.load(state_path, executor=params.pop("executor", None),
                           storage_options=params.pop("storage_options", None))
        imp.set_params(**params)
        return imp.partial_fit_transform(inputs, out=out, save=state_path)
    imp = Imputer(keep_clean=bool(state_path), **params)
    return imp.fit_transform(inputs, out=out, save=state_path)
