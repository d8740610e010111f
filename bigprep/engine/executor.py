"""Run maps and tree reductions on this machine's threads or on a Dask cluster.

Locally the tasks run on a thread pool (polars and pyarrow release the GIL;
nothing to start, and dask is not even imported: a tenth of a second of every
small job). On a Dask distributed cluster, given by address or started with
``workers``, the same tasks run as a Dask graph of the same shape. Tasks are
plain functions over plain, picklable data.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Self

from ..errors import BigprepError

CONNECT_TIMEOUT_S = 10


class _Bar:
    """A rich progress bar on stderr that shows up only for work over a second."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.progress = None
        if enabled and total:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=Console(file=sys.stderr), transient=False)
            self.task = self.progress.add_task(label, total=total, start=True)
            self.progress.start()

    def advance(self, n: int = 1) -> None:
        if self.progress:
            self.progress.advance(self.task, n)

    def close(self) -> None:
        if self.progress:
            self.progress.stop()


class Executor:
    """Where the work runs.

    ``Executor()`` is the embedded local scheduler (threads on this machine);
    ``Executor("tcp://host:8786")`` (or ``$BIGPREP_SCHEDULER``) a running Dask
    cluster; ``Executor(workers=N)`` starts a local cluster of N worker processes
    for as long as the executor is open. The same task graph runs on all three.

    >>> Executor().map(abs, [-1, 2, -3])
    [1, 2, 3]
    >>> Executor().tree_reduce(lambda x: x, [1, 2, 3, 4, 5], lambda a, b: a + b)
    15
    """

    def __init__(self, scheduler: str | None = None, *, progress: bool = False,
                 workers: int | None = None, threads: int | None = None, log=None):
        self.scheduler = scheduler or os.environ.get("BIGPREP_SCHEDULER") or None
        if self.scheduler and workers:
            raise BigprepError("`workers` starts a local cluster and `scheduler` connects to "
                               "one: give one of them.")
        self.workers = workers
        self.progress = progress
        self.threads = threads or os.cpu_count() or 1
        self.log = log
        self._client = self._cluster = None

    def client(self):
        """The distributed client, started on first use; None for the local scheduler."""
        if self._client is None and (self.scheduler or self.workers):
            from distributed import Client, LocalCluster

            if self.workers:
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                             processes=True, host="127.0.0.1",
                                             dashboard_address="127.0.0.1:0")
                self._client = Client(self._cluster)
            else:
                try:
                    self._client = Client(self.scheduler, timeout=CONNECT_TIMEOUT_S)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise BigprepError(
                        f"`scheduler` {self.scheduler}: cannot reach it within "
                        f"{CONNECT_TIMEOUT_S} s ({type(exc).__name__}: {exc}). Check the "
                        "address and that the scheduler runs, or leave it out to run on "
                        "this machine.") from None
            if self.log:
                self.log(f"Dask cluster: {self._client.scheduler.address}, dashboard "
                         f"{self._client.dashboard_link}")
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _on_cluster(self, final, leaves: list, bar: _Bar) -> Any:
        from distributed import as_completed

        futures = self.client().compute(leaves + [final])
        for _ in as_completed(futures[:-1]):
            bar.advance()
        return futures[-1].result()

    def map(self, fn: Callable, items: Sequence, label: str = "working") -> list:
        """``[fn(item) for item in items]``, run in parallel, results in order."""
        bar = _Bar(label, len(items), self.progress)
        try:
            if self.client() is not None:
                import dask

                tasks = [dask.delayed(fn, pure=False)(item) for item in items]
                return list(self._on_cluster(dask.delayed(list)(tasks), tasks, bar))
            results = [None] * len(items)
            for i, result in self._local(fn, items, bar):
                results[i] = result
            return results
        finally:
            bar.close()

    def tree_reduce(self, fn: Callable, items: Sequence, merge: Callable,
                    label: str = "fitting") -> Any:
        """Merge ``fn(item)`` pairwise in a balanced tree, keeping item order.

        ``merge(left, right)`` sees the earlier items on the left, so order-aware
        states (scans) can rely on it. Level by level, neighbours pair up and an odd
        last one goes up alone: the same tree on threads and on a cluster, so float
        sums come out the same to the last bit.
        """
        if not items:
            raise ValueError("tree_reduce needs at least one item")
        bar = _Bar(label, len(items), self.progress)
        try:
            if self.client() is not None:
                import dask

                leaves = [dask.delayed(fn, pure=False)(item) for item in items]
                level = leaves
                while len(level) > 1:
                    level = [dask.delayed(merge, pure=False)(level[i], level[i + 1])
                             if i + 1 < len(level) else level[i]
                             for i in range(0, len(level), 2)]
                return self._on_cluster(level[0], leaves, bar)
            tree = _Tree(len(items), merge)
            for i, result in self._local(fn, items, bar):
                tree.put(i, result)  # merged as soon as its neighbour is in: memory stays
            return tree.root        # at about one state per level
        finally:
            bar.close()

    def _local(self, fn: Callable, items: Sequence, bar: _Bar):
        """Yield ``(index, fn(item))`` as the pool finishes them. Our own pool, so a
        failure (or Ctrl-C) waits for the tasks under way to stop before the caller
        cleans up after them; queued ones are cancelled."""
        pool = ThreadPoolExecutor(min(self.threads, len(items)) or 1)
        try:
            index = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for future in as_completed(index):  # one waiter per future: linear in items
                result = future.result()
                bar.advance()
                yield index[future], result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class _Tree:
    """A balanced merge tree fed its leaves in any order (see tree_reduce)."""

    def __init__(self, n: int, merge: Callable):
        self.merge, self.sizes, self.waiting = merge, [n], {}
        while self.sizes[-1] > 1:
            self.sizes.append((self.sizes[-1] + 1) // 2)
        self.root = None

    def put(self, index: int, state, level: int = 0) -> None:
        while level < len(self.sizes) - 1:
            sibling = index ^ 1
            if sibling >= self.sizes[level]:  # the odd last one goes up alone
                pass
            elif (level, sibling) in self.waiting:
                other = self.waiting.pop((level, sibling))
                state = self.merge(other, state) if sibling < index else \
                    self.merge(state, other)
            else:
                self.waiting[(level, index)] = state
                return
            index, level = index // 2, level + 1
        self.root = state
